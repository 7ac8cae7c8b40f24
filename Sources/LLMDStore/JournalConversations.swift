import CSQLite

/// The messages of chat-model starts, kept once per conversation instead of once per turn.
///
/// A `chat_model_start` carries every message the model is sent, as LangChain's does: with
/// a memory that keeps the conversation, each turn's start holds all the turns before it
/// again, and a journal keeping them whole grows with the square of a session's length.
/// Here each session has a log of the messages its starts sent, in order of first sending;
/// a start's body keeps, instead of its messages, ranges of its session's log, and replay
/// puts the same bytes back. With a memory that keeps the conversation, a turn adds its
/// two new messages to the log and one range to its start: the journal grows by the same
/// few hundred bytes at turn 1,000 as at turn 10.
///
/// A log is deleted with the last page that refers to it, by retention.
final class JournalConversations {
    /// A message's identity in a log: two independent 64-bit hashes of its bytes.
    struct Digest: Hashable {
        var first: Int
        var second: UInt64

        init(_ bytes: ArraySlice<UInt8>) {
            var hasher = Hasher()
            hasher.combine(bytes.count)
            bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
            first = hasher.finalize()
            // FNV-1a.
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in bytes { hash = (hash ^ UInt64(byte)) &* 0x100_0000_01b3 }
            second = hash
        }
    }

    /// What the writer knows of a session's log.
    private struct Log {
        var id: Int64
        var digests: [Digest] = []
        var positions: [Digest: [Int]] = [:]

        mutating func append(_ digest: Digest) {
            positions[digest, default: []].append(digests.count)
            digests.append(digest)
        }
    }

    /// How many sessions' logs the writer keeps in memory; others are read back when used.
    static let cachedLogs = 64
    /// Where events carry a conversation's messages: a chat start's, and a turn's history
    /// among its chain's inputs, as LangChain's `ConversationChain` reports it.
    /// Nil for every other type, at the cost of two comparisons: the journal asks it of
    /// every token (a dictionary's hashing cost a token 7% more instructions).
    static func messageArray(of type: String) -> [String]? {
        switch type {
        case "chat_model_start": ["data", "messages"]
        case "chain_start": ["data", "inputs", "history"]
        default: nil
        }
    }
    /// What marks a start's messages as kept in the log: `{"$journal":[log,from,to,…]}`.
    private static let markerHead = Array(#"{"$journal":["#.utf8)

    private let database: SQLiteDatabase
    private let insertMessage: SQLiteStatement
    private let touchLog: SQLiteStatement
    private let readMessages: SQLiteStatement
    private var logs: [String: Log] = [:]
    /// Sessions by last use, the most recent last.
    private var recency: [String] = []

    /// - Parameter database: the journal, its schema up to date.
    init(database: SQLiteDatabase) throws(StoreError) {
        self.database = database
        insertMessage = try database.prepare(
            "INSERT INTO conversation_messages (conversation, position, message) VALUES (?, ?, ?)")
        touchLog = try database.prepare("UPDATE conversations SET last_seq = ? WHERE id = ?")
        readMessages = try database.prepare(
            "SELECT message FROM conversation_messages WHERE conversation = ? AND position >= ? AND position < ? ORDER BY position")
    }

    static let schema = """
        CREATE TABLE conversations (
            id INTEGER PRIMARY KEY,
            session TEXT NOT NULL UNIQUE,
            last_seq INTEGER NOT NULL
        );
        CREATE TABLE conversation_messages (
            conversation INTEGER NOT NULL,
            position INTEGER NOT NULL,
            message BLOB NOT NULL,
            PRIMARY KEY (conversation, position)
        ) WITHOUT ROWID;
        """

    // MARK: Writing

    /// `record` as the journal stores it: a session's event that carries messages
    /// (``messageArray(of:)``), with them as ranges of the session's log, the log gaining those
    /// it lacked; any other as it is. Within the caller's transaction.
    func stored(_ record: JournalRecord) throws(StoreError) -> JournalRecord {
        guard let path = Self.messageArray(of: record.type), let session = record.session,
            let array = JSONBytes.valueRange(of: path, in: record.body),
            let elements = JSONBytes.elements(ofArrayAt: array, in: record.body), elements.count > 1
        else { return record }
        var log = try self.log(of: session)
        defer { remember(log, of: session) }
        var ranges: [(from: Int, to: Int)] = []
        for (index, element) in elements.enumerated() {
            let digest = Digest(record.body[element])
            if let last = ranges.last, last.to < log.digests.count, log.digests[last.to] == digest {
                ranges[ranges.count - 1].to += 1
                continue
            }
            let position: Int
            // Past the end of the log, the conversation goes on: its next message is logged
            // next, even when its words were said before ("Thank you."), so that the log
            // keeps the conversation's order and one range covers it.
            if ranges.last?.to != log.digests.count, let candidates = log.positions[digest] {
                // Where the next message follows too, if anywhere; else the latest.
                let next = index + 1 < elements.count ? Digest(record.body[elements[index + 1]]) : nil
                position = candidates.last { $0 + 1 < log.digests.count && log.digests[$0 + 1] == next } ?? candidates.last!
            } else {
                position = log.digests.count
                try insertMessage.run([.int(log.id), .int(Int64(position)), .blob(Array(record.body[element]))])
                log.append(digest)
            }
            if let last = ranges.last, last.to == position {
                ranges[ranges.count - 1].to += 1
            } else {
                ranges.append((position, position + 1))
            }
        }
        try touchLog.run([.int(Int64(record.seq)), .int(log.id)])
        var marker = Self.markerHead
        marker += Array(String(log.id).utf8)
        for range in ranges { marker += Array(",\(range.from),\(range.to)".utf8) }
        marker += Array("]}".utf8)
        guard marker.count < array.count else { return record }
        var body = Array(record.body[..<array.lowerBound])
        body += marker
        body += record.body[array.upperBound...]
        return JournalRecord(seq: record.seq, time: record.time, context: record.context, body: body[...])
    }

    /// Forgets what the writer knows: after a transaction that failed, the logs may hold
    /// less than it thought; they are read back when next used.
    func forgetLogs() {
        logs = [:]
        recency = []
    }

    private func log(of session: String) throws(StoreError) -> Log {
        if let known = logs[session] { return known }
        let find = try database.prepare("SELECT id FROM conversations WHERE session = ?")
        try find.bind([.text(session)])
        var log: Log
        if try find.step() {
            log = Log(id: find.int(0))
            while try find.step() {}
            let messages = try database.prepare(
                "SELECT message FROM conversation_messages WHERE conversation = ? ORDER BY position")
            try messages.bind([.int(log.id)])
            while try messages.step() { log.append(Digest(messages.bytes(0)[...])) }
        } else {
            let insert = try database.prepare("INSERT INTO conversations (session, last_seq) VALUES (?, 0) RETURNING id")
            try insert.bind([.text(session)])
            guard try insert.step() else { throw StoreError(code: SQLITE_INTERNAL, message: "no conversation for \(session)") }
            log = Log(id: insert.int(0))
            while try insert.step() {}
        }
        return log
    }

    private func remember(_ log: Log, of session: String) {
        logs[session] = log
        recency.removeAll { $0 == session }
        recency.append(session)
        if recency.count > Self.cachedLogs { logs[recency.removeFirst()] = nil }
    }

    // MARK: Reading

    /// `record` as it was published: its messages read back from its session's log, the
    /// very bytes it had.
    func restored(_ record: JournalRecord) throws(StoreError) -> JournalRecord {
        guard let path = Self.messageArray(of: record.type), let range = JSONBytes.valueRange(of: path, in: record.body),
            record.body[range].starts(with: Self.markerHead)
        else { return record }
        let numbers = record.body[(range.lowerBound + Self.markerHead.count)..<(range.upperBound - 2)]
            .split(separator: UInt8(ascii: ",")).map { Int64(String(decoding: $0, as: UTF8.self)) ?? -1 }
        guard numbers.count >= 3, numbers.count % 2 == 1 else {
            throw StoreError(code: SQLITE_CORRUPT, message: "event \(record.seq): a malformed reference to its messages")
        }
        let read = readMessages
        var messages: [UInt8] = [UInt8(ascii: "[")]
        var count: Int64 = 0
        var expected: Int64 = 0
        for pair in stride(from: 1, to: numbers.count, by: 2) {
            expected += numbers[pair + 1] - numbers[pair]
            try read.bind([.int(numbers[0]), .int(numbers[pair]), .int(numbers[pair + 1])])
            while try read.step() {
                if count > 0 { messages.append(UInt8(ascii: ",")) }
                messages += read.bytes(0)
                count += 1
            }
        }
        guard count == expected else {
            throw StoreError(code: SQLITE_CORRUPT, message: "event \(record.seq): \(expected - count) of its messages are missing")
        }
        messages.append(UInt8(ascii: "]"))
        var body = Array(record.body[..<range.lowerBound])
        body += messages
        body += record.body[range.upperBound...]
        return JournalRecord(seq: record.seq, time: record.time, context: record.context, body: body[...])
    }

    // MARK: Retention

    /// Deletes the logs no page still refers to: those last used before `seq`, the
    /// journal's oldest.
    func deleteLogs(usedOnlyBefore seq: UInt64) throws(StoreError) {
        let gone = try database.prepare("SELECT session FROM conversations WHERE last_seq < ?")
        try gone.bind([.int(Int64(seq))])
        var sessions: [String] = []
        while try gone.step() { sessions.append(gone.text(0)) }
        guard !sessions.isEmpty else { return }
        try database.prepare(
            "DELETE FROM conversation_messages WHERE conversation IN (SELECT id FROM conversations WHERE last_seq < ?)"
        ).run([.int(Int64(seq))])
        try database.prepare("DELETE FROM conversations WHERE last_seq < ?").run([.int(Int64(seq))])
        for session in sessions {
            logs[session] = nil
            recency.removeAll { $0 == session }
        }
    }
}
