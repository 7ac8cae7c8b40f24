import LLMDCore
import LLMDEvents
import LLMDMemory
import LLMDProtocol
import LLMDStore
import LLMDTokenizer
import LLMDUsage

/// The usage ledger's methods: scopes (a daemon-wide `get_openai_callback`), queries,
/// budgets, and token counts.
extension Billing {
    public func register(in table: inout MethodTable) {
        table.register(.scopeBegin) { request, _ throws(ProtocolError) in
            try await self.beginScope(request.params)
        }
        table.register(.scopeEnd) { request, _ throws(ProtocolError) in
            let id = try Self.scopeID(request.params)
            let now = Timestamp.nowMicroseconds()
            let ended = try await self.database.perform { store throws(StoreError) -> Bool in
                guard try store.scope(id: id) != nil else { return false }
                try store.endScope(id: id, now: now)
                return true
            }
            guard ended else { throw Self.scopeNotFound(id) }
            return try await self.describeScope(id)
        }
        table.register(.scopeShow) { request, _ throws(ProtocolError) in
            try await self.describeScope(try Self.scopeID(request.params))
        }
        table.register(.usage) { request, _ throws(ProtocolError) in
            try await self.usage(request.params)
        }
        table.register(.budgetSet) { request, _ throws(ProtocolError) in
            try await self.setBudget(request.params)
        }
        table.register(.budgetShow) { request, _ throws(ProtocolError) in
            try await self.showBudgets(request.params)
        }
        table.register(.tokensCount) { request, _ throws(ProtocolError) in
            try self.countTokens(request.params)
        }
    }

    // MARK: Scopes

    private static func scopeID(_ params: JSONObject) throws(ProtocolError) -> String {
        guard let id = try params.string("scope"), !id.isEmpty else {
            throw .invalidParam("scope", expected: "a scope id", got: params["scope"])
        }
        return id
    }

    private func beginScope(_ params: JSONObject) async throws(ProtocolError) -> JSONObject {
        let name = try params.string("name")
        let parent = try params.string("parent")
        let limit = try Self.limit(params)
        if let parent { _ = try await expand(scopes: [parent]) }
        let id = RunID.make()
        let now = Timestamp.nowMicroseconds()
        try await database.perform { store throws(StoreError) in
            try store.beginScope(id: id, name: name, parent: parent, now: now)
            if let limit {
                try store.setBudget(BudgetKey.scope(id).stored(limit))
                self.database.budgets.withLock { $0.setLimit(limit, for: .scope(id)) }
            }
        }
        return try await describeScope(id)
    }

    /// A scope with its totals (ancestors' calls not included; its descendants' are).
    private func describeScope(_ id: String) async throws(ProtocolError) -> JSONObject {
        let found = try await database.perform { store throws(StoreError) -> (StoredScope, UsageTotals)? in
            guard let scope = try store.scope(id: id) else { return nil }
            return (scope, try store.usage(UsageFilter(scope: id)).total)
        }
        guard let (scope, totals) = found else { throw Self.scopeNotFound(id) }
        var object: JSONObject = [
            "scope": .string(scope.id), "name": scope.name.map(JSONValue.string) ?? .null,
            "parent": scope.parent.map(JSONValue.string) ?? .null, "created": .int(scope.created),
            "ended": scope.ended.map(JSONValue.int) ?? .null, "totals": .object(Self.totalsJSON(totals)),
        ]
        if let limit = database.budgets.withLock({ $0.limit(.scope(id)) }) { object["budget"] = .object(Self.limitJSON(limit)) }
        return object
    }

    // MARK: Queries

    private func usage(_ params: JSONObject) async throws(ProtocolError) -> JSONObject {
        let filter = UsageFilter(
            scope: try params.string("scope"), model: try params.string("model"), since: try params.int("since"),
            until: try params.int("until"))
        let grouping = try params.string("by")
        let by = try grouping.map { name throws(ProtocolError) in
            guard let by = UsageGrouping(rawValue: name) else {
                throw .invalidParam(
                    "by", expected: UsageGrouping.allCases.map(\.rawValue).joined(separator: ", "), got: params["by"])
            }
            return by
        }
        let session = try params.string("session")
        if let scope = filter.scope {
            guard try await database.perform({ store throws(StoreError) in try store.scope(id: scope) }) != nil else {
                throw Self.scopeNotFound(scope)
            }
        }
        let result = try await database.perform { store throws(StoreError) -> (groups: [UsageTotals], total: UsageTotals) in
            var filter = filter
            if let session {
                // A deleted session's calls are found by the name they were recorded under.
                if let id = try store.session(named: session)?.id { filter.sessionID = id } else { filter.sessionName = session }
            }
            return try store.usage(filter, by: by)
        }
        var object: JSONObject = ["total": .object(Self.totalsJSON(result.total))]
        if let by {
            object["by"] = .string(by.rawValue)
            object["groups"] = .array(result.groups.map { .object(Self.totalsJSON($0)) })
        }
        return object
    }

    /// Ledger sums, named as `get_openai_callback` names them.
    static func totalsJSON(_ totals: UsageTotals) -> JSONObject {
        var object: JSONObject = [
            "requests": .int(totals.requests), "prompt_tokens": .int(totals.promptTokens),
            "completion_tokens": .int(totals.completionTokens), "total_tokens": .int(totals.totalTokens),
            "cached_prompt_tokens": .int(totals.cachedTokens), "reasoning_tokens": .int(totals.reasoningTokens),
            "cost": .double(USD(picodollars: totals.cost).dollars), "unpriced_requests": .int(totals.unpricedRequests),
            "estimated_requests": .int(totals.estimatedRequests),
        ]
        if !totals.key.isEmpty { object["key"] = .string(totals.key) }
        if let name = totals.name { object["name"] = .string(name) }
        if totals.deleted {
            object["deleted"] = true
            object["deleted_at"] = totals.deletedAt.map { .string(Timestamp.rfc3339(milliseconds: $0 / 1000)) } ?? .null
        }
        return object
    }

    // MARK: Budgets

    /// `max_tokens` and `max_cost` of `params` applied to `limit`: a number sets that
    /// limit, null removes it, and one not given stays as it was.
    ///
    /// - Returns: nil when `params` gives neither.
    private static func limit(_ params: JSONObject, changing limit: BudgetLimit? = nil) throws(ProtocolError) -> BudgetLimit? {
        guard params["max_tokens"] != nil || params["max_cost"] != nil else { return nil }
        var limit = limit ?? BudgetLimit()
        if params["max_tokens"] != nil {
            let tokens = try params.int("max_tokens")
            guard tokens.map({ $0 > 0 }) ?? true else {
                throw .invalidParam("max_tokens", expected: "a positive number of tokens, or null", got: params["max_tokens"])
            }
            limit.tokens = tokens
        }
        if params["max_cost"] != nil {
            let cost = try params.double("max_cost").map { dollars throws(ProtocolError) in
                guard let cost = USD(dollars: dollars), cost > .zero else {
                    throw .invalidParam("max_cost", expected: "a positive amount of USD, or null", got: params["max_cost"])
                }
                return cost
            }
            limit.cost = cost
        }
        return limit
    }

    static func limitJSON(_ limit: BudgetLimit) -> JSONObject {
        ["max_tokens": limit.tokens.map(JSONValue.int) ?? .null, "max_cost": limit.cost.map { .double($0.dollars) } ?? .null]
    }

    /// The budget `params` names: `session`, `scope`, or `daily: true`, resolved to its key
    /// and a name for replies.
    private func budgetKey(_ params: JSONObject) async throws(ProtocolError) -> (BudgetKey, JSONObject) {
        if let name = try params.string("session") {
            guard let session = try await database.perform({ store throws(StoreError) in try store.session(named: name) }) else {
                throw Sessions.notFound(name)
            }
            return (.session(session.id), ["kind": "session", "session": .string(name)])
        }
        if let scope = try params.string("scope") {
            guard try await database.perform({ store throws(StoreError) in try store.scope(id: scope) }) != nil else {
                throw Self.scopeNotFound(scope)
            }
            return (.scope(scope), ["kind": "scope", "scope": .string(scope)])
        }
        guard try params.bool("daily") == true else {
            throw ProtocolError(.invalidParams, "name a budget: 'session', 'scope', or 'daily': true", detail: ["field": "session"])
        }
        let today = CalendarDay.of(microseconds: Timestamp.nowMicroseconds())
        return (.daily(today), ["kind": "daily", "day": .string(today)])
    }

    private func setBudget(_ params: JSONObject) async throws(ProtocolError) -> JSONObject {
        let (key, _) = try await budgetKey(params)
        let current = database.budgets.withLock { $0.ownLimit(key) }
        guard let limit = try Self.limit(params, changing: current) else {
            throw ProtocolError(
                .invalidParams, "give 'max_tokens' or 'max_cost' (null removes a limit)", detail: ["field": "max_tokens"])
        }
        try await database.perform { store throws(StoreError) in
            try store.setBudget(key.stored(limit))
            self.database.budgets.withLock { $0.setLimit(limit.isUnlimited ? nil : limit, for: key) }
        }
        return try await showBudgets(params)
    }

    /// The named budget, or the daily one and every budget set at runtime.
    private func showBudgets(_ params: JSONObject) async throws(ProtocolError) -> JSONObject {
        var budgets: [(BudgetKey, JSONObject)] = []
        if params["session"] != nil || params["scope"] != nil || params["daily"] != nil {
            budgets = [try await budgetKey(params)]
        } else {
            let today = CalendarDay.of(microseconds: Timestamp.nowMicroseconds())
            budgets = [(.daily(today), ["kind": "daily", "day": .string(today)])]
            let stored = try await database.perform { store throws(StoreError) in
                var budgets: [(BudgetKey, JSONObject)] = []
                for budget in try store.budgets() {
                    switch BudgetKey(budget) {
                    case .session(let id)?:
                        guard let session = try store.session(id: id) else { continue }
                        budgets.append((.session(id), ["kind": "session", "session": .string(session.name)]))
                    case .scope(let id)?: budgets.append((.scope(id), ["kind": "scope", "scope": .string(id)]))
                    case .daily?, nil: continue  // today's is listed first
                    }
                }
                return budgets
            }
            budgets += stored
        }
        let keys = budgets.map(\.0)
        let defaults = settings.current.budget.defaults
        let states = try await database.perform { store throws(StoreError) in
            try keys.map { key throws(StoreError) in
                let spent = try Self.spent(key, in: store)
                return self.database.budgets.withLock { book in
                    book.defaults = defaults
                    return (book.limit(key), spent, book.usage(key).reserved)
                }
            }
        }
        return [
            "budgets": .array(
                zip(budgets, states).map { budget, state in
                    var object = budget.1
                    for member in Self.limitJSON(state.0 ?? BudgetLimit()) { object[member.key] = member.value }
                    object["spent"] = Self.amountJSON(state.1)
                    object["reserved"] = Self.amountJSON(state.2)
                    return .object(object)
                })
        ]
    }

    // MARK: Tokens

    /// `llmctl tokens`: the tokens of a text, or of chat messages with OpenAI's framing.
    private func countTokens(_ params: JSONObject) throws(ProtocolError) -> JSONObject {
        let models = settings.current.models
        let model = try params.string("model") ?? "gpt-4o"
        let found: (Tokenizer, isExact: Bool)?
        if let name = try params.string("encoding") {
            guard let encoding = Encoding(rawValue: name) else {
                throw .invalidParam("encoding", expected: Encoding.allCases.map(\.rawValue).joined(separator: " or "), got: params["encoding"])
            }
            found = counters.tokenizer(encoding).map { ($0, true) }
        } else {
            found = counters.tokenizer(model: model, models: models)
        }
        guard let (tokenizer, isExact) = found else {
            return try estimatedCount(params, model: model)
        }
        var object: JSONObject = [
            "encoding": .string(tokenizer.encoding.rawValue), "exact": .bool(isExact), "model": .string(model),
        ]
        if let text = try params.string("text") {
            // Special tokens count as text, as tiktoken's encode_ordinary and the API do.
            let ids = tokenizer.encodeOrdinary(text)
            object["tokens"] = .int(Int64(ids.count))
            if try params.bool("ids") == true { object["ids"] = .array(ids.map { .int(Int64($0)) }) }
        } else {
            guard case .messages(let messages) = try CallMethods.modelInput(PromptInput(json: params)) else {
                throw ProtocolError(.invalidParams, "pass 'text' or 'messages'", detail: ["field": "text"])
            }
            object["tokens"] = .int(Int64(tokenizer.countChat(messages.map { ChatMessage(role: $0.role, content: $0.content) })))
        }
        return object
    }

    /// `tokens.count` without a vocabulary: the byte estimate every count falls back on,
    /// labelled so, with where the daemon looked and how to count exactly.
    private func estimatedCount(_ params: JSONObject, model: String) throws(ProtocolError) -> JSONObject {
        let vocabulary: JSONObject = [
            "searched": .array(counters.directories.map(JSONValue.string)), "hint": .string(counters.missingVocabularyHint),
        ]
        let wantsIDs = try params.bool("ids") == true
        let tokens: Int
        if let text = try params.string("text") {
            tokens = TokenCounter.estimate.count(text)
        } else {
            guard case .messages(let messages) = try CallMethods.modelInput(PromptInput(json: params)) else {
                throw ProtocolError(.invalidParams, "pass 'text' or 'messages'", detail: ["field": "text"])
            }
            tokens = TokenCounter.estimate.count(
                messages.map { ConversationMessage(ConversationMessage.Role(rawValue: $0.role) ?? .user, $0.content) },
                endpoint: .chat)
        }
        // After every parameter is checked: a wrong type is the caller's to fix first.
        if wantsIDs {
            throw ProtocolError(
                .vocabularyMissing,
                "no tokenizer vocabulary in \(counters.directories.joined(separator: ", ")) to give token ids with; "
                    + counters.missingVocabularyHint,
                detail: vocabulary)
        }
        return [
            "tokens": .int(Int64(tokens)), "encoding": .null, "exact": false, "estimated": true, "model": .string(model),
            "vocabulary": .object(vocabulary),
        ]
    }
}
