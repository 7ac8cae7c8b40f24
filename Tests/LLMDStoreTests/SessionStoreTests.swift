import Foundation
import LLMDStore
import LLMDTesting
import Testing

@Suite("Session store")
struct SessionStoreTests {
    /// SQLITE_CONSTRAINT and its extended SQLITE_CONSTRAINT_UNIQUE (19 | 8 << 8).
    static let constraint: Int32 = 19
    static let constraintUnique: Int32 = 2067

    /// Begins a turn and completes it with a question and an answer.
    @discardableResult
    func exchange(
        _ store: SessionStore, _ session: StoredSession, _ label: String, keep: Int = 100, tokens: Int64 = 10,
        summary: String? = nil, now: Int64
    ) throws -> StoredTurn {
        let turn = try store.beginTurn(sessionID: session.id, runID: "run-\(label)", input: "q-\(label)", now: now)
        try store.completeTurn(
            TurnCompletion(
                turnID: turn.id, output: "a-\(label)", outcome: "{\"turn\":\"\(label)\"}", tokens: tokens,
                messages: [NewMessage(role: "user", content: "q-\(label)"), NewMessage(role: "assistant", content: "a-\(label)")],
                keepInMemory: keep, summary: summary, now: now + 1))
        return turn
    }

    func contents(_ messages: [StoredMessage]) -> [String] { messages.map(\.content) }

    @Test("sessions are created, listed by last update, edited, renamed and deleted; names stay unique")
    func sessionRoundTrip() throws {
        let directory = try TemporaryDirectory()
        let store = try SessionStore(path: directory.file("sessions.db"))
        #expect(try store.sessionCount() == 0)
        let alpha = try store.create(name: "alpha", settings: "{\"model\":\"a\"}", now: 100)
        let beta = try store.create(name: "beta", settings: "{}", now: 200)
        #expect(
            alpha
                == StoredSession(
                    id: alpha.id, name: "alpha", createdAt: 100, updatedAt: 100, settings: "{\"model\":\"a\"}", summary: "",
                    turns: 0, tokens: 0))
        #expect(try store.session(named: "beta") == beta)
        #expect(try store.session(id: alpha.id) == alpha)
        #expect(try store.session(named: "gamma") == nil)
        #expect(try store.list().map(\.name) == ["beta", "alpha"])

        try store.updateSettings(sessionID: alpha.id, settings: "{\"model\":\"b\"}", now: 300)
        #expect(try store.session(id: alpha.id)?.settings == "{\"model\":\"b\"}")
        #expect(try store.list().map(\.name) == ["alpha", "beta"])

        let duplicate = #expect(throws: StoreError.self) { try store.create(name: "beta", settings: "{}", now: 400) }
        #expect(duplicate.map { $0.code & 0xFF } == Self.constraint)
        #expect(duplicate?.code == Self.constraintUnique)
        let taken = #expect(throws: StoreError.self) { try store.rename(sessionID: alpha.id, to: "beta", now: 400) }
        #expect(taken?.code == Self.constraintUnique)
        #expect(try store.session(id: alpha.id)?.name == "alpha")

        try store.rename(sessionID: alpha.id, to: "gamma", now: 400)
        #expect(try store.session(named: "alpha") == nil)
        #expect(try store.session(named: "gamma")?.id == alpha.id)
        #expect(try store.session(named: "gamma")?.createdAt == 100)
        // Same update time: by name.
        _ = try store.create(name: "aaa", settings: "{}", now: 400)
        #expect(try store.list().map(\.name) == ["aaa", "gamma", "beta"])

        try store.delete(sessionID: beta.id, now: 500)
        #expect(try store.session(id: beta.id) == nil)
        #expect(try store.sessionCount() == 2)
        #expect(throws: StoreError.self) { try store.delete(sessionID: beta.id, now: 501) }
        #expect(try store.list().map(\.name) == ["aaa", "gamma"])
    }

    @Test("a completed turn adds its messages, counts, summarizes, and keeps the newest in memory")
    func completeTurnMemory() throws {
        let directory = try TemporaryDirectory()
        let store = try SessionStore(path: directory.file("sessions.db"))
        let session = try store.create(name: "chat", settings: "{}", now: 1)

        let first = try store.beginTurn(sessionID: session.id, runID: "run-1", input: "q-1", now: 10)
        #expect(first.number == 1)
        #expect(first.status == .running)
        #expect(first.endedAt == nil)
        try store.completeTurn(
            TurnCompletion(
                turnID: first.id, output: "a-1", outcome: "{\"ok\":true}", tokens: 5,
                messages: [NewMessage(role: "user", content: "q-1"), NewMessage(role: "assistant", content: "a-1")],
                keepInMemory: 10, summary: nil, now: 20))
        var memory = try store.memory(sessionID: session.id)
        #expect(memory.summary == "")
        #expect(memory.messages.map(\.role) == ["user", "assistant"])
        #expect(contents(memory.messages) == ["q-1", "a-1"])
        #expect(memory.messages.allSatisfy { $0.turnID == first.id && $0.inMemory })
        var stored = try #require(try store.session(id: session.id))
        #expect(stored.turns == 1)
        #expect(stored.tokens == 5)
        #expect(stored.updatedAt == 20)
        #expect(
            try store.turns(sessionID: session.id)
                == [
                    StoredTurn(
                        id: first.id, sessionID: session.id, number: 1, runID: "run-1", status: .completed, startedAt: 10,
                        endedAt: 20, input: "q-1", output: "a-1", error: nil, outcome: "{\"ok\":true}")
                ])

        // Four in memory, three kept: the oldest goes.
        let second = try exchange(store, session, "2", keep: 3, tokens: 7, summary: "S1", now: 30)
        memory = try store.memory(sessionID: session.id)
        #expect(memory.summary == "S1")
        #expect(contents(memory.messages) == ["a-1", "q-2", "a-2"])
        #expect(memory.messages.map(\.turnID) == [first.id, second.id, second.id])
        let all = try store.messages(sessionID: session.id)
        #expect(contents(all) == ["q-1", "a-1", "q-2", "a-2"])
        #expect(all.map(\.inMemory) == [false, true, true, true])

        // None kept: the new messages leave memory too; a nil summary keeps the old one.
        try exchange(store, session, "3", keep: 0, tokens: 1, summary: nil, now: 40)
        memory = try store.memory(sessionID: session.id)
        #expect(memory == StoredMemory(summary: "S1", messages: []))
        #expect(try store.messages(sessionID: session.id).map(\.inMemory) == Array(repeating: false, count: 6))

        // More kept than there are: nothing leaves.
        try exchange(store, session, "4", keep: 100, tokens: 2, summary: "S2", now: 50)
        try exchange(store, session, "5", keep: 5, tokens: 2, now: 60)
        memory = try store.memory(sessionID: session.id)
        #expect(memory.summary == "S2")
        #expect(contents(memory.messages) == ["q-4", "a-4", "q-5", "a-5"])
        #expect(try store.messages(sessionID: session.id).count == 10)

        stored = try #require(try store.session(id: session.id))
        #expect(stored.turns == 5)
        #expect(stored.tokens == 5 + 7 + 1 + 2 + 2)
        #expect(stored.updatedAt == 61)
        #expect(try store.turns(sessionID: session.id).map(\.number) == [1, 2, 3, 4, 5])
    }

    @Test("a failed or cancelled turn keeps its partial output but leaves memory and counters alone")
    func failedTurn() throws {
        let directory = try TemporaryDirectory()
        let store = try SessionStore(path: directory.file("sessions.db"))
        let session = try store.create(name: "chat", settings: "{}", now: 1)
        try exchange(store, session, "1", tokens: 9, summary: "S", now: 10)
        let memoryBefore = try store.memory(sessionID: session.id)

        let failed = try store.beginTurn(sessionID: session.id, runID: "run-2", input: "q-2", now: 20)
        #expect(failed.number == 2)
        try store.finishTurn(turnID: failed.id, status: .failed, output: "partial", error: "upstream 500", now: 25)
        #expect(try store.memory(sessionID: session.id) == memoryBefore)
        var stored = try #require(try store.session(id: session.id))
        #expect(stored.turns == 1)
        #expect(stored.tokens == 9)
        #expect(stored.updatedAt == 25)
        #expect(try store.messages(sessionID: session.id).count == 2)

        let cancelled = try store.beginTurn(sessionID: session.id, runID: "run-3", input: "q-3", now: 30)
        #expect(cancelled.number == 3)
        try store.finishTurn(turnID: cancelled.id, status: .cancelled, output: nil, error: "cancelled by client", now: 35)
        #expect(throws: StoreError.self) {
            try store.finishTurn(turnID: cancelled.id, status: .failed, output: nil, error: "again", now: 36)
        }
        let fourth = try store.beginTurn(sessionID: session.id, runID: "run-4", input: "q-4", now: 40)
        #expect(throws: StoreError.self) {
            try store.finishTurn(turnID: fourth.id, status: .completed, output: nil, error: nil, now: 41)
        }

        let turns = try store.turns(sessionID: session.id)
        #expect(turns.map(\.number) == [1, 2, 3, 4])
        #expect(turns.map(\.status) == [.completed, .failed, .cancelled, .running])
        #expect(
            turns[1]
                == StoredTurn(
                    id: failed.id, sessionID: session.id, number: 2, runID: "run-2", status: .failed, startedAt: 20,
                    endedAt: 25, input: "q-2", output: "partial", error: "upstream 500", outcome: nil))
        #expect(turns[2].output == nil)
        #expect(turns[2].error == "cancelled by client")
        #expect(turns[2].endedAt == 35)
        #expect(try store.memory(sessionID: session.id) == memoryBefore)
        stored = try #require(try store.session(id: session.id))
        #expect(stored.turns == 1)
        #expect(stored.tokens == 9)
    }

    @Test("completing a turn that is not running throws and changes nothing")
    func completeNotRunning() throws {
        let directory = try TemporaryDirectory()
        let store = try SessionStore(path: directory.file("sessions.db"))
        let session = try store.create(name: "chat", settings: "{}", now: 1)
        let done = try exchange(store, session, "1", keep: 100, tokens: 4, summary: "S", now: 10)
        let failed = try store.beginTurn(sessionID: session.id, runID: "run-2", input: "q-2", now: 20)
        try store.finishTurn(turnID: failed.id, status: .failed, output: nil, error: "boom", now: 21)
        let sessionBefore = try store.session(id: session.id)
        let messagesBefore = try store.messages(sessionID: session.id)
        let turnsBefore = try store.turns(sessionID: session.id)

        for turnID in [done.id, failed.id, 999] {
            let error = #expect(throws: StoreError.self) {
                try store.completeTurn(
                    TurnCompletion(
                        turnID: turnID, output: "late", outcome: "{}", tokens: 100,
                        messages: [NewMessage(role: "user", content: "late")], keepInMemory: 0, summary: "changed",
                        now: 30))
            }
            #expect(error?.isDiskFull == false)
        }
        #expect(try store.session(id: session.id) == sessionBefore)
        #expect(try store.messages(sessionID: session.id) == messagesBefore)
        #expect(try store.memory(sessionID: session.id) == StoredMemory(summary: "S", messages: messagesBefore))
        #expect(try store.turns(sessionID: session.id) == turnsBefore)
    }

    @Test("a turn left running by a killed daemon is interrupted at the next open; the rest is intact")
    func crashRecovery() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("sessions.db")
        let copy = directory.file("copy.db")
        var session: StoredSession
        let completed: StoredTurn
        let running: StoredTurn
        do {
            let store = try SessionStore(path: path)
            #expect(store.interruptedAtOpen == 0)
            session = try store.create(name: "chat", settings: "{}", now: 1)
            completed = try exchange(store, session, "1", tokens: 3, summary: "S", now: 10)
            running = try store.beginTurn(sessionID: session.id, runID: "run-2", input: "q-2", now: 20)
            session = try #require(try store.session(id: session.id))
            // The files as a kill -9 would leave them, taken while the connection is open.
            #expect(FileManager.default.fileExists(atPath: path + "-wal"))
            try FileManager.default.copyItem(atPath: path, toPath: copy)
            try FileManager.default.copyItem(atPath: path + "-wal", toPath: copy + "-wal")
        }

        for file in [copy, path] {
            let store = try SessionStore(path: file)
            #expect(store.interruptedAtOpen == 1)
            let turns = try store.turns(sessionID: session.id)
            #expect(turns.count == 2)
            #expect(turns.first?.status == .completed)
            #expect(turns.first?.output == "a-1")
            #expect(turns.first?.id == completed.id)
            var interrupted = running
            interrupted.status = .interrupted
            interrupted.endedAt = running.startedAt
            #expect(turns.last == interrupted)
            #expect(try store.session(id: session.id) == session)
            #expect(contents(try store.memory(sessionID: session.id).messages) == ["q-1", "a-1"])
            // The session goes on after it.
            let next = try exchange(store, session, "3", now: 30)
            #expect(next.number == 3)
        }
        #expect(try SessionStore(path: path).interruptedAtOpen == 0)
    }

    @Test("sessions, summaries, messages and turns survive reopening")
    func persistence() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("sessions.db")
        let sessions: [StoredSession]
        var turns: [[StoredTurn]] = []
        var messages: [[StoredMessage]] = []
        var memories: [StoredMemory] = []
        do {
            let store = try SessionStore(path: path, synchronous: "NORMAL")
            let one = try store.create(name: "one", settings: "{\"temperature\":0.2}", now: 1)
            let two = try store.create(name: "two ✓", settings: "{}", now: 2)
            try exchange(store, one, "1", keep: 100, tokens: 11, now: 10)
            try exchange(store, one, "2", keep: 1, tokens: 12, summary: "short summary", now: 20)
            let failed = try store.beginTurn(sessionID: one.id, runID: "run-f", input: "q-f", now: 30)
            try store.finishTurn(turnID: failed.id, status: .failed, output: "part", error: "timeout", now: 31)
            try exchange(store, two, "x", keep: 0, tokens: 1, summary: "", now: 40)
            try store.updateSettings(sessionID: two.id, settings: "{\"model\":\"m\"}", now: 50)
            sessions = try store.list()
            for session in sessions {
                turns.append(try store.turns(sessionID: session.id))
                messages.append(try store.messages(sessionID: session.id))
                memories.append(try store.memory(sessionID: session.id))
            }
        }
        #expect(sessions.map(\.name) == ["two ✓", "one"])
        #expect(sessions.last?.summary == "short summary")
        #expect(sessions.last?.tokens == 23)
        #expect(turns.map(\.count) == [1, 3])
        #expect(memories.last.map { contents($0.messages) } == ["a-2"])

        let store = try SessionStore(path: path)
        #expect(store.interruptedAtOpen == 0)
        #expect(try store.list() == sessions)
        #expect(try store.sessionCount() == 2)
        for (index, session) in sessions.enumerated() {
            #expect(try store.turns(sessionID: session.id) == turns[index])
            #expect(try store.messages(sessionID: session.id) == messages[index])
            #expect(try store.memory(sessionID: session.id) == memories[index])
        }
    }

    @Test("deleting a session deletes its turns and messages, and only those")
    func deleteCascades() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("sessions.db")
        let store = try SessionStore(path: path)
        let gone = try store.create(name: "gone", settings: "{}", now: 1)
        let kept = try store.create(name: "kept", settings: "{}", now: 2)
        for (index, session) in [gone, kept, gone].enumerated() {
            try exchange(store, session, "\(index)", keep: 1, now: Int64(10 * (index + 1)))
        }
        let failed = try store.beginTurn(sessionID: gone.id, runID: "run-f", input: "q-f", now: 40)
        try store.finishTurn(turnID: failed.id, status: .failed, output: nil, error: "x", now: 41)

        let direct = try SQLiteDatabase(path: path)
        func count(_ table: String, _ session: StoredSession) throws -> Int64 {
            try direct.intValue("SELECT count(*) FROM \(table) WHERE session_id = \(session.id)")
        }
        #expect(try count("turns", gone) == 3)
        #expect(try count("messages", gone) == 4)

        try store.delete(sessionID: gone.id, now: 50)
        #expect(try count("turns", gone) == 0)
        #expect(try count("messages", gone) == 0)
        #expect(try direct.intValue("SELECT count(*) FROM sessions") == 1)
        #expect(try count("turns", kept) == 1)
        #expect(try count("messages", kept) == 2)
        #expect(try store.turns(sessionID: gone.id).isEmpty)
        #expect(try store.memory(sessionID: gone.id) == StoredMemory(summary: "", messages: []))
        #expect(contents(try store.messages(sessionID: kept.id)) == ["q-1", "a-1"])
    }
}
