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
        table.register(ScopeBeginMethod.self) { params, _ throws(ProtocolError) in
            try await self.beginScope(params)
        }
        table.register(ScopeEndMethod.self) { params, _ throws(ProtocolError) in
            let id = params.scope
            let now = Timestamp.nowMicroseconds()
            let ended = try await self.database.perform { store throws(StoreError) -> Bool in
                guard try store.scope(id: id) != nil else { return false }
                try store.endScope(id: id, now: now)
                return true
            }
            guard ended else { throw Self.scopeNotFound(id) }
            return try await self.describeScope(id)
        }
        table.register(ScopeShowMethod.self) { params, _ throws(ProtocolError) in
            try await self.describeScope(params.scope)
        }
        table.register(UsageMethod.self) { params, _ throws(ProtocolError) in
            try await self.usage(params)
        }
        table.register(BudgetSetMethod.self) { params, _ throws(ProtocolError) in
            try await self.setBudget(params)
        }
        table.register(BudgetShowMethod.self) { params, _ throws(ProtocolError) in
            try await self.showBudgets(params.budget)
        }
        table.register(TokensCountMethod.self) { params, _ throws(ProtocolError) in
            try self.countTokens(params)
        }
    }

    // MARK: Scopes

    private func beginScope(_ params: ScopeBeginMethod.Params) async throws(ProtocolError) -> ScopeShowMethod.Result {
        try await describeScope(try await openScope(name: params.name, parent: params.parent, limits: params.limits))
    }

    /// A new scope, nested in `parent` if any, with `limits` as its budget.
    ///
    /// - Returns: its id.
    func openScope(name: String?, parent: String?, limits: BudgetLimitChange) async throws(ProtocolError) -> String {
        let limit = limits.isEmpty ? nil : try Self.limit(limits)
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
        return id
    }

    /// A scope with its totals (ancestors' calls not included; its descendants' are).
    private func describeScope(_ id: String) async throws(ProtocolError) -> ScopeShowMethod.Result {
        let found = try await database.perform { store throws(StoreError) -> (StoredScope, UsageTotals)? in
            guard let scope = try store.scope(id: id) else { return nil }
            return (scope, try store.usage(UsageFilter(scope: id)).total)
        }
        guard let (scope, totals) = found else { throw Self.scopeNotFound(id) }
        return ScopeShowMethod.Result(
            scope: scope.id, name: scope.name, parent: scope.parent, created: scope.created, ended: scope.ended,
            totals: UsageMethod.Totals(totals),
            budget: database.budgets.withLock { $0.limit(.scope(id)) }.map(BudgetShowMethod.Limits.init))
    }

    // MARK: Queries

    private func usage(_ params: UsageMethod.Params) async throws(ProtocolError) -> UsageMethod.Result {
        let filter = UsageFilter(scope: params.scope, model: params.model, since: params.since, until: params.until)
        let by = try params.by.map { name throws(ProtocolError) in
            guard let by = UsageGrouping(rawValue: name) else {
                throw .invalidParam(
                    UsageMethod.Params.Key.by.rawValue, expected: UsageGrouping.allCases.map(\.rawValue).joined(separator: ", "),
                    got: .string(name))
            }
            return by
        }
        if let scope = filter.scope {
            guard try await database.perform({ store throws(StoreError) in try store.scope(id: scope) }) != nil else {
                throw Self.scopeNotFound(scope)
            }
        }
        let result = try await database.perform { store throws(StoreError) -> (groups: [UsageTotals], total: UsageTotals) in
            var filter = filter
            if let session = params.session {
                // A deleted session's calls are found by the name they were recorded under.
                if let id = try store.session(named: session)?.id { filter.sessionID = id } else { filter.sessionName = session }
            }
            return try store.usage(filter, by: by)
        }
        return UsageMethod.Result(
            total: UsageMethod.Totals(result.total), by: by?.rawValue, groups: by.map { _ in result.groups.map(UsageMethod.Totals.init) })
    }

    // MARK: Budgets

    /// `change` applied to `limit`: a number sets that limit, null removes it, and one not
    /// given stays as it was.
    ///
    /// - Throws: `request.invalid_params` for a cost the ledger cannot hold to the picodollar.
    private static func limit(_ change: BudgetLimitChange, changing limit: BudgetLimit? = nil) throws(ProtocolError) -> BudgetLimit {
        var limit = limit ?? BudgetLimit()
        if let tokens = change.maxTokens { limit.tokens = tokens }
        if let dollars = change.maxCost {
            limit.cost = try dollars.map { dollars throws(ProtocolError) in
                guard let cost = USD(dollars: dollars), cost > .zero else { throw BudgetLimitChange.invalidCost(got: .double(dollars)) }
                return cost
            }
        }
        return limit
    }

    /// The budget `name` names, which must exist, with its kind as replies give it.
    private func budgetKey(_ name: BudgetName) async throws(ProtocolError) -> (BudgetKey, BudgetShowMethod.Budget.Kind) {
        switch name {
        case .session(let name):
            guard let session = try await database.perform({ store throws(StoreError) in try store.session(named: name) }) else {
                throw Sessions.notFound(name)
            }
            return (.session(session.id), .session(name))
        case .scope(let scope):
            guard try await database.perform({ store throws(StoreError) in try store.scope(id: scope) }) != nil else {
                throw Self.scopeNotFound(scope)
            }
            return (.scope(scope), .scope(scope))
        case .daily:
            let today = CalendarDay.of(microseconds: Timestamp.nowMicroseconds())
            return (.daily(today), .daily(day: today))
        }
    }

    private func setBudget(_ params: BudgetSetMethod.Params) async throws(ProtocolError) -> BudgetShowMethod.Result {
        let (key, _) = try await budgetKey(params.budget)
        let current = database.budgets.withLock { $0.ownLimit(key) }
        let limit = try Self.limit(params.limits, changing: current)
        try await database.perform { store throws(StoreError) in
            try store.setBudget(key.stored(limit))
            self.database.budgets.withLock { $0.setLimit(limit.isUnlimited ? nil : limit, for: key) }
        }
        return try await showBudgets(params.budget)
    }

    /// The budget `name` names, or else the daily one and every budget set at runtime.
    private func showBudgets(_ name: BudgetName?) async throws(ProtocolError) -> BudgetShowMethod.Result {
        var budgets: [(BudgetKey, BudgetShowMethod.Budget.Kind)] = []
        if let name {
            budgets = [try await budgetKey(name)]
        } else {
            let today = CalendarDay.of(microseconds: Timestamp.nowMicroseconds())
            budgets = [(.daily(today), .daily(day: today))]
            let stored = try await database.perform { store throws(StoreError) in
                var budgets: [(BudgetKey, BudgetShowMethod.Budget.Kind)] = []
                for budget in try store.budgets() {
                    switch BudgetKey(budget) {
                    case .session(let id)?:
                        guard let session = try store.session(id: id) else { continue }
                        budgets.append((.session(id), .session(session.name)))
                    case .scope(let id)?: budgets.append((.scope(id), .scope(id)))
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
        return BudgetShowMethod.Result(
            budgets: zip(budgets, states).map { budget, state in
                BudgetShowMethod.Budget(
                    kind: budget.1, limits: BudgetShowMethod.Limits(state.0 ?? BudgetLimit()),
                    spent: BudgetShowMethod.Amount(state.1), reserved: BudgetShowMethod.Amount(state.2))
            })
    }

    // MARK: Tokens

    /// `llmctl tokens`: the tokens of a text, or of chat messages with OpenAI's framing.
    private func countTokens(_ params: TokensCountMethod.Params) throws(ProtocolError) -> TokensCountMethod.Result {
        let models = settings.current.models
        let model = params.model.map(settings.current.modelName) ?? "gpt-4o"
        let found: (Tokenizer, isExact: Bool)?
        if let name = params.encoding {
            guard let encoding = Encoding(rawValue: name) else {
                throw .invalidParam(
                    TokensCountMethod.Params.Key.encoding.rawValue,
                    expected: Encoding.allCases.map(\.rawValue).joined(separator: " or "), got: .string(name))
            }
            found = counters.tokenizer(encoding).map { ($0, true) }
        } else {
            found = counters.tokenizer(model: model, models: models)
        }
        guard let (tokenizer, isExact) = found else {
            return try estimatedCount(params, model: model)
        }
        let tokens: Int
        var ids: [Int64]?
        if let text = params.input.text {
            // Special tokens count as text, as tiktoken's encode_ordinary and the API do.
            let encoded = tokenizer.encodeOrdinary(text)
            tokens = encoded.count
            if params.ids == true { ids = encoded.map { Int64($0) } }
        } else {
            tokens = tokenizer.countChat(try Self.messages(params.input).map { ChatMessage(role: $0.role, content: $0.content) })
        }
        return TokensCountMethod.Result(
            tokens: Int64(tokens), encoding: tokenizer.encoding.rawValue, exact: isExact, model: model, ids: ids)
    }

    /// `tokens.count` without a vocabulary: the byte estimate every count falls back on,
    /// labelled so, with where the daemon looked and how to count exactly.
    private func estimatedCount(_ params: TokensCountMethod.Params, model: String) throws(ProtocolError) -> TokensCountMethod.Result {
        let vocabulary = TokensCountMethod.Vocabulary(searched: counters.directories, hint: counters.missingVocabularyHint)
        let tokens: Int
        if let text = params.input.text {
            tokens = TokenCounter.estimate.count(text)
        } else {
            tokens = TokenCounter.estimate.count(
                try Self.messages(params.input).map {
                    ConversationMessage(ConversationMessage.Role(rawValue: $0.role) ?? .user, $0.content)
                },
                endpoint: .chat)
        }
        // After every parameter is checked: a wrong type is the caller's to fix first.
        if params.ids == true {
            throw ProtocolError(
                .vocabularyMissing,
                "no tokenizer vocabulary in \(counters.directories.joined(separator: ", ")) to give token ids with; "
                    + counters.missingVocabularyHint,
                detail: vocabulary.json)
        }
        return TokensCountMethod.Result(tokens: Int64(tokens), encoding: nil, exact: false, model: model, vocabulary: vocabulary)
    }

    /// The chat messages to count when no `text` is given; a `prompt` is not counted. The
    /// errors are those `complete` gives for its input.
    private static func messages(_ input: PromptInput) throws(ProtocolError) -> [PromptMessage] {
        guard case .messages(let messages) = try CallMethods.modelInput(input) else {
            throw ProtocolError(.invalidParams, "pass 'text' or 'messages'", detail: ["field": "text"])
        }
        return messages.map { PromptMessage(role: $0.role, content: $0.content) }
    }
}

extension UsageMethod.Totals {
    /// Ledger sums as the protocol gives them: cost in dollars, deletion times in RFC 3339.
    init(_ totals: UsageTotals) {
        self.init(
            requests: totals.requests, promptTokens: totals.promptTokens, completionTokens: totals.completionTokens,
            totalTokens: totals.totalTokens, cachedPromptTokens: totals.cachedTokens, reasoningTokens: totals.reasoningTokens,
            cost: USD(picodollars: totals.cost).dollars, unpricedRequests: totals.unpricedRequests,
            estimatedRequests: totals.estimatedRequests, key: totals.key.isEmpty ? nil : totals.key, name: totals.name,
            deleted: totals.deleted, deletedAt: totals.deletedAt.map { Timestamp.rfc3339(milliseconds: $0 / 1000) })
    }
}

extension BudgetShowMethod.Limits {
    init(_ limit: BudgetLimit) {
        self.init(maxTokens: limit.tokens, maxCost: limit.cost?.dollars)
    }
}

extension BudgetShowMethod.Amount {
    init(_ amount: Amount) {
        self.init(tokens: amount.tokens, cost: amount.cost.dollars)
    }
}
