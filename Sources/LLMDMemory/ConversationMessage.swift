/// One message of a conversation, as memory keeps it.
public struct ConversationMessage: Sendable, Equatable {
    /// Who said it. Raw values are the chat API's roles, so stored and sent messages agree.
    public enum Role: String, Sendable, CaseIterable {
        case user
        case assistant
        case system

        /// The speaker's name in LangChain's text rendering (`get_buffer_string`).
        public var prefix: String {
            switch self {
            case .user: "Human"
            case .assistant: "AI"
            case .system: "System"
            }
        }
    }

    public var role: Role
    public var content: String

    public init(_ role: Role, _ content: String) {
        self.role = role
        self.content = content
    }

    /// LangChain's `get_buffer_string`: `Human: …`, `AI: …`, `System: …`, one per line.
    public static func bufferString(_ messages: [ConversationMessage]) -> String {
        var text = ""
        for (index, message) in messages.enumerated() {
            if index > 0 { text += "\n" }
            text += message.role.prefix + ": " + message.content
        }
        return text
    }
}

/// Which API a session's prompts go to: chat messages, or one text prompt to the legacy
/// completions endpoint (what LangChain's `OpenAI()` LLM calls).
public enum Endpoint: String, Sendable, CaseIterable {
    case chat
    case completions

    /// The endpoint a model is served on: OpenAI's completion models (`gpt-3.5-turbo-instruct`,
    /// `davinci-002`, `babbage-002`, the retired `text-davinci-003`) take a prompt; the rest chat.
    public init(model: String) {
        let completionModel =
            model.hasSuffix("-instruct") || model.hasPrefix("davinci") || model.hasPrefix("babbage")
            || model.hasPrefix("text-")
        self = completionModel ? .completions : .chat
    }
}
