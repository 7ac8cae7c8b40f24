import CSQLite

/// A failed SQLite operation, with SQLite's own message.
public struct StoreError: Error, Sendable, CustomStringConvertible {
    /// SQLite's extended result code.
    public var code: Int32
    public var message: String

    public init(code: Int32, message: String) {
        self.code = code
        self.message = message
    }

    /// The disk or the quota is full: the caller reports it and keeps serving.
    public var isDiskFull: Bool { code & 0xFF == SQLITE_FULL }

    public var description: String { message }
}

/// A value bound to a statement parameter.
public enum SQLiteValue: Sendable, Equatable {
    case null
    case int(Int64)
    case double(Double)
    case text(String)
    case blob([UInt8])
}

/// One SQLite connection.
///
/// Not thread-safe by itself: each connection has one owner (a thread, or a `Mutex`), as
/// SQLite's multi-thread mode requires. WAL lets readers run beside the one writer.
public final class SQLiteDatabase {
    let handle: OpaquePointer
    public let path: String

    /// Opens (creating it when `readOnly` is false) the database at `path`, in WAL mode.
    ///
    /// - Parameter synchronous: `NORMAL` survives a crash of the process; `FULL` also a
    ///   power loss, at one fsync per commit.
    /// - Parameter incrementalVacuum: a new file lets `PRAGMA incremental_vacuum` hand freed
    ///   pages back; this must be set before WAL mode, which writes the file's first page.
    public init(
        path: String, readOnly: Bool = false, synchronous: String = "NORMAL", incrementalVacuum: Bool = false
    ) throws(StoreError) {
        var pointer: OpaquePointer?
        let flags =
            (readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_NOMUTEX
        let status = sqlite3_open_v2(path, &pointer, flags, nil)
        guard let pointer else { throw StoreError(code: status, message: "cannot open \(path): out of memory") }
        guard status == SQLITE_OK else {
            let error = StoreError(code: status, message: "cannot open \(path): \(String(cString: sqlite3_errmsg(pointer)))")
            sqlite3_close_v2(pointer)
            throw error
        }
        handle = pointer
        self.path = path
        sqlite3_extended_result_codes(handle, 1)
        // A reader that meets a checkpoint waits instead of failing.
        sqlite3_busy_timeout(handle, 5_000)
        if !readOnly {
            if incrementalVacuum {
                try execute("PRAGMA auto_vacuum=INCREMENTAL")
            }
            try execute("PRAGMA journal_mode=WAL")
        }
        try execute("PRAGMA synchronous=\(synchronous)")
    }

    deinit {
        sqlite3_close_v2(handle)
    }

    /// Runs one or more statements that return no rows.
    public func execute(_ sql: String) throws(StoreError) {
        var message: UnsafeMutablePointer<CChar>?
        let status = sqlite3_exec(handle, sql, nil, nil, &message)
        guard status == SQLITE_OK else {
            let text = message.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(handle))
            sqlite3_free(message)
            throw StoreError(code: status, message: "\(text) (in: \(sql.prefix(80)))")
        }
    }

    public func prepare(_ sql: String) throws(StoreError) -> SQLiteStatement {
        var statement: OpaquePointer?
        let status = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard status == SQLITE_OK, let statement else { throw error(status, doing: "prepare \(sql.prefix(80))") }
        return SQLiteStatement(statement: statement, database: self)
    }

    /// Runs `body` in one transaction, committed when it returns and rolled back when it throws.
    public func transaction<Result>(_ body: () throws(StoreError) -> Result) throws(StoreError) -> Result {
        try execute("BEGIN IMMEDIATE")
        do {
            let result = try body()
            try execute("COMMIT")
            return result
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }

    /// Brings the schema up to date: applies the migrations past `PRAGMA user_version`,
    /// each in its own transaction with the version bump, so a crash never leaves half a step.
    ///
    /// - Throws: when the file's schema is newer than this build knows.
    public func migrate(_ migrations: [String]) throws(StoreError) {
        let version = try intValue("PRAGMA user_version")
        guard version <= migrations.count else {
            throw StoreError(
                code: SQLITE_MISMATCH,
                message: "\(path) has schema version \(version), newer than this llmd knows (\(migrations.count))")
        }
        for (index, sql) in migrations.enumerated().dropFirst(Int(version)) {
            try transaction { () throws(StoreError) in
                try execute(sql)
                try execute("PRAGMA user_version=\(index + 1)")
            }
        }
        // What the migrations' statements used, SQLite's caches and the C heap, is not
        // kept for the daemon's whole life.
        if version < migrations.count {
            try execute("PRAGMA shrink_memory")
            llmd_release_free_heap()
        }
    }

    /// The first column of the first row of `sql`, 0 when there is none.
    public func intValue(_ sql: String, _ values: [SQLiteValue] = []) throws(StoreError) -> Int64 {
        let statement = try prepare(sql)
        if !values.isEmpty { try statement.bind(values) }
        return try statement.step() ? statement.int(0) : 0
    }

    func error(_ status: Int32, doing what: String) -> StoreError {
        StoreError(code: status, message: "\(what): \(String(cString: sqlite3_errmsg(handle)))")
    }
}

/// A prepared statement, reused: bind, step through rows, reset.
public final class SQLiteStatement {
    private let statement: OpaquePointer
    // Keeps the connection open while the statement lives.
    private let database: SQLiteDatabase

    init(statement: OpaquePointer, database: SQLiteDatabase) {
        self.statement = statement
        self.database = database
    }

    deinit {
        sqlite3_finalize(statement)
    }

    /// Resets the statement and binds `values` to parameters 1, 2, …
    public func bind(_ values: [SQLiteValue]) throws(StoreError) {
        sqlite3_reset(statement)
        sqlite3_clear_bindings(statement)
        for (offset, value) in values.enumerated() {
            let index = Int32(offset + 1)
            let status: Int32
            switch value {
            case .null: status = sqlite3_bind_null(statement, index)
            case .int(let int): status = sqlite3_bind_int64(statement, index, int)
            case .double(let double): status = sqlite3_bind_double(statement, index, double)
            case .text(let text):
                status = text.withCString { llmd_sqlite3_bind_text(statement, index, $0, -1) }
            case .blob(let bytes):
                // An empty blob is bound as a zero-length blob, not NULL.
                status = bytes.isEmpty
                    ? sqlite3_bind_zeroblob(statement, index, 0)
                    : bytes.withUnsafeBytes { llmd_sqlite3_bind_blob(statement, index, $0.baseAddress, Int32($0.count)) }
            }
            guard status == SQLITE_OK else { throw database.error(status, doing: "bind parameter \(index)") }
        }
    }

    /// Advances to the next row; false when there are no more.
    @discardableResult
    public func step() throws(StoreError) -> Bool {
        switch sqlite3_step(statement) {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        case let status:
            sqlite3_reset(statement)
            throw database.error(status, doing: "step")
        }
    }

    /// Binds, runs to completion, and resets.
    public func run(_ values: [SQLiteValue]) throws(StoreError) {
        try bind(values)
        while try step() {}
        sqlite3_reset(statement)
    }

    public func int(_ column: Int32) -> Int64 { sqlite3_column_int64(statement, column) }

    public func double(_ column: Int32) -> Double { sqlite3_column_double(statement, column) }

    public func isNull(_ column: Int32) -> Bool { sqlite3_column_type(statement, column) == SQLITE_NULL }

    public func text(_ column: Int32) -> String {
        guard let pointer = sqlite3_column_text(statement, column) else { return "" }
        let count = Int(sqlite3_column_bytes(statement, column))
        return String(decoding: UnsafeBufferPointer(start: pointer, count: count), as: UTF8.self)
    }

    public func bytes(_ column: Int32) -> [UInt8] {
        let count = Int(sqlite3_column_bytes(statement, column))
        guard count > 0, let pointer = sqlite3_column_blob(statement, column) else { return [] }
        return Array(UnsafeRawBufferPointer(start: pointer, count: count))
    }
}
