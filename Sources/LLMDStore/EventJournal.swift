/// One event as the journal stores it: the columns replay filters on, and the event's
/// encoded body (``CallbackEvent/encodeBody(into:)``), sent again as it was.
public struct JournalRecord: Sendable, Equatable {
    public var seq: UInt64
    /// Microseconds since the Unix epoch.
    public var time: Int64
    public var type: String
    public var session: String?
    public var runID: String
    public var parentRunID: String?
    public var tags: [String]
    public var body: [UInt8]

    public init(
        seq: UInt64, time: Int64, type: String, session: String?, runID: String, parentRunID: String?, tags: [String],
        body: [UInt8]
    ) {
        self.seq = seq
        self.time = time
        self.type = type
        self.session = session
        self.runID = runID
        self.parentRunID = parentRunID
        self.tags = tags
        self.body = body
    }
}

/// The durable event journal: an SQLite file in WAL mode.
///
/// One writer appends batches (group commit: one transaction for everything that arrived
/// since the last); readers replay by `seq`. The next `seq` is stored with each batch, so
/// numbering goes on after a restart even when retention emptied the table.
public final class EventJournal {
    private let database: SQLiteDatabase
    private let insert: SQLiteStatement
    private let saveNextSeq: SQLiteStatement
    private let readAfter: SQLiteStatement
    private let readAfterTime: SQLiteStatement

    static let migrations = [
        """
        CREATE TABLE events (
            seq INTEGER PRIMARY KEY,
            time INTEGER NOT NULL,
            type TEXT NOT NULL,
            session TEXT,
            run_id TEXT NOT NULL,
            parent_run_id TEXT,
            tags TEXT NOT NULL,
            body BLOB NOT NULL
        );
        CREATE INDEX events_by_time ON events(time);
        CREATE TABLE journal_state (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
        """
    ]

    /// Tags are stored each followed by the unit separator, which a tag cannot usefully
    /// contain; so no tags and one empty tag stay apart.
    static let tagSeparator: Character = "\u{1F}"

    /// Opens or creates the journal at `path`.
    public init(path: String) throws(StoreError) {
        database = try SQLiteDatabase(path: path)
        // Deleted pages go back to the file system a little at a time, after retention.
        if try database.intValue("PRAGMA user_version") == 0 {
            try database.execute("PRAGMA auto_vacuum=INCREMENTAL")
        }
        try database.migrate(Self.migrations)
        insert = try database.prepare(
            "INSERT INTO events (seq, time, type, session, run_id, parent_run_id, tags, body) VALUES (?,?,?,?,?,?,?,?)")
        saveNextSeq = try database.prepare(
            "INSERT INTO journal_state (key, value) VALUES ('next_seq', ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value")
        readAfter = try database.prepare(
            "SELECT seq, time, type, session, run_id, parent_run_id, tags, body FROM events WHERE seq > ? ORDER BY seq LIMIT ?")
        readAfterTime = try database.prepare("SELECT seq FROM events WHERE time >= ? ORDER BY time, seq LIMIT 1")
    }

    /// The `seq` the next event gets: one past the highest ever written.
    public func nextSeq() throws(StoreError) -> UInt64 {
        let stored = try database.intValue("SELECT value FROM journal_state WHERE key='next_seq'")
        let highest = try database.intValue("SELECT coalesce(max(seq), 0) FROM events")
        return UInt64(max(stored, highest + 1, 1))
    }

    /// The oldest `seq` still retained, nil when the journal is empty.
    public func oldestSeq() throws(StoreError) -> UInt64? {
        let oldest = try database.intValue("SELECT coalesce(min(seq), 0) FROM events")
        return oldest > 0 ? UInt64(oldest) : nil
    }

    /// Appends `records` in one transaction.
    public func append(_ records: [JournalRecord]) throws(StoreError) {
        guard let last = records.last else { return }
        try database.transaction { () throws(StoreError) in
            for record in records {
                try insert.run([
                    .int(Int64(record.seq)), .int(record.time), .text(record.type), record.session.map(SQLiteValue.text) ?? .null,
                    .text(record.runID), record.parentRunID.map(SQLiteValue.text) ?? .null,
                    .text(record.tags.map { $0 + String(Self.tagSeparator) }.joined()), .blob(record.body),
                ])
            }
            try saveNextSeq.run([.int(Int64(last.seq + 1))])
        }
    }

    /// Up to `limit` records with `seq` greater than `after`, in order.
    public func records(after: UInt64, limit: Int) throws(StoreError) -> [JournalRecord] {
        try readAfter.bind([.int(Int64(after)), .int(Int64(limit))])
        var records: [JournalRecord] = []
        while try readAfter.step() {
            let tags = readAfter.text(6)
            records.append(
                JournalRecord(
                    seq: UInt64(readAfter.int(0)), time: readAfter.int(1), type: readAfter.text(2),
                    session: readAfter.isNull(3) ? nil : readAfter.text(3), runID: readAfter.text(4),
                    parentRunID: readAfter.isNull(5) ? nil : readAfter.text(5),
                    tags: tags.split(separator: Self.tagSeparator, omittingEmptySubsequences: false).dropLast().map(String.init),
                    body: readAfter.bytes(7)))
        }
        return records
    }

    /// The first `seq` at or after `time` (microseconds since the epoch), nil when none.
    public func firstSeq(atOrAfter time: Int64) throws(StoreError) -> UInt64? {
        try readAfterTime.bind([.int(time)])
        return try readAfterTime.step() ? UInt64(readAfterTime.int(0)) : nil
    }

    /// Bytes the live rows take: pages in use, not free ones.
    public func sizeInBytes() throws(StoreError) -> Int64 {
        let pages = try database.intValue("PRAGMA page_count") - database.intValue("PRAGMA freelist_count")
        return pages * (try database.intValue("PRAGMA page_size"))
    }

    /// Deletes events older than `olderThan` (microseconds since the epoch), then the
    /// oldest tenth at a time while over `maximumBytes`; returns how many went.
    @discardableResult
    public func applyRetention(olderThan: Int64?, maximumBytes: Int64?) throws(StoreError) -> Int {
        var deleted = 0
        if let olderThan {
            let statement = try database.prepare("DELETE FROM events WHERE time < ?")
            try statement.run([.int(olderThan)])
            deleted += Int(sqlite3Changes())
        }
        if let maximumBytes {
            while try sizeInBytes() > maximumBytes {
                let count = try database.intValue("SELECT count(*) FROM events")
                guard count > 0 else { break }
                let statement = try database.prepare(
                    "DELETE FROM events WHERE seq IN (SELECT seq FROM events ORDER BY seq LIMIT ?)")
                try statement.run([.int(max(1, count / 10))])
                deleted += Int(sqlite3Changes())
                try database.execute("PRAGMA incremental_vacuum")
            }
        }
        if deleted > 0 { try database.execute("PRAGMA incremental_vacuum") }
        return deleted
    }

    private func sqlite3Changes() -> Int64 {
        (try? database.intValue("SELECT changes()")) ?? 0
    }
}
