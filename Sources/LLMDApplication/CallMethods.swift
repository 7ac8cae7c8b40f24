import LLMDBus
import LLMDCore
import LLMDCurl
import LLMDEvents
import LLMDMemory
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
    var reply: JSONObject
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
    var request: RequestID
    var context: RequestContext

    func handle(_ event: CallbackEvent) {
        context.sendEvent(event, request)
    }
}

/// `complete`: one LLM call as a run tree — a chain run with the model's run inside it —
/// whose events go to the caller as they happen and to the event bus.
public enum CallMethods {
    public static func register(
        in table: inout MethodTable, upstream: LazyUpstream, settings: LiveSettings, bus: EventBus, billing: Billing,
        logger: Logger
    ) {
        table.register(.complete) { request, context throws(ProtocolError) in
            let params = request.params
            let provider = try settings.current.provider(named: try params.string("provider"))
            guard let model = provider.model(try params.string("model")) else {
                throw await provider.noModelError(session: nil, upstream: upstream)
            }
            let input = try modelInput(params, endpoint: try endpoint(params) ?? Endpoint(model: model))
            let options = try generationOptions(params)
            let stream = try params.bool("stream") ?? true
            let label = try params.string("session")
            let account = CallAccount(
                sessionID: nil, session: label, turnID: nil, scopes: try await billing.expand(scopes: try params.strings("scopes") ?? []))
            let chain = CallbackManager(
                session: label, tags: try params.strings("tags") ?? [],
                metadata: try params.object("metadata") ?? [:],
                inheritableHandlers: [.sync(RequestCallbacks(request: request.id, context: context))], sink: bus,
                logger: logger)
            return try await run(
                chain: chain, model: model, input: input, options: options, stream: stream, provider: provider,
                upstream: upstream, billing: billing, account: account, reportsTimings: settings.current.reportsTimings)
        }
    }

    /// Runs the call inside its chain run, emitting the run tree's events.
    static func run(
        chain: CallbackManager, model: String, input: ModelInput, options: GenerationOptions, stream: Bool,
        provider: ResolvedProvider, upstream: LazyUpstream, billing: Billing, account: CallAccount, reportsTimings: Bool
    ) async throws(ProtocolError) -> JSONObject {
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
        var object = call.reply
        do throws(ProtocolError) {
            let recordStart = ContinuousClock.now
            try await billing.record([call.usage])
            // The ledger write (one fsync'd transaction), for `make bench`.
            if reportsTimings { object["record_us"] = .int((ContinuousClock.now - recordStart).wholeMicroseconds) }
        } catch {
            throw await chainFailed(chain, error)
        }
        object["run_id"] = .string(chain.runID)
        do throws(CallbackError) {
            try await chain.emit(.chainEnd, ["outputs": ["text": .string(call.result.text)]])
        } catch {
            throw callbackFailure(error, chain: chain)
        }
        return object
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
        let bill: CallBill
        do throws(ProtocolError) {
            bill = try await billing.open(account, model: model, provider: provider, input: input, options: &options, llm: llm)
        } catch {
            throw ModelCallError(error: error)
        }
        do throws(ModelCallError) {
            return try await callReserved(
                llm: llm, bill: bill, model: model, input: input, options: options, stream: stream, provider: provider,
                upstream: upstream, billing: billing)
        } catch {
            // Nothing of the call was recorded: what it reserved goes back.
            if error.partialText?.isEmpty ?? true { await billing.release(bill) }
            throw error
        }
    }

    /// ``callModel(llm:model:input:options:stream:provider:upstream:billing:account:)`` once
    /// its budgets are reserved in `bill`.
    private static func callReserved(
        llm: CallbackManager, bill: CallBill, model: String, input: ModelInput, options: GenerationOptions, stream: Bool,
        provider: ResolvedProvider, upstream: LazyUpstream, billing: Billing
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
                llm.emitNow(
                    .retry,
                    [
                        "attempt": .int(Int64(notice.attempt)), "delay_ms": .int(notice.delay.wholeMilliseconds),
                        "error": notice.error.protocolError.json,
                    ])
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
                data["usage"] = .object(pending.json)
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
        let object = resultObject(result, usage: pending.json, offline: offline)
        do throws(CallbackError) {
            try llm.checkRaised()
            try await llm.emit(.llmEnd, object)
        } catch {
            throw ModelCallError(error: callbackFailure(error, chain: llm))
        }
        return ModelCallOutcome(result: result, reply: object, usage: await billing.resize(pending))
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
    static func endpoint(_ params: JSONObject) throws(ProtocolError) -> Endpoint? {
        guard let name = try params.string("endpoint") else { return nil }
        guard let endpoint = Endpoint(rawValue: name) else {
            throw .invalidParam(
                "endpoint", expected: Endpoint.allCases.map(\.rawValue).joined(separator: " or "), got: params["endpoint"])
        }
        return endpoint
    }

    /// What a call sends: `text`, a message sent as the endpoint takes it (the user message
    /// to a chat model, the prompt to a completion model), or `messages` or `prompt` as
    /// given. An `endpoint` given with those converts them as LangChain does: messages
    /// rendered as `Human: …` lines for a completion model, a prompt as the user's message
    /// for a chat model.
    ///
    /// - Parameter endpoint: the endpoint for `text`; for the others, when the caller named it.
    static func modelInput(_ params: JSONObject, endpoint: Endpoint) throws(ProtocolError) -> ModelInput {
        if let text = try params.string("text") {
            guard params["messages"] == nil, params["prompt"] == nil else {
                throw ProtocolError(.invalidParams, "pass one of 'text', 'messages' and 'prompt'", detail: ["field": "text"])
            }
            return endpoint == .chat ? .messages([ChatMessage(role: "user", content: text)]) : .prompt(text)
        }
        let input = try modelInput(params)
        guard params["endpoint"] != nil else { return input }
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

    static func modelInput(_ params: JSONObject) throws(ProtocolError) -> ModelInput {
        switch (params["messages"], try params.string("prompt")) {
        case (let messages?, nil) where !messages.isNull:
            guard let array = messages.arrayValue, !array.isEmpty else {
                throw .invalidParam("messages", expected: "a non-empty array of {role, content}", got: messages)
            }
            var parsed: [ChatMessage] = []
            for message in array {
                guard let object = message.objectValue, let role = object["role"]?.stringValue,
                    let content = object["content"]?.stringValue
                else { throw .invalidParam("messages", expected: "objects with string role and content", got: message) }
                parsed.append(ChatMessage(role: role, content: content))
            }
            return .messages(parsed)
        case (nil, let prompt?), (.null?, let prompt?):
            return .prompt(prompt)
        case (nil, nil), (.null?, nil):
            throw ProtocolError(
                .invalidParams, "pass 'text', 'messages' (chat) or 'prompt' (legacy completions)", detail: ["field": "messages"])
        default:
            throw ProtocolError(.invalidParams, "pass 'messages' or 'prompt', not both", detail: ["field": "prompt"])
        }
    }

    static func generationOptions(_ params: JSONObject) throws(ProtocolError) -> GenerationOptions {
        var options = GenerationOptions()
        options.temperature = try params.double("temperature")
        options.maximumTokens = try params.int("max_tokens").map { Int($0) }
        options.seed = try params.int("seed")
        options.topP = try params.double("top_p")
        switch params["stop"] {
        case nil, .null?: break
        case .string(let stop)?: options.stop = [stop]
        case .array(let stops)? where stops.allSatisfy({ $0.stringValue != nil }): options.stop = stops.compactMap(\.stringValue)
        case let other?: throw .invalidParam("stop", expected: "a string or an array of strings", got: other)
        }
        switch params["extra"] {
        case nil, .null?: break
        case .object(let extra)?: options.passThrough = extra
        case let other?: throw .invalidParam("extra", expected: "an object", got: other)
        }
        return options
    }

    static func resultObject(_ result: CallResult, usage: JSONObject, offline: Bool) -> JSONObject {
        var object: JSONObject = [
            "text": .string(result.text), "finish_reason": JSONValue(result.finishReason), "model": .string(result.model),
            "provider": .string(result.provider), "usage": .object(usage), "attempts": .int(Int64(result.attempts)),
            "duration_ms": .int(result.duration.wholeMilliseconds),
        ]
        if let ttft = result.timeToFirstToken { object["ttft_ms"] = .int(ttft.wholeMilliseconds) }
        if offline { object["offline"] = true }
        return object
    }
}
