import LLMDUsage
import LLMDProtocol
import Testing

@Suite("Prices and costs")
struct PriceTests {
    @Test("USD parses decimals exactly and prints every significant digit")
    func usd() {
        #expect(USD(parsing: "2.50")?.picodollars == 2_500_000_000_000)
        #expect(USD(parsing: "$0.075")?.picodollars == 75_000_000_000)
        #expect(USD(parsing: ".5")?.picodollars == 500_000_000_000)
        #expect(USD(parsing: "0.0000001", decimals: 6) == nil, "prices have at most six decimals")
        for bad in ["", ".", "-1", "1e3", "1.2.3", "abc", "99999999999"] {
            #expect(USD(parsing: bad) == nil, "\(bad)")
        }
        #expect(USD(picodollars: 127_500_000).description == "$0.0001275")
        #expect(USD(picodollars: 0).description == "$0.00")
        #expect(USD(picodollars: 1_500_000_000_000).description == "$1.50")
        #expect(USD(dollars: 0.0001275)?.picodollars == 127_500_000)
    }

    @Test("cost: uncached prompt at the input price, cached at the cached price, completion at the output price")
    func cost() {
        let price = Price(input: USD(parsing: "2.50")!, cachedInput: USD(parsing: "1.25")!, output: USD(parsing: "10")!)
        let usage = TokenUsage(promptTokens: 1000, completionTokens: 200, cachedPromptTokens: 400, reasoningTokens: 50, source: .provider)
        // 600 × 2.5 + 400 × 1.25 + 200 × 10 = 1500 + 500 + 2000 = 4000 millionths of a dollar.
        #expect(price.cost(of: usage) == USD(parsing: "0.004"))
        let noCachedRate = Price(input: USD(parsing: "2")!, output: USD(parsing: "8")!)
        #expect(noCachedRate.cost(of: usage) == USD(parsing: "0.0036"), "cached tokens at the input price")
        #expect(noCachedRate.maximumCost(promptTokens: 1000, replyTokens: 100) == USD(parsing: "0.0028"))
        #expect(Price.free.cost(of: usage) == .zero)
    }

    @Test("sums of costs are exact: a million one-token calls of the cheapest model add up to the penny")
    func exactSums() {
        let price = Price(input: USD(parsing: "0.005", decimals: 6)!, output: USD(parsing: "0.40")!)
        let one = price.cost(of: TokenUsage(promptTokens: 1, completionTokens: 0, source: .provider))
        #expect(one.picodollars == 5_000)
        let total = (0..<1_000_000).reduce(USD.zero) { sum, _ in sum + one }
        #expect(total == USD(parsing: "0.005"))
    }

    @Test("prices by model family: snapshots find their family, never a shorter unrelated one")
    func table() throws {
        let table = PriceTable()
        #expect(table.price(for: "gpt-4o")?.input == USD(parsing: "2.50"))
        #expect(table.price(for: "gpt-4o-2024-08-06")?.input == USD(parsing: "2.50"))
        #expect(table.price(for: "gpt-4o-2024-05-13")?.input == USD(parsing: "5"), "a snapshot priced apart")
        #expect(table.price(for: "gpt-4o-mini-2024-07-18")?.output == USD(parsing: "0.60"))
        #expect(table.price(for: "gpt-4-0613")?.input == USD(parsing: "30"))
        #expect(table.price(for: "gpt-4.1-nano")?.input == USD(parsing: "0.10"))
        #expect(table.price(for: "openai/gpt-4o")?.input == USD(parsing: "2.50"), "a provider prefix is ignored")
        #expect(table.price(for: "gpt-4oops") == nil, "a prefix must end at a word boundary")
        #expect(table.price(for: "llama3:8b") == nil)
        let configured = PriceTable(configured: ["llama3:8b": .free, "gpt-4o": Price(input: .zero, output: .zero)])
        #expect(configured.price(for: "llama3:8b") == .free)
        #expect(configured.price(for: "gpt-4o")?.input == .zero, "configuration wins over the built-in table")
        #expect(configured.price(for: "gpt-4o-2024-08-06")?.input == USD(parsing: "2.50"), "by exact name only")
        for entry in PriceTable.builtIn {
            #expect(entry.value.input.picodollars % 1_000_000 == 0, "\(entry.prefix): a token costs whole picodollars")
        }
    }
}

@Suite("Usage estimates")
struct EstimateTests {
    @Test("an estimate counts the prompt as sent and the text received, and says how exact it is")
    func estimate() {
        let usage = TokenUsage.estimated(promptTokens: 7, received: "abcd", counter: .estimate)
        #expect(usage.promptTokens == 7 && usage.completionTokens == 1)
        #expect(usage.source == .estimated && !usage.isExact && usage.encoding == nil)
        #expect(TokenUsage.estimated(promptTokens: 3, received: "", counter: .estimate).completionTokens == 0)
    }
}
