import CSQLite

/// One conversation session as stored.
public struct StoredSession: Sendable, Equatable {
    public var id: Int64
    public var name: String
    /// Microseconds since the Unix epoch.
    public var createdAt: Int64
    /// Microseconds since the Unix epoch: the last completed or finished turn, or edit.
    public var updatedAt: Int64
    /// Microseconds since the Unix epoch: since when the session has its name, created or
    /// renamed. Events of the name from before are another session's.
    public var namedAt: Int64
    /// The session's settings, encoded by the caller; the store does not read them.
    public var settings: String
    /// The summary of the messages that left memory, as the caller last wrote it.
    public var summary: String
    /// Completed turns only: failed, cancelled and interrupted ones are not counted.
    public var turns: Int
    public var tokens: Int64

    public init(
        id: Int64, name: String, createdAt: Int64, updatedAt: Int64, namedAt: Int64? = nil, settings: String, summary: String,
        turns: Int, tokens: Int64
    ) {
        self.id = id
        self.name = name
        self.createdAt = createdAt
        self.updatedAt = updatedAt
        self.namedAt = namedAt ?? createdAt
        self.settings = settings
        self.summary = summary
        self.turns = turns
        self.tokens = tokens
    }
}

/// What is kept of a deleted session: enough to name its calls in the ledger.
public struct DeletedSession: Sendable, Equatable {
    public var id: Int64
    public var name: String
    /// Microseconds since the Unix epoch; for a session deleted before deletions were
    /// recorded, its first call's time, or nil.
    public var createdAt: Int64?
    /// Microseconds since the Unix epoch; nil for a session deleted before deletions were
    /// recorded.
    public var deletedAt: Int64?

    public init(id: Int64, name: String, createdAt: Int64?, deletedAt: Int64?) {
        self.id = id
        self.name = name
        self.createdAt = createdAt
        self.deletedAt = deletedAt
    }
}

/// Where a turn stands.
public enum TurnStatus: String, Sendable, Equatable {
    case running
    case completed
    case failed
    case cancelled
    /// Still running when the daemon stopped without finishing it: marked at the next open.
    case interrupted
}

/// One turn of a session: an input, and what became of it.
public struct StoredTurn: Sendable, Equatable {
    public var id: Int64
    public var sessionID: Int64
    /// 1, 2, … within the session, counting every turn whatever its status.
    public var number: Int
    public var runID: String
    public var status: TurnStatus
    /// Microseconds since the Unix epoch.
    public var startedAt: Int64
    public var endedAt: Int64?
    public var input: String
    /// The answer; for a failed or cancelled turn, what had arrived of it.
    public var output: String?
    public var error: String?
    /// The turn's outcome, encoded by the caller.
    public var outcome: String?

    public init(
        id: Int64, sessionID: Int64, number: Int, runID: String, status: TurnStatus, startedAt: Int64, endedAt: Int64?,
        input: String, output: String?, error: String?, outcome: String?
    ) {
        self.id = id
        self.sessionID = sessionID
        self.number = number
        self.runID = runID
        self.status = status
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.input = input
        self.output = output
        self.error = error
        self.outcome = outcome
    }
}

/// One message of a session, with the turn that added it.
public struct StoredMessage: Sendable, Equatable {
    public var id: Int64
    public var turnID: Int64
    public var role: String
    public var content: String
    /// False once the message left the session's memory: kept for export, no longer sent.
    public var inMemory: Bool

    public init(id: Int64, turnID: Int64, role: String, content: String, inMemory: Bool) {
        self.id = id
        self.turnID = turnID
        self.role = role
        self.content = content
        self.inMemory = inMemory
    }
}

/// What a session remembers: the summary of what left memory, and the messages still in it.
public struct StoredMemory: Sendable, Equatable {
    public var summary: String
    /// Oldest first.
    public var messages: [StoredMessage]

    public init(summary: String, messages: [StoredMessage]) {
        self.summary = summary
        self.messages = messages
    }
}

/// A message a completed turn adds.
public struct NewMessage: Sendable, Equatable {
    public var role: String
    public var content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// Everything a completed turn changes, written in one transaction.
public struct TurnCompletion: Sendable, Equatable {
    public var turnID: Int64
    public var output: String
    /// The turn's outcome, encoded by the caller.
    public var outcome: String
    /// Added to the session's total.
    public var tokens: Int64
    /// Added in order, in memory.
    public var messages: [NewMessage]
    /// How many of the session's newest in-memory messages, the new ones included, stay in
    /// memory; the older ones leave it. 0 empties memory; negative counts as 0.
    public var keepInMemory: Int
    /// The session's new summary; nil keeps the old one.
    public var summary: String?
    /// The turn's LLM calls, for the usage ledger.
    public var usage: [UsageEntry]
    /// Microseconds since the Unix epoch.
    public var now: Int64

    public init(
        turnID: Int64, output: String, outcome: String, tokens: Int64, messages: [NewMessage], keepInMemory: Int,
        summary: String? = nil, usage: [UsageEntry] = [], now: Int64
    ) {
        self.usage = usage
        self.turnID = turnID
        self.output = output
        self.outcome = outcome
        self.tokens = tokens
        self.messages = messages
        self.keepInMemory = keepInMemory
        self.summary = summary
        self.now = now
    }
}

/// Conversation sessions, their turns and messages: an SQLite file in WAL mode.
///
/// Not thread-safe by itself: one owner at a time (the daemon's `Mutex`). Settings and
/// outcomes are opaque text, so the store knows nothing of JSON. A turn is committed as
/// `running` when it begins and rewritten once when it ends, so a daemon killed in between
/// leaves it on disk to be marked `interrupted` at the next open.
public final class SessionStore {
    let database: SQLiteDatabase
    private let selectSessionByID: SQLiteStatement
    private let selectSessionByName: SQLiteStatement
    private let selectMemory: SQLiteStatement
    private let insertTurn: SQLiteStatement
    private let selectTurnState: SQLiteStatement
    private let insertMessage: SQLiteStatement
    private let dropFromMemory: SQLiteStatement
    private let markCompleted: SQLiteStatement
    private let markFinished: SQLiteStatement
    private let countCompletion: SQLiteStatement
    private let touchSession: SQLiteStatement
    private let insertUsage: SQLiteStatement
    private let insertUsageScope: SQLiteStatement

    /// How many turns were still `running` when this store opened, now `interrupted`.
    public let interruptedAtOpen: Int

    // UNIQUE(session_id, number) already indexes turns by session and number.
    /// The schema; a step is added here, never changed, when it changes.
    static let migrations = [
        """
        -- Session ids are never reused (AUTOINCREMENT): the ledger, budgets and events name
        -- sessions by id, and a deleted session leaves a record, so what it cost stays its own.
        CREATE TABLE sessions (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            name TEXT NOT NULL UNIQUE,
            created INTEGER NOT NULL,
            updated INTEGER NOT NULL,
            settings TEXT NOT NULL,
            summary TEXT NOT NULL DEFAULT '',
            turns INTEGER NOT NULL DEFAULT 0,
            tokens INTEGER NOT NULL DEFAULT 0,
            named INTEGER NOT NULL
        );
        CREATE TABLE deleted_sessions (
            id INTEGER PRIMARY KEY,
            name TEXT NOT NULL,
            created INTEGER,
            deleted INTEGER
        );
        CREATE INDEX deleted_sessions_by_name ON deleted_sessions(name);
        CREATE TABLE turns (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            number INTEGER NOT NULL,
            run_id TEXT NOT NULL,
            status TEXT NOT NULL,
            started INTEGER NOT NULL,
            ended INTEGER,
            input TEXT NOT NULL,
            output TEXT,
            error TEXT,
            outcome TEXT,
            UNIQUE (session_id, number)
        );
        CREATE TABLE messages (
            id INTEGER PRIMARY KEY,
            session_id INTEGER NOT NULL REFERENCES sessions(id) ON DELETE CASCADE,
            turn_id INTEGER NOT NULL REFERENCES turns(id) ON DELETE CASCADE,
            role TEXT NOT NULL,
            content TEXT NOT NULL,
            in_memory INTEGER NOT NULL DEFAULT 1
        );
        CREATE INDEX messages_in_memory ON messages(session_id, in_memory, id);
        CREATE INDEX messages_by_turn ON messages(turn_id);
        -- The usage ledger has no foreign key to sessions: what a deleted session cost stays.
        CREATE TABLE usage (
            id INTEGER PRIMARY KEY,
            time INTEGER NOT NULL,
            session_id INTEGER,
            session TEXT,
            turn_id INTEGER,
            run_id TEXT NOT NULL,
            parent_run_id TEXT,
            provider TEXT NOT NULL,
            model TEXT NOT NULL,
            prompt_tokens INTEGER NOT NULL,
            completion_tokens INTEGER NOT NULL,
            cached_tokens INTEGER NOT NULL,
            reasoning_tokens INTEGER NOT NULL,
            source TEXT NOT NULL,
            exact INTEGER NOT NULL,
            cost INTEGER,
            status TEXT NOT NULL
        );
        CREATE INDEX usage_by_time ON usage(time);
        CREATE INDEX usage_by_session ON usage(session_id, time);
        CREATE TABLE scopes (
            id TEXT PRIMARY KEY,
            name TEXT,
            parent TEXT REFERENCES scopes(id),
            created INTEGER NOT NULL,
            ended INTEGER
        );
        CREATE TABLE usage_scopes (
            scope_id TEXT NOT NULL,
            usage_id INTEGER NOT NULL REFERENCES usage(id) ON DELETE CASCADE,
            PRIMARY KEY (scope_id, usage_id)
        ) WITHOUT ROWID;
        CREATE TABLE budgets (
            kind TEXT NOT NULL,
            key TEXT NOT NULL,
            tokens INTEGER,
            cost INTEGER,
            PRIMARY KEY (kind, key)
        ) WITHOUT ROWID;
        """,
        """
        -- Keys of the HTTP API's TCP listener, kept as their SHA-256: a key is shown once.
        CREATE TABLE api_keys (
            name TEXT PRIMARY KEY,
            digest TEXT NOT NULL UNIQUE,
            scope TEXT,
            created INTEGER NOT NULL,
            revoked INTEGER
        ) WITHOUT ROWID;
        """,
    ]

    static let sessionColumns = "id, name, created, updated, settings, summary, turns, tokens, named"
    static let turnColumns = "id, session_id, number, run_id, status, started, ended, input, output, error, outcome"
    static let messageColumns = "id, turn_id, role, content, in_memory"

    /// Opens or creates the store at `path`, and marks the turns a killed daemon left
    /// `running` as `interrupted`.
    ///
    /// Only one store may be open on a file: a second would interrupt the first one's turns.
    ///
    /// - Parameter synchronous: `FULL` by default: a completed turn survives a power loss.
    public init(path: String, synchronous: String = "FULL") throws(StoreError) {
        database = try SQLiteDatabase(path: path, synchronous: synchronous)
        // Off (SQLite's default) while migrating, as SQLite's way of rebuilding a table asks.
        try database.migrate(Self.migrations)
        // Per connection, and a no-op inside a transaction: so here, before any other.
        try database.execute("PRAGMA foreign_keys=ON")

        selectSessionByID = try database.prepare("SELECT \(Self.sessionColumns) FROM sessions WHERE id = ?")
        selectSessionByName = try database.prepare("SELECT \(Self.sessionColumns) FROM sessions WHERE name = ?")
        selectMemory = try database.prepare(
            "SELECT \(Self.messageColumns) FROM messages WHERE session_id = ? AND in_memory = 1 ORDER BY id")
        insertTurn = try database.prepare(
            """
            INSERT INTO turns (session_id, number, run_id, status, started, input)
            VALUES (?1, (SELECT coalesce(max(number), 0) + 1 FROM turns WHERE session_id = ?1), ?2, 'running', ?3, ?4)
            RETURNING \(Self.turnColumns)
            """)
        selectTurnState = try database.prepare("SELECT session_id, status FROM turns WHERE id = ?")
        insertMessage = try database.prepare(
            "INSERT INTO messages (session_id, turn_id, role, content, in_memory) VALUES (?, ?, ?, ?, 1)")
        dropFromMemory = try database.prepare(
            """
            UPDATE messages SET in_memory = 0
            WHERE session_id = ?1 AND in_memory = 1 AND id NOT IN (
                SELECT id FROM messages WHERE session_id = ?1 AND in_memory = 1 ORDER BY id DESC LIMIT ?2)
            """)
        markCompleted = try database.prepare(
            """
            UPDATE turns SET status = 'completed', ended = ?, output = ?, outcome = ?
            WHERE id = ? AND status = 'running'
            """)
        markFinished = try database.prepare(
            "UPDATE turns SET status = ?, ended = ?, output = ?, error = ? WHERE id = ? AND status = 'running'")
        countCompletion = try database.prepare(
            """
            UPDATE sessions SET turns = turns + 1, tokens = tokens + ?, updated = ?, summary = coalesce(?, summary)
            WHERE id = ?
            """)
        touchSession = try database.prepare("UPDATE sessions SET updated = ? WHERE id = ?")
        insertUsage = try database.prepare(
            """
            INSERT INTO usage (time, session_id, session, turn_id, run_id, parent_run_id, provider, model, prompt_tokens,
                completion_tokens, cached_tokens, reasoning_tokens, source, exact, cost, status)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id
            """)
        insertUsageScope = try database.prepare("INSERT OR IGNORE INTO usage_scopes (scope_id, usage_id) VALUES (?, ?)")

        // When such a turn ended is unknown: its start is the last time known alive.
        let database = database
        interruptedAtOpen = try database.transaction { () throws(StoreError) in
            try database.execute("UPDATE turns SET status = 'interrupted', ended = started WHERE status = 'running'")
            return Int(sqlite3_changes64(database.handle))
        }
    }

    // MARK: Sessions

    /// Creates the session `name`.
    ///
    /// - Throws: SQLite's `SQLITE_CONSTRAINT_UNIQUE` when the name is taken.
    public func create(name: String, settings: String, now: Int64) throws(StoreError) -> StoredSession {
        let statement = try database.prepare(
            "INSERT INTO sessions (name, created, updated, named, settings) VALUES (?1, ?2, ?2, ?2, ?3) RETURNING \(Self.sessionColumns)")
        try statement.bind([.text(name), .int(now), .text(settings)])
        guard let session = try rows(of: statement, Self.session).first else {
            throw StoreError(code: SQLITE_INTERNAL, message: "session \(name) was not created")
        }
        return session
    }

    public func session(named name: String) throws(StoreError) -> StoredSession? {
        try selectSessionByName.bind([.text(name)])
        return try rows(of: selectSessionByName, Self.session).first
    }

    public func session(id: Int64) throws(StoreError) -> StoredSession? {
        try selectSessionByID.bind([.int(id)])
        return try rows(of: selectSessionByID, Self.session).first
    }

    /// Every session, the most recently updated first.
    public func list() throws(StoreError) -> [StoredSession] {
        let statement = try database.prepare("SELECT \(Self.sessionColumns) FROM sessions ORDER BY updated DESC, name")
        try statement.bind([])
        return try rows(of: statement, Self.session)
    }

    /// Every session's name and since when it has had it (``StoredSession/namedAt``):
    /// what the daemon needs of all of them at start, without their settings and summaries.
    public func sessionNames() throws(StoreError) -> [(name: String, since: Int64)] {
        let statement = try database.prepare("SELECT name, named FROM sessions")
        try statement.bind([])
        return try rows(of: statement) { ($0.text(0), $0.int(1)) }
    }

    public func sessionCount() throws(StoreError) -> Int {
        Int(try database.intValue("SELECT count(*) FROM sessions"))
    }

    /// - Throws: `SQLITE_NOTFOUND` when there is no such session.
    public func updateSettings(sessionID: Int64, settings: String, now: Int64) throws(StoreError) {
        let statement = try database.prepare("UPDATE sessions SET settings = ?, updated = ? WHERE id = ?")
        try statement.run([.text(settings), .int(now), .int(sessionID)])
        try expectChanged(what: "session \(sessionID)")
    }

    /// - Throws: SQLite's `SQLITE_CONSTRAINT_UNIQUE` when `name` is taken; `SQLITE_NOTFOUND`
    ///   when there is no such session.
    public func rename(sessionID: Int64, to name: String, now: Int64) throws(StoreError) {
        let statement = try database.prepare("UPDATE sessions SET name = ?1, updated = ?2, named = ?2 WHERE id = ?3")
        try statement.run([.text(name), .int(now), .int(sessionID)])
        try expectChanged(what: "session \(sessionID)")
    }

    /// Deletes the session with its turns and messages (foreign keys cascade) and its
    /// budget, leaving a record of its id, name and times: its usage stays in the ledger,
    /// under that record, and no later session is given its id.
    ///
    /// - Throws: `SQLITE_NOTFOUND` when there is no such session.
    public func delete(sessionID: Int64, now: Int64) throws(StoreError) {
        try database.transaction { () throws(StoreError) in
            try database.prepare(
                "INSERT INTO deleted_sessions (id, name, created, deleted) SELECT id, name, created, ? FROM sessions WHERE id = ?"
            ).run([.int(now), .int(sessionID)])
            try expectChanged(what: "session \(sessionID)")
            try database.prepare("DELETE FROM sessions WHERE id = ?").run([.int(sessionID)])
            try database.prepare("DELETE FROM budgets WHERE kind = 'session' AND key = ?").run([.text(String(sessionID))])
        }
    }

    /// Deleted sessions of that name, the most recently deleted first (those whose deletion
    /// time is unknown, from before it was recorded, last).
    public func deletedSessions(named name: String) throws(StoreError) -> [DeletedSession] {
        let statement = try database.prepare(
            "SELECT id, name, created, deleted FROM deleted_sessions WHERE name = ? ORDER BY deleted IS NULL, deleted DESC, id DESC")
        try statement.bind([.text(name)])
        return try rows(of: statement) {
            DeletedSession(
                id: $0.int(0), name: $0.text(1), createdAt: $0.isNull(2) ? nil : $0.int(2),
                deletedAt: $0.isNull(3) ? nil : $0.int(3))
        }
    }

    /// The summary and the messages in memory, oldest first: what the next turn sends.
    /// Empty for an unknown session.
    public func memory(sessionID: Int64) throws(StoreError) -> StoredMemory {
        let summary = try session(id: sessionID)?.summary ?? ""
        try selectMemory.bind([.int(sessionID)])
        return StoredMemory(summary: summary, messages: try rows(of: selectMemory, Self.message))
    }

    // MARK: Turns

    /// Starts turn number last + 1 (failed turns count too), `running`, committed at once so
    /// that a crash before it ends leaves it to be marked `interrupted`.
    ///
    /// - Throws: `SQLITE_CONSTRAINT_FOREIGNKEY` when there is no such session.
    public func beginTurn(sessionID: Int64, runID: String, input: String, now: Int64) throws(StoreError) -> StoredTurn {
        try database.transaction { () throws(StoreError) in
            try insertTurn.bind([.int(sessionID), .text(runID), .int(now), .text(input)])
            guard let turn = try rows(of: insertTurn, Self.turn).first else {
                throw StoreError(code: SQLITE_INTERNAL, message: "turn of session \(sessionID) was not created")
            }
            return turn
        }
    }

    /// Completes a running turn in one transaction: adds its messages, moves all but the
    /// newest `keepInMemory` in-memory messages out of memory, stores the summary, the
    /// output and the outcome, and counts the turn and its tokens.
    ///
    /// - Throws: `SQLITE_NOTFOUND` for an unknown turn, `SQLITE_MISUSE` for one not
    ///   `running`; nothing is changed then.
    /// - Returns: the ledger ids of `completion.usage`, in order.
    @discardableResult
    public func completeTurn(_ completion: TurnCompletion) throws(StoreError) -> [Int64] {
        try database.transaction { () throws(StoreError) in
            let sessionID = try runningTurnSession(completion.turnID)
            for message in completion.messages {
                try insertMessage.run([
                    .int(sessionID), .int(completion.turnID), .text(message.role), .text(message.content),
                ])
            }
            // Memory is a suffix of the in-memory messages: keep the newest, drop the rest.
            try dropFromMemory.run([.int(sessionID), .int(Int64(max(0, completion.keepInMemory)))])
            try markCompleted.run([
                .int(completion.now), .text(completion.output), .text(completion.outcome), .int(completion.turnID),
            ])
            try countCompletion.run([
                .int(completion.tokens), .int(completion.now), completion.summary.map(SQLiteValue.text) ?? .null,
                .int(sessionID),
            ])
            return try insert(completion.usage)
        }
    }

    /// Ends a running turn that did not complete; memory and counters stay as they were.
    ///
    /// - Parameters:
    ///   - status: `failed`, `cancelled` or `interrupted`.
    ///   - output: what had arrived of the answer, if anything.
    ///   - usage: the calls that were billed all the same (a cut stream's received tokens).
    /// - Returns: the ledger ids of `usage`, in order.
    /// - Throws: `SQLITE_MISUSE` for another status or a turn not `running`,
    ///   `SQLITE_NOTFOUND` for an unknown turn; nothing is changed then.
    @discardableResult
    public func finishTurn(
        turnID: Int64, status: TurnStatus, output: String?, error: String?, usage: [UsageEntry] = [], now: Int64
    ) throws(StoreError) -> [Int64] {
        guard status != .running, status != .completed else {
            throw StoreError(code: SQLITE_MISUSE, message: "a turn cannot be finished as \(status.rawValue)")
        }
        return try database.transaction { () throws(StoreError) in
            let sessionID = try runningTurnSession(turnID)
            try markFinished.run([
                .text(status.rawValue), .int(now), output.map(SQLiteValue.text) ?? .null,
                error.map(SQLiteValue.text) ?? .null, .int(turnID),
            ])
            try touchSession.run([.int(now), .int(sessionID)])
            return try insert(usage)
        }
    }

    // MARK: Usage

    /// Records calls made outside any turn (`complete`), in one transaction.
    ///
    /// - Returns: their ledger ids, in order.
    public func record(_ usage: [UsageEntry]) throws(StoreError) -> [Int64] {
        try database.transaction { () throws(StoreError) in try insert(usage) }
    }

    /// Inserts ledger rows and their scopes; the caller holds the transaction.
    private func insert(_ usage: [UsageEntry]) throws(StoreError) -> [Int64] {
        var ids: [Int64] = []
        for entry in usage {
            try insertUsage.bind([
                .int(entry.time), entry.sessionID.map(SQLiteValue.int) ?? .null, entry.session.map(SQLiteValue.text) ?? .null,
                entry.turnID.map(SQLiteValue.int) ?? .null, .text(entry.runID),
                entry.parentRunID.map(SQLiteValue.text) ?? .null, .text(entry.provider), .text(entry.model),
                .int(Int64(entry.usage.promptTokens)), .int(Int64(entry.usage.completionTokens)),
                .int(Int64(entry.usage.cachedPromptTokens)), .int(Int64(entry.usage.reasoningTokens)),
                .text(entry.usage.source.rawValue), .int(entry.usage.isExact ? 1 : 0),
                entry.cost.map(SQLiteValue.int) ?? .null, .text(entry.status),
            ])
            guard let id = try rows(of: insertUsage, { $0.int(0) }).first else {
                throw StoreError(code: SQLITE_INTERNAL, message: "the usage of run \(entry.runID) was not recorded")
            }
            for scope in entry.scopes {
                try insertUsageScope.run([.text(scope), .int(id)])
            }
            ids.append(id)
        }
        return ids
    }

    /// Every turn of the session, by number.
    public func turns(sessionID: Int64) throws(StoreError) -> [StoredTurn] {
        let statement = try database.prepare(
            "SELECT \(Self.turnColumns) FROM turns WHERE session_id = ? ORDER BY number")
        try statement.bind([.int(sessionID)])
        return try rows(of: statement, Self.turn)
    }

    /// Every message of the session, in memory or not, oldest first: for export.
    public func messages(sessionID: Int64) throws(StoreError) -> [StoredMessage] {
        let statement = try database.prepare(
            "SELECT \(Self.messageColumns) FROM messages WHERE session_id = ? ORDER BY id")
        try statement.bind([.int(sessionID)])
        return try rows(of: statement, Self.message)
    }

    // MARK: Helpers

    /// The session of turn `turnID`, which must be `running`.
    private func runningTurnSession(_ turnID: Int64) throws(StoreError) -> Int64 {
        try selectTurnState.bind([.int(turnID)])
        let state = try rows(of: selectTurnState) { ($0.int(0), $0.text(1)) }.first
        guard let (sessionID, status) = state else {
            throw StoreError(code: SQLITE_NOTFOUND, message: "no turn \(turnID)")
        }
        guard status == TurnStatus.running.rawValue else {
            throw StoreError(code: SQLITE_MISUSE, message: "turn \(turnID) is \(status), not running")
        }
        return sessionID
    }

    func expectChanged(what: String) throws(StoreError) {
        guard sqlite3_changes64(database.handle) > 0 else {
            throw StoreError(code: SQLITE_NOTFOUND, message: "no \(what)")
        }
    }

    /// Steps a bound statement through all its rows. To the end, even for one row: a
    /// statement left on a row would hold its read transaction open.
    func rows<Row>(of statement: SQLiteStatement, _ row: (SQLiteStatement) -> Row) throws(StoreError) -> [Row] {
        var rows: [Row] = []
        while try statement.step() {
            rows.append(row(statement))
        }
        return rows
    }

    private static func session(_ row: SQLiteStatement) -> StoredSession {
        StoredSession(
            id: row.int(0), name: row.text(1), createdAt: row.int(2), updatedAt: row.int(3), namedAt: row.int(8), settings: row.text(4),
            summary: row.text(5), turns: Int(row.int(6)), tokens: row.int(7))
    }

    private static func turn(_ row: SQLiteStatement) -> StoredTurn {
        StoredTurn(
            id: row.int(0), sessionID: row.int(1), number: Int(row.int(2)), runID: row.text(3),
            // The schema version check keeps out files from a newer llmd, so any other
            // status is damage: shown as the turn that never finished.
            status: TurnStatus(rawValue: row.text(4)) ?? .interrupted, startedAt: row.int(5),
            endedAt: row.isNull(6) ? nil : row.int(6), input: row.text(7), output: row.isNull(8) ? nil : row.text(8),
            error: row.isNull(9) ? nil : row.text(9), outcome: row.isNull(10) ? nil : row.text(10))
    }

    private static func message(_ row: SQLiteStatement) -> StoredMessage {
        StoredMessage(
            id: row.int(0), turnID: row.int(1), role: row.text(2), content: row.text(3), inMemory: row.int(4) != 0)
    }
}
