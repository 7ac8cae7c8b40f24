import LLMDCore
import LLMDCurl
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

/// `complete`: one LLM call, its tokens streamed to the caller as `llm_new_token` events.
public enum CallMethods {
    public static func register(in table: inout MethodTable, upstream: LazyUpstream, settings: LiveSettings) {
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
            let requestID = request.id
            let observer = CallObserver(
                tokens: { tokens in
                    context.send(
                        tokens.map { .event(CallbackEvent(name: "llm_new_token", request: requestID, data: ["token": .string($0)])) })
                },
                retry: { notice in
                    context.send([
                        .event(
                            CallbackEvent(
                                name: "retry", request: requestID,
                                data: [
                                    "attempt": .int(Int64(notice.attempt)), "delay_ms": .int(notice.delay.wholeMilliseconds),
                                    "error": notice.error.protocolError.json,
                                ]))
                    ])
                })
            do throws(CallFailure) {
                let result = try await upstream.client.call(
                    model: model, input: input, options: options, stream: stream, provider: provider, observer: observer)
                return resultObject(result, offline: provider.configuration.kind == .fake)
            } catch {
                var protocolError = error.error.protocolError
                protocolError.detail["partial_text"] = .string(error.partialText)
                protocolError.detail["attempts"] = .int(Int64(error.attempts))
                throw protocolError
            }
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
