import LLMDCore
import LLMDCurl
import LLMDOpenAI
import LLMDProtocol
import Logging
import Synchronization

/// What a finished call produced.
public struct CallResult: Sendable, Equatable {
    public var text: String
    public var finishReason: String?
    /// The server's counts; nil when it sent none (the daemon counts them then).
    public var usage: TokenUsage?
    public var model: String
    public var provider: String
    /// Attempts made, 1 when the first succeeded.
    public var attempts: Int
    /// From the start of the last attempt to its first token; nil when none came.
    public var timeToFirstToken: Duration?
    public var duration: Duration
    /// The calls the model made to the request's tools, whole, as OpenAI's
    /// `message.tool_calls`; nil when it made none.
    public var toolCalls: JSONValue? = nil
}

/// A call that failed, with whatever text had already streamed.
public struct CallFailure: Error, Sendable, CustomStringConvertible {
    public var error: UpstreamError
    public var partialText: String
    public var tokensDelivered: Int
    public var attempts: Int

    public var description: String { error.description }
}

/// A retry about to happen, as the `retry` callback event reports it.
public struct RetryNotice: Sendable {
    public var attempt: Int
    public var delay: Duration
    public var error: UpstreamError
}

/// Where a call's progress goes while it runs.
///
/// `tokens` runs on the HTTP engine's thread with the tokens of each read from upstream,
/// in order: it must be quick.
public struct CallObserver: Sendable {
    public var tokens: @Sendable ([String]) -> Void
    public var retry: @Sendable (RetryNotice) -> Void
    /// A streamed delta's `tool_calls`: pieces of the calls the model makes, as they come.
    public var toolCalls: @Sendable (JSONValue) -> Void

    public init(
        tokens: @escaping @Sendable ([String]) -> Void, retry: @escaping @Sendable (RetryNotice) -> Void = { _ in },
        toolCalls: @escaping @Sendable (JSONValue) -> Void = { _ in }
    ) {
        self.tokens = tokens
        self.retry = retry
        self.toolCalls = toolCalls
    }
}

/// Makes LLM calls: within each provider's concurrency limit, through the provider's
/// ``ModelServer`` (an OpenAI-compatible API, with retries, or the offline provider).
public final class UpstreamClient: Sendable {
    let engine: CurlEngine
    private let logger: Logger
    /// Providers found to reject `stream_options`, so later calls do not ask again.
    private let noStreamUsage = Mutex<Set<String>>([])
    /// The offline provider's turn through its configured replies, by provider name.
    private let offlineTurns = Mutex<[String: Int]>([:])
    private let limiters = Mutex<[String: CallLimiter]>([:])

    public init(engine: CurlEngine, logger: Logger) {
        self.engine = engine
        self.logger = logger
    }

    /// Which of its configured replies the offline provider `name` gives next: they go in
    /// turn, across reloads.
    func nextOfflineTurn(provider name: String) -> Int {
        offlineTurns.withLock { turns in
            defer { turns[name, default: 0] += 1 }
            return turns[name, default: 0]
        }
    }

    /// Runs one call to completion, streaming tokens to `observer` as they arrive.
    ///
    /// Retries what ``RetryPolicy`` allows, but never once a token has been delivered:
    /// the caller would see text twice. Cancelling the task aborts the transfer at once.
    public func call(
        model: String, input: ModelInput, options: GenerationOptions, stream: Bool, provider: ResolvedProvider,
        observer: CallObserver
    ) async throws(CallFailure) -> CallResult {
        let configuration = provider.configuration
        let limiter = limiters.withLock { limiters in
            let limiter = limiters[configuration.name] ?? CallLimiter(limit: configuration.maximumConcurrentCalls)
            limiters[configuration.name] = limiter
            return limiter
        }
        limiter.setLimit(configuration.maximumConcurrentCalls)  // a reload may have changed it
        guard await limiter.acquire() else {
            throw CallFailure(
                error: UpstreamError(.cancelled, "the call was cancelled"), partialText: "", tokensDelivered: 0, attempts: 0)
        }
        defer { limiter.release() }
        return try await provider.server.call(
            ModelCall(model: model, input: input, options: options, stream: stream, provider: provider, observer: observer),
            client: self)
    }

    /// A call to an OpenAI-compatible server: attempts, and retries as ``RetryPolicy``
    /// allows, never once a token has been delivered.
    func callOpenAICompatible(_ call: ModelCall) async throws(CallFailure) -> CallResult {
        let (model, input, options, stream, provider, observer) =
            (call.model, call.input, call.options, call.stream, call.provider, call.observer)
        let configuration = provider.configuration
        let policy = RetryPolicy(
            maximumRetries: configuration.maximumRetries, baseBackoff: configuration.retryBackoff,
            maximumBackoff: configuration.retryBackoffMaximum)
        var request = CompletionRequest(
            model: model, input: input, options: options, stream: stream,
            includeUsageInStream: configuration.streamUsage == .yes
                || (configuration.streamUsage == .auto && !noStreamUsage.withLock { $0.contains(configuration.name) }),
            maximumTokensParameter: Self.maximumTokensParameter(for: configuration))
        let started = ContinuousClock.now
        var attempt = 0
        while true {
            attempt += 1
            let outcome = await attemptOnce(request, provider: provider, observer: observer)
            switch outcome {
            case .success(var result):
                result.attempts = attempt
                result.duration = ContinuousClock.now - started
                return result
            case .failure(let failure):
                var failure = failure
                failure.attempts = attempt
                if Task.isCancelled || failure.tokensDelivered > 0 { throw failure.callFailure }
                if request.stream, request.includeUsageInStream, configuration.streamUsage == .auto,
                    failure.error.status == 400, failure.error.message.contains("stream_options")
                {
                    // Some servers reject the member; ask again without it, for good.
                    logger.notice("provider \(configuration.name) rejects stream_options; not asking for usage in streams")
                    noStreamUsage.withLock { _ = $0.insert(configuration.name) }
                    request.includeUsageInStream = false
                    attempt -= 1
                    continue
                }
                let retryAfter = failure.retryAfter.flatMap { RetryAfter.delay($0, now: Timestamp.nowMilliseconds() / 1000) }
                switch policy.decide(after: failure.error.failure, attempt: attempt, retryAfter: retryAfter, random: Double.random(in: 0..<1)) {
                case .giveUp:
                    throw failure.callFailure
                case .retry(let delay):
                    observer.retry(RetryNotice(attempt: attempt, delay: delay, error: failure.error))
                    logger.info(
                        "retrying \(configuration.name) call",
                        metadata: ["attempt": "\(attempt)", "delay_ms": "\(delay.wholeMilliseconds)", "error": "\(failure.error.code)"])
                    do {
                        try await Task.sleep(for: delay)
                    } catch {
                        throw CallFailure(
                            error: UpstreamError(.cancelled, "the call was cancelled"), partialText: "", tokensDelivered: 0,
                            attempts: attempt)
                    }
                }
            }
        }
    }

    /// `max_completion_tokens` for OpenAI's own API, which rejects `max_tokens` for current
    /// models; `max_tokens` for the compatible servers, which mostly know only that.
    static func maximumTokensParameter(for provider: ProviderConfiguration) -> MaximumTokensParameter {
        if let explicit = provider.maximumTokensParameter.flatMap(MaximumTokensParameter.init(rawValue:)) {
            return explicit
        }
        return provider.baseURL.hasPrefix("https://api.openai.com/") ? .maxCompletionTokens : .maxTokens
    }

    struct AttemptFailure: Error {
        var error: UpstreamError
        var partialText: String
        var tokensDelivered: Int
        var retryAfter: String?
        var attempts = 1

        var callFailure: CallFailure {
            CallFailure(error: error, partialText: partialText, tokensDelivered: tokensDelivered, attempts: attempts)
        }
    }

    private func attemptOnce(
        _ request: CompletionRequest, provider: ResolvedProvider, observer: CallObserver
    ) async -> Result<CallResult, AttemptFailure> {
        let configuration = provider.configuration
        var headers = ["Content-Type: application/json", "Accept: \(request.stream ? "text/event-stream" : "application/json")"]
        if let key = provider.apiKey { headers.append("Authorization: Bearer \(key.secret)") }
        headers += configuration.headers
        let http = HTTPRequest(
            url: configuration.baseURL + request.input.path, headers: headers, body: request.body,
            connectTimeout: configuration.connectTimeout, idleTimeout: configuration.idleTimeout,
            totalTimeout: configuration.totalTimeout)
        let attempt = Attempt(stream: request.stream, observer: observer)
        let id = engine.start(http, handler: attempt)
        return await withTaskCancellationHandler {
            await attempt.outcome(model: request.model, provider: configuration.name)
        } onCancel: {
            engine.cancel(id)
        }
    }
}
