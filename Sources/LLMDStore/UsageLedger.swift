import CSQLite
import LLMDProtocol

/// One LLM call in the usage ledger.
public struct UsageEntry: Sendable, Equatable {
    /// Microseconds since the Unix epoch, when the call was recorded.
    public var time: Int64
    public var sessionID: Int64?
    /// The session's name at the time, kept after a rename or delete.
    public var session: String?
    public var turnID: Int64?
    public var runID: String
    public var parentRunID: String?
    public var provider: String
    public var model: String
    /// The counts, their source and exactness (the encoding is not kept).
    public var usage: TokenUsage
    /// Picodollars; nil when the model's price is unknown.
    public var cost: Int64?
    /// `completed`, `failed` or `cancelled`: a failed call is billed for what it received.
    public var status: String
    /// Every scope the call counts to, ancestors included.
    public var scopes: [String]

    public init(
        time: Int64, sessionID: Int64?, session: String?, turnID: Int64?, runID: String, parentRunID: String?,
        provider: String, model: String, usage: TokenUsage, cost: Int64?, status: String, scopes: [String]
    ) {
        self.time = time
        self.sessionID = sessionID
        self.session = session
        self.turnID = turnID
        self.runID = runID
        self.parentRunID = parentRunID
        self.provider = provider
        self.model = model
        self.usage = usage
        self.cost = cost
        self.status = status
        self.scopes = scopes
    }
}

/// Which ledger rows a query sums; nil matches all.
public struct UsageFilter: Sendable, Equatable {
    public var sessionID: Int64?
    /// A session's name as recorded: for sessions since deleted.
    public var sessionName: String?
    public var scope: String?
    public var model: String?
    /// Microseconds since the Unix epoch, inclusive.
    public var since: Int64?
    /// Microseconds since the Unix epoch, exclusive.
    public var until: Int64?

    public init(
        sessionID: Int64? = nil, sessionName: String? = nil, scope: String? = nil, model: String? = nil,
        since: Int64? = nil, until: Int64? = nil
    ) {
        self.sessionID = sessionID
        self.sessionName = sessionName
        self.scope = scope
        self.model = model
        self.since = since
        self.until = until
    }
}

/// Sums over ledger rows.
public struct UsageTotals: Sendable, Equatable {
    /// The group (a session's name, a model, a provider, a day, a scope id, a source); empty
    /// for the total.
    public var key: String
    /// A scope's name, when it has one.
    public var name: String?
    public var requests: Int64
    public var promptTokens: Int64
    public var completionTokens: Int64
    public var cachedTokens: Int64
    public var reasoningTokens: Int64
    /// Picodollars, over the calls whose cost is known.
    public var cost: Int64
    /// Calls whose model had no price: `cost` leaves them out.
    public var unpricedRequests: Int64
    /// Calls counted by llmd rather than the provider.
    public var estimatedRequests: Int64
    /// By session: the group is a deleted session's, named as it was.
    public var deleted = false
    /// By session: when the session was deleted (microseconds since the Unix epoch); nil
    /// when that was not recorded (deleted by an llmd of session schema 2 or earlier).
    public var deletedAt: Int64?

    public init(
        key: String, requests: Int64 = 0, promptTokens: Int64 = 0, completionTokens: Int64 = 0, cachedTokens: Int64 = 0,
        reasoningTokens: Int64 = 0, cost: Int64 = 0, unpricedRequests: Int64 = 0, estimatedRequests: Int64 = 0
    ) {
        self.key = key
        self.requests = requests
        self.promptTokens = promptTokens
        self.completionTokens = completionTokens
        self.cachedTokens = cachedTokens
        self.reasoningTokens = reasoningTokens
        self.cost = cost
        self.unpricedRequests = unpricedRequests
        self.estimatedRequests = estimatedRequests
    }

    public var totalTokens: Int64 { promptTokens + completionTokens }

    /// Adds `other`'s sums to these.
    mutating func add(_ other: UsageTotals) {
        requests += other.requests
        promptTokens += other.promptTokens
        completionTokens += other.completionTokens
        cachedTokens += other.cachedTokens
        reasoningTokens += other.reasoningTokens
        cost += other.cost
        unpricedRequests += other.unpricedRequests
        estimatedRequests += other.estimatedRequests
    }
}

/// A scope: calls made inside it count to it and to its ancestors.
public struct StoredScope: Sendable, Equatable {
    public var id: String
    public var name: String?
    public var parent: String?
    /// Microseconds since the Unix epoch.
    public var created: Int64
    public var ended: Int64?
}

/// A budget limit set at runtime.
public struct StoredBudget: Sendable, Equatable {
    /// `daily`, `session` or `scope`.
    public var kind: String
    /// The session's id, the scope's id, or empty for the daily budget.
    public var key: String
    public var tokens: Int64?
    /// Picodollars.
    public var cost: Int64?

    public init(kind: String, key: String, tokens: Int64?, cost: Int64?) {
        self.kind = kind
        self.key = key
        self.tokens = tokens
        self.cost = cost
    }
}

extension SessionStore {
    // MARK: Queries

    static let totalsColumns = """
        count(*), coalesce(sum(u.prompt_tokens), 0), coalesce(sum(u.completion_tokens), 0),
        coalesce(sum(u.cached_tokens), 0), coalesce(sum(u.reasoning_tokens), 0), coalesce(sum(u.cost), 0),
        count(*) - count(u.cost), coalesce(sum(u.source = 'estimated'), 0)
        """

    /// Sums the rows `filter` matches, in groups when asked, and all together.
    ///
    /// The total is the sum of the groups, added here in integers, except by scope, where
    /// a call in nested scopes is in each group and the total is summed apart, in the same
    /// read transaction.
    public func usage(_ filter: UsageFilter, by grouping: UsageGrouping? = nil) throws(StoreError) -> (
        groups: [UsageTotals], total: UsageTotals
    ) {
        let clauses: [(condition: String, value: SQLiteValue?)] = [
            ("u.session_id = ?", filter.sessionID.map(SQLiteValue.int)),
            ("u.session = ?", filter.sessionName.map(SQLiteValue.text)),
            ("u.id IN (SELECT usage_id FROM usage_scopes WHERE scope_id = ?)", filter.scope.map(SQLiteValue.text)),
            ("u.model = ?", filter.model.map(SQLiteValue.text)),
            ("u.time >= ?", filter.since.map(SQLiteValue.int)),
            ("u.time < ?", filter.until.map(SQLiteValue.int)),
        ].filter { $0.value != nil }
        let conditions = clauses.map(\.condition)
        let values = clauses.compactMap(\.value)
        let whereClause = conditions.isEmpty ? "" : "WHERE " + conditions.joined(separator: " AND ")
        let totalSQL = "SELECT \(Self.totalsColumns) FROM usage u \(whereClause)"
        return try database.transaction { () throws(StoreError) in
            guard let grouping else {
                return ([], try totals(of: totalSQL, values).first ?? UsageTotals(key: ""))
            }
            // Grouping columns are wrapped in +(…) where an index could serve the GROUP BY:
            // walking an index and fetching each row is several times slower than one scan
            // and a sort.
            let sql: String
            switch grouping {
            case .session:
                // By id, under the current name: a renamed session is one group, and a deleted
                // one is its own group, under its record, whoever has its name now. Calls
                // outside sessions group by their label. Names are looked up once per group.
                sql = """
                    SELECT coalesce(s.name, d.name, g.label, ''), d.deleted, d.id IS NOT NULL, g.* FROM (
                        SELECT \(Self.totalsColumns), u.session_id AS id, max(u.session) AS label FROM usage u \(whereClause)
                        GROUP BY +u.session_id, CASE WHEN u.session_id IS NULL THEN u.session END
                    ) g LEFT JOIN sessions s ON s.id = g.id LEFT JOIN deleted_sessions d ON d.id = g.id
                    ORDER BY 1, 3, 2 DESC
                    """
            case .model: sql = "SELECT u.model, NULL, NULL, \(Self.totalsColumns) FROM usage u \(whereClause) GROUP BY +u.model ORDER BY 1"
            case .provider:
                sql = "SELECT u.provider, NULL, NULL, \(Self.totalsColumns) FROM usage u \(whereClause) GROUP BY u.provider ORDER BY 1"
            case .source:
                sql = "SELECT u.source, NULL, NULL, \(Self.totalsColumns) FROM usage u \(whereClause) GROUP BY u.source ORDER BY 1"
            case .day:
                sql = """
                    SELECT date(min(u.time) / 1000000, 'unixepoch'), NULL, NULL, \(Self.totalsColumns) FROM usage u \(whereClause)
                    GROUP BY +u.time / 86400000000 ORDER BY 1
                    """
            case .scope:
                sql = """
                    SELECT us.scope_id, NULL, (SELECT name FROM scopes WHERE id = us.scope_id), \(Self.totalsColumns)
                    FROM usage u JOIN usage_scopes us ON us.usage_id = u.id \(whereClause)
                    GROUP BY us.scope_id ORDER BY min(u.time)
                    """
            }
            let groups = try totals(of: sql, values, grouping: grouping)
            guard grouping != .scope else {
                return (groups, try totals(of: totalSQL, values).first ?? UsageTotals(key: ""))
            }
            return (groups, groups.reduce(into: UsageTotals(key: "")) { $0.add($1) })
        }
    }

    /// Runs a totals query. A grouped one's rows start with the group's key and two more
    /// columns: by scope, the scope's name second; by session, the deletion time and
    /// whether the session was deleted.
    private func totals(
        of sql: String, _ values: [SQLiteValue], grouping: UsageGrouping? = nil
    ) throws(StoreError) -> [UsageTotals] {
        let statement = try database.prepare(sql)
        try statement.bind(values)
        return try rows(of: statement) { row in
            guard let grouping else { return Self.totals(row, key: "", from: 0) }
            var totals = Self.totals(row, key: row.text(0), from: 3)
            switch grouping {
            case .scope where !row.isNull(2): totals.name = row.text(2)
            case .session:
                totals.deleted = row.int(2) != 0
                totals.deletedAt = row.isNull(1) ? nil : row.int(1)
            default: break
            }
            return totals
        }
    }

    private static func totals(_ row: SQLiteStatement, key: String, from first: Int32) -> UsageTotals {
        UsageTotals(
            key: key, requests: row.int(first), promptTokens: row.int(first + 1), completionTokens: row.int(first + 2),
            cachedTokens: row.int(first + 3), reasoningTokens: row.int(first + 4), cost: row.int(first + 5),
            unpricedRequests: row.int(first + 6), estimatedRequests: row.int(first + 7))
    }

    // MARK: Scopes

    /// Creates scope `id`, inside `parent` when given.
    ///
    /// - Throws: `SQLITE_CONSTRAINT_PRIMARYKEY` when the id is taken,
    ///   `SQLITE_CONSTRAINT_FOREIGNKEY` for an unknown parent.
    public func beginScope(id: String, name: String?, parent: String?, now: Int64) throws(StoreError) {
        try database.prepare("INSERT INTO scopes (id, name, parent, created) VALUES (?, ?, ?, ?)").run([
            .text(id), name.map(SQLiteValue.text) ?? .null, parent.map(SQLiteValue.text) ?? .null, .int(now),
        ])
    }

    /// Marks the scope ended, once; ending it again keeps the first time.
    ///
    /// - Throws: `SQLITE_NOTFOUND` for an unknown scope.
    public func endScope(id: String, now: Int64) throws(StoreError) {
        guard try scope(id: id) != nil else { throw StoreError(code: SQLITE_NOTFOUND, message: "no scope \(id)") }
        try database.prepare("UPDATE scopes SET ended = ? WHERE id = ? AND ended IS NULL").run([.int(now), .text(id)])
    }

    public func scope(id: String) throws(StoreError) -> StoredScope? {
        let statement = try database.prepare("SELECT id, name, parent, created, ended FROM scopes WHERE id = ?")
        try statement.bind([.text(id)])
        return try rows(of: statement) {
            StoredScope(
                id: $0.text(0), name: $0.isNull(1) ? nil : $0.text(1), parent: $0.isNull(2) ? nil : $0.text(2),
                created: $0.int(3), ended: $0.isNull(4) ? nil : $0.int(4))
        }.first
    }

    // MARK: Budgets

    public func budgets() throws(StoreError) -> [StoredBudget] {
        let statement = try database.prepare("SELECT kind, key, tokens, cost FROM budgets ORDER BY kind, key")
        try statement.bind([])
        return try rows(of: statement) {
            StoredBudget(
                kind: $0.text(0), key: $0.text(1), tokens: $0.isNull(2) ? nil : $0.int(2), cost: $0.isNull(3) ? nil : $0.int(3))
        }
    }

    /// Stores a budget's limits; with neither, removes it.
    public func setBudget(_ budget: StoredBudget) throws(StoreError) {
        if budget.tokens == nil, budget.cost == nil {
            try database.prepare("DELETE FROM budgets WHERE kind = ? AND key = ?").run([.text(budget.kind), .text(budget.key)])
        } else {
            try database.prepare("INSERT OR REPLACE INTO budgets (kind, key, tokens, cost) VALUES (?, ?, ?, ?)").run([
                .text(budget.kind), .text(budget.key), budget.tokens.map(SQLiteValue.int) ?? .null,
                budget.cost.map(SQLiteValue.int) ?? .null,
            ])
        }
    }
}
