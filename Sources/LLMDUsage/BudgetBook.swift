/// Tokens and their cost, as budgets count them.
public struct Amount: Sendable, Equatable, AdditiveArithmetic {
    /// Prompt and completion tokens together.
    public var tokens: Int64
    public var cost: USD

    public init(tokens: Int64, cost: USD) {
        self.tokens = tokens
        self.cost = cost
    }

    public static let zero = Amount(tokens: 0, cost: .zero)
    public static func + (lhs: Amount, rhs: Amount) -> Amount { Amount(tokens: lhs.tokens + rhs.tokens, cost: lhs.cost + rhs.cost) }
    public static func - (lhs: Amount, rhs: Amount) -> Amount { Amount(tokens: lhs.tokens - rhs.tokens, cost: lhs.cost - rhs.cost) }
}

/// What a budget limits.
public enum BudgetKind: String, Sendable, CaseIterable {
    /// Every call of a UTC day, daemon-wide.
    case daily
    case session
    case scope
}

/// One budget: a day, a session or a scope.
public enum BudgetKey: Hashable, Sendable {
    /// A UTC day, `2026-11-21`.
    case daily(String)
    /// A session by its id, which survives renames.
    case session(Int64)
    /// A scope by its id.
    case scope(String)

    /// Where a limit set at runtime is kept: one daily limit holds for every day.
    public static let everyDay = BudgetKey.daily("")

    public var limitKey: BudgetKey {
        if case .daily = self { return Self.everyDay }
        return self
    }

    public var kind: BudgetKind {
        switch self {
        case .daily: .daily
        case .session: .session
        case .scope: .scope
        }
    }
}

/// A budget's limits; nil is no limit.
public struct BudgetLimit: Sendable, Equatable {
    public var tokens: Int64?
    public var cost: USD?

    public init(tokens: Int64? = nil, cost: USD? = nil) {
        self.tokens = tokens
        self.cost = cost
    }

    public var isUnlimited: Bool { tokens == nil && cost == nil }

    /// These limits where set, `base`'s where not.
    public func over(_ base: BudgetLimit?) -> BudgetLimit {
        BudgetLimit(tokens: tokens ?? base?.tokens, cost: cost ?? base?.cost)
    }
}

/// Why a call may not start.
public struct BudgetExceeded: Error, Sendable, Equatable {
    public enum Reason: String, Sendable {
        case tokens
        case cost
        /// A cost limit applies and the model's price is unknown, so the call's cost cannot
        /// be bounded.
        case priceUnknown = "price_unknown"
    }

    public var key: BudgetKey
    public var reason: Reason
    public var limit: BudgetLimit
    /// Recorded in the ledger, and reserved by calls still running.
    public var spent: Amount
    public var reserved: Amount
    /// The most the refused call could use.
    public var needed: Amount
}

/// A running call's hold on its budgets: the most it can use.
public struct Reservation: Sendable, Equatable {
    public var id: UInt64
    public var keys: [BudgetKey]
    public var amount: Amount
}

/// Budgets with reservations: a call reserves the most it can use on every budget it
/// counts to before it starts, and its actual use replaces the reservation once recorded,
/// so concurrent calls cannot together slip past a limit.
///
/// Spending is loaded from the ledger once per budget (``load(_:spent:)``) and then kept
/// current by ``record(_:keys:releasing:)``; the caller serialises loads, reservations and
/// records with the ledger's writes, so no recorded call is counted twice or missed.
public struct BudgetBook: Sendable {
    /// Limits every budget of a kind has unless set one by one (llmd.conf's `[Budget]`).
    public var defaults: [BudgetKind: BudgetLimit]
    /// Limits set one by one, over the kind's default: a limit not set is the default's.
    /// The daily limit set is kept once, for every day (under ``BudgetKey/everyDay``).
    private var limits: [BudgetKey: BudgetLimit] = [:]
    private var spent: [BudgetKey: Amount] = [:]
    private var reserved: [BudgetKey: Amount] = [:]
    private var nextReservation: UInt64 = 1

    public init(defaults: [BudgetKind: BudgetLimit] = [:]) {
        self.defaults = defaults
    }

    /// True when no budget has a limit: calls need not reserve.
    public var isUnlimited: Bool {
        limits.values.allSatisfy(\.isUnlimited) && defaults.values.allSatisfy(\.isUnlimited)
    }

    /// The limit on `key`, or nil when it has none.
    public func limit(_ key: BudgetKey) -> BudgetLimit? {
        let limit = ownLimit(key)?.over(defaults[key.kind]) ?? defaults[key.kind]
        return limit?.isUnlimited == false ? limit : nil
    }

    /// The limits set for `key` itself (for a day, those set for every day).
    public func ownLimit(_ key: BudgetKey) -> BudgetLimit? {
        limits[key.limitKey]
    }

    /// Sets `key`'s own limits (for a day, every day's); nil returns it to the kind's default.
    public mutating func setLimit(_ limit: BudgetLimit?, for key: BudgetKey) {
        limits[key.limitKey] = limit
    }

    /// The budgets among `keys` that have a limit and whose spending is not loaded yet.
    public func unloaded(_ keys: [BudgetKey]) -> [BudgetKey] {
        keys.filter { limit($0) != nil && spent[$0] == nil }
    }

    /// Records what the ledger holds for `key`, unless already known.
    public mutating func load(_ key: BudgetKey, spent amount: Amount) {
        if spent[key] == nil { spent[key] = amount }
    }

    /// Spent and reserved on `key`; spent is nil when not loaded.
    public func usage(_ key: BudgetKey) -> (spent: Amount?, reserved: Amount) {
        (spent[key], reserved[key] ?? .zero)
    }

    /// Reserves `amount` on every budget among `keys`, or none.
    ///
    /// - Parameter costKnown: false when the model's price is unknown: a budget with a
    ///   cost limit then refuses the call.
    /// - Returns: the reservation, or nil when no budget among `keys` has a limit.
    /// - Throws: the first budget the call would exceed; nothing is reserved then.
    /// - Precondition: the budgets' spending is loaded (``unloaded(_:)`` is empty).
    public mutating func reserve(_ amount: Amount, on keys: [BudgetKey], costKnown: Bool) throws(BudgetExceeded) -> Reservation? {
        let limited = keys.compactMap { key in limit(key).map { (key, $0) } }
        guard !limited.isEmpty else { return nil }
        for (key, limit) in limited {
            let spent = spent[key] ?? .zero
            let reserved = reserved[key] ?? .zero
            let after = spent + reserved + amount
            func exceeded(_ reason: BudgetExceeded.Reason) -> BudgetExceeded {
                BudgetExceeded(key: key, reason: reason, limit: limit, spent: spent, reserved: reserved, needed: amount)
            }
            if let tokens = limit.tokens, after.tokens > tokens { throw exceeded(.tokens) }
            if let cost = limit.cost {
                guard costKnown else { throw exceeded(.priceUnknown) }
                if after.cost > cost { throw exceeded(.cost) }
            }
        }
        for (key, _) in limited { reserved[key, default: .zero] += amount }
        defer { nextReservation += 1 }
        return Reservation(id: nextReservation, keys: limited.map(\.0), amount: amount)
    }

    /// Holds `actual` instead of the most the call could have used, once the call has
    /// ended and waits to be recorded (a turn records its calls together, at its end).
    public mutating func resize(_ reservation: Reservation, to actual: Amount) -> Reservation {
        for key in reservation.keys { reserved[key, default: .zero] += actual - reservation.amount }
        var resized = reservation
        resized.amount = actual
        return resized
    }

    /// Counts a recorded call on the loaded budgets among `keys`, and drops its reservation.
    public mutating func record(_ actual: Amount, keys: [BudgetKey], releasing reservation: Reservation?) {
        if let reservation { release(reservation) }
        for key in keys where spent[key] != nil { spent[key]! += actual }
    }

    /// Drops a reservation whose call recorded nothing.
    public mutating func release(_ reservation: Reservation) {
        for key in reservation.keys {
            reserved[key, default: .zero] -= reservation.amount
            if reserved[key] == .zero { reserved[key] = nil }
        }
    }
}

/// UTC calendar days, for daily budgets and `usage --by day`.
public enum CalendarDay {
    /// `2026-11-21` for a time in microseconds since the Unix epoch (UTC).
    public static func of(microseconds: Int64) -> String {
        // Howard Hinnant's days-to-civil algorithm.
        let days = microseconds >= 0 ? microseconds / 86_400_000_000 : (microseconds + 1) / 86_400_000_000 - 1
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        func two(_ value: Int64) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(year)-\(two(month))-\(two(day))"
    }

    /// Microseconds since the epoch at the start (00:00 UTC) of `day` (`2026-11-21`), or nil.
    public static func start(of day: String) -> Int64? {
        let parts = day.split(separator: "-")
        guard parts.count == 3, let year = Int64(parts[0]), let month = Int64(parts[1]), let dayOfMonth = Int64(parts[2]),
            (1...12).contains(month), (1...31).contains(dayOfMonth)
        else { return nil }
        // Hinnant's days-from-civil.
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + dayOfMonth - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return (era * 146_097 + dayOfEra - 719_468) * 86_400_000_000
    }
}
