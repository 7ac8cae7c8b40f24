import LLMDCore
import LLMDEvents
import LLMDMemory
import LLMDMetrics
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
    /// The prompt's tokens, once counted (to reserve, or to estimate).
    var promptTokens: Int?
    /// Nil when the model's price is unknown.
    var price: Price?
    var reservation: Reservation?

    /// The provider's counts when it sent them; else counted here, from the prompt and
    /// the text received.
    func usage(_ counts: TokenUsage?, received text: String) -> TokenUsage {
        counts ?? .estimated(promptTokens: promptTokens ?? prompt.tokens(counter), received: text, counter: counter)
    }

    /// The ledger row of the call's `usage`, made as the call ends.
    func pending(_ usage: TokenUsage, status: String, llm: CallbackManager) -> PendingUsage {
        PendingUsage(
            usage, model: model, provider: provider, price: price, status: status, account: account, reservation: reservation,
            llm: llm)
    }
}

/// A finished call's usage, waiting to be written to the ledger.
struct PendingUsage: Sendable {
    var entry: UsageEntry
    /// The usage as `llm_end`, `llm_error`, replies and `usage_recorded` carry it.
    var reported: CallUsage
    var account: CallAccount
    var reservation: Reservation?
    /// The call's run, which `usage_recorded` is reported on.
    var llm: CallbackManager

    /// `usage` of a call to `model`, made now in `llm`'s run, at `price` (nil: its cost is unknown).
    init(
        _ usage: TokenUsage, model: String, provider: String, price: Price?, status: String, account: CallAccount,
        reservation: Reservation?, llm: CallbackManager
    ) {
        let cost = price?.cost(of: usage)
        entry = UsageEntry(
            time: Timestamp.nowMicroseconds(), sessionID: account.sessionID, session: account.session, turnID: account.turnID,
            runID: llm.runID, parentRunID: llm.parentRunID, provider: provider, model: model, usage: usage,
            cost: cost?.picodollars, status: status, scopes: account.scopes)
        reported = CallUsage(tokens: usage, cost: cost?.dollars, costUnknown: cost == nil ? Billing.unpricedMessage(model) : nil)
        self.account = account
        self.reservation = reservation
        self.llm = llm
    }

    var usage: TokenUsage { entry.usage }
    var amount: Amount { Amount(tokens: Int64(usage.totalTokens), cost: USD(picodollars: entry.cost ?? 0)) }
}

/// Prices, budgets and the usage ledger: every call reserves before it starts and is
/// recorded when it ends.
public final class Billing: Sendable {
    let database: SessionDatabase
    let counters: TokenCounters
    let settings: LiveSettings
    let metrics: DaemonMetrics
    let logger: Logger
    private let warnedUnpriced = Mutex<Set<String>>([])
    /// How many unpriced models are warned about, each once: clients that report their own
    /// runs (`run.event`) name any models they like, and neither memory nor the journal may
    /// grow with them.
    static let unpricedWarningLimit = 256

    init(database: SessionDatabase, counters: TokenCounters, settings: LiveSettings, metrics: DaemonMetrics, logger: Logger) {
        self.database = database
        self.counters = counters
        self.settings = settings
        self.metrics = metrics
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
                guard let key = BudgetKey(budget) else { continue }
                book.setLimit(BudgetLimit(tokens: budget.tokens, cost: budget.cost.map(USD.init(picodollars:))), for: key)
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
        let budgeted = database.budgets.withLock { book in
            book.defaults = current.budget.defaults
            return !book.isUnlimited
        }
        guard budgeted else { return bill }

        let promptTokens = prompt.tokens(counter)
        bill.promptTokens = promptTokens
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
            metrics.budgetRefused(kind: exceeded.key.kind.rawValue, reason: exceeded.reason.rawValue)
            let error = Self.exceededError(exceeded, account: account, promptTokens: promptTokens, replyTokens: reply)
            llm.emitNow(.budgetExceeded, error.detail)
            throw error
        }
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
        for member in BudgetShowMethod.Limits(exceeded.limit).json { detail[member.key] = member.value }
        detail["spent"] = .object(BudgetShowMethod.Amount(exceeded.spent).json)
        detail["reserved"] = .object(BudgetShowMethod.Amount(exceeded.reserved).json)
        detail["needed"] = .object(BudgetShowMethod.Amount(exceeded.needed).json)
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

    /// The offline provider is free; other models are priced by ``price(of:_:)``.
    private func price(of model: String, provider: ResolvedProvider, _ prices: PriceTable) -> Price? {
        provider.server.isFree ? .free : price(of: model, prices)
    }

    /// A model's price from configuration, then the built-in table, else unknown, with a
    /// warning once per model, for the first ``unpricedWarningLimit`` models.
    private func price(of model: String, _ prices: PriceTable) -> Price? {
        if let price = prices.price(for: model) { return price }
        let warning = warnedUnpriced.withLock { warned -> String? in
            guard warned.count < Self.unpricedWarningLimit, warned.insert(model).inserted else { return nil }
            guard warned.count == Self.unpricedWarningLimit else { return Self.unpricedMessage(model) }
            return Self.unpricedMessage(model)
                + "; that makes \(Self.unpricedWarningLimit) models without a price: no more such warnings until llmd restarts"
        }
        if let warning { logger.warning("\(warning)") }
        return nil
    }

    /// The ledger row of the usage an external run reported with its `llm_end`
    /// (`run.event`): priced as llmd's own calls are, but neither reserved nor checked
    /// against a budget, since its tokens are spent already; recording it counts them to
    /// its budgets all the same, so later calls see them.
    func reported(_ usage: ReportedUsage, provider: String, account: CallAccount, run: CallbackManager) -> PendingUsage {
        PendingUsage(
            usage.tokens, model: usage.model, provider: provider, price: price(of: usage.model, settings.current.prices),
            status: "completed", account: account, reservation: nil, llm: run)
    }

    /// Gives back a call's reservation when it recorded nothing.
    func release(_ bill: CallBill) async {
        guard let reservation = bill.reservation else { return }
        _ = try? await database.perform { _ throws(StoreError) in
            self.database.budgets.withLock { $0.release(reservation) }
        }
    }

    /// Makes a finished call's reservation hold what it used, until it is recorded.
    func resize(_ pending: PendingUsage) async -> PendingUsage {
        guard let reservation = pending.reservation else { return pending }
        var resized = pending
        resized.reservation = try? await database.perform { _ throws(StoreError) in
            self.database.budgets.withLock { $0.resize(reservation, to: pending.amount) }
        }
        return resized
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
        let labels = settings.current.metricLabels
        for call in pending {
            metrics.usageRecorded(
                provider: labels.provider(call.entry.provider), model: labels.model(call.entry.model), call.usage,
                costUSD: call.entry.cost.map { Double($0) / 1e12 })
        }
        for (call, id) in zip(pending, ids) {
            var data = call.reported.json
            data["id"] = .int(id)
            data["provider"] = .string(call.entry.provider)
            data["model"] = .string(call.entry.model)
            data["status"] = .string(call.entry.status)
            data["scopes"] = .array(call.entry.scopes.map(JSONValue.string))
            if let turn = call.entry.turnID { data["turn_id"] = .int(turn) }
            call.llm.emitNow(.usageRecorded, data)
        }
        return result
    }
}

extension BudgetKey {
    /// The row of the `budgets` table that keeps `limit`, set at runtime for this budget.
    func stored(_ limit: BudgetLimit) -> StoredBudget {
        let key: String
        switch limitKey {
        case .daily(let day): key = day
        case .session(let id): key = String(id)
        case .scope(let id): key = id
        }
        return StoredBudget(kind: kind.rawValue, key: key, tokens: limit.tokens, cost: limit.cost?.picodollars)
    }

    /// The budget a row of the `budgets` table is about.
    init?(_ stored: StoredBudget) {
        switch BudgetKind(rawValue: stored.kind) {
        case .daily?: self = .everyDay
        case .session?:
            guard let id = Int64(stored.key) else { return nil }
            self = .session(id)
        case .scope?: self = .scope(stored.key)
        case nil: return nil
        }
    }
}
