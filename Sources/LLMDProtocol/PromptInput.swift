/// A chat message as a client sends it: `{role, content}`.
public struct PromptMessage: JSONObjectConvertible, Equatable {
    public var role: String
    public var content: String

    public init(role: String, content: String) {
        (self.role, self.content) = (role, content)
    }

    public init(json: JSONObject) throws(ProtocolError) {
        guard let role = json["role"]?.stringValue, let content = json["content"]?.stringValue else {
            throw .invalidParam("messages", expected: "objects with string role and content", got: .object(json))
        }
        (self.role, self.content) = (role, content)
    }

    public var json: JSONObject { ["role": .string(role), "content": .string(content)] }
}

/// What a call is asked to send, as given: `text`, `messages` or `prompt` (`complete`
/// and `tokens.count` take them). Which one is required, and how each reaches a model,
/// is the daemon's to decide; here they are only read.
public struct PromptInput: Sendable, Equatable {
    public enum Key: String, CaseIterable { case text, messages, prompt }

    public var text: String?
    /// Non-empty when given.
    public var messages: [PromptMessage]?
    public var prompt: String?

    public init(text: String? = nil, messages: [PromptMessage]? = nil, prompt: String? = nil) {
        (self.text, self.messages, self.prompt) = (text, messages, prompt)
    }

    public init(json: JSONObject) throws(ProtocolError) {
        text = try json.string(Key.text)
        prompt = try json.string(Key.prompt)
        switch json[Key.messages] {
        case nil, .null?:
            messages = nil
        case .array(let array)? where !array.isEmpty:
            messages = try array.map { value throws(ProtocolError) in
                guard let object = value.objectValue else {
                    throw .invalidParam("messages", expected: "objects with string role and content", got: value)
                }
                return try PromptMessage(json: object)
            }
        case let other?:
            throw .invalidParam("messages", expected: "a non-empty array of {role, content}", got: other)
        }
    }

    /// Adds the input's members to `object`.
    public func add(to object: inout JSONObject) {
        object[Key.text] = text.map(JSONValue.string)
        object[Key.messages] = messages.map(JSONValue.objects)
        object[Key.prompt] = prompt.map(JSONValue.string)
    }
}
