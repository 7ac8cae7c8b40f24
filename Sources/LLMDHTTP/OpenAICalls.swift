import LLMDCore
import LLMDProtocol
import NIOCore

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

    /// A chat or text completion: `complete` through the method table, its events turned
    /// into OpenAI's chunks as they come when the client streams.
    func generate(_ openAI: OpenAIRequest, params: CompleteMethod.Params, context: NIOLoopBound<ChannelHandlerContext>) async {
        let (environment, id, peer) = await submit { ($0.environment, $0.nextRequestID(), $0.peerCredentials) }
        let streaming = params.stream
        await submit { handler in handler.beginCall(OpenAIResponseWriter(request: openAI, created: Int64(time(nil)))) }
        let requestContext = RequestContext(
            requestID: id, connectionID: 0, peer: peer,
            sendEvent: { event, _ in
                guard streaming else { return }
                execute { handler in handler.stream(event, context: context.value) }
            })
        let request = Request(id: id, method: CompleteMethod.method.rawValue, params: params.json)
        let reply = await environment.handle(request, context: requestContext)
        execute { handler in handler.finishCall(reply, context: context.value) }
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
    func answer(error: OpenAIError, context: ChannelHandlerContext) {
        answer(status: error.status, json: error.json, context: context)
    }

    /// An event of the call: the chain's start names the response; the model call's
    /// start opens the stream with the assistant's role; each of its tokens is a chunk.
    func stream(_ event: CallbackEvent, context: ChannelHandlerContext) {
        guard var writer = call?.writer else { return }
        switch event.type {
        case .chainStart? where event.parentRunID == nil:
            call?.root = event.runID
            writer.started(runID: event.runID, model: nil)
        case .chatModelStart?, .llmStart?:
            guard event.parentRunID == call?.root, call?.streamStarted == false else { return }
            writer.started(runID: call?.root ?? event.runID, model: event.data["model"]?.stringValue)
            call?.streamStarted = true
            startEvents(context: context)
            if writer.request.endpoint == .chatCompletions {
                writeEvent(OpenAIResponseWriter.event(writer.chunk(role: true)), context: context)
            }
        case .llmNewToken? where call?.streamStarted == true:
            if let pieces = event.data["tool_calls"] {
                writeEvent(OpenAIResponseWriter.event(writer.chunk(toolCalls: pieces)), context: context)
            }
            guard let token = event.data["token"]?.stringValue, !token.isEmpty else { return }
            writeEvent(OpenAIResponseWriter.event(writer.chunk(text: token)), context: context)
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
            guard let result = try? CompleteMethod.Result(json: object) else {
                return answer(error: OpenAIError(status: 500, message: "complete answered in an unknown form", type: "api_error"), context: context)
            }
            guard state.streamStarted else {
                guard writer.request.params.stream else { return answer(status: 200, json: writer.whole(result), context: context) }
                // A stream that never started (no model call event): its whole content now.
                startEvents(context: context)
                writeEvent(OpenAIResponseWriter.event(writer.chunk(text: result.reply.text, role: true)), context: context)
                return finishStream(writer, result: result, context: context)
            }
            finishStream(writer, result: result, context: context)
        case .error(_, let error):
            guard state.streamStarted else { return answer(error: OpenAIError(error), context: context) }
            // Mid-stream the status is sent: the error goes as an event, as OpenAI's do.
            writeEvent(OpenAIResponseWriter.event(OpenAIError(error).json), context: context)
            endEvents(context: context)
        default:
            answer(error: OpenAIError(status: 500, message: "no answer", type: "api_error"), context: context)
        }
    }

    private func finishStream(_ writer: OpenAIResponseWriter, result: CompleteMethod.Result, context: ChannelHandlerContext) {
        writeEvent(OpenAIResponseWriter.event(writer.chunk(finishReason: .some(result.reply.finishReason))), context: context)
        if writer.request.includeUsage {
            writeEvent(OpenAIResponseWriter.event(writer.usageChunk(result.reply.usage)), context: context)
        }
        writeEvent(OpenAIResponseWriter.done, context: context)
        endEvents(context: context)
    }
}
