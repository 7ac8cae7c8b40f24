import LLMDCurl
import LLMDOpenAI
import LLMDProtocol
import Synchronization

/// One HTTP attempt of a call: decodes the response as it arrives on the engine thread and
/// hands each token to the observer there, without a thread hop per token.
final class Attempt: HTTPResponseHandler {
    private struct State {
        var head: HTTPResponseHead?
        var parser = ServerSentEventParser()
        /// The body of an error response, or of a non-streamed one.
        var body: [UInt8] = []
        /// The text streamed so far, as UTF-8: appended to for every token, which costs a
        /// `String` several times what it costs an array.
        var text: [UInt8] = []
        var tokens = 0
        var finishReason: String?
        var usage: TokenUsage?
        var model: String?
        var sawDone = false
        var failure: UpstreamError?
        var firstTokenAt: ContinuousClock.Instant?
        /// The last delta around its text, so that most chunks need only their text read.
        var chunkShape: ChunkShape?
        /// The tool calls streamed so far, put together.
        var toolCalls = ToolCallAccumulator()
    }

    /// The largest non-streamed or error body kept.
    static let maximumBodySize = 32 << 20

    private let stream: Bool
    private let observer: CallObserver
    private let started = ContinuousClock.now
    private let state = Mutex(State())
    private let end = TransferEnd()

    init(stream: Bool, observer: CallObserver) {
        self.stream = stream
        self.observer = observer
    }

    func responseStarted(_ head: HTTPResponseHead) {
        state.withLock { $0.head = head }
    }

    func bodyReceived(_ bytes: UnsafeRawBufferPointer) {
        // Tool-call pieces are rare beside tokens: they go to the observer in order, after
        // the tokens of the same read.
        var toolCallPieces: [JSONValue] = []
        let tokens = state.withLock { state -> [String] in
            guard stream, state.head?.status == 200 else {
                // A whole response or an error body; bounded, since the server is not ours.
                if state.body.count + bytes.count > Self.maximumBodySize {
                    state.failure = state.failure
                        ?? UpstreamError(.upstreamProtocol, "response body larger than \(Self.maximumBodySize >> 20) MiB")
                } else {
                    state.body.append(contentsOf: bytes)
                }
                return []
            }
            guard state.failure == nil, !state.sawDone else { return [] }
            var tokens: [String] = []
            // `[DONE]` or a failure, tested for every event as a flag: testing the
            // optional error each time costs a copy of it.
            var stopped = false
            do throws(ServerSentEventParser.Failure) {
                try state.parser.parse(bytes) { event in
                    guard !stopped else { return }
                    if event.isDone {
                        state.sawDone = true
                        stopped = true
                        return
                    }
                    do throws(UpstreamError) {
                        let chunk = try OpenAIWire.decodeChunk(
                            event.data, readingModel: state.model == nil, shape: &state.chunkShape)
                        if !chunk.text.isEmpty {
                            if state.tokens == 0 { state.firstTokenAt = .now }
                            state.tokens += 1
                            var text = chunk.text
                            text.withUTF8 { state.text.append(contentsOf: $0) }
                            tokens.append(text)
                        }
                        // Assigned only when present: most chunks carry none of them.
                        if let finishReason = chunk.finishReason { state.finishReason = finishReason }
                        if let usage = chunk.usage { state.usage = usage }
                        if let model = chunk.model { state.model = model }
                        if let pieces = chunk.toolCalls {
                            state.toolCalls.add(pieces)
                            toolCallPieces.append(pieces)
                        }
                    } catch {
                        state.failure = error
                        stopped = true
                    }
                }
            } catch {
                state.failure = UpstreamError(.upstreamProtocol, "stream event larger than \(error)")
            }
            return tokens
        }
        if !tokens.isEmpty { observer.tokens(tokens) }
        for pieces in toolCallPieces { observer.toolCalls(pieces) }
    }

    func transferEnded(_ result: Result<Void, TransferFailure>) {
        end.report(result)
    }

    /// Waits for the transfer to end and says how the attempt went.
    func outcome(model requestedModel: String, provider: String) async -> Result<CallResult, UpstreamClient.AttemptFailure> {
        let ended = await end.wait()
        let snapshot = state.withLock { $0 }
        func fail(_ error: UpstreamError) -> Result<CallResult, UpstreamClient.AttemptFailure> {
            .failure(
                UpstreamClient.AttemptFailure(
                    error: error, partialText: String(decoding: snapshot.text, as: UTF8.self), tokensDelivered: snapshot.tokens,
                    retryAfter: snapshot.head?.header("retry-after")))
        }
        if case .failure(let transfer) = ended {
            switch transfer {
            case .cancelled: return fail(UpstreamError(.cancelled, "the call was cancelled"))
            case .connectTimeout: return fail(UpstreamError(.upstreamTimeout, "no connection within the connect timeout"))
            case .idleTimeout: return fail(UpstreamError(.upstreamTimeout, "the server went silent past the idle timeout"))
            case .totalTimeout: return fail(UpstreamError(.upstreamTimeout, "the call took longer than its total timeout"))
            case .unreachable(let message): return fail(UpstreamError(.upstreamUnreachable, message))
            case .interrupted(let message):
                if snapshot.head?.status == 200 {
                    return fail(UpstreamError(.upstreamStreamCut, "the stream broke off: \(message)", status: nil))
                }
                return fail(UpstreamError(.upstreamUnreachable, message))
            }
        }
        guard let head = snapshot.head else { return fail(UpstreamError(.upstreamProtocol, "no response")) }
        if let failure = snapshot.failure, head.status == 200 || failure.code == .upstreamProtocol { return fail(failure) }
        guard head.status == 200 else { return fail(UpstreamError.fromResponse(status: head.status, body: snapshot.body)) }

        var text = String(decoding: snapshot.text, as: UTF8.self)
        var finishReason = snapshot.finishReason
        var usage = snapshot.usage
        var model = snapshot.model
        var toolCalls = snapshot.toolCalls.toolCalls
        if stream {
            guard snapshot.sawDone else {
                return fail(UpstreamError(.upstreamStreamCut, "the stream ended before [DONE]"))
            }
        } else {
            do {
                let completion = try OpenAIWire.decodeCompletion(snapshot.body)
                (text, finishReason, usage, model) = (completion.text, completion.finishReason, completion.usage, completion.model)
                toolCalls = completion.toolCalls
            } catch {
                return fail(error)
            }
        }
        return .success(
            CallResult(
                text: text, finishReason: finishReason, usage: usage,
                model: model ?? requestedModel, provider: provider, attempts: 1,
                timeToFirstToken: snapshot.firstTokenAt.map { $0 - started }, duration: ContinuousClock.now - started,
                toolCalls: toolCalls))
    }
}
