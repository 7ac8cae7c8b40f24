import Testing

@testable import LLMDProtocol

@Suite("Usage methods' types")
struct UsageMethodsTests {
    @Test("a budget limit is absent (kept), null (removed) or a number (set), and stays so on the wire")
    func threeWayLimits() throws {
        let params = try BudgetSetMethod.Params(json: ["session": "a", "max_tokens": nil, "max_cost": 0.5])
        #expect(params.budget == .session("a"))
        #expect(params.limits == BudgetLimitChange(maxTokens: .some(nil), maxCost: 0.5))
        #expect(params.json == ["session": "a", "max_tokens": nil, "max_cost": 0.5])
        let begin = try ScopeBeginMethod.Params(json: ["name": "job", "max_tokens": 100])
        #expect(begin.limits.maxTokens == 100 && begin.limits.maxCost == nil)
        #expect(try ScopeBeginMethod.Params(json: begin.json) == begin)
        #expect(try ScopeBeginMethod.Params(json: [:]).limits.isEmpty)
    }

    @Test("invalid parameters are named in the error, as the daemon has always named them")
    func invalidParameters() {
        #expect(throws: ProtocolError.invalidParam("max_tokens", expected: "a positive number of tokens, or null", got: 0)) {
            try ScopeBeginMethod.Params(json: ["max_tokens": 0])
        }
        #expect(throws: ProtocolError.invalidParam("max_cost", expected: "a positive amount of USD, or null", got: -1)) {
            try BudgetSetMethod.Params(json: ["daily": true, "max_cost": -1])
        }
        let noLimit = ProtocolError(.invalidParams, "give 'max_tokens' or 'max_cost' (null removes a limit)", detail: ["field": "max_tokens"])
        #expect(throws: noLimit) {
            try BudgetSetMethod.Params(json: ["daily": true])
        }
        let noBudget = ProtocolError(.invalidParams, "name a budget: 'session', 'scope', or 'daily': true", detail: ["field": "session"])
        #expect(throws: noBudget) {
            try BudgetShowMethod.Params(json: ["daily": false])
        }
        #expect(throws: ProtocolError.invalidParam("scope", expected: "a scope id", got: "")) {
            try ScopeShowMethod.Params(json: ["scope": ""])
        }
    }

    @Test("budget.show names one budget only when a member is given")
    func budgetShowParams() throws {
        #expect(try BudgetShowMethod.Params(json: [:]).budget == nil)
        #expect(try BudgetShowMethod.Params(json: ["scope": "s1"]).budget == .scope("s1"))
        #expect(BudgetShowMethod.Params(budget: .daily).json == ["daily": true])
    }

    @Test("usage, scope and budget results go to JSON and back, members present as the daemon gives them")
    func resultRoundTrips() throws {
        let group = UsageMethod.Totals(
            requests: 2, promptTokens: 10, completionTokens: 5, totalTokens: 15, cost: 0.25, key: "a", deleted: true)
        #expect(group.json["deleted_at"] == .null && group.json["name"] == nil)
        let usage = UsageMethod.Result(total: UsageMethod.Totals(requests: 2), by: "session", groups: [group])
        #expect(try UsageMethod.Result(json: usage.json) == usage)
        #expect(UsageMethod.Result(total: UsageMethod.Totals()).json.keys == ["total"])

        let scope = ScopeShowMethod.Result(
            scope: "s1", name: nil, parent: "s0", created: 1, ended: nil, totals: UsageMethod.Totals(),
            budget: BudgetShowMethod.Limits(maxTokens: 100, maxCost: nil))
        #expect(scope.json["name"] == .null && scope.json["ended"] == .null)
        #expect(try ScopeShowMethod.Result(json: scope.json) == scope)

        let budgets = BudgetShowMethod.Result(budgets: [
            BudgetShowMethod.Budget(
                kind: .daily(day: "2026-11-21"), limits: BudgetShowMethod.Limits(maxTokens: nil, maxCost: 1.5),
                spent: BudgetShowMethod.Amount(tokens: 3, cost: 0.1), reserved: BudgetShowMethod.Amount(tokens: 0, cost: 0))
        ])
        let members = budgets.json["budgets"]?.arrayValue?.first?.objectValue?.keys
        #expect(members == ["kind", "day", "max_tokens", "max_cost", "spent", "reserved"])
        #expect(try BudgetShowMethod.Result(json: budgets.json) == budgets)
    }

    @Test("tokens.count takes the prompt input, and an estimate carries where the daemon looked")
    func tokensCount() throws {
        let params = try TokensCountMethod.Params(json: ["messages": [["role": "user", "content": "hi"]], "model": "gpt-4"])
        #expect(params.input.messages == [PromptMessage(role: "user", content: "hi")])
        #expect(try TokensCountMethod.Params(json: params.json) == params)
        let estimate = TokensCountMethod.Result(
            tokens: 3, encoding: nil, exact: false, model: "gpt-4o",
            vocabulary: TokensCountMethod.Vocabulary(searched: ["/usr/share/llmd"], hint: "fetch it"))
        #expect(estimate.json["estimated"] == true && estimate.json["encoding"] == .null)
        #expect(try TokensCountMethod.Result(json: estimate.json) == estimate)
        let exact = TokensCountMethod.Result(tokens: 2, encoding: "o200k_base", exact: true, model: "gpt-4o", ids: [24912, 2375])
        #expect(exact.json["estimated"] == nil)
        #expect(try TokensCountMethod.Result(json: exact.json) == exact)
    }
}
