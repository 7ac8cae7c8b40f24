import LLMDUsage

/// What llmd knows of one model beyond its built-in tables, from a `[Model NAME]` section.
public struct ModelConfiguration: NamedSection, Sendable, Equatable {
    /// The model name as requests give it (`gpt-4o`, `llama3:8b`).
    public var name: String
    /// `ContextWindow=`: prompt and reply tokens together.
    public var contextWindow: Int?
    /// `Encoding=`: the tiktoken encoding that counts the model's tokens (`cl100k_base`,
    /// `o200k_base`), for models tiktoken does not map.
    public var encoding: String?
    /// `InputPrice=`, `CachedInputPrice=`, `OutputPrice=`: USD per million tokens.
    public var inputPrice: USD?
    public var cachedInputPrice: USD?
    public var outputPrice: USD?

    /// The configured price; nil unless both the input and the output prices are set.
    public var price: Price? {
        guard let inputPrice, let outputPrice else { return nil }
        return Price(input: inputPrice, cachedInput: cachedInputPrice, output: outputPrice)
    }

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
        .init(name: "InputPrice") { model, value throws(ConfigValueError) in model.inputPrice = try parsePrice(value) },
        .init(name: "CachedInputPrice") { model, value throws(ConfigValueError) in
            model.cachedInputPrice = try parsePrice(value)
        },
        .init(name: "OutputPrice") { model, value throws(ConfigValueError) in model.outputPrice = try parsePrice(value) },
    ]
}

/// USD per million tokens, such as `2.50`: at most six decimals, so one token costs a
/// whole number of picodollars.
func parsePrice(_ value: String) throws(ConfigValueError) -> USD? {
    guard !value.isEmpty else { return nil }
    guard let price = USD(parsing: value, decimals: 6) else {
        throw ConfigValueError("expected USD per million tokens, such as 2.50 (at most 6 decimals)")
    }
    return price
}

extension [ModelConfiguration] {
    /// `ContextWindow=` by model name.
    public var contextWindows: [String: Int] { byName(\.contextWindow) }

    /// The configured prices over the built-in table.
    public var prices: PriceTable { PriceTable(configured: byName(\.price)) }

    /// A setting by model name, for the models that have it; a later section wins.
    private func byName<Value>(_ setting: (ModelConfiguration) -> Value?) -> [String: Value] {
        Dictionary(compactMap { model in setting(model).map { (model.name, $0) } }) { $1 }
    }
}
