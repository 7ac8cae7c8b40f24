import LLMDStore
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

    @Test("retention by age, then by size, keeps numbering going")
    func retention() throws {
        let directory = try TemporaryDirectory()
        let journal = try EventJournal(path: directory.file("events.db"))
        try journal.append((1...100).map { record($0, time: Int64($0)) })
        #expect(try journal.applyRetention(olderThan: 51, maximumBytes: nil) == 50)
        #expect(try journal.oldestSeq() == 51)
        let big = (101...2100).map { seq in
            JournalRecord(
                seq: UInt64(seq), time: 10_000, type: "t", session: nil, runID: "r", parentRunID: nil, tags: [],
                body: Array(repeating: 0x41, count: 1000))
        }
        try journal.append(big)
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

    @Test("a file from a newer llmd is refused with a message")
    func newerSchema() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("events.db")
        _ = try EventJournal(path: path)
        try SQLiteDatabase(path: path).execute("PRAGMA user_version=99")
        #expect(throws: StoreError.self) { try EventJournal(path: path) }
    }
}
