/// Models' context windows, in tokens: prompt and reply together.
public enum ContextWindow {
    /// OpenAI's published sizes by model family (``ModelFamilies``), so a dated snapshot
    /// (`gpt-4o-2024-08-06`) finds its family. `[Model NAME] ContextWindow=` adds or overrides.
    public static let known: [(prefix: String, value: Int)] = [
        ("gpt-4.1", 1_047_576), ("gpt-4o", 128_000), ("gpt-4-turbo", 128_000), ("gpt-4-32k", 32_768),
        ("gpt-4", 8_192), ("gpt-3.5-turbo-instruct", 4_096), ("gpt-3.5-turbo", 16_385), ("gpt-5", 400_000),
        ("o1-mini", 128_000), ("o1", 200_000), ("o3", 200_000), ("o4-mini", 200_000), ("text-davinci-003", 4_097),
        ("davinci-002", 16_384), ("babbage-002", 16_384),
    ]

    /// The context window of `model`: configured sizes first, then the built-in table.
    public static func tokens(for model: String, configured: [String: Int] = [:]) -> Int? {
        if let size = configured[model] { return size }
        return ModelFamilies.lookup(model, in: known)
    }

    /// Why a prompt does not fit, or nil when it does.
    ///
    /// - Parameter reply: tokens reserved for the reply (`max_tokens`), 0 when not set.
    public static func overflow(prompt: Int, reply: Int, window: Int) -> Overflow? {
        let needed = prompt + reply
        return needed > window ? Overflow(promptTokens: prompt, replyTokens: reply, window: window) : nil
    }

    public struct Overflow: Sendable, Equatable {
        public var promptTokens: Int
        public var replyTokens: Int
        public var window: Int
        /// How many tokens too many.
        public var excess: Int { promptTokens + replyTokens - window }
    }
}
