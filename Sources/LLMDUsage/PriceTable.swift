import LLMDProtocol
import LLMDMemory

/// What a model's tokens cost, in USD per million tokens.
public struct Price: Sendable, Equatable {
    public var input: USD
    /// Cached prompt tokens; nil bills them as `input`.
    public var cachedInput: USD?
    public var output: USD

    /// - Precondition: each price has at most six decimals (``USD/init(parsing:decimals:)``
    ///   with `decimals: 6`), so that one token costs a whole number of picodollars.
    public init(input: USD, cachedInput: USD? = nil, output: USD) {
        self.input = input
        self.cachedInput = cachedInput
        self.output = output
    }

    /// Free: the offline provider, or a local model configured at 0.
    public static let free = Price(input: .zero, output: .zero)

    /// The cost of `usage`: uncached prompt tokens at the input price, cached ones at the
    /// cached price, completion tokens (reasoning included) at the output price.
    public func cost(of usage: TokenUsage) -> USD {
        let cached = min(usage.cachedPromptTokens, usage.promptTokens)
        return Self.perToken(input, tokens: usage.promptTokens - cached)
            + Self.perToken(cachedInput ?? input, tokens: cached)
            + Self.perToken(output, tokens: usage.completionTokens)
    }

    /// The most a call can cost: every prompt token uncached, and the longest reply.
    public func maximumCost(promptTokens: Int, replyTokens: Int) -> USD {
        Self.perToken(input, tokens: promptTokens) + Self.perToken(output, tokens: replyTokens)
    }

    private static func perToken(_ perMillion: USD, tokens: Int) -> USD {
        USD(picodollars: perMillion.picodollars / 1_000_000 * Int64(tokens))
    }
}

/// Prices by model: configured ones (`[Model NAME] InputPrice=`…) first, then the
/// built-in table of OpenAI's published prices.
public struct PriceTable: Sendable, Equatable {
    /// OpenAI's standard-tier text prices (USD per million tokens: input, cached input,
    /// output), looked up by model family (``ModelFamilies``), so a dated snapshot such as
    /// `gpt-4o-2024-08-06` finds `gpt-4o`. Snapshots priced apart from their family are listed.
    public static let builtIn: [(prefix: String, value: Price)] = [
        ("gpt-5", price("1.25", "0.125", "10")),
        ("gpt-5-mini", price("0.25", "0.025", "2")),
        ("gpt-5-nano", price("0.05", "0.005", "0.40")),
        ("gpt-4.1", price("2", "0.50", "8")),
        ("gpt-4.1-mini", price("0.40", "0.10", "1.60")),
        ("gpt-4.1-nano", price("0.10", "0.025", "0.40")),
        ("gpt-4o", price("2.50", "1.25", "10")),
        ("gpt-4o-2024-05-13", price("5", nil, "15")),
        ("gpt-4o-mini", price("0.15", "0.075", "0.60")),
        ("chatgpt-4o-latest", price("5", nil, "15")),
        ("o1", price("15", "7.50", "60")),
        ("o1-mini", price("1.10", "0.55", "4.40")),
        ("o1-pro", price("150", nil, "600")),
        ("o3", price("2", "0.50", "8")),
        ("o3-mini", price("1.10", "0.55", "4.40")),
        ("o4-mini", price("1.10", "0.275", "4.40")),
        ("gpt-4-turbo", price("10", nil, "30")),
        ("gpt-4", price("30", nil, "60")),
        ("gpt-4-32k", price("60", nil, "120")),
        ("gpt-3.5-turbo", price("0.50", nil, "1.50")),
        ("gpt-3.5-turbo-instruct", price("1.50", nil, "2")),
        ("davinci-002", price("2", nil, "2")),
        ("babbage-002", price("0.40", nil, "0.40")),
    ]

    private static func price(_ input: String, _ cached: String?, _ output: String) -> Price {
        Price(input: USD(parsing: input, decimals: 6)!, cachedInput: cached.map { USD(parsing: $0, decimals: 6)! },
            output: USD(parsing: output, decimals: 6)!)
    }

    /// Configured prices by exact model name.
    public var configured: [String: Price]

    public init(configured: [String: Price] = [:]) {
        self.configured = configured
    }

    public static func == (lhs: PriceTable, rhs: PriceTable) -> Bool { lhs.configured == rhs.configured }

    /// The price of `model`, or nil when neither the configuration nor the built-in table
    /// knows it: its cost is unknown, never $0.
    public func price(for model: String) -> Price? {
        configured[model] ?? ModelFamilies.lookup(model, in: Self.builtIn)
    }
}
