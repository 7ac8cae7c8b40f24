import LLMDProtocol
import LLMDTesting
import Testing

@testable import LLMDStore

/// A session's id is its identity in the ledger and in budgets: never given to another.
@Suite("Session identity")
struct SessionIdentityTests {
    private func call(_ session: StoredSession?, label: String? = nil, tokens: Int64, time: Int64) -> UsageEntry {
        UsageEntry(
            time: time, sessionID: session?.id, session: session?.name ?? label, turnID: nil, runID: "run-\(time)",
            parentRunID: nil, provider: "p", model: "m", usage: TokenUsage(promptTokens: Int(tokens), completionTokens: 0, source: .provider), cost: nil, status: "completed", scopes: [])
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
}
