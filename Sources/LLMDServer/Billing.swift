import LLMDCore
import LLMDEvents
import LLMDMemory
import LLMDOpenAI
import LLMDProtocol
import LLMDStore
import LLMDUpstream
import LLMDUsage
import Logging
import Synchronization

/// Who a call bills to: its session and turn, and its scopes.
struct CallAccount: Sendable {
    var sessionID: Int64?
    /// The session's name; for `complete`, its `session` label.
    var session: String?
    var turnID: Int64?
    /// The request's scopes and all their ancestors.
    var scopes: [String]

    /// The budgets a call recorded at `time` (microseconds) counts to.
    func budgetKeys(at time: Int64) -> [BudgetKey] {
        [.daily(CalendarDay.of(microseconds: time))] + (sessionID.map { [.session($0)] } ?? []) + scopes.map { .scope($0) }
    }
}

/// One call's bill while it runs: how its tokens are counted and priced, and what it reserved.
struct CallBill: Sendable {
    var account: CallAccount
    var model: String
    var provider: String
    var counter: TokenCounter
    var prompt: TurnPrompt
    /// Nil when the model's price is unknown.
    var price: Price?
    var reservation: Reservation?

    /// The provider's counts when it sent them; else counted here, from the prompt and
    /// the text received.
    func usage(_ counts: Usage?, received text: String) -> TokenUsage {
        guard let counts else { return .estimated(prompt: prompt, received: text, counter: counter) }
        return TokenUsage(
            promptTokens: counts.promptTokens, completionTokens: counts.completionTokens,
            cachedPromptTokens: counts.cachedPromptTokens ?? 0, reasoningTokens: counts.reasoningTokens ?? 0, source: .provider)
    }

    /// The ledger row of the call's `usage`, made as the call ends.
    func pending(_ usage: TokenUsage, status: String, llm: CallbackManager) -> PendingUsage {
        let cost = price?.cost(of: usage)
        return PendingUsage(
            entry: UsageEntry(
                time: Timestamp.nowMicroseconds(), sessionID: account.sessionID, session: account.session,
                turnID: account.turnID, runID: llm.runID, parentRunID: llm.parentRunID, provider: provider, model: model,
                promptTokens: Int64(usage.promptTokens), completionTokens: Int64(usage.completionTokens),
                cachedTokens: Int64(usage.cachedPromptTokens), reasoningTokens: Int64(usage.reasoningTokens),
                source: usage.source.rawValue, exact: usage.isExact, cost: cost?.picodollars, status: status,
                scopes: account.scopes),
            usage: usage, account: account, reservation: reservation, llm: llm)
    }

    /// `usage` as `llm_end`, `llm_error` and replies carry it.
    func json(_ usage: TokenUsage) -> JSONObject {
        var object: JSONObject = [
            "prompt_tokens": .int(Int64(usage.promptTokens)), "completion_tokens": .int(Int64(usage.completionTokens)),
            "total_tokens": .int(Int64(usage.totalTokens)), "cached_prompt_tokens": .int(Int64(usage.cachedPromptTokens)),
            "reasoning_tokens": .int(Int64(usage.reasoningTokens)), "source": .string(usage.source.rawValue),
            "cost": price.map { .double($0.cost(of: usage).dollars) } ?? .null,
        ]
        if usage.source == .estimated {
            object["exact"] = .bool(usage.isExact)
            object["encoding"] = usage.encoding.map(JSONValue.string) ?? .null
        }
        if price == nil { object["cost_unknown"] = .string(Billing.unpricedMessage(model)) }
        return object
    }
}

/// A finished call's usage, waiting to be written to the ledger.
struct PendingUsage: Sendable {
    var entry: UsageEntry
    var usage: TokenUsage
    var account: CallAccount
    var reservation: Reservation?
    /// The call's run, which `usage_recorded` is reported on.
    var llm: CallbackManager

    var amount: Amount { Amount(tokens: Int64(usage.totalTokens), cost: USD(picodollars: entry.cost ?? 0)) }
}

/// Prices, budgets and the usage ledger: every call reserves before it starts and is
/// recorded when it ends.
public final class Billing: Sendable {
    let database: SessionDatabase
    let counters: TokenCounters
    let settings: LiveSettings
    let logger: Logger
    /// `budget.set` on the daily budget: over `[Budget] DailyTokens=`/`DailyCost=`.
    private let dailyLimits = Mutex<BudgetLimit?>(nil)
    private let warnedUnpriced = Mutex<Set<String>>([])

    init(database: SessionDatabase, counters: TokenCounters, settings: LiveSettings, logger: Logger) {
        self.database = database
        self.counters = counters
        self.settings = settings
        self.logger = logger
    }

    static func unpricedMessage(_ model: String) -> String {
        "no price for model '\(model)': its cost is unknown; set [Model \(model)] InputPrice= and OutputPrice= in llmd.conf"
    }

    /// Loads the budgets set at runtime.
    func start() async throws(ProtocolError) {
        let stored = try await database.perform { store throws(StoreError) in try store.budgets() }
        database.budgets.withLock { book in
            for budget in stored {
                let limit = BudgetLimit(tokens: budget.tokens, cost: budget.cost.map(USD.init(picodollars:)))
                switch budget.kind {
                case BudgetKind.session.rawValue: Int64(budget.key).map { book.setLimit(limit, for: .session($0)) }
                case BudgetKind.scope.rawValue: book.setLimit(limit, for: .scope(budget.key))
                default: setDailyOverride(limit)
                }
            }
        }
    }

    // MARK: Scopes

    /// Checks that `scopes` exist and are open, and adds their ancestors.
    ///
    /// - Throws: `scope.not_found`, `scope.ended`.
    func expand(scopes: [String]) async throws(ProtocolError) -> [String] {
        guard !scopes.isEmpty else { return [] }
        let outcome = try await database.perform { store throws(StoreError) -> Result<[String], ProtocolError> in
            var expanded: [String] = []
            for id in scopes {
                guard let scope = try store.scope(id: id) else { return .failure(Self.scopeNotFound(id)) }
                guard scope.ended == nil else {
                    return .failure(
                        ProtocolError(.scopeEnded, "scope \(id) has ended; its totals are final", detail: ["scope": .string(id)]))
                }
                var next: StoredScope? = scope
                while let current = next, !expanded.contains(current.id) {
                    expanded.append(current.id)
                    next = try current.parent.flatMap { parent throws(StoreError) in try store.scope(id: parent) }
                }
            }
            return .success(expanded)
        }
        return try outcome.get()
    }

    static func scopeNotFound(_ id: String) -> ProtocolError {
        ProtocolError(.scopeNotFound, "no scope \(id)", detail: ["scope": .string(id)])
    }

    // MARK: Calls

    /// Prices the call and reserves the most it can use on its budgets.
    ///
    /// A budgeted call without `max_tokens` is sent with `[Budget] ReplyTokens=` (or the
    /// room left in the context window, if less) as its limit, so its reservation bounds it.
    ///
    /// - Throws: `budget.exceeded`, reported first as a `budget_exceeded` event on `llm`.
    func open(
        _ account: CallAccount, model: String, provider: ResolvedProvider, input: ModelInput,
        options: inout GenerationOptions, llm: CallbackManager
    ) async throws(ProtocolError) -> CallBill {
        let current = settings.current
        let counter = counters.counter(model: model, models: current.models)
        let prompt: TurnPrompt
        switch input {
        case .messages(let messages):
            prompt = .chat(messages.map { ConversationMessage(ConversationMessage.Role(rawValue: $0.role) ?? .user, $0.content) })
        case .prompt(let text): prompt = .completion(text)
        }
        var bill = CallBill(
            account: account, model: model, provider: provider.name, counter: counter, prompt: prompt,
            price: price(of: model, provider: provider, current.prices), reservation: nil)
        let defaults = effectiveDefaults()
        let budgeted = database.budgets.withLock { book in
            book.defaults = defaults
            return !book.isUnlimited
        }
        guard budgeted else { return bill }

        let promptTokens = prompt.tokens(counter)
        let room = ContextWindow.tokens(for: model, configured: current.models.contextWindows).map { max(0, $0 - promptTokens) }
        let reply = options.maximumTokens ?? min(current.budget.replyTokens, room ?? .max)
        let needed = Amount(
            tokens: Int64(promptTokens + reply),
            cost: bill.price?.maximumCost(promptTokens: promptTokens, replyTokens: reply) ?? .zero)
        let keys = account.budgetKeys(at: Timestamp.nowMicroseconds())
        let costKnown = bill.price != nil
        let outcome = try await database.perform { store throws(StoreError) -> Result<Reservation?, BudgetExceeded> in
            try self.database.budgets.withLock { book throws(StoreError) in
                for key in book.unloaded(keys) { book.load(key, spent: try Self.spent(key, in: store)) }
                return Result { () throws(BudgetExceeded) in try book.reserve(needed, on: keys, costKnown: costKnown) }
            }
        }
        switch outcome {
        case .success(let reservation):
            bill.reservation = reservation
            if reservation != nil, options.maximumTokens == nil { options.maximumTokens = reply }
            return bill
        case .failure(let exceeded):
            let error = Self.exceededError(exceeded, account: account, promptTokens: promptTokens, replyTokens: reply)
            llm.emitNow(.budgetExceeded, error.detail)
            throw error
        }
    }

    /// `[Budget]`'s limits, with the daily limits `budget.set` may have set over them.
    func effectiveDefaults() -> [BudgetKind: BudgetLimit] {
        var defaults = settings.current.budget.defaults
        if let daily = dailyOverride { defaults[.daily] = daily.over(defaults[.daily]) }
        return defaults
    }

    var dailyOverride: BudgetLimit? { dailyLimits.withLock { $0 } }

    func setDailyOverride(_ limit: BudgetLimit?) {
        dailyLimits.withLock { $0 = limit }
    }

    /// What the ledger holds for a budget: the day's, the session's or the scope's calls.
    static func spent(_ key: BudgetKey, in store: SessionStore) throws(StoreError) -> Amount {
        let filter: UsageFilter
        switch key {
        case .daily(let day):
            let start = CalendarDay.start(of: day) ?? 0
            filter = UsageFilter(since: start, until: start + 86_400_000_000)
        case .session(let id): filter = UsageFilter(sessionID: id)
        case .scope(let id): filter = UsageFilter(scope: id)
        }
        let total = try store.usage(filter).total
        return Amount(tokens: total.totalTokens, cost: USD(picodollars: total.cost))
    }

    private static func exceededError(
        _ exceeded: BudgetExceeded, account: CallAccount, promptTokens: Int, replyTokens: Int
    ) -> ProtocolError {
        let budget: String
        var detail: JSONObject = ["kind": .string(exceeded.key.kind.rawValue), "reason": .string(exceeded.reason.rawValue)]
        switch exceeded.key {
        case .daily(let day):
            budget = "the daily budget (\(day), UTC)"
            detail["day"] = .string(day)
        case .session:
            budget = "the budget of session '\(account.session ?? "")'"
            detail["session"] = account.session.map(JSONValue.string) ?? .null
        case .scope(let id):
            budget = "the budget of scope \(id)"
            detail["scope"] = .string(id)
        }
        detail["max_tokens"] = exceeded.limit.tokens.map(JSONValue.int) ?? .null
        detail["max_cost"] = exceeded.limit.cost.map { .double($0.dollars) } ?? .null
        detail["spent"] = amountJSON(exceeded.spent)
        detail["reserved"] = amountJSON(exceeded.reserved)
        detail["needed"] = amountJSON(exceeded.needed)
        detail["prompt_tokens"] = .int(Int64(promptTokens))
        detail["reply_tokens"] = .int(Int64(replyTokens))
        let message: String
        switch exceeded.reason {
        case .tokens:
            message = "\(budget) of \(exceeded.limit.tokens ?? 0) tokens would be exceeded: \(exceeded.spent.tokens) spent, "
                + "\(exceeded.reserved.tokens) reserved by running calls, and this call may use \(exceeded.needed.tokens) "
                + "(prompt \(promptTokens) + reply up to \(replyTokens); a smaller --max-reply-tokens reserves less)"
        case .cost:
            message = "\(budget) of \(exceeded.limit.cost ?? .zero) would be exceeded: \(exceeded.spent.cost) spent, "
                + "\(exceeded.reserved.cost) reserved by running calls, and this call may cost \(exceeded.needed.cost)"
        case .priceUnknown:
            message = "\(budget) limits cost, and this model's price is unknown; set its price in llmd.conf"
        }
        return ProtocolError(.budgetExceeded, message, detail: detail)
    }

    static func amountJSON(_ amount: Amount) -> JSONValue {
        ["tokens": .int(amount.tokens), "cost": .double(amount.cost.dollars)]
    }

    /// The offline provider is free; other models are priced by configuration, then the
    /// built-in table, else unknown, with a warning once per model.
    private func price(of model: String, provider: ResolvedProvider, _ prices: PriceTable) -> Price? {
        if provider.configuration.kind == .fake { return .free }
        if let price = prices.price(for: model) { return price }
        if warnedUnpriced.withLock({ $0.insert(model).inserted }) { logger.warning("\(Self.unpricedMessage(model))") }
        return nil
    }

    /// Gives back a call's reservation when it recorded nothing.
    func release(_ bill: CallBill) async {
        guard let reservation = bill.reservation else { return }
        _ = try? await database.perform { _ throws(StoreError) in
            self.database.budgets.withLock { $0.release(reservation) }
        }
    }

    /// Records calls made outside any turn.
    func record(_ pending: [PendingUsage]) async throws(ProtocolError) {
        let entries = pending.map(\.entry)
        try await recording(pending) { store throws(StoreError) in ((), try store.record(entries)) }
    }

    /// Runs `write`, which stores `pending` in the ledger, counts the calls in their
    /// budgets, and reports each as `usage_recorded`.
    ///
    /// - Throws: `store.unavailable`: nothing was recorded, and the reservations are given back.
    @discardableResult
    func recording<Result: Sendable>(
        _ pending: [PendingUsage], _ write: @escaping @Sendable (SessionStore) throws(StoreError) -> (Result, [Int64])
    ) async throws(ProtocolError) -> Result {
        let result: Result
        let ids: [Int64]
        do throws(ProtocolError) {
            (result, ids) = try await database.perform { store throws(StoreError) in
                let written = try write(store)
                self.database.budgets.withLock { book in
                    for call in pending {
                        book.record(call.amount, keys: call.account.budgetKeys(at: call.entry.time), releasing: call.reservation)
                    }
                }
                return written
            }
        } catch {
            let reservations = pending.compactMap(\.reservation)
            _ = try? await database.perform { _ throws(StoreError) in
                self.database.budgets.withLock { book in reservations.forEach { book.release($0) } }
            }
            throw error
        }
        for (call, id) in zip(pending, ids) {
            var data = CallBill.usageEventFields(call)
            data["id"] = .int(id)
            call.llm.emitNow(.usageRecorded, data)
        }
        return result
    }
}

extension CallBill {
    /// `usage_recorded`'s data: the ledger row.
    static func usageEventFields(_ call: PendingUsage) -> JSONObject {
        var data: JSONObject = [
            "provider": .string(call.entry.provider), "model": .string(call.entry.model),
            "prompt_tokens": .int(call.entry.promptTokens), "completion_tokens": .int(call.entry.completionTokens),
            "total_tokens": .int(call.entry.promptTokens + call.entry.completionTokens),
            "cached_prompt_tokens": .int(call.entry.cachedTokens), "reasoning_tokens": .int(call.entry.reasoningTokens),
            "source": .string(call.entry.source), "exact": .bool(call.entry.exact), "status": .string(call.entry.status),
            "cost": call.entry.cost.map { .double(USD(picodollars: $0).dollars) } ?? .null,
            "scopes": .array(call.entry.scopes.map(JSONValue.string)),
        ]
        if let turn = call.entry.turnID { data["turn_id"] = .int(turn) }
        if call.entry.cost == nil { data["cost_unknown"] = .string(Billing.unpricedMessage(call.entry.model)) }
        return data
    }
}

extension [ModelConfiguration] {
    /// `[Model NAME] ContextWindow=` by model name.
    var contextWindows: [String: Int] {
        Dictionary(compactMap { model in model.contextWindow.map { (model.name, $0) } }) { $1 }
    }
}
