import LLMDBus
import LLMDCore
import LLMDCurl
import LLMDEvents
import LLMDMemory
import LLMDMetrics
import LLMDOpenAI
import LLMDProtocol
import LLMDStore
import LLMDUpstream
import Logging
import Synchronization

/// How the HTTP engine's thread holds back the writes to clients that its events cause,
/// so a burst of tokens read together goes out in one write: the transport's to provide.
public struct WriteBatching: Sendable {
    /// From now on, writes caused on this thread wait for ``release``.
    public var holdOnThisThread: @Sendable () -> Void
    /// Lets this thread's held writes go.
    public var release: @Sendable () -> Void
    /// Lets them go once the oldest has waited `limit`: for a stream that may never reach
    /// the end of its batch.
    public var releaseIfHeldFor: @Sendable (_ limit: Duration) -> Void

    public init(
        holdOnThisThread: @escaping @Sendable () -> Void, release: @escaping @Sendable () -> Void,
        releaseIfHeldFor: @escaping @Sendable (_ limit: Duration) -> Void
    ) {
        self.holdOnThisThread = holdOnThisThread
        self.release = release
        self.releaseIfHeldFor = releaseIfHeldFor
    }
}

/// The HTTP engine and upstream client, started on the first call: an idle daemon that
/// never calls a provider never initialises libcurl and its TLS library.
public final class LazyUpstream: Sendable {
    private let state = Mutex<(engine: CurlEngine, client: UpstreamClient)?>(nil)
    private let logger: Logger

    /// How long a token of a fast stream may wait to be read (``ReadBatching/readInterval``)
    /// and, once read, for the tokens read after it, so that they go out together
    /// (`TokenBatchSec=`).
    let tokenBatch: Duration
    let writeBatching: WriteBatching

    public init(tokenBatch: Duration, writeBatching: WriteBatching, logger: Logger) {
        self.tokenBatch = tokenBatch
        self.writeBatching = writeBatching
        self.logger = logger
    }

    var client: UpstreamClient {
        state.withLock { state in
            if let state { return state.client }
            let engine = CurlEngine(
                batching: ReadBatching(
                    readInterval: tokenBatch,
                    threadStarted: writeBatching.holdOnThisThread, endBatch: writeBatching.release))
            let client = UpstreamClient(engine: engine, logger: logger)
            state = (engine, client)
            return client
        }
    }

    /// Stops the engine thread, cancelling what still runs.
    public func shutdown() {
        state.withLock { $0 }?.engine.shutdown()
    }
}

/// A model call that finished: what it produced, the reply object built from it, and
/// its usage, for the caller to record.
struct ModelCallOutcome {
    var result: CallResult
    var reply: CallReply
    var usage: PendingUsage
}

/// A model call that failed: the error as clients get it, and the text that had arrived
/// when the model was called at all (nil when it was not). Text that arrived was
/// recorded in the ledger, billed, before this was thrown.
struct ModelCallError: Error {
    var error: ProtocolError
    var partialText: String?
}

/// The requesting client's own callbacks (LangChain's request callbacks): every event of
/// its run tree, on its connection, addressed to its request.
struct RequestCallbacks: CallbackHandler {
    var context: RequestContext

    func handle(_ event: CallbackEvent) {
        context.sendEvent(event, context.requestID)
    }
}

/// `complete`: one LLM call as a run tree — a chain run with the model's run inside it —
/// whose events go to the caller as they happen and to the event bus.
public enum CallMethods {
    public static func register(
        in table: inout MethodTable, upstream: LazyUpstream, settings: LiveSettings, bus: EventBus, billing: Billing,
        logger: Logger
    ) {
        table.register(CompleteMethod.self) { params, context throws(ProtocolError) in
            let (provider, model) = try settings.current.choose(provider: params.provider, model: params.model)
            guard let model else {
                throw await provider.noModelError(session: nil, upstream: upstream)
            }
            let input = try modelInput(params.input, endpoint: try endpoint(params.endpoint), model: model)
            let account = CallAccount(
                sessionID: nil, session: params.session, turnID: nil, scopes: try await billing.expand(scopes: params.scopes))
            let chain = CallbackManager(
                session: params.session, tags: params.tags, metadata: params.metadata,
                inheritableHandlers: [.sync(RequestCallbacks(context: context))], sink: bus, logger: logger)
            return try await run(
                chain: chain, model: model, input: input, options: GenerationOptions(params.generation), stream: params.stream,
                provider: provider, upstream: upstream, billing: billing, account: account,
                reportsTimings: settings.current.reportsTimings)
        }
    }

    /// Runs the call inside its chain run, emitting the run tree's events.
    static func run(
        chain: CallbackManager, model: String, input: ModelInput, options: GenerationOptions, stream: Bool,
        provider: ResolvedProvider, upstream: LazyUpstream, billing: Billing, account: CallAccount, reportsTimings: Bool
    ) async throws(ProtocolError) -> CompleteMethod.Result {
        var inputs: JSONObject = [:]
        switch input {
        case .messages(let messages): inputs["messages"] = messagesJSON(messages)
        case .prompt(let prompt): inputs["prompt"] = .string(prompt)
        }
        do throws(CallbackError) {
            try await chain.emit(.chainStart, ["name": "LLMChain", "inputs": .object(inputs)])
        } catch {
            throw callbackFailure(error, chain: chain)
        }
        let call: ModelCallOutcome
        do throws(ModelCallError) {
            call = try await callModel(
                llm: chain.child(), model: model, input: input, options: options, stream: stream, provider: provider,
                upstream: upstream, billing: billing, account: account)
        } catch {
            throw await chainFailed(chain, error.error)
        }
        var result = CompleteMethod.Result(reply: call.reply, runID: chain.runID)
        do throws(ProtocolError) {
            let recordStart = ContinuousClock.now
            try await billing.record([call.usage])
            // The ledger write (one fsync'd transaction), for `make bench`.
            if reportsTimings { result.recordMicroseconds = (ContinuousClock.now - recordStart).wholeMicroseconds }
        } catch {
            throw await chainFailed(chain, error)
        }
        do throws(CallbackError) {
            try await chain.emit(.chainEnd, ["outputs": ["text": .string(call.result.text)]])
        } catch {
            throw callbackFailure(error, chain: chain)
        }
        return result
    }

    /// One model call as the run `llm`: its budgets reserved, its start event, tokens and
    /// retries as they happen, then `llm_end` or `llm_error`, both with the call's usage.
    ///
    /// A call that fails after text arrived is recorded in the ledger at once, billed for
    /// what it received; a finished one is left to the caller to record (a turn commits it
    /// with the turn).
    ///
    /// - Throws: the call's error (with `partial_text` and `attempts` in its detail, as
    ///   clients get it), `budget.exceeded`, or `callback.handler_failed`.
    static func callModel(
        llm: CallbackManager, model: String, input: ModelInput, options: GenerationOptions, stream: Bool,
        provider: ResolvedProvider, upstream: LazyUpstream, billing: Billing, account: CallAccount
    ) async throws(ModelCallError) -> ModelCallOutcome {
        var options = options
        let started = ContinuousClock.now
        let labels = billing.settings.current.metricLabels
        let metricLabels = DaemonMetrics.Call(
            provider: labels.provider(provider.name), model: labels.model(model), endpoint: (input.isChat ? Endpoint.chat : .completions).rawValue)
        let bill: CallBill
        do throws(ProtocolError) {
            bill = try await billing.open(account, model: model, provider: provider, input: input, options: &options, llm: llm)
        } catch {
            billing.metrics.callEnded(
                metricLabels, outcome: error.code == .budgetExceeded ? .refused : .failed, duration: ContinuousClock.now - started,
                timeToFirstToken: nil)
            throw ModelCallError(error: error)
        }
        do throws(ModelCallError) {
            let outcome = try await callReserved(
                llm: llm, bill: bill, model: model, input: input, options: options, stream: stream, provider: provider,
                upstream: upstream, billing: billing, metricLabels: metricLabels)
            billing.metrics.callEnded(
                metricLabels, outcome: .completed, duration: ContinuousClock.now - started,
                timeToFirstToken: outcome.result.timeToFirstToken)
            return outcome
        } catch {
            billing.metrics.callEnded(
                metricLabels, outcome: error.error.code == .cancelled ? .cancelled : .failed,
                duration: ContinuousClock.now - started, timeToFirstToken: nil)
            // Nothing of the call was recorded: what it reserved goes back.
            if error.partialText?.isEmpty ?? true { await billing.release(bill) }
            throw error
        }
    }

    /// ``callModel(llm:model:input:options:stream:provider:upstream:billing:account:)`` once
    /// its budgets are reserved in `bill`; its retries counted under `metricLabels`.
    private static func callReserved(
        llm: CallbackManager, bill: CallBill, model: String, input: ModelInput, options: GenerationOptions, stream: Bool,
        provider: ResolvedProvider, upstream: LazyUpstream, billing: Billing, metricLabels: DaemonMetrics.Call
    ) async throws(ModelCallError) -> ModelCallOutcome {
        let offline = provider.server.isOffline
        do throws(CallbackError) {
            var start: JSONObject = [
                "model": .string(model), "provider": .string(provider.name), "stream": .bool(stream),
                "invocation_params": .object(options.json()),
            ]
            if offline { start["offline"] = true }
            switch input {
            case .messages(let messages):
                start["messages"] = messagesJSON(messages)
                try await llm.emit(.chatModelStart, start)
            case .prompt(let prompt):
                start["prompts"] = [.string(prompt)]
                try await llm.emit(.llmStart, start)
            }
        } catch {
            throw ModelCallError(error: callbackFailure(error, chain: llm))
        }
        let observer = CallObserver(
            tokens: { tokens in
                llm.emitTokens(tokens)
                upstream.writeBatching.releaseIfHeldFor(upstream.tokenBatch)
            },
            retry: { notice in
                billing.metrics.retried(provider: metricLabels.provider, reason: notice.error.protocolError.code.rawValue)
                llm.emitNow(
                    .retry,
                    [
                        "attempt": .int(Int64(notice.attempt)), "delay_ms": .int(notice.delay.wholeMilliseconds),
                        "error": notice.error.protocolError.json,
                    ])
            },
            toolCalls: { pieces in
                // A token with no text and the pieces, as LangChain's tool_call_chunks ride on
                // on_llm_new_token.
                llm.emitNow(.llmNewToken, ["token": "", "tool_calls": pieces])
            })
        let result: CallResult
        do throws(CallFailure) {
            result = try await upstream.client.call(
                model: model, input: input, options: options, stream: stream, provider: provider, observer: observer)
        } catch {
            var protocolError = error.error.protocolError
            protocolError.detail["partial_text"] = .string(error.partialText)
            protocolError.detail["attempts"] = .int(Int64(error.attempts))
            var data: JSONObject = [
                "error": protocolError.json, "partial_text": .string(error.partialText), "attempts": .int(Int64(error.attempts)),
            ]
            if !error.partialText.isEmpty {
                // The text that arrived is billed: record it now, whatever becomes of the run.
                let pending = bill.pending(
                    bill.usage(nil, received: error.partialText), status: error.error.code == .cancelled ? "cancelled" : "failed",
                    llm: llm)
                data["usage"] = .object(pending.reported.json)
                protocolError.detail["usage"] = data["usage"]
                do throws(ProtocolError) {
                    try await billing.record([pending])
                } catch {
                    billing.logger.error("cannot record the usage of failed run \(llm.runID): \(error)")
                }
            }
            _ = try? await llm.emit(.llmError, data)
            throw ModelCallError(error: protocolError, partialText: error.partialText)
        }
        let pending = bill.pending(bill.usage(result.usage, received: result.text), status: "completed", llm: llm)
        let reply = reply(result, usage: pending.reported, offline: offline)
        do throws(CallbackError) {
            try llm.checkRaised()
            try await llm.emit(.llmEnd, reply.json)
        } catch {
            throw ModelCallError(error: callbackFailure(error, chain: llm))
        }
        return ModelCallOutcome(result: result, reply: reply, usage: await billing.resize(pending))
    }

    /// Reports `error` as the chain's (`chain_error`) and names the chain's run in it.
    static func chainFailed(_ chain: CallbackManager, _ error: ProtocolError) async -> ProtocolError {
        var error = error
        error.detail["run_id"] = .string(chain.runID)
        _ = try? await chain.emit(.chainError, ["error": error.json])
        return error
    }

    static func messagesJSON(_ messages: [ChatMessage]) -> JSONValue {
        .array(messages.map { ["role": .string($0.role), "content": .string($0.content)] })
    }

    /// A raising handler failed the run: report it as the chain's error.
    static func callbackFailure(_ error: CallbackError, chain: CallbackManager) -> ProtocolError {
        ProtocolError(
            .callbackFailed, error.description, detail: ["event": .string(error.event), "run_id": .string(chain.runID)])
    }

    /// The `endpoint` parameter: `chat` or `completions`; nil when not given.
    static func endpoint(_ name: String?) throws(ProtocolError) -> Endpoint? {
        guard let name else { return nil }
        guard let endpoint = Endpoint(rawValue: name) else {
            throw .invalidParam("endpoint", expected: Endpoint.allCases.map(\.rawValue).joined(separator: " or "), got: .string(name))
        }
        return endpoint
    }

    /// What a call sends: `text`, a message sent as the endpoint takes it (the user message
    /// to a chat model, the prompt to a completion model), or `messages` or `prompt` as
    /// given. An `endpoint` given with those converts them as LangChain does: messages
    /// rendered as `Human: …` lines for a completion model, a prompt as the user's message
    /// for a chat model.
    ///
    /// - Parameter endpoint: the endpoint the caller named, if any; else the model's.
    static func modelInput(_ given: PromptInput, endpoint named: Endpoint?, model: String) throws(ProtocolError) -> ModelInput {
        let endpoint = named ?? Endpoint(model: model)
        if let text = given.text {
            guard given.messages == nil, given.prompt == nil else {
                throw ProtocolError(.invalidParams, "pass one of 'text', 'messages' and 'prompt'", detail: ["field": "text"])
            }
            return endpoint == .chat ? .messages([ChatMessage(role: "user", content: text)]) : .prompt(text)
        }
        let input = try modelInput(given)
        guard named != nil else { return input }
        switch (input, endpoint) {
        case (.messages(let messages), .completions):
            return .prompt(
                ConversationMessage.bufferString(
                    messages.map { ConversationMessage(ConversationMessage.Role(rawValue: $0.role) ?? .user, $0.content) }))
        case (.prompt(let prompt), .chat):
            return .messages([ChatMessage(role: "user", content: prompt)])
        default:
            return input
        }
    }

    /// `messages` or `prompt`, exactly one of them.
    static func modelInput(_ given: PromptInput) throws(ProtocolError) -> ModelInput {
        switch (given.messages, given.prompt) {
        case (let messages?, nil):
            return .messages(messages.map { ChatMessage(role: $0.role, content: $0.content) })
        case (nil, let prompt?):
            return .prompt(prompt)
        case (nil, nil):
            throw ProtocolError(
                .invalidParams, "pass 'text', 'messages' (chat) or 'prompt' (legacy completions)", detail: ["field": "messages"])
        default:
            throw ProtocolError(.invalidParams, "pass 'messages' or 'prompt', not both", detail: ["field": "prompt"])
        }
    }

    static func reply(_ result: CallResult, usage: CallUsage, offline: Bool) -> CallReply {
        CallReply(
            text: result.text, finishReason: result.finishReason, model: result.model, provider: result.provider, usage: usage,
            attempts: Int64(result.attempts), durationMilliseconds: result.duration.wholeMilliseconds,
            timeToFirstTokenMilliseconds: result.timeToFirstToken?.wholeMilliseconds, offline: offline,
            toolCalls: result.toolCalls)
    }
}

extension GenerationOptions {
    init(_ params: GenerationParams) {
        self.init()
        temperature = params.temperature
        maximumTokens = params.maxTokens.map { Int($0) }
        seed = params.seed
        topP = params.topP
        if let stop = params.stop { self.stop = stop }
        if let extra = params.extra { passThrough = extra }
    }
}

extension ModelInput {
    /// Whether it is sent to the chat endpoint.
    var isChat: Bool {
        if case .messages = self { return true }
        return false
    }
}
