import LLMDTesting
import Testing

@testable import LLMDStore

/// A session's id is its identity in the ledger and in budgets: never given to another.
@Suite("Session identity")
struct SessionIdentityTests {
    private func call(_ session: StoredSession?, label: String? = nil, tokens: Int64, time: Int64) -> UsageEntry {
        UsageEntry(
            time: time, sessionID: session?.id, session: session?.name ?? label, turnID: nil, runID: "run-\(time)",
            parentRunID: nil, provider: "p", model: "m", promptTokens: tokens, completionTokens: 0, cachedTokens: 0,
            reasoningTokens: 0, source: "provider", exact: true, cost: nil, status: "completed", scopes: [])
    }

    @Test("a session created after a delete gets a new id, also after reopening; the deleted one's calls stay its own")
    func neverReused() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("sessions.db")
        var store = try SessionStore(path: path)
        let aa = try store.create(name: "aa", settings: "{}", now: 10)
        _ = try store.record([call(aa, tokens: 7, time: 11)])
        try store.delete(sessionID: aa.id, now: 12)
        let cc = try store.create(name: "cc", settings: "{}", now: 13)
        #expect(cc.id > aa.id)
        #expect(try store.usage(UsageFilter(sessionID: cc.id)).total.requests == 0)

        // The newest id is deleted too, then the store reopened: still not reused.
        try store.delete(sessionID: cc.id, now: 14)
        store = try SessionStore(path: path)
        let again = try store.create(name: "aa", settings: "{}", now: 15)
        #expect(again.id > cc.id)
        _ = try store.record([call(again, tokens: 2, time: 16)])

        let groups = try store.usage(UsageFilter(), by: .session).groups
        #expect(groups.map(\.key) == ["aa", "aa"])
        #expect(groups.map(\.deleted) == [false, true], "the live session first")
        #expect(groups.map(\.promptTokens) == [2, 7])
        #expect(groups.map(\.deletedAt) == [nil, 12])
        #expect(try store.deletedSessions(named: "aa") == [DeletedSession(id: aa.id, name: "aa", createdAt: 10, deletedAt: 12)])
        #expect(try store.deletedSessions(named: "cc").map(\.id) == [cc.id])
    }

    @Test("the migration repairs a database where a new session was given a deleted one's id")
    func migrationRepairsReuse() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("sessions.db")
        do {
            // The schema as llmd 0.1 left it, and what its id reuse did: 'aa' (id 1) made a
            // call and was deleted, 'cc' got id 1 and made its own; session 5 was deleted.
            let old = try SQLiteDatabase(path: path)
            try old.migrate(Array(SessionStore.migrations.prefix(2)))
            try old.execute(
                """
                INSERT INTO sessions (id, name, created, updated, settings) VALUES (1, 'cc', 100, 100, '{}');
                INSERT INTO sessions (id, name, created, updated, settings) VALUES (2, 'dd', 30, 30, '{}');
                INSERT INTO turns (id, session_id, number, run_id, status, started, input) VALUES (1, 1, 1, 'r', 'completed', 101, 'q');
                INSERT INTO messages (session_id, turn_id, role, content) VALUES (1, 1, 'user', 'q');
                INSERT INTO usage (time, session_id, session, run_id, provider, model, prompt_tokens, completion_tokens,
                    cached_tokens, reasoning_tokens, source, exact, status) VALUES
                    (50, 1, 'aa', 'r1', 'p', 'm', 7, 0, 0, 0, 'provider', 1, 'completed'),
                    (60, 1, 'aa', 'r2', 'p', 'm', 8, 0, 0, 0, 'provider', 1, 'completed'),
                    (110, 1, 'cc', 'r3', 'p', 'm', 3, 0, 0, 0, 'provider', 1, 'completed'),
                    (40, 2, 'dd', 'r4', 'p', 'm', 1, 0, 0, 0, 'provider', 1, 'completed'),
                    (20, 5, 'ee', 'r5', 'p', 'm', 4, 0, 0, 0, 'provider', 1, 'completed');
                """)
        }
        let store = try SessionStore(path: path)
        let cc = try #require(try store.session(named: "cc"))
        #expect(cc.id == 1, "live sessions keep their ids")
        #expect(try store.usage(UsageFilter(sessionID: 1)).total.promptTokens == 3, "cc's own call only")
        #expect(try store.turns(sessionID: 1).count == 1 && store.messages(sessionID: 1).count == 1, "turns survive the rebuild")

        let groups = try store.usage(UsageFilter(), by: .session).groups
        #expect(groups.map(\.key) == ["aa", "cc", "dd", "ee"])
        #expect(groups.map(\.deleted) == [true, false, false, true])
        #expect(groups.map(\.promptTokens) == [15, 3, 1, 4])
        #expect(groups.allSatisfy { $0.deletedAt == nil }, "when they were deleted is not known")
        let aa = try #require(try store.deletedSessions(named: "aa").first)
        #expect(aa.id > 5 && aa.createdAt == 50)

        // Foreign keys are on again, and cascade.
        let next = try store.create(name: "ff", settings: "{}", now: 200)
        #expect(next.id > aa.id, "past every id the ledger holds")
        try store.delete(sessionID: 1, now: 210)
        let direct = try SQLiteDatabase(path: path)
        #expect(try direct.intValue("SELECT count(*) FROM turns") == 0)
        #expect(try direct.intValue("PRAGMA user_version") == Int64(SessionStore.migrations.count))
    }
}
