import LLMDMemory
import LLMDProtocol

/// A session's own settings: which model, how it remembers, how its prompts look.
///
/// Stored as JSON with the session; `send` and `session.create` take the same members in
/// their `settings` object (llmd-protocol(7)).
struct SessionSettings: Equatable {
    /// nil: the daemon's default provider at the time of each turn.
    var provider: String?
    /// nil: the provider's default model.
    var model: String?
    var memory: MemoryStrategy = .buffer
    var promptStyle: PromptStyle = .messages
    /// nil: chosen by the model (``Endpoint/init(model:)``).
    var endpoint: Endpoint?
    var systemPrompt: String?
    /// Tags every event of the session's turns carries.
    var tags: [String] = []

    init() {}

    /// Settings read back from storage; anything unreadable keeps its default.
    init(stored: JSONObject) {
        provider = stored["provider"]?.stringValue
        model = stored["model"]?.stringValue
        if let name = stored["memory"]?.stringValue,
            let strategy = MemoryStrategy(
                name: name, k: stored["k"]?.intValue.map { Int($0) }, maxTokens: stored["max_tokens"]?.intValue.map { Int($0) })
        {
            memory = strategy
        }
        promptStyle = stored["prompt_style"]?.stringValue.flatMap(PromptStyle.init(rawValue:)) ?? .messages
        endpoint = stored["endpoint"]?.stringValue.flatMap(Endpoint.init(rawValue:))
        systemPrompt = stored["system"]?.stringValue
        tags = stored["tags"]?.arrayValue?.compactMap(\.stringValue) ?? []
    }

    var json: JSONObject {
        var object: JSONObject = [
            "memory": .string(memory.name), "prompt_style": .string(promptStyle.rawValue),
            "tags": .array(tags.map(JSONValue.string)),
        ]
        object["provider"] = provider.map(JSONValue.string) ?? .null
        object["model"] = model.map(JSONValue.string) ?? .null
        object["endpoint"] = endpoint.map { .string($0.rawValue) } ?? .null
        object["system"] = systemPrompt.map(JSONValue.string) ?? .null
        if let k = memory.k { object["k"] = .int(Int64(k)) }
        if let limit = memory.maxTokens { object["max_tokens"] = .int(Int64(limit)) }
        return object
    }

    /// Applies the members of a `settings` parameter; a member set to null restores its default.
    ///
    /// - Returns: the names of the settings that changed, in a stable order.
    /// - Throws: `request.invalid_params` for an unknown member, a bad value, or `k` and
    ///   `max_tokens` given to a strategy that has no such parameter.
    mutating func apply(_ params: JSONObject) throws(ProtocolError) -> [String] {
        do throws(ProtocolError) {
            // All or nothing: a bad member leaves the settings as they were.
            var changed = self
            let names = try changed.applyMembers(params)
            self = changed
            return names
        } catch {
            // Name the member as the request spells it: `settings.k`.
            var error = error
            if let field = error.detail["field"]?.stringValue, !field.hasPrefix("settings.") {
                error.detail["field"] = .string("settings." + field)
            }
            throw error
        }
    }

    private mutating func applyMembers(_ params: JSONObject) throws(ProtocolError) -> [String] {
        let known: Set<String> = ["provider", "model", "memory", "k", "max_tokens", "prompt_style", "endpoint", "system", "tags"]
        if let unknown = params.keys.sorted().first(where: { !known.contains($0) }) {
            throw ProtocolError(
                .invalidParams, "unknown session setting '\(unknown)'; settings: \(known.sorted().joined(separator: ", "))",
                detail: ["field": .string("settings.\(unknown)")])
        }
        let before = self
        if params["provider"] != nil { provider = try params.string("provider") }
        if params["model"] != nil { model = try params.string("model") }
        if params["system"] != nil { systemPrompt = try params.string("system") }
        if params["tags"] != nil { tags = try params.strings("tags") ?? [] }
        if params["prompt_style"] != nil {
            let name = try params.string("prompt_style") ?? PromptStyle.messages.rawValue
            guard let style = PromptStyle(rawValue: name) else {
                throw .invalidParam("prompt_style", expected: "messages or conversation", got: params["prompt_style"])
            }
            promptStyle = style
        }
        if params["endpoint"] != nil {
            let name = try params.string("endpoint")
            guard name == nil || Endpoint(rawValue: name!) != nil else {
                throw .invalidParam("endpoint", expected: "chat or completions", got: params["endpoint"])
            }
            endpoint = name.flatMap(Endpoint.init(rawValue:))
        }
        try applyMemory(params)
        var changed: [String] = []
        if provider != before.provider { changed.append("provider") }
        if model != before.model { changed.append("model") }
        if memory != before.memory { changed.append("memory") }
        if promptStyle != before.promptStyle { changed.append("prompt_style") }
        if endpoint != before.endpoint { changed.append("endpoint") }
        if systemPrompt != before.systemPrompt { changed.append("system") }
        if tags != before.tags { changed.append("tags") }
        return changed
    }

    /// `memory`, `k` and `max_tokens`: a parameter alone tunes the current strategy.
    private mutating func applyMemory(_ params: JSONObject) throws(ProtocolError) {
        let k = try params.int("k")
        let limit = try params.int("max_tokens")
        if let k, k < 0 { throw .invalidParam("k", expected: "a number of exchanges, 0 or more", got: params["k"]) }
        if let limit, limit <= 0 { throw .invalidParam("max_tokens", expected: "a positive number of tokens", got: params["max_tokens"]) }
        // A member given as null restores its default: buffer memory, LangChain's k and limit.
        let name = try params.string("memory") ?? (params["memory"] == .null ? MemoryStrategy.buffer.name : memory.name)
        let currentK = params["k"] == .null ? nil : memory.k
        let currentLimit = params["max_tokens"] == .null ? nil : memory.maxTokens
        guard
            let strategy = MemoryStrategy(
                name: name, k: k.map { Int($0) } ?? currentK, maxTokens: limit.map { Int($0) } ?? currentLimit)
        else {
            throw .invalidParam("memory", expected: MemoryStrategy.names.joined(separator: ", "), got: params["memory"])
        }
        if k != nil, strategy.k == nil {
            throw ProtocolError(
                .invalidParams, "k sets the window memory's size; the session's memory is \(strategy.name)",
                detail: ["field": "k"])
        }
        if limit != nil, strategy.maxTokens == nil {
            throw ProtocolError(
                .invalidParams,
                "max_tokens limits the token-buffer and summary-buffer memories; the session's memory is \(strategy.name)",
                detail: ["field": "max_tokens"])
        }
        memory = strategy
    }

    /// The strategy with its parameters, for messages: `window (k=3)`.
    var memoryDescription: String {
        if let k = memory.k { return "\(memory.name) (k=\(k))" }
        if let limit = memory.maxTokens { return "\(memory.name) (max_tokens=\(limit))" }
        return memory.name
    }
}
