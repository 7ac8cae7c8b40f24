/// Lookups by model family in tables keyed by model-name prefix.
public enum ModelFamilies {
    /// The value of the longest prefix of `model` that ends at a word boundary of the name
    /// (its end, or `-`, `.`, `:`, `@`): a dated snapshot (`gpt-4o-2024-08-06`) finds its
    /// family, and `gpt-4o` never falls to `gpt-4`. A provider prefix (`openai/gpt-4o`, as
    /// LiteLLM writes models) is ignored.
    public static func lookup<Value>(_ model: String, in table: [(prefix: String, value: Value)]) -> Value? {
        let name = model.split(separator: "/").last.map(String.init) ?? model
        var best: (length: Int, value: Value)?
        for entry in table where name.hasPrefix(entry.prefix) && entry.prefix.count > (best?.length ?? -1) {
            let rest = name.dropFirst(entry.prefix.count)
            guard rest.isEmpty || "-.:@".contains(rest.first!) else { continue }
            best = (entry.prefix.count, entry.value)
        }
        return best?.value
    }
}
