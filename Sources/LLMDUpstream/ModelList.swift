import LLMDCore
import LLMDCurl
import LLMDOpenAI
import Synchronization

/// How a transfer ended, for the task that awaits it: the engine's thread reports it once,
/// after the last of the response.
final class TransferEnd: Sendable {
    private let state = Mutex<(ended: Result<Void, TransferFailure>?, waiter: CheckedContinuation<Void, Never>?)>((nil, nil))

    func report(_ result: Result<Void, TransferFailure>) {
        let waiter = state.withLock { state -> CheckedContinuation<Void, Never>? in
            state.ended = result
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume()
    }

    /// Waits for ``report(_:)``, which may have come already.
    func wait() async -> Result<Void, TransferFailure> {
        await withCheckedContinuation { continuation in
            let endedAlready = state.withLock { state -> Bool in
                if state.ended != nil { return true }
                state.waiter = continuation
                return false
            }
            if endedAlready { continuation.resume() }
        }
        return state.withLock { $0.ended! }
    }
}

/// A whole response, gathered for a caller that waits for it: `GET /models`.
final class BufferedResponse: HTTPResponseHandler {
    /// A model list of a few thousand entries is well under this.
    static let maximumBodySize = 4 << 20

    private let received = Mutex<(head: HTTPResponseHead?, body: [UInt8])>((nil, []))
    private let end = TransferEnd()

    func responseStarted(_ head: HTTPResponseHead) {
        received.withLock { $0.head = head }
    }

    func bodyReceived(_ bytes: UnsafeRawBufferPointer) {
        received.withLock { received in
            if received.body.count + bytes.count <= Self.maximumBodySize { received.body.append(contentsOf: bytes) }
        }
    }

    func transferEnded(_ result: Result<Void, TransferFailure>) {
        end.report(result)
    }

    /// Waits for the transfer to end: the status and body, or why there are none.
    func response() async -> Result<(status: Int, body: [UInt8]), UpstreamError> {
        let ended = await end.wait()
        let (head, body) = received.withLock { ($0.head, $0.body) }
        switch ended {
        case .failure(.cancelled): return .failure(UpstreamError(.cancelled, "the request was cancelled"))
        case .failure(.unreachable(let message)), .failure(.interrupted(let message)):
            return .failure(UpstreamError(.upstreamUnreachable, message))
        case .failure: return .failure(UpstreamError(.upstreamTimeout, "no answer in time"))
        case .success: break
        }
        guard let head else { return .failure(UpstreamError(.upstreamProtocol, "no response")) }
        return .success((head.status, body))
    }
}

extension UpstreamClient {
    /// The models the provider's server offers.
    ///
    /// Meant for messages (a call that names no model), so it waits a few seconds at most
    /// and is not retried.
    public func listModels(provider: ResolvedProvider, timeout: Duration = .seconds(5)) async throws(UpstreamError) -> [String] {
        try await provider.server.listModels(provider: provider, client: self, timeout: timeout)
    }

    /// What an OpenAI-compatible server's `GET /models` lists.
    func listOpenAICompatibleModels(provider: ResolvedProvider, timeout: Duration) async throws(UpstreamError) -> [String] {
        let configuration = provider.configuration
        var headers = ["Accept: application/json"]
        if let key = provider.apiKey { headers.append("Authorization: Bearer \(key.secret)") }
        headers += configuration.headers
        let request = HTTPRequest(
            url: configuration.baseURL + "/models", headers: headers,
            connectTimeout: min(configuration.connectTimeout, timeout), idleTimeout: timeout, totalTimeout: timeout)
        let response = BufferedResponse()
        let id = engine.start(request, handler: response)
        let outcome = await withTaskCancellationHandler {
            await response.response()
        } onCancel: {
            engine.cancel(id)
        }
        let (status, body) = try outcome.get()
        guard status == 200 else { throw UpstreamError.fromResponse(status: status, body: body) }
        return try OpenAIWire.decodeModelList(body)
    }
}
