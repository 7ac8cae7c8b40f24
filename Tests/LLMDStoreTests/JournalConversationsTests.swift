import LLMDProtocol
import LLMDTesting
import Testing

@testable import LLMDStore

/// A conversation's messages are kept once in the journal, and replay gives back the very
/// bytes each event had.
@Suite("Journal conversations")
struct JournalConversationsTests {
    /// The body a session's chat start has, as the daemon encodes it.
    private func chatStart(_ seq: UInt64, session: String?, messages: [(String, String)]) -> JournalRecord {
        let event = CallbackEvent(
            name: "chat_model_start", seq: seq, time: 1_000, session: session, runID: "llm-\(seq)", parentRunID: "chain-\(seq)",
            metadata: ["turn": .int(Int64(seq))],
            data: [
                "model": "gpt-4o-mini", "provider": "openai", "stream": true, "invocation_params": [:],
                "messages": .array(messages.map { ["role": .string($0.0), "content": .string($0.1)] }),
            ])
        var body: [UInt8] = []
        event.encodeBody(into: &body)
        return JournalRecord(
            seq: seq, time: 1_000, type: "chat_model_start", session: session, runID: "llm-\(seq)", parentRunID: "chain-\(seq)",
            tags: [], body: body)
    }

    @Test("a value's bytes are found by path, strings with brackets and escapes passed over")
    func scanning() {
        let body = Array(#"{"type":"event","data":{"x":"a]\"}","inputs":{"history":[{"a":[1,2]},"s,}",3]},"messages":[]}"#.utf8)[...]
        let history = JSONBytes.valueRange(of: ["data", "inputs", "history"], in: body)
        #expect(history.map { String(decoding: body[$0], as: UTF8.self) } == #"[{"a":[1,2]},"s,}",3]"#)
        let elements = history.flatMap { JSONBytes.elements(ofArrayAt: $0, in: body) }
        #expect(elements?.map { String(decoding: body[$0], as: UTF8.self) } == [#"{"a":[1,2]}"#, #""s,}""#, "3"])
        #expect(JSONBytes.valueRange(of: ["data", "messages"], in: body).map { body[$0].count } == 2)
        #expect(JSONBytes.valueRange(of: ["data", "none"], in: body) == nil)
        #expect(JSONBytes.valueRange(of: ["type", "x"], in: body) == nil, "a string has no members")
    }

    @Test("a long conversation costs the journal the same per turn at turn 200 as at turn 20; replay gives back every byte")
    func flatGrowth() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("events.db")
        var conversation: [(String, String)] = [("system", "Answer briefly.")]
        var written: [JournalRecord] = []
        do {
            let journal = try EventJournal(path: path)
            for turn in 1...200 {
                conversation.append(("user", "Question \(turn)? With \"quotes\" and ünïcode."))
                let record = chatStart(UInt64(turn), session: "long", messages: conversation)
                written.append(record)
                try journal.append([record])
                conversation.append(("assistant", "Thank you."))  // the same words every turn
            }
            // Another session, and a call of none, are kept apart.
            written.append(chatStart(201, session: "other", messages: [("user", "Thank you."), ("user", "hi")]))
            written.append(chatStart(202, session: nil, messages: [("user", "a"), ("user", "b")]))
            try journal.append(Array(written.suffix(2)))
        }
        let reopened = try EventJournal(path: path)
        let replayed = try reopened.records(after: 0, limit: 1_000)
        #expect(replayed.map(\.body) == written.map(\.body), "byte for byte")
        let database = try SQLiteDatabase(path: path)
        #expect(try database.intValue("SELECT count(*) FROM conversation_messages WHERE conversation = 1") == 400, "the system prompt, 200 questions and 199 answers, each once")
        // Whole pages of the file: compare tens of turns, not one.
        let early = try database.intValue("SELECT sum(length(records)) FROM event_pages WHERE first_seq BETWEEN 11 AND 20")
        let late = try database.intValue("SELECT sum(length(records)) FROM event_pages WHERE first_seq BETWEEN 191 AND 200")
        #expect(late * 10 <= early * 11, "per turn: \(early / 10) bytes at turn 20, \(late / 10) at turn 200: the numbers grow a digit")
    }

    @Test("retention deletes a session's log with the last page that refers to it, and a later session starts afresh")
    func retention() throws {
        let directory = try TemporaryDirectory()
        let journal = try EventJournal(path: directory.file("events.db"))
        try journal.append([chatStart(1, session: "old", messages: [("user", "a"), ("assistant", "b"), ("user", "c")])])
        try journal.append([chatStart(2, session: "kept", messages: [("user", "x"), ("assistant", "y"), ("user", "z")])])
        try journal.append([chatStart(3, session: "old", messages: [("user", "a"), ("assistant", "b"), ("user", "d")])])
        try journal.append([chatStart(4, session: "kept", messages: [("user", "x"), ("assistant", "y"), ("user", "w")])])
        #expect(try journal.applyRetention(olderThan: nil, maximumBytes: 0) > 0)
        try journal.append([chatStart(5, session: "old", messages: [("user", "new"), ("assistant", "start")])])
        let database = try SQLiteDatabase(path: directory.file("events.db"))
        #expect(try database.intValue("SELECT count(*) FROM conversations WHERE session = 'kept'") == 0, "no page refers to it")
        #expect(try journal.records(after: 0, limit: 10).map(\.body) == [chatStart(5, session: "old", messages: [("user", "new"), ("assistant", "start")]).body])
    }
}
