import LLMDMemory
import LLMDProtocol

extension TokenUsage {
    /// What a call the server did not count used: its prompt as sent (`promptTokens`,
    /// counted the way the endpoint frames it), and the text that arrived — all of it for a
    /// finished call, the part received for a cut or cancelled one, since that part is billed.
    public static func estimated(promptTokens: Int, received text: String, counter: TokenCounter) -> TokenUsage {
        TokenUsage(
            promptTokens: promptTokens, completionTokens: text.isEmpty ? 0 : counter.count(text),
            source: .estimated, isExact: counter.isExact, encoding: counter.encodingName)
    }
}
