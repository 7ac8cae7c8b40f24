import LLMDUsage

/// `[Budget]` of llmd.conf(5): limits every day, session or scope has unless one is set
/// for it at runtime (`budget.set`).
public struct BudgetConfiguration: Sendable, Equatable {
    public var defaults: [BudgetKind: BudgetLimit] = [:]
    /// `ReplyTokens=`: the reply a budgeted call reserves when it sets no `max_tokens`, and
    /// is limited to, so that the reservation bounds it.
    public var replyTokens = 4096

    public init() {}

    static let keys: [ConfigurationKey<BudgetConfiguration>] = [
        ConfigurationKey(name: "ReplyTokens") { config, value throws(ConfigValueError) in
            config.replyTokens = try parseTokenLimit(value).map(Int.init) ?? 4096
        }
    ] + BudgetKind.allCases.flatMap { kind in
        let prefix = kind.rawValue.prefix(1).uppercased() + kind.rawValue.dropFirst()
        return [
            ConfigurationKey<BudgetConfiguration>(name: prefix + "Tokens") { config, value throws(ConfigValueError) in
                config.defaults[kind, default: BudgetLimit()].tokens = try parseTokenLimit(value)
            },
            ConfigurationKey<BudgetConfiguration>(name: prefix + "Cost") { config, value throws(ConfigValueError) in
                config.defaults[kind, default: BudgetLimit()].cost = try parseCostLimit(value)
            },
        ]
    }
}

/// A positive number of tokens; empty for none.
func parseTokenLimit(_ value: String) throws(ConfigValueError) -> Int64? {
    guard !value.isEmpty else { return nil }
    guard let tokens = Int64(value), tokens > 0 else { throw ConfigValueError("expected a positive number of tokens") }
    return tokens
}

/// An amount of USD such as `0.50`; empty for none.
func parseCostLimit(_ value: String) throws(ConfigValueError) -> USD? {
    guard !value.isEmpty else { return nil }
    guard let cost = USD(parsing: value), cost > .zero else { throw ConfigValueError("expected an amount of USD such as 0.50") }
    return cost
}
