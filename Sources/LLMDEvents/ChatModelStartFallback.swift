import LLMDProtocol

/// LangChain's fallback for handlers written for completion models: one that has no
/// `on_chat_model_start` is called with `on_llm_start` for chat models too, the messages
/// rendered as text. llmd does the same for subscriptions and handlers that take
/// `llm_start` and not `chat_model_start`, so a literal port of such a handler sees the
/// calls it would see in LangChain.
extension CallbackEvent {
    /// This `chat_model_start` as such a handler gets it: an `llm_start` whose `prompts`
    /// hold the messages as LangChain's `get_buffer_string` renders them, the rest of
    /// `data` as it was, and `from_chat_model: true`. Any other event is returned as it is.
    public var asLLMStart: CallbackEvent {
        guard type == .chatModelStart else { return self }
        var converted = CallbackEvent(
            name: EventType.llmStart.rawValue, seq: seq, time: time, session: session, runID: runID,
            parentRunID: parentRunID, tags: tags, metadata: metadata, data: data, request: request,
            subscription: subscription)
        let messages = data["messages"]?.arrayValue ?? []
        converted.data["messages"] = nil
        converted.data["prompts"] = [.string(Self.bufferString(messages))]
        converted.data["from_chat_model"] = true
        converted.encodedContext = encodedContext
        return converted
    }

    /// `get_buffer_string`: a line `Speaker: content` per message, joined by newlines;
    /// the speaker is `Human`, `AI`, `System`, `Function` or `Tool` by role, else the role.
    static func bufferString(_ messages: [JSONValue]) -> String {
        messages.map { message in
            let object = message.objectValue ?? [:]
            let role = object["role"]?.stringValue ?? "user"
            let speaker =
                switch role {
                case "user": "Human"
                case "assistant": "AI"
                case "system": "System"
                case "function": "Function"
                case "tool": "Tool"
                default: role
                }
            return speaker + ": " + (object["content"]?.stringValue ?? "")
        }.joined(separator: "\n")
    }
}

extension EventTypeMask {
    /// Whether a filter of these types takes chat-model starts as `llm_start`: it names
    /// `llm_start` and not `chat_model_start`.
    public var takesChatModelStartsAsLLMStarts: Bool { contains(.llmStart) && !contains(.chatModelStart) }
}
