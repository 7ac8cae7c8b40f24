/// Where a call's token counts came from.
public enum UsageSource: String, Sendable, Equatable, CaseIterable {
    /// The provider's `usage`, as billed.
    case provider
    /// Counted by llmd: the server sent none (a cut or cancelled stream, a server that
    /// omits usage while streaming, the offline provider).
    case estimated
    /// Reported by a program that made the call itself, not through llmd (`run.event`).
    case reported
}

/// The tokens one LLM call used, with where the counts came from: what the provider
/// reported, what llmd estimated, what the ledger keeps and what clients are told.
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
    /// own encoding is unknown. Provider and reported counts are exact.
    public var isExact: Bool
    /// The encoding an estimate was counted with; nil for other counts and byte estimates.
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
}
