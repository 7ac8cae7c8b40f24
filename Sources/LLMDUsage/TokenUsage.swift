import LLMDMemory

/// Where a call's token counts came from.
public enum UsageSource: String, Sendable, Equatable {
    /// The provider's `usage`, as billed.
    case provider
    /// Counted by llmd: the server sent none (a cut or cancelled stream, a server that
    /// omits usage while streaming, the offline provider).
    case estimated
}

/// The tokens one LLM call used, with where the counts came from.
public struct TokenUsage: Sendable, Equatable {
    public var promptTokens: Int
    public var completionTokens: Int
    /// Prompt tokens served from the provider's cache, billed at the cached rate. Part of
    /// `promptTokens`.
    public var cachedPromptTokens: Int
    /// Completion tokens spent on hidden reasoning. Part of `completionTokens`.
    public var reasoningTokens: Int
    public var source: UsageSource
    /// False for an estimate counted with a stand-in encoding or the byte rule: the model's
    /// own encoding is unknown. Provider counts are exact.
    public var isExact: Bool
    /// The encoding an estimate was counted with; nil for provider counts and byte estimates.
    public var encoding: String?

    public init(
        promptTokens: Int, completionTokens: Int, cachedPromptTokens: Int = 0, reasoningTokens: Int = 0,
        source: UsageSource, isExact: Bool = true, encoding: String? = nil
    ) {
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.cachedPromptTokens = cachedPromptTokens
        self.reasoningTokens = reasoningTokens
        self.source = source
        self.isExact = isExact
        self.encoding = encoding
    }

    public var totalTokens: Int { promptTokens + completionTokens }

    /// What a call the server did not count used: its prompt as sent (`promptTokens`,
    /// counted the way the endpoint frames it), and the text that arrived — all of it for a
    /// finished call, the part received for a cut or cancelled one, since that part is billed.
    public static func estimated(promptTokens: Int, received text: String, counter: TokenCounter) -> TokenUsage {
        TokenUsage(
            promptTokens: promptTokens, completionTokens: text.isEmpty ? 0 : counter.count(text),
            source: .estimated, isExact: counter.isExact, encoding: counter.encodingName)
    }
}
