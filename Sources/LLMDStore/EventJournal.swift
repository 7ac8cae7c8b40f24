import CSQLite

#if canImport(Glibc)
import Glibc
#endif

/// One event as the journal stores it: the columns replay filters on, and the event's
/// encoded body (``CallbackEvent/encodeBody(into:)``), sent again as it was.
public struct JournalRecord: Sendable, Equatable {
    /// The fields the events of a run's token group share: one object for all of them,
    /// so a record costs two references and the journal tells a record's fields match
    /// the one before by identity instead of five comparisons.
    public final class Context: Sendable, Equatable {
        public let type: String
        public let session: String?
        public let runID: String
        public let parentRunID: String?
        public let tags: [String]

        public init(type: String, session: String?, runID: String, parentRunID: String?, tags: [String]) {
            (self.type, self.session, self.runID, self.parentRunID, self.tags) = (type, session, runID, parentRunID, tags)
        }

        public static func == (lhs: Context, rhs: Context) -> Bool {
            lhs === rhs
                || (lhs.type == rhs.type && lhs.session == rhs.session && lhs.runID == rhs.runID
                    && lhs.parentRunID == rhs.parentRunID && lhs.tags == rhs.tags)
        }
    }

    public var seq: UInt64
    /// Microseconds since the Unix epoch.
    public var time: Int64
    public var context: Context
    /// The event as sent, up to its addressing; a slice, so that the events published
    /// together can share one array.
    public var body: ArraySlice<UInt8>

    public var type: String { context.type }
    public var session: String? { context.session }
    public var runID: String { context.runID }
    public var parentRunID: String? { context.parentRunID }
    public var tags: [String] { context.tags }

    public init(seq: UInt64, time: Int64, context: Context, body: ArraySlice<UInt8>) {
        (self.seq, self.time, self.context, self.body) = (seq, time, context, body)
    }

    public init(
        seq: UInt64, time: Int64, type: String, session: String?, runID: String, parentRunID: String?, tags: [String],
        body: [UInt8]
    ) {
        self.init(
            seq: seq, time: time,
            context: Context(type: type, session: session, runID: runID, parentRunID: parentRunID, tags: tags), body: body[...])
    }
}

/// The durable event journal: an SQLite file in WAL mode.
///
/// One writer appends batches (group commit: one transaction for everything that arrived
/// since the last); readers replay by `seq`. A batch is stored as pages of consecutive
/// records, one row per page, not one row per event: a row costs SQLite far more than its
/// bytes, and a fast token stream writes tens of thousands of events a second. Replay
/// filters the decoded records in memory, as it always did. The next `seq` is stored with
/// each batch, so numbering goes on after a restart even when retention emptied the file.
public final class EventJournal {
    private let database: SQLiteDatabase
    private let insertPage: SQLiteStatement
    private let saveNextSeq: SQLiteStatement
    private let readAfter: SQLiteStatement
    private let readAfterTime: SQLiteStatement
    private let conversations: JournalConversations

    /// Records per page at most, so a replay read or a retention step stays small.
    public static let pageCapacity = 1024

    /// The schema; a step is added here, never changed, when it changes.
    static let migrations = [
        """
        CREATE TABLE event_pages (
            first_seq INTEGER PRIMARY KEY,
            last_seq INTEGER NOT NULL,
            last_time INTEGER NOT NULL,
            records BLOB NOT NULL
        );
        CREATE INDEX event_pages_by_time ON event_pages(last_time);
        CREATE TABLE journal_state (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
        """
            // Chat starts' messages kept once per session (``JournalConversations``).
            + JournalConversations.schema
    ]

    /// Opens or creates the journal at `path`.
    public init(path: String) throws(StoreError) {
        // Deleted pages go back to the file system a little at a time, after retention.
        database = try SQLiteDatabase(path: path, incrementalVacuum: true)
        try database.migrate(Self.migrations)
        insertPage = try database.prepare(
            "INSERT INTO event_pages (first_seq, last_seq, last_time, records) VALUES (?,?,?,?)")
        saveNextSeq = try database.prepare(
            "INSERT INTO journal_state (key, value) VALUES ('next_seq', ?) ON CONFLICT(key) DO UPDATE SET value=excluded.value")
        readAfter = try database.prepare(
            "SELECT records FROM event_pages WHERE last_seq > ? ORDER BY first_seq LIMIT 1")
        readAfterTime = try database.prepare(
            "SELECT records FROM event_pages WHERE last_time >= ? ORDER BY first_seq LIMIT 1")
        conversations = try JournalConversations(database: database)
    }

    /// How far numbering jumps after a daemon that wrote this journal died without
    /// ``endWriting()``: its last events were numbered and sent live, then lost with their
    /// commit, and their numbers must not name other events. More than a run can leave
    /// uncommitted (the bus keeps at most 128 MiB of events waiting for the journal).
    public static let uncleanStopSkip: UInt64 = 1 << 24

    /// Marks the journal in use by its one writer; when the writer before did not end
    /// cleanly, the next `seq` skips ``uncleanStopSkip`` numbers.
    ///
    /// - Returns: whether the previous writer ended without ``endWriting()``.
    @discardableResult
    public func beginWriting() throws(StoreError) -> Bool {
        try database.transaction { () throws(StoreError) in
            let unclean = try database.intValue("SELECT value FROM journal_state WHERE key='writing'") == 1
            if unclean { try saveNextSeq.run([.int(Int64(try nextSeq() + Self.uncleanStopSkip))]) }
            try database.execute(
                "INSERT INTO journal_state (key, value) VALUES ('writing', 1) ON CONFLICT(key) DO UPDATE SET value=1")
            return unclean
        }
    }

    /// Marks a clean stop: everything published is committed.
    public func endWriting() throws(StoreError) {
        try database.execute("UPDATE journal_state SET value=0 WHERE key='writing'")
    }

    /// The `seq` the next event gets: one past the highest ever written.
    public func nextSeq() throws(StoreError) -> UInt64 {
        let stored = try database.intValue("SELECT value FROM journal_state WHERE key='next_seq'")
        let highest = try database.intValue("SELECT coalesce(max(last_seq), 0) FROM event_pages")
        return UInt64(max(stored, highest + 1, 1))
    }

    /// The oldest `seq` still retained, nil when the journal is empty.
    public func oldestSeq() throws(StoreError) -> UInt64? {
        let oldest = try database.intValue("SELECT coalesce(min(first_seq), 0) FROM event_pages")
        return oldest > 0 ? UInt64(oldest) : nil
    }

    /// Appends `records`, in `seq` order, in one transaction.
    public func append(_ records: [JournalRecord]) throws(StoreError) {
        try append(records[...])
    }

    /// Appends `records`, in `seq` order, in one transaction.
    public func append(_ records: ArraySlice<JournalRecord>) throws(StoreError) {
        guard let last = records.last else { return }
        do {
            try database.transaction { () throws(StoreError) in
                // Copied only when the batch holds a start with messages: tokens pass as they are.
                var stored = records
                for index in records.indices where JournalConversations.messageArray(of: records[index].type) != nil {
                    stored[index] = try conversations.stored(records[index])
                }
                var start = stored.startIndex
                while start < stored.endIndex {
                    let end = min(start + Self.pageCapacity, stored.endIndex)
                    try insert(stored[start..<end])
                    start = end
                }
                try saveNextSeq.run([.int(Int64(last.seq + 1))])
            }
        } catch {
            // Rolled back: the messages it added to logs are not there.
            conversations.forgetLogs()
            throw error
        }
    }

    /// Numbers up to `seq` are taken, though not all were journaled: the next start goes
    /// on from `seq`, not from the highest kept.
    public func saveNextSeq(_ seq: UInt64) throws(StoreError) {
        try saveNextSeq.run([.int(Int64(seq))])
    }

    /// Checkpoints the write-ahead log into the file and cuts it back to nothing when it
    /// has grown past `limit` bytes: it grows without bound otherwise while readers keep
    /// SQLite's own checkpoints from starting it over.
    ///
    /// - Returns: whether it was over the limit.
    @discardableResult
    public func checkpointIfLogExceeds(_ limit: Int64) throws(StoreError) -> Bool {
        var info = stat()
        guard stat(database.path + "-wal", &info) == 0, Int64(info.st_size) > limit else { return false }
        try database.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return true
    }

    private func insert(_ page: ArraySlice<JournalRecord>) throws(StoreError) {
        guard let first = page.first, let last = page.last else { return }
        try insertPage.run([
            .int(Int64(first.seq)), .int(Int64(last.seq)), .int(page.lazy.map(\.time).max() ?? last.time),
            .blob(JournalPage.encode(page)),
        ])
    }

    /// At least `limit` records with `seq` greater than `after` (all there are when fewer),
    /// in order; whole pages, so possibly more.
    public func records(after: UInt64, limit: Int) throws(StoreError) -> [JournalRecord] {
        var records: [JournalRecord] = []
        var cursor = after
        while records.count < limit {
            try readAfter.bind([.int(Int64(cursor))])
            guard try readAfter.step() else { break }
            let page = try Self.decodePage(readAfter).filter { $0.seq > cursor }
            guard let last = page.last else { break }
            for record in page { records.append(try conversations.restored(record)) }
            cursor = last.seq
        }
        return records
    }

    /// The first `seq` at or after `time` (microseconds since the epoch), nil when none.
    public func firstSeq(atOrAfter time: Int64) throws(StoreError) -> UInt64? {
        try readAfterTime.bind([.int(time)])
        guard try readAfterTime.step() else { return nil }
        return try Self.decodePage(readAfterTime).first { $0.time >= time }?.seq
    }

    /// The page in the current row of a statement selecting `records`.
    private static func decodePage(_ row: SQLiteStatement) throws(StoreError) -> [JournalRecord] {
        try JournalPage.decode(row.bytes(0))
    }

    /// Bytes the live rows take: pages in use, not free ones.
    public func sizeInBytes() throws(StoreError) -> Int64 {
        let pages = try database.intValue("PRAGMA page_count") - database.intValue("PRAGMA freelist_count")
        return pages * (try database.intValue("PRAGMA page_size"))
    }

    /// Deletes events older than `olderThan` (microseconds since the epoch), then the
    /// oldest tenth at a time while over `maximumBytes`; returns how many went. Events go
    /// a page at a time: a page goes once its newest event is past the age.
    @discardableResult
    public func applyRetention(olderThan: Int64?, maximumBytes: Int64?) throws(StoreError) -> Int {
        var deleted: Int64 = 0
        func delete(_ condition: String, _ values: [SQLiteValue]) throws(StoreError) {
            deleted += try database.intValue("SELECT coalesce(sum(last_seq - first_seq + 1), 0) FROM event_pages WHERE \(condition)", values)
            try database.prepare("DELETE FROM event_pages WHERE \(condition)").run(values)
        }
        if let olderThan {
            try delete("last_time < ?", [.int(olderThan)])
        }
        if let maximumBytes {
            while try sizeInBytes() > maximumBytes {
                let count = try database.intValue("SELECT count(*) FROM event_pages")
                guard count > 0 else { break }
                try delete(
                    "first_seq IN (SELECT first_seq FROM event_pages ORDER BY first_seq LIMIT ?)", [.int(max(1, count / 10))])
                try database.execute("PRAGMA incremental_vacuum")
            }
        }
        if deleted > 0 {
            try conversations.deleteLogs(usedOnlyBefore: UInt64(try database.intValue("SELECT coalesce(min(first_seq), ?) FROM event_pages", [.int(Int64(try nextSeq()))])))
            try database.execute("PRAGMA incremental_vacuum")
        }
        return Int(deleted)
    }
}
