import LLMDCore
import LLMDCurl
import LLMDEvents
import LLMDOpenAI
import LLMDProtocol
import LLMDUpstream
import Logging
import Synchronization

/// The HTTP engine and upstream client, started on the first call: an idle daemon that
/// never calls a provider never initialises libcurl and its TLS library.
public final class LazyUpstream: Sendable {
    private let state = Mutex<(engine: CurlEngine, client: UpstreamClient)?>(nil)
    private let logger: Logger

    public init(logger: Logger) {
        self.logger = logger
    }

    var client: UpstreamClient {
        state.withLock { state in
            if let state { return state.client }
            let engine = CurlEngine()
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

/// The requesting client's own callbacks (LangChain's request callbacks): every event of
/// its run tree, on its connection, addressed to its request.
struct RequestCallbacks: CallbackHandler {
    var request: RequestID
    var send: @Sendable ([ServerMessage]) -> Void

    func handle(_ event: CallbackEvent) {
        var event = event
        event.request = request
        send([.event(event)])
    }
}

/// `complete`: one LLM call as a run tree — a chain run with the model's run inside it —
/// whose events go to the caller as they happen and to the event bus.
public enum CallMethods {
    public static func register(
        in table: inout MethodTable, upstream: LazyUpstream, settings: LiveSettings, bus: EventBus, logger: Logger
    ) {
        table.register("complete") { request, context throws(ProtocolError) in
            let params = request.params
            let current = settings.current
            let providerName = try params.string("provider") ?? current.defaultProvider
            guard let provider = current.providers.first(where: { $0.name == providerName }) else {
                throw ProtocolError(
                    .providerNotFound, "no provider named '\(providerName)'",
                    detail: ["provider": .string(providerName), "providers": .array(current.providers.map { .string($0.name) })])
            }
            guard let model = try params.string("model") ?? provider.configuration.defaultModel
                ?? (provider.configuration.kind == .fake ? "fake" : nil)
            else {
                throw ProtocolError(
                    .modelMissing, "no model: pass 'model' or set DefaultModel= for provider '\(provider.name)'",
                    detail: ["provider": .string(provider.name)])
            }
            let input = try modelInput(params)
            let options = try generationOptions(params)
            let stream = try params.bool("stream") ?? true
            let chain = CallbackManager(
                session: try params.string("session"), tags: try params.strings("tags") ?? [],
                metadata: try params.object("metadata") ?? [:],
                inheritableHandlers: [.sync(RequestCallbacks(request: request.id, send: context.send))], sink: bus,
                logger: logger)
            return try await run(
                chain: chain, model: model, input: input, options: options, stream: stream, provider: provider,
                upstream: upstream)
        }
    }

    /// Runs the call inside its chain run, emitting the run tree's events.
    static func run(
        chain: CallbackManager, model: String, input: ModelInput, options: GenerationOptions, stream: Bool,
        provider: ResolvedProvider, upstream: LazyUpstream
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
        let result: CallResult
        var object: JSONObject
        do throws(ProtocolError) {
            (result, object) = try await callModel(
                llm: chain.child(), model: model, input: input, options: options, stream: stream, provider: provider,
                upstream: upstream)
        } catch {
            throw await chainFailed(chain, error)
        }
        object["run_id"] = .string(chain.runID)
        do throws(CallbackError) {
            try await chain.emit(.chainEnd, ["outputs": ["text": .string(result.text)]])
        } catch {
            throw callbackFailure(error, chain: chain)
        }
        return object
    }

    /// One model call as the run `llm`: its start event, tokens and retries as they
    /// happen, then `llm_end` or `llm_error`.
    ///
    /// - Returns: the call's result, and the reply object built from it.
    /// - Throws: the call's error with `partial_text` and `attempts` in its detail, or
    ///   `callback.handler_failed`.
    static func callModel(
        llm: CallbackManager, model: String, input: ModelInput, options: GenerationOptions, stream: Bool,
        provider: ResolvedProvider, upstream: LazyUpstream
    ) async throws(ProtocolError) -> (CallResult, JSONObject) {
        let offline = provider.configuration.kind == .fake
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
            throw callbackFailure(error, chain: llm)
        }
        let observer = CallObserver(
            tokens: { tokens in
                for token in tokens { llm.emitNow(.llmNewToken, ["token": .string(token)]) }
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
            _ = try? await llm.emit(
                .llmError, ["error": protocolError.json, "partial_text": .string(error.partialText), "attempts": .int(Int64(error.attempts))])
            throw protocolError
        }
        let object = resultObject(result, offline: offline)
        do throws(CallbackError) {
            try llm.checkRaised()
            try await llm.emit(.llmEnd, object)
        } catch {
            throw callbackFailure(error, chain: llm)
        }
        return (result, object)
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
            throw ProtocolError(.invalidParams, "pass 'messages' (chat) or 'prompt' (legacy completions)", detail: ["field": "messages"])
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

    static func resultObject(_ result: CallResult, offline: Bool) -> JSONObject {
        var usage: JSONObject = ["source": .string(result.usageSource.rawValue)]
        if let counts = result.usage {
            usage["prompt_tokens"] = .int(Int64(counts.promptTokens))
            usage["completion_tokens"] = .int(Int64(counts.completionTokens))
            usage["total_tokens"] = .int(Int64(counts.totalTokens))
            if let cached = counts.cachedPromptTokens { usage["cached_prompt_tokens"] = .int(Int64(cached)) }
            if let reasoning = counts.reasoningTokens { usage["reasoning_tokens"] = .int(Int64(reasoning)) }
        }
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
