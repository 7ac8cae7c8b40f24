@testable import LLMDStore
import LLMDProtocol
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

    @Test("a compact page holds each record as what changed since the one before, the body's usual head left out")
    func compactLayout() throws {
        let records = [
            JournalRecord(
                seq: 5, time: 10, type: "x", session: nil, runID: "r", parentRunID: nil, tags: [],
                body: Array(#"{"type":"event","event":"x","seq":5,"ts":10,"data":{}}"#.utf8)),
            JournalRecord(
                seq: 7, time: 9, type: "x", session: nil, runID: "r", parentRunID: nil, tags: [],
                body: Array(#"{"type":"event","event":"x","seq":7,"ts":9,"data":{"a":1}}"#.utf8)),
            JournalRecord(
                seq: 8, time: 9, type: "y", session: "s", runID: "r", parentRunID: "p", tags: ["t"],
                body: Array(#"{"z":1}"#.utf8)),
        ]
        // flags, seq and time differences (zigzag), the fields that changed (varint
        // lengths, an optional one's plus one), then the body after its head: the bytes it
        // shares with the body before, and the rest.
        let expected =
            "20051401780001720000000b2c2264617461223a7b7d7d" + "3f020109072261223a317d7d"
            + "0401000179027302700101740007" + "7b227a223a317d"
        let page = JournalPage.encode(records[...])
        #expect(hex(page) == expected)
        #expect(try JournalPage.decode(page) == records)
        #expect(JournalPage.encode([][...]).isEmpty)
    }

    @Test("the head of a body CallbackEvent writes is left out of the page and written again, whatever the event's name")
    func headOfEveryName() throws {
        let names = ["llm_new_token", "custom", #"odd"name"#, "back\\slash", "ünï", "tab\tbed", ""]
        let records = names.enumerated().map { index, name in
            var body: [UInt8] = []
            CallbackEvent(name: name, seq: UInt64(100 + index), time: 1_700_000_000_000_000 + Int64(index), runID: "r")
                .encodeBody(into: &body)
            body.append(UInt8(ascii: "}"))
            return JournalRecord(
                seq: UInt64(100 + index), time: 1_700_000_000_000_000 + Int64(index), type: name, session: nil, runID: "r",
                parentRunID: nil, tags: [], body: body)
        }
        let page = JournalPage.encode(records[...])
        #expect(!hex(page).contains(hex(Array(#"{"type":"event","event":"#.utf8))), "no head stored")
        #expect(try JournalPage.decode(page) == records)
    }

    @Test("compact pages give back exactly what went in, whatever the fields")
    func compactRoundTrip() throws {
        var random = SplitMix64(state: 7)
        let types = ["llm_new_token", "chain_start", #"odd"type"#, "back\\slash", "ünï", "tab\tbed", ""]
        let sessions: [String?] = [nil, "s1", "s2", ""]
        var seq: UInt64 = 1
        var records: [JournalRecord] = []
        for _ in 0..<2000 {
            seq += random.next() % 3 + 1
            let type = types[Int(random.next() % UInt64(types.count))]
            let time = Int64(bitPattern: random.next() % 4 == 0 ? random.next() : random.next() % 1_000_000_000)
            let token = String(repeating: "é", count: Int(random.next() % 4))
            let body =
                random.next() % 5 == 0
                ? Array("free-form \(token)".utf8)
                : Array(#"{"type":"event","event":"\#(type)","seq":\#(seq),"ts":\#(time),"data":{"token":"\#(token)"}}"#.utf8)
            records.append(
                JournalRecord(
                    seq: seq, time: time, type: type, session: sessions[Int(random.next() % 4)],
                    runID: random.next() % 8 == 0 ? "run-\(seq)" : "run", parentRunID: random.next() % 2 == 0 ? nil : "parent",
                    tags: random.next() % 6 == 0 ? ["t\(seq % 3)", "ü"] : [], body: body))
        }
        // Bodies that nearly begin with their head: the number written otherwise, or longer.
        for body in [#"{"type":"event","event":"x","seq":05,"ts":1}"#, #"{"type":"event","event":"x","seq":5,"ts":12}"#,
            #"{"type":"event","event":"x","seq":5,"ts":+1}"#, #"{"type":"event","event":"x","seq":5,"ts":"#,
            #"{"type":"event","event":"x","seq":18446744073709551621,"ts":1}"#]
        {
            records.append(
                JournalRecord(seq: 5, time: 1, type: "x", session: nil, runID: "", parentRunID: nil, tags: [], body: Array(body.utf8)))
        }
        // A group as the daemon makes it: one context, one time; a body among them whose
        // number is not its record's, and a seq that gains a digit.
        let group = JournalRecord.Context(type: "llm_new_token", session: nil, runID: "r", parentRunID: nil, tags: [])
        for (seq, written) in [(UInt64(98), "98"), (99, "99"), (100, "10"), (101, "101"), (102, "1020"), (103, "103"), (1001, "1")] {
            let body = #"{"type":"event","event":"llm_new_token","seq":\#(written),"ts":7,"data":{}}"#
            records.append(JournalRecord(seq: seq, time: 7, context: group, body: Array(body.utf8)[...]))
        }
        for size in [1, 2, 17, records.count] {
            let page = records.prefix(size)
            #expect(try JournalPage.decode(JournalPage.encode(page)) == Array(page))
        }
        let tail = records.suffix(7)
        #expect(try JournalPage.decode(JournalPage.encode(tail)) == Array(tail))
    }

    @Test("a token stream's events take under 24 bytes each in a compact page")
    func compactSize() throws {
        let context = #","session":null,"run_id":"0f8e2c52-5b0e-4c4e-9d38-8a1f6c2b7e11","parent_run_id":"6a3c1d2e-9f4b-4e7a-8c5d-2b1e0f9a8c7d","tags":[],"metadata":{}"#
        let records = (0..<1000).map { index in
            let seq = UInt64(90_000 + index)
            let time = Int64(1_763_700_000_000_000 + index * 15)
            return JournalRecord(
                seq: seq, time: time, type: "llm_new_token", session: nil, runID: "0f8e2c52-5b0e-4c4e-9d38-8a1f6c2b7e11",
                parentRunID: "6a3c1d2e-9f4b-4e7a-8c5d-2b1e0f9a8c7d", tags: [],
                body: Array(#"{"type":"event","event":"llm_new_token","seq":\#(seq),"ts":\#(time)\#(context),"data":{"token":"t\#(index) "}}"#.utf8))
        }
        let page = JournalPage.encode(records[...])
        #expect(page.count < 24 * records.count, "\(page.count / records.count) bytes per event")
        let decoded = try JournalPage.decode(page)
        #expect(decoded == records)
        // The daemon gives a group's records one context: the same page, and a decoded
        // page's records share theirs again.
        let shared = records.map { JournalRecord(seq: $0.seq, time: $0.time, context: records[0].context, body: $0.body) }
        #expect(JournalPage.encode(shared[...]) == page)
        #expect(decoded.allSatisfy { $0.context === decoded[0].context })
    }

    @Test("retention by age, then by size, keeps numbering going")
    func retention() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("events.db")
        let journal = try EventJournal(path: path)
        // One batch per event: age retention goes a page at a time.
        for seq in 1...100 { try journal.append([record(UInt64(seq), time: Int64(seq))]) }
        #expect(try journal.applyRetention(olderThan: 51, maximumBytes: nil) == 50)
        #expect(try journal.oldestSeq() == 51)
        let big = (101...2100).map { seq in
            JournalRecord(
                seq: UInt64(seq), time: 10_000, type: "t", session: nil, runID: "r", parentRunID: nil, tags: [],
                // Each body unlike the one before, so a compact page keeps all of it.
                body: Array(repeating: UInt8(truncatingIfNeeded: seq), count: 1000))
        }
        for start in stride(from: 0, to: big.count, by: 100) { try journal.append(Array(big[start..<start + 100])) }
        #expect(try journal.sizeInBytes() > 1_500_000)
        try journal.applyRetention(olderThan: nil, maximumBytes: 500_000)
        #expect(try journal.sizeInBytes() <= 500_000)
        // The freed pages left the file, not only the count.
        let file = try SQLiteDatabase(path: path, readOnly: true)
        #expect(try file.intValue("PRAGMA page_count") * file.intValue("PRAGMA page_size") <= 600_000)
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

    @Test("a journal gives the pages retention frees back to the file system: auto_vacuum is incremental")
    func incrementalVacuum() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("events.db")
        let journal = try EventJournal(path: path)
        try journal.append([record(1), record(2)])
        #expect(try SQLiteDatabase(path: path).intValue("PRAGMA auto_vacuum") == 2)
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

private func hex(_ bytes: [UInt8]) -> String {
    bytes.map { byte in (byte < 16 ? "0" : "") + String(byte, radix: 16) }.joined()
}
