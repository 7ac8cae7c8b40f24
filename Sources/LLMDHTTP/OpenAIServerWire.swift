import LLMDProtocol

/// The two generation endpoints llmd serves as OpenAI does.
public enum OpenAIEndpoint: String, Sendable {
    case chatCompletions = "/v1/chat/completions"
    case completions = "/v1/completions"

    /// The `object` of a whole response and of a streamed chunk.
    var objects: (whole: String, chunk: String) {
        switch self {
        case .chatCompletions: ("chat.completion", "chat.completion.chunk")
        case .completions: ("text_completion", "text_completion")
        }
    }
}

/// An error as OpenAI's API answers it: a status and `{"error": {message, type, param, code}}`.
/// `code` is OpenAI's where one fits (`model_not_found`, `context_length_exceeded`),
/// else llmd's dotted code, so a client sees what llmd saw.
public struct OpenAIError: Error, Sendable, Equatable {
    public var status: Int
    public var message: String
    public var type: String
    public var param: String?
    public var code: String?

    public init(status: Int, message: String, type: String, param: String? = nil, code: String? = nil) {
        (self.status, self.message, self.type, self.param, self.code) = (status, message, type, param, code)
    }

    static func invalidRequest(_ message: String, param: String? = nil, code: String? = nil) -> OpenAIError {
        OpenAIError(status: 400, message: message, type: "invalid_request_error", param: param, code: code)
    }

    public var json: JSONObject {
        [
            "error": [
                "message": .string(message), "type": .string(type), "param": JSONValue(param), "code": JSONValue(code),
            ]
        ]
    }

    /// What a failed call's `ProtocolError` is on the HTTP API.
    public init(_ error: ProtocolError) {
        let field = error.detail["field"]?.stringValue
        switch error.code {
        case .invalidParams:
            self = .invalidRequest(error.message, param: field, code: error.code.rawValue)
        case .providerNotFound, .upstreamNotFound:
            self = OpenAIError(
                status: 404, message: error.message, type: "invalid_request_error", param: "model", code: "model_not_found")
        case .contextWindowExceeded:
            self = .invalidRequest(error.message, param: "messages", code: "context_length_exceeded")
        case .budgetExceeded:
            self = OpenAIError(status: 429, message: error.message, type: "insufficient_quota", code: "budget_exceeded")
        case .upstreamTimeout:
            self = OpenAIError(status: 504, message: error.message, type: "api_error", code: error.code.rawValue)
        case .storeUnavailable:
            self = OpenAIError(status: 503, message: error.message, type: "api_error", code: error.code.rawValue)
        default:
            switch error.code.family {
            case "upstream": self = OpenAIError(status: 502, message: error.message, type: "api_error", code: error.code.rawValue)
            // The client's own mistakes, an unknown scope in X-LLMD-Scope among them: a 5xx
            // would have OpenAI's SDK retry what cannot succeed.
            case "provider", "request", "context", "budget", "session", "scope":
                self = .invalidRequest(error.message, param: field, code: error.code.rawValue)
            default: self = OpenAIError(status: 500, message: error.message, type: "api_error", code: error.code.rawValue)
            }
        }
    }
}

/// A generation request read from OpenAI's JSON into `complete`'s parameters.
public struct OpenAIRequest: Sendable, Equatable {
    public var endpoint: OpenAIEndpoint
    public var params: CompleteMethod.Params
    /// The model as the client named it, which responses repeat.
    public var model: String
    /// `stream_options.include_usage`: a last chunk with the call's usage.
    public var includeUsage: Bool

    /// Members llmd reads; every other one goes to the provider untouched (`tools`,
    /// `response_format`, `logprobs`, `user`, penalties…).
    private static let interpreted: Set<String> = [
        "model", "messages", "prompt", "stream", "stream_options", "temperature", "top_p", "max_tokens",
        "max_completion_tokens", "stop", "seed", "n",
    ]

    /// Reads a request body.
    ///
    /// - Parameter providers: the configured providers' names: a model named
    ///   `provider/model` goes to that provider, any other name to the default one.
    /// - Throws: a 400 error naming the member that is wrong.
    public static func decode(_ body: [UInt8], endpoint: OpenAIEndpoint, providers: Set<String>) throws(OpenAIError)
        -> OpenAIRequest
    {
        let object: JSONObject
        do {
            guard let parsed = try JSONParser.parse(body).objectValue else {
                throw OpenAIError.invalidRequest("the request body must be a JSON object")
            }
            object = parsed
        } catch let error as OpenAIError {
            throw error
        } catch {
            throw .invalidRequest("the request body is not valid JSON: \(error)")
        }
        do throws(ProtocolError) {
            return try read(object, endpoint: endpoint, providers: providers)
        } catch {
            throw .invalidRequest(error.message, param: error.detail["field"]?.stringValue)
        }
    }

    private static func read(_ object: JSONObject, endpoint: OpenAIEndpoint, providers: Set<String>) throws(ProtocolError)
        -> OpenAIRequest
    {
        let model = try object.requiredString("model")
        if let n = try object.int("n"), n != 1 {
            throw ProtocolError(.invalidParams, "llmd makes one choice per request: 'n' must be 1", detail: ["field": "n"])
        }
        var input = PromptInput()
        switch endpoint {
        case .chatCompletions:
            guard case .array(let messages)? = object["messages"], !messages.isEmpty else {
                throw .invalidParam("messages", expected: "a non-empty array of messages", got: object["messages"])
            }
            input.messages = try messages.map(Self.message)
        case .completions:
            switch object["prompt"] {
            case .string(let prompt)?: input.prompt = prompt
            case .array(let prompts)? where prompts.count == 1 && prompts[0].stringValue != nil: input.prompt = prompts[0].stringValue
            case let other: throw .invalidParam("prompt", expected: "a string (llmd makes one completion per request)", got: other)
            }
        }
        var generation = try GenerationParams(json: object)
        // Newer models take max_completion_tokens; llmd sends the one the model takes.
        if generation.maxTokens == nil { generation.maxTokens = try object.int("max_completion_tokens") }
        var extra = JSONObject()
        for member in object where !interpreted.contains(member.key) { extra[member.key] = member.value }
        generation.extra = extra.isEmpty ? nil : extra
        let includeUsage = try object.object("stream_options")?.bool("include_usage") ?? false
        var provider: String?
        var modelName = model
        if let slash = model.firstIndex(of: "/"), providers.contains(String(model[..<slash])) {
            provider = String(model[..<slash])
            modelName = String(model[model.index(after: slash)...])
        }
        let params = CompleteMethod.Params(
            provider: provider, model: modelName, input: input,
            endpoint: endpoint == .chatCompletions ? "chat" : "completions", stream: try object.bool("stream") ?? false,
            generation: generation)
        return OpenAIRequest(endpoint: endpoint, params: params, model: model, includeUsage: includeUsage)
    }

    /// A chat message: `content` a string, or an array of text parts joined.
    private static func message(_ value: JSONValue) throws(ProtocolError) -> PromptMessage {
        guard let object = value.objectValue, let role = object["role"]?.stringValue else {
            throw .invalidParam("messages", expected: "objects with a string role", got: value)
        }
        switch object["content"] {
        case .string(let content)?:
            return PromptMessage(role: role, content: content)
        case .array(let parts)?:
            var text = ""
            for part in parts {
                guard part.objectValue?["type"]?.stringValue == "text", let piece = part.objectValue?["text"]?.stringValue else {
                    throw .invalidParam("messages", expected: "text content parts (llmd relays text only)", got: part)
                }
                text += piece
            }
            return PromptMessage(role: role, content: text)
        case nil, .null?:
            return PromptMessage(role: role, content: "")
        case let other?:
            throw .invalidParam("messages", expected: "content as a string or an array of text parts", got: other)
        }
    }
}

extension OpenAIRequest {
    /// The header that makes a chat request a turn of the session it names.
    public static let sessionHeader = "X-LLMD-Session"

    /// The roles of a leading system prompt: OpenAI's newer models call it `developer`.
    private static let systemRoles: Set<String> = ["system", "developer"]

    /// The request as the next turn of `session`, whose memory is the conversation's history.
    ///
    /// The final message, the user's, is the turn. A leading system message becomes the
    /// session's system prompt and the request's model the session's model, as
    /// `llmctl send -s NAME --system TEXT -m MODEL` sets them; a setting that is already so
    /// is left alone. Every other earlier message is ignored: a client written to send its
    /// whole history each time gets the session's memory (its strategy and limits) instead.
    ///
    /// - Throws: a 400 error for a text completion, a bad session name, or a final message
    ///   that is not the user's text.
    public func sessionTurn(_ session: String) throws(OpenAIError) -> SendMethod.Params {
        guard endpoint == .chatCompletions else {
            throw .invalidRequest(
                "a session's turn is a chat message: send \(Self.sessionHeader) with \(OpenAIEndpoint.chatCompletions.rawValue)",
                param: Self.sessionHeader)
        }
        let name: String
        do throws(ProtocolError) {
            name = try SessionName.validated(session, key: Self.sessionHeader, got: .string(session))
        } catch {
            throw .invalidRequest(error.message, param: Self.sessionHeader)
        }
        let messages = params.input.messages ?? []
        guard let turn = messages.last, turn.role == "user", !turn.content.isEmpty else {
            throw .invalidRequest(
                "with \(Self.sessionHeader) the final message is the turn: it must be the user's, with text "
                    + "(the session's memory supplies the history)",
                param: "messages")
        }
        // A bare model name is the default provider's, as without a session.
        var settings: JSONObject = ["provider": JSONValue(params.provider), "model": JSONValue(params.model)]
        if messages.count > 1, let first = messages.first, Self.systemRoles.contains(first.role) {
            settings["system"] = first.content.isEmpty ? .null : .string(first.content)
        }
        return SendMethod.Params(
            session: name, text: turn.content, settings: settings, stream: params.stream, generation: params.generation,
            scopes: params.scopes, events: params.stream)
    }
}

/// Responses and stream chunks as OpenAI writes them, for one request.
public struct OpenAIResponseWriter: Sendable {
    public let request: OpenAIRequest
    /// `chatcmpl-…` or `cmpl-…`, from the run's id once known.
    public var id: String
    /// Seconds since the epoch.
    public let created: Int64
    /// The model the provider answered with, once known; the requested name until then.
    public var model: String

    public init(request: OpenAIRequest, created: Int64) {
        self.request = request
        self.created = created
        self.id = (request.endpoint == .chatCompletions ? "chatcmpl-" : "cmpl-") + "pending"
        self.model = request.model
    }

    /// The bytes of a text chunk's event before its text's JSON string, and after it: the
    /// same for every token of the stream, so a token costs its own string only.
    private var textChunkParts: (prefix: [UInt8], suffix: [UInt8])?

    /// Names the response after the call's run, as the events learn it.
    public mutating func started(runID: String, model: String?) {
        id = (request.endpoint == .chatCompletions ? "chatcmpl-" : "cmpl-") + runID
        if let model, !model.isEmpty { self.model = model }
        textChunkParts = nil
    }

    /// Appends the event of a chunk carrying `text` to `output`, as ``event(_:)`` of
    /// ``chunk(text:)`` writes it.
    public mutating func appendTextChunkEvent(_ text: String, to output: inout [UInt8]) {
        let parts = textChunkParts ?? {
            // The chunk with an empty text has `""` once, where the text goes.
            let whole = Self.event(chunk(text: ""))
            let key = Array((request.endpoint == .chatCompletions ? #""content":"""# : #""text":"""#).utf8)
            let at = whole.indices.first { whole[$0...].starts(with: key) }!
            let split = at + key.count - 2
            return (Array(whole[..<split]), Array(whole[(split + 2)...]))
        }()
        textChunkParts = parts
        output += parts.prefix
        JSONValue.string(text).encode(into: &output)
        output += parts.suffix
    }

    static func usage(_ usage: CallUsage) -> JSONValue {
        var object: JSONObject = [
            "prompt_tokens": .int(Int64(usage.tokens.promptTokens)), "completion_tokens": .int(Int64(usage.tokens.completionTokens)),
            "total_tokens": .int(Int64(usage.tokens.totalTokens)),
        ]
        if usage.tokens.cachedPromptTokens > 0 {
            object["prompt_tokens_details"] = ["cached_tokens": .int(Int64(usage.tokens.cachedPromptTokens))]
        }
        if usage.tokens.reasoningTokens > 0 {
            object["completion_tokens_details"] = ["reasoning_tokens": .int(Int64(usage.tokens.reasoningTokens))]
        }
        return .object(object)
    }

    private func envelope(_ object: String, choices: [JSONValue]) -> JSONObject {
        ["id": .string(id), "object": .string(object), "created": .int(created), "model": .string(model), "choices": .array(choices)]
    }

    /// The whole response of a call that was not streamed, named after its chain run.
    public func whole(_ reply: CallReply, runID: String) -> JSONObject {
        let choice: JSONValue =
            switch request.endpoint {
            case .chatCompletions:
                [
                    "index": 0, "message": .object(Self.message(reply)), "logprobs": nil,
                    "finish_reason": JSONValue(reply.finishReason),
                ]
            case .completions:
                ["index": 0, "text": .string(reply.text), "logprobs": nil, "finish_reason": JSONValue(reply.finishReason)]
            }
        var object = envelope(request.endpoint.objects.whole, choices: [choice])
        object["id"] = .string((request.endpoint == .chatCompletions ? "chatcmpl-" : "cmpl-") + runID)
        object["model"] = .string(reply.model)
        object["usage"] = Self.usage(reply.usage)
        return object
    }

    /// The assistant's message: its text, or null beside the tool calls it makes.
    static func message(_ reply: CallReply) -> JSONObject {
        var message: JSONObject = ["role": "assistant", "content": .string(reply.text)]
        if let toolCalls = reply.toolCalls {
            message["tool_calls"] = toolCalls
            if reply.text.isEmpty { message["content"] = .null }
        }
        return message
    }

    /// A streamed chunk: the assistant's role first (chat), then each piece of text or of
    /// the tool calls, then the finish reason with an empty delta.
    public func chunk(
        text: String? = nil, role: Bool = false, toolCalls: JSONValue? = nil, finishReason: String?? = nil
    ) -> JSONObject {
        var choice: JSONObject = ["index": 0]
        switch request.endpoint {
        case .chatCompletions:
            var delta = JSONObject()
            if role { delta["role"] = "assistant" }
            if let text { delta["content"] = .string(text) } else if role { delta["content"] = "" }
            if let toolCalls { delta["tool_calls"] = toolCalls }
            choice["delta"] = .object(delta)
        case .completions:
            choice["text"] = .string(text ?? "")
        }
        choice["logprobs"] = JSONValue.null
        choice["finish_reason"] = finishReason.map { JSONValue($0) } ?? .null
        var object = envelope(request.endpoint.objects.chunk, choices: [.object(choice)])
        if request.includeUsage { object["usage"] = nil as JSONValue }
        return object
    }

    /// The last chunk before `[DONE]` when the client asked for usage: no choices.
    public func usageChunk(_ usage: CallUsage) -> JSONObject {
        var object = envelope(request.endpoint.objects.chunk, choices: [])
        object["usage"] = Self.usage(usage)
        return object
    }

    /// One server-sent event carrying `object`, as OpenAI frames its chunks.
    public static func event(_ object: JSONObject) -> [UInt8] {
        Array("data: ".utf8) + JSONValue.object(object).encoded + Array("\n\n".utf8)
    }

    public static let done = Array("data: [DONE]\n\n".utf8)
}

/// `GET /v1/models` as OpenAI answers it, from `model.list`: each provider's models as
/// `provider/model`, bare too where only one provider has that name, and the aliases.
public func openAIModelList(_ list: ModelListMethod.Result) -> JSONObject {
    var owners: [String: [String]] = [:]
    var order: [String] = []
    for provider in list.providers {
        var names = provider.models ?? []
        if let model = provider.defaultModel, !names.contains(model) { names.insert(model, at: 0) }
        for name in names {
            if owners[name] == nil { order.append(name) }
            owners[name, default: []].append(provider.provider)
        }
    }
    func entry(_ id: String, _ owner: String) -> JSONValue {
        ["id": .string(id), "object": "model", "created": 0, "owned_by": .string(owner)]
    }
    var data: [JSONValue] = []
    for name in order {
        let providers = owners[name] ?? []
        if providers.count == 1 { data.append(entry(name, providers[0])) }
        for provider in providers { data.append(entry("\(provider)/\(name)", provider)) }
    }
    for alias in list.aliases { data.append(entry(alias.alias, alias.provider ?? "llmd")) }
    return ["object": "list", "data": .array(data)]
}
