import LLMDProtocol
import LLMDStore
import LLMDTesting
import Testing

@Suite("Usage ledger")
struct UsageLedgerTests {
    func entry(
        session: StoredSession? = nil, turn: Int64? = nil, model: String = "gpt-4o", prompt: Int64 = 10,
        completion: Int64 = 5, cost: Int64? = 1_000, time: Int64 = 1_795_219_200_000_000, scopes: [String] = []
    ) -> UsageEntry {
        UsageEntry(
            time: time, sessionID: session?.id, session: session?.name, turnID: turn, runID: "run", parentRunID: nil,
            provider: "p", model: model, usage: TokenUsage(
                promptTokens: Int(prompt), completionTokens: Int(completion), cachedPromptTokens: 1,
                source: cost == nil ? .estimated : .provider),
            cost: cost, status: "completed",
            scopes: scopes)
    }

    @Test("a turn's calls are written with the turn; totals equal the sums of the groups")
    func turnAndTotals() throws {
        let directory = try TemporaryDirectory()
        let store = try SessionStore(path: directory.file("sessions.db"))
        let session = try store.create(name: "s", settings: "{}", now: 1)
        let turn = try store.beginTurn(sessionID: session.id, runID: "r", input: "q", now: 2)
        let ids = try store.completeTurn(
            TurnCompletion(
                turnID: turn.id, output: "a", outcome: "{}", tokens: 30,
                messages: [NewMessage(role: "user", content: "q"), NewMessage(role: "assistant", content: "a")],
                keepInMemory: 10, usage: [entry(session: session, turn: turn.id), entry(session: session, turn: turn.id, model: "m2")],
                now: 3))
        #expect(ids.count == 2 && ids[0] < ids[1])
        _ = try store.record([entry(cost: nil, time: 1_795_219_200_000_000 + 86_400_000_000)])

        let all = try store.usage(UsageFilter())
        #expect(all.total.requests == 3 && all.total.promptTokens == 30 && all.total.completionTokens == 15)
        #expect(all.total.cost == 2_000 && all.total.unpricedRequests == 1 && all.total.estimatedRequests == 1)
        for grouping in [UsageGrouping.session, .model, .provider, .day, .source] {
            let grouped = try store.usage(UsageFilter(), by: grouping)
            #expect(grouped.total == all.total)
            #expect(grouped.groups.reduce(0) { $0 + $1.requests } == all.total.requests, "\(grouping)")
            #expect(grouped.groups.reduce(0) { $0 + $1.cost } == all.total.cost, "\(grouping)")
        }
        #expect(try store.usage(UsageFilter(), by: .day).groups.map(\.key) == ["2026-11-21", "2026-11-22"])
        #expect(try store.usage(UsageFilter(sessionID: session.id)).total.requests == 2)
        #expect(try store.usage(UsageFilter(until: 1_795_219_200_000_000 + 1)).total.requests == 2)
    }

    @Test("by source, each source is a group; a reported row counts in the totals as any row does")
    func bySource() throws {
        let directory = try TemporaryDirectory()
        let store = try SessionStore(path: directory.file("sessions.db"))
        var reported = entry(prompt: 7, completion: 3, cost: nil)
        reported.usage.source = .reported
        _ = try store.record([entry(), entry(cost: nil), reported, reported])
        let grouped = try store.usage(UsageFilter(), by: .source)
        #expect(grouped.groups.map(\.key) == ["estimated", "provider", "reported"])
        #expect(grouped.groups.map(\.requests) == [1, 1, 2])
        #expect(grouped.groups.last?.promptTokens == 14 && grouped.groups.last?.estimatedRequests == 0)
        #expect(grouped.total == (try store.usage(UsageFilter()).total))
        #expect(grouped.total.requests == 4 && grouped.total.promptTokens == 34 && grouped.total.unpricedRequests == 3)
    }

    @Test("a failing transaction writes no usage; a failed turn records what it was billed")
    func atomic() throws {
        let directory = try TemporaryDirectory()
        let store = try SessionStore(path: directory.file("sessions.db"))
        let session = try store.create(name: "s", settings: "{}", now: 1)
        let turn = try store.beginTurn(sessionID: session.id, runID: "r", input: "q", now: 2)
        try store.finishTurn(turnID: turn.id, status: .failed, output: "par", error: "cut", usage: [entry(session: session)], now: 3)
        #expect(try store.usage(UsageFilter()).total.requests == 1)
        // Completing the same turn again fails as a whole: no second row.
        #expect(throws: StoreError.self) {
            try store.completeTurn(
                TurnCompletion(
                    turnID: turn.id, output: "a", outcome: "{}", tokens: 1, messages: [], keepInMemory: 0,
                    usage: [entry(session: session)], now: 4))
        }
        #expect(try store.usage(UsageFilter()).total.requests == 1)
    }

    @Test("scopes nest through their rows; deleting a session keeps its usage and drops its budget")
    func scopesAndBudgets() throws {
        let directory = try TemporaryDirectory()
        let store = try SessionStore(path: directory.file("sessions.db"))
        try store.beginScope(id: "outer", name: "o", parent: nil, now: 1)
        try store.beginScope(id: "inner", name: nil, parent: "outer", now: 2)
        #expect(throws: StoreError.self) { try store.beginScope(id: "x", name: nil, parent: "missing", now: 3) }
        _ = try store.record([entry(scopes: ["inner", "outer"]), entry(scopes: ["outer"])])
        #expect(try store.usage(UsageFilter(scope: "outer")).total.requests == 2)
        #expect(try store.usage(UsageFilter(scope: "inner")).total.requests == 1)
        let byScope = try store.usage(UsageFilter(), by: .scope).groups
        #expect(byScope.map(\.key) == ["inner", "outer"] || byScope.map(\.key) == ["outer", "inner"])
        #expect(byScope.first { $0.key == "outer" }?.name == "o")
        try store.endScope(id: "inner", now: 10)
        try store.endScope(id: "inner", now: 20)
        #expect(try store.scope(id: "inner")?.ended == 10, "the first end stays")

        let session = try store.create(name: "s", settings: "{}", now: 1)
        _ = try store.record([entry(session: session)])
        try store.setBudget(StoredBudget(kind: "session", key: String(session.id), tokens: 100, cost: nil))
        try store.setBudget(StoredBudget(kind: "daily", key: "", tokens: nil, cost: 5))
        #expect(try store.budgets().count == 2)
        try store.delete(sessionID: session.id, now: 2)
        #expect(try store.budgets() == [StoredBudget(kind: "daily", key: "", tokens: nil, cost: 5)])
        #expect(try store.usage(UsageFilter(sessionName: "s")).total.requests == 1)
        try store.setBudget(StoredBudget(kind: "daily", key: "", tokens: nil, cost: nil))
        #expect(try store.budgets().isEmpty)
    }
}
