@testable import LLMDStore
import LLMDTesting
import Testing

@Suite("Event journal")
struct EventJournalTests {
    func record(_ seq: UInt64, time: Int64 = 1_000, tags: [String] = []) -> JournalRecord {
        JournalRecord(
            seq: seq, time: time, type: "llm_new_token", session: seq % 2 == 0 ? "even" : nil, runID: "run-\(seq)",
            parentRunID: seq % 3 == 0 ? "parent" : nil, tags: tags, body: Array("{\"seq\":\(seq)".utf8))
    }

    @Test("records come back in order with every column; the next seq survives reopening")
    func roundTrip() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("events.db")
        do {
            let journal = try EventJournal(path: path)
            #expect(try journal.nextSeq() == 1)
            try journal.append([record(1, tags: ["a", "b"]), record(2), record(3, tags: [""])])
            try journal.append([record(4)])
            #expect(try journal.records(after: 1, limit: 2) == [record(2), record(3, tags: [""])])
            #expect(try journal.records(after: 0, limit: 10).first == record(1, tags: ["a", "b"]))
        }
        let reopened = try EventJournal(path: path)
        #expect(try reopened.nextSeq() == 5)
        #expect(try reopened.oldestSeq() == 1)
    }

    @Test("a page is its records' fields in order, little-endian and length-prefixed, and reads back")
    func pageLayout() throws {
        let records = [
            JournalRecord(
                seq: 258, time: -2, type: "text", session: "café", runID: "r", parentRunID: nil, tags: ["a", "ü"],
                body: Array("{}".utf8)),
            JournalRecord(seq: 1, time: 0, type: "x", session: nil, runID: "", parentRunID: nil, tags: [], body: []),
        ]
        // seq, time, type, session, run_id, parent_run_id (absent: FFFFFFFF), tag count, tags, body.
        let expected =
            "0201000000000000feffffffffffffff040000007465787405000000636166c3a90100000072ffffffff02000000010000006102000000c3bc020000007b7d"
            + "010000000000000000000000000000000100000078ffffffff00000000ffffffff0000000000000000"
        let page = JournalPage.encode(records[...])
        let hex = page.map { byte -> String in
            let digits = String(byte, radix: 16)
            return byte < 16 ? "0" + digits : digits
        }
        #expect(hex.joined() == expected)
        #expect(try JournalPage.decode(page) == records)
        #expect(JournalPage.encode([][...]).isEmpty)
    }

    @Test("retention by age, then by size, keeps numbering going")
    func retention() throws {
        let directory = try TemporaryDirectory()
        let journal = try EventJournal(path: directory.file("events.db"))
        // One batch per event: age retention goes a page at a time.
        for seq in 1...100 { try journal.append([record(UInt64(seq), time: Int64(seq))]) }
        #expect(try journal.applyRetention(olderThan: 51, maximumBytes: nil) == 50)
        #expect(try journal.oldestSeq() == 51)
        let big = (101...2100).map { seq in
            JournalRecord(
                seq: UInt64(seq), time: 10_000, type: "t", session: nil, runID: "r", parentRunID: nil, tags: [],
                body: Array(repeating: 0x41, count: 1000))
        }
        for start in stride(from: 0, to: big.count, by: 100) { try journal.append(Array(big[start..<start + 100])) }
        #expect(try journal.sizeInBytes() > 1_500_000)
        try journal.applyRetention(olderThan: nil, maximumBytes: 500_000)
        #expect(try journal.sizeInBytes() <= 500_000)
        let oldest = try #require(try journal.oldestSeq())
        #expect(oldest > 1000)
        #expect(try journal.records(after: 2099, limit: 5).map(\.seq) == [2100])
        #expect(try journal.nextSeq() == 2101)
        try journal.applyRetention(olderThan: 20_000, maximumBytes: nil)
        #expect(try journal.oldestSeq() == nil)
        #expect(try journal.nextSeq() == 2101)
    }

    @Test("a batch larger than a page reads back whole, from any cursor, by time too")
    func pages() throws {
        let directory = try TemporaryDirectory()
        let journal = try EventJournal(path: directory.file("events.db"))
        let count = EventJournal.pageCapacity * 2 + 500
        let made = { (seq: Int) in self.record(UInt64(seq), time: Int64(seq) * 10, tags: seq % 5 == 0 ? ["t\(seq)"] : []) }
        try journal.append((1...count).map(made))
        #expect(try journal.records(after: 0, limit: 10).prefix(10) == ArraySlice((1...10).map(made)))
        let middle = try journal.records(after: 1500, limit: 700)
        #expect(middle.count >= 700)
        #expect(middle.map(\.seq) == Array(1501...UInt64(1500 + middle.count)))
        #expect(middle[4] == made(1505))
        #expect(try journal.records(after: UInt64(count) - 3, limit: 100).map(\.seq) == [UInt64(count) - 2, UInt64(count) - 1, UInt64(count)])
        #expect(try journal.records(after: UInt64(count), limit: 100).isEmpty)
        #expect(try journal.firstSeq(atOrAfter: 12_345) == 1235)
        #expect(try journal.firstSeq(atOrAfter: Int64(count) * 10 + 1) == nil)
        #expect(try journal.nextSeq() == UInt64(count) + 1)
    }

    @Test("a version 1 journal, a row per event, moves into pages with its seq and every column")
    func migratesRows() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("events.db")
        do {
            let old = try SQLiteDatabase(path: path)
            try old.execute(EventJournal.migrations[0])
            try old.execute("PRAGMA user_version=1")
            try old.execute(
                """
                INSERT INTO events VALUES (7, 70, 'chain_start', 's', 'r7', NULL, 'a\u{1F}b\u{1F}', X'7B7D');
                INSERT INTO events VALUES (8, 80, 'chain_end', NULL, 'r8', 'r7', '\u{1F}', X'7B2278223A317D');
                INSERT INTO journal_state VALUES ('next_seq', 12);
                """)
        }
        let journal = try EventJournal(path: path)
        #expect(
            try journal.records(after: 0, limit: 10) == [
                JournalRecord(
                    seq: 7, time: 70, type: "chain_start", session: "s", runID: "r7", parentRunID: nil, tags: ["a", "b"],
                    body: Array("{}".utf8)),
                JournalRecord(
                    seq: 8, time: 80, type: "chain_end", session: nil, runID: "r8", parentRunID: "r7", tags: [""],
                    body: Array(#"{"x":1}"#.utf8)),
            ])
        #expect(try journal.nextSeq() == 12)
        #expect(try journal.oldestSeq() == 7)
        #expect(try SQLiteDatabase(path: path).intValue("SELECT count(*) FROM sqlite_master WHERE name='events'") == 0)
    }

    @Test("after a writer that did not end cleanly, numbering skips ahead; after a clean end it goes on")
    func uncleanStop() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("events.db")
        do {
            let journal = try EventJournal(path: path)
            #expect(try journal.beginWriting() == false)
            try journal.append([record(1), record(2)])
            try journal.endWriting()
        }
        do {
            let journal = try EventJournal(path: path)
            #expect(try journal.beginWriting() == false)
            #expect(try journal.nextSeq() == 3)
            try journal.append([record(3)])
            // No endWriting: the process was killed.
        }
        let journal = try EventJournal(path: path)
        #expect(try journal.beginWriting() == true)
        #expect(try journal.nextSeq() == 4 + EventJournal.uncleanStopSkip)
        // A reader opening the file beside the writer changes nothing.
        _ = try EventJournal(path: path)
        #expect(try journal.nextSeq() == 4 + EventJournal.uncleanStopSkip)
    }

    @Test("a damaged page is an error, not a wrong event")
    func damagedPage() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("events.db")
        let journal = try EventJournal(path: path)
        try journal.append([record(1), record(2)])
        try SQLiteDatabase(path: path).execute("UPDATE event_pages SET records = substr(records, 1, 30)")
        #expect(throws: StoreError.self) { try journal.records(after: 0, limit: 10) }
    }

    @Test("a file from a newer llmd is refused with a message")
    func newerSchema() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("events.db")
        _ = try EventJournal(path: path)
        try SQLiteDatabase(path: path).execute("PRAGMA user_version=99")
        #expect(throws: StoreError.self) { try EventJournal(path: path) }
    }
}
