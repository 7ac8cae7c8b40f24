import LLMDCore
import LLMDProtocol
import LLMDTransport
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The calls behind the endpoints, run off the event loop; what they write goes back to it.
extension LoopBound {
    func models(context: NIOLoopBound<ChannelHandlerContext>) async {
        let (environment, id, peer) = await submit { ($0.environment, $0.nextRequestID(), $0.peerCredentials) }
        let request = Request(id: id, method: ModelListMethod.method.rawValue, params: ModelListMethod.Params().json)
        let reply = await environment.handle(request, context: RequestContext(requestID: id, connectionID: 0, peer: peer))
        execute { handler in
            switch reply {
            case .reply(_, let result):
                guard let list = try? ModelListMethod.Result(json: result) else {
                    return handler.answer(error: OpenAIError(status: 500, message: "model.list answered in an unknown form", type: "api_error"), context: context.value)
                }
                handler.answer(status: 200, json: openAIModelList(list), context: context.value)
            case .error(_, let error):
                handler.answer(error: OpenAIError(error), context: context.value)
            default:
                handler.answer(error: OpenAIError(status: 500, message: "no answer", type: "api_error"), context: context.value)
            }
        }
    }

    /// A chat or text completion, or a session's turn: its method through the method table,
    /// its events turned into OpenAI's chunks as they come when the client streams.
    func generate(_ openAI: OpenAIRequest, call: GenerationCall, context: NIOLoopBound<ChannelHandlerContext>) async {
        let (environment, id, peer) = await submit { ($0.environment, $0.nextRequestID(), $0.peerCredentials) }
        let streaming = openAI.params.stream
        await submit { handler in handler.beginCall(call, writer: OpenAIResponseWriter(request: openAI, created: Int64(time(nil)))) }
        let events = EventHop(self, context: context)
        let requestContext = RequestContext(
            requestID: id, connectionID: 0, peer: peer,
            sendEvent: { event, _ in
                guard streaming else { return }
                events.send(event)
            })
        let reply = await environment.handle(call.request(id: id), context: requestContext)
        execute { handler in
            // Events sent before the reply are all streamed before it is written.
            events.drain(into: handler, context: context.value)
            handler.finishCall(reply, context: context.value)
        }
    }
}

/// What a generation request runs: a call without a session (`complete`), or the next turn
/// of the session named in `X-LLMD-Session` (`send`).
enum GenerationCall: Sendable {
    case complete(CompleteMethod.Params)
    case turn(SendMethod.Params)

    func request(id: RequestID) -> Request {
        switch self {
        case .complete(let params): Request(id: id, method: CompleteMethod.method.rawValue, params: params.json)
        case .turn(let params): Request(id: id, method: SendMethod.method.rawValue, params: params.json)
        }
    }

    /// The method's result, as far as the response needs it.
    func answer(_ result: JSONObject) throws(ProtocolError) -> GenerationAnswer {
        switch self {
        case .complete:
            let result = try CompleteMethod.Result(json: result)
            return GenerationAnswer(reply: result.reply, runID: result.runID, turn: nil)
        case .turn:
            let result = try SendMethod.Result(json: result)
            return GenerationAnswer(reply: result.reply, runID: result.runID, turn: result.turn)
        }
    }
}

/// A generation's reply, the chain run it ran in, and for a session's turn its number.
struct GenerationAnswer {
    var reply: CallReply
    var runID: String
    var turn: Int64?
}

/// A call's events on their way to the connection's event loop: one hop for all that
/// arrive before the loop takes them, not one per token (each hop can wake the loop).
///
/// Tokens the HTTP engine publishes go with the others of its round of reading, as on the
/// protocol socket (``HeldFlushes``): in a stream faster than `TokenBatchSec=` ([Events]
/// in llmd.conf(5)), a token waits up to that long for those after it.
final class EventHop: LoopFlushable {
    private let pending = Mutex<[CallbackEvent]>([])
    private let handler: LoopBound
    private let context: NIOLoopBound<ChannelHandlerContext>

    init(_ handler: LoopBound, context: NIOLoopBound<ChannelHandlerContext>) {
        (self.handler, self.context) = (handler, context)
    }

    var flushLoop: any EventLoop { context.eventLoop }

    func send(_ event: CallbackEvent) {
        let first = pending.withLock { pending in
            pending.append(event)
            return pending.count == 1
        }
        if first { HeldFlushes.schedule(self) }
    }

    func flush() {
        drain(into: handler.onLoop, context: context.value)
    }

    /// Streams what is pending; on the event loop.
    func drain(into handler: OpenAIHTTPHandler, context: ChannelHandlerContext) {
        let events = pending.withLock { pending in
            defer { pending.removeAll() }
            return pending
        }
        guard !events.isEmpty else { return }
        handler.stream(events, context: context)
    }
}

extension HTTPEnvironment {
    /// Runs `request` through the method table, counted as the protocol's requests are, so
    /// `status` shows it and a graceful stop waits for it.
    func handle(_ request: Request, context: RequestContext) async -> ServerMessage {
        state.requestStarted()
        defer { state.requestFinished() }
        return await methods.handle(request, context: context)
    }
}

extension OpenAIHTTPHandler {
    func answer(error: OpenAIError, turn: Int64? = nil, context: ChannelHandlerContext) {
        answer(status: error.status, json: error.json, turn: turn, context: context)
    }

    /// An event of the call: the chain's start names the response (and a turn's number);
    /// the start of the model call directly under it opens the stream with the assistant's
    /// role; that call's tokens are the chunks. A turn's summarising call runs under a chain
    /// of its own, so its tokens are not the reply's.
    func stream(_ events: [CallbackEvent], context: ChannelHandlerContext) {
        batchingWrites = true
        for event in events { stream(event, context: context) }
        batchingWrites = false
        writePendingEvents(context: context)
        context.flush()
    }

    private func stream(_ event: CallbackEvent, context: ChannelHandlerContext) {
        // Tokens first, the writer changed where it lies: this runs once per token.
        if event.type == .llmNewToken {
            guard event.runID == call?.replyRun else { return }
            if let pieces = event.data["tool_calls"], let writer = call?.writer {
                writeEvent(OpenAIResponseWriter.event(writer.chunk(toolCalls: pieces)), context: context)
            }
            guard let token = event.data["token"]?.stringValue, !token.isEmpty else { return }
            queueEvent(context: context) { call!.writer.appendTextChunkEvent(token, to: &$0) }
            return
        }
        guard var writer = call?.writer else { return }
        switch event.type {
        case .chainStart? where event.parentRunID == nil:
            call?.root = event.runID
            call?.turn = event.metadata["turn"]?.intValue
            writer.started(runID: event.runID, model: nil)
        case .chatModelStart?, .llmStart?:
            guard event.parentRunID == call?.root, call?.replyRun == nil else { return }
            writer.started(runID: call?.root ?? event.runID, model: event.data["model"]?.stringValue)
            call?.replyRun = event.runID
            startEvents(turn: call?.turn, context: context)
            if writer.request.endpoint == .chatCompletions {
                writeEvent(OpenAIResponseWriter.event(writer.chunk(role: true)), context: context)
            }
        default:
            break
        }
        call?.writer = writer
    }

    /// The call's reply or error, written as its stream's end or as a whole response.
    func finishCall(_ reply: ServerMessage, context: ChannelHandlerContext) {
        guard let state = call else { return }
        call = nil
        let writer = state.writer
        switch reply {
        case .reply(_, let object):
            guard let generated = try? state.method.answer(object) else {
                return answer(error: OpenAIError(status: 500, message: "llmd answered in an unknown form", type: "api_error"), context: context)
            }
            guard state.streamStarted else {
                guard writer.request.params.stream else {
                    let whole = writer.whole(generated.reply, runID: generated.runID)
                    return answer(status: 200, json: whole, turn: generated.turn, context: context)
                }
                // A stream that never started (no model call event): its whole content now.
                startEvents(turn: generated.turn, context: context)
                writeEvent(OpenAIResponseWriter.event(writer.chunk(text: generated.reply.text, role: true)), context: context)
                return finishStream(writer, reply: generated.reply, context: context)
            }
            finishStream(writer, reply: generated.reply, context: context)
        case .error(_, let error):
            guard state.streamStarted else {
                // A turn that failed still took its number, which its session shows.
                return answer(error: OpenAIError(error), turn: error.detail["turn"]?.intValue, context: context)
            }
            // Mid-stream the status is sent: the error goes as an event, as OpenAI's do.
            writeEvent(OpenAIResponseWriter.event(OpenAIError(error).json), context: context)
            endEvents(context: context)
        default:
            answer(error: OpenAIError(status: 500, message: "no answer", type: "api_error"), context: context)
        }
    }

    private func finishStream(_ writer: OpenAIResponseWriter, reply: CallReply, context: ChannelHandlerContext) {
        writeEvent(OpenAIResponseWriter.event(writer.chunk(finishReason: .some(reply.finishReason))), context: context)
        if writer.request.includeUsage {
            writeEvent(OpenAIResponseWriter.event(writer.usageChunk(reply.usage)), context: context)
        }
        writeEvent(OpenAIResponseWriter.done, context: context)
        endEvents(context: context)
    }
}
