import LLMDTokenizer

/// Counts the tokens of text and of messages, the way the model's LangChain class does.
///
/// Memory limits and the context-window check count with it. Counts are exact when the
/// model's tiktoken encoding is known and its vocabulary is loaded; otherwise they are an
/// estimate, and every report built on them says so.
public struct TokenCounter: Sendable {
    /// True when counts come from the model's own encoding.
    public let isExact: Bool
    /// The encoding that counts, or nil for the byte-length estimate.
    public let encodingName: String?
    private let countText: @Sendable (String) -> Int
    private let countChat: @Sendable ([ConversationMessage]) -> Int

    public init(
        isExact: Bool, encodingName: String?, countText: @escaping @Sendable (String) -> Int,
        countChat: @escaping @Sendable ([ConversationMessage]) -> Int
    ) {
        self.isExact = isExact
        self.encodingName = encodingName
        self.countText = countText
        self.countChat = countChat
    }

    /// Exact counts with a loaded tokenizer; `isExact` is false when the tokenizer is a
    /// stand-in for a model whose encoding is unknown.
    public init(tokenizer: Tokenizer, isExact: Bool = true) {
        self.init(
            isExact: isExact, encodingName: tokenizer.encoding.rawValue, countText: { tokenizer.count($0) },
            countChat: { messages in
                tokenizer.countChat(messages.map { LLMDTokenizer.ChatMessage(role: $0.role.rawValue, content: $0.content) })
            })
    }

    /// Without any vocabulary: one token per four UTF-8 bytes, rounded up, in the chat
    /// framing of ``Tokenizer/countChat(_:)``. Good to within tens of percent for English.
    public static let estimate = TokenCounter(
        isExact: false, encodingName: nil, countText: estimatedCount,
        countChat: { messages in messages.reduce(3) { $0 + 4 + estimatedCount($1.content) } })

    private static func estimatedCount(_ text: String) -> Int { (text.utf8.count + 3) / 4 }

    /// The tokens of `text` as one prompt.
    public func count(_ text: String) -> Int { countText(text) }

    /// The tokens `messages` take on `endpoint`, as LangChain's `get_num_tokens_from_messages`
    /// counts them: `ChatOpenAI`'s chat framing on the chat endpoint; on the completions
    /// endpoint, the base class's sum over each message rendered alone (`Human: …`).
    public func count(_ messages: [ConversationMessage], endpoint: Endpoint) -> Int {
        switch endpoint {
        case .chat: countChat(messages)
        case .completions: messages.reduce(0) { $0 + countText(ConversationMessage.bufferString([$1])) }
        }
    }
}
