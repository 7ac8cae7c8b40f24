/// What llmd knows of one model beyond its built-in tables, from a `[Model NAME]` section.
public struct ModelConfiguration: NamedSection, Sendable, Equatable {
    /// The model name as requests give it (`gpt-4o`, `llama3:8b`).
    public var name: String
    /// `ContextWindow=`: prompt and reply tokens together.
    public var contextWindow: Int?
    /// `Encoding=`: the tiktoken encoding that counts the model's tokens (`cl100k_base`,
    /// `o200k_base`), for models tiktoken does not map.
    public var encoding: String?

    public init(name: String) {
        self.name = name
    }

    static let keys: [ConfigurationKey<ModelConfiguration>] = [
        .init(name: "ContextWindow") { model, value throws(ConfigValueError) in
            guard !value.isEmpty else {
                model.contextWindow = nil
                return
            }
            guard let tokens = Int(value), tokens > 0 else { throw ConfigValueError("expected a positive number of tokens") }
            model.contextWindow = tokens
        },
        .init(name: "Encoding") { model, value throws(ConfigValueError) in
            guard value.isEmpty || ["cl100k_base", "o200k_base"].contains(value) else {
                throw ConfigValueError("expected cl100k_base or o200k_base")
            }
            model.encoding = value.isEmpty ? nil : value
        },
    ]
}
