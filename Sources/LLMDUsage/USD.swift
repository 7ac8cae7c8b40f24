/// An amount of US dollars, exact: a whole number of picodollars (10⁻¹² USD).
///
/// Prices have at most six decimals per million tokens, so a token's price is a whole
/// number of picodollars and every cost, sum and budget is integer arithmetic: totals
/// always equal the sum of their parts, to the last digit. Int64 holds up to about
/// nine million dollars.
public struct USD: Sendable, Hashable, Comparable, AdditiveArithmetic, CustomStringConvertible {
    public var picodollars: Int64

    public init(picodollars: Int64) {
        self.picodollars = picodollars
    }

    public static let zero = USD(picodollars: 0)
    static let picodollarsPerDollar: Int64 = 1_000_000_000_000

    /// Parses a decimal amount such as `2.50`, `0.075` or `$1`, exactly.
    ///
    /// - Parameter decimals: the most decimal places accepted (12 reaches a picodollar).
    /// - Returns: nil for anything else: negative, exponent notation, too many decimals.
    public init?(parsing text: some StringProtocol, decimals: Int = 12) {
        var text = Substring(text)
        if text.first == "$" { text = text.dropFirst() }
        let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let whole = parts.first, !whole.isEmpty || parts.count == 2,
            whole.allSatisfy({ $0.isASCII && $0.isNumber })
        else { return nil }
        let fraction = parts.count == 2 ? parts[1] : ""
        guard fraction.count <= min(decimals, 12), fraction.allSatisfy({ $0.isASCII && $0.isNumber }),
            !(whole.isEmpty && fraction.isEmpty)
        else { return nil }
        let dollars = whole.isEmpty ? 0 : Int64(whole)
        let padded = fraction + String(repeating: "0", count: 12 - fraction.count)
        guard let dollars, let pico = Int64(padded) else { return nil }
        let (scaled, overflow) = dollars.multipliedReportingOverflow(by: Self.picodollarsPerDollar)
        guard !overflow, scaled <= Int64.max - pico else { return nil }
        picodollars = scaled + pico
    }

    /// The amount in dollars, for JSON; exact below about $9,000 (2⁵³ picodollars).
    public var dollars: Double { Double(picodollars) / Double(Self.picodollarsPerDollar) }

    /// The amount nearest `dollars`, from JSON.
    public init?(dollars: Double) {
        let pico = (dollars * Double(Self.picodollarsPerDollar)).rounded()
        guard pico.isFinite, pico >= 0, pico < 9.2e18 else { return nil }
        picodollars = Int64(pico)
    }

    /// `$0.0001275`: every significant digit, at least two decimals, nothing rounded.
    public var description: String {
        let sign = picodollars < 0 ? "-" : ""
        let magnitude = picodollars.magnitude
        let whole = magnitude / UInt64(Self.picodollarsPerDollar)
        var fraction = String(magnitude % UInt64(Self.picodollarsPerDollar))
        fraction = String(repeating: "0", count: 12 - fraction.count) + fraction
        while fraction.count > 2, fraction.last == "0" { fraction.removeLast() }
        return "\(sign)$\(whole).\(fraction)"
    }

    public static func < (lhs: USD, rhs: USD) -> Bool { lhs.picodollars < rhs.picodollars }
    public static func + (lhs: USD, rhs: USD) -> USD { USD(picodollars: lhs.picodollars + rhs.picodollars) }
    public static func - (lhs: USD, rhs: USD) -> USD { USD(picodollars: lhs.picodollars - rhs.picodollars) }
}
