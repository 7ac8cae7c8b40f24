// MARK: - scope.begin, scope.end, scope.show

/// `scope.begin`: a scope that sums the usage of the calls naming it.
public enum ScopeBeginMethod: TypedMethod {
    public static let method = ProtocolMethod.scopeBegin
    public typealias Result = ScopeShowMethod.Result

    public struct Params: MethodParameters, Equatable {
        public enum Key: String, CaseIterable { case name, parent, maxTokens = "max_tokens", maxCost = "max_cost" }
        public var name: String?
        /// The id of the scope to nest this one in.
        public var parent: String?
        /// The scope's budget; empty for none.
        public var limits: BudgetLimitChange

        public init(name: String? = nil, parent: String? = nil, limits: BudgetLimitChange = BudgetLimitChange()) {
            (self.name, self.parent, self.limits) = (name, parent, limits)
        }

        public init(json: JSONObject) throws(ProtocolError) {
            name = try json.string(Key.name)
            parent = try json.string(Key.parent)
            limits = try BudgetLimitChange(json: json)
        }

        public var json: JSONObject {
            var object = JSONObject([Key.name: name.map(JSONValue.string), Key.parent: parent.map(JSONValue.string)])
            limits.add(to: &object)
            return object
        }
    }
}

/// `scope.end`: no call may name the scope any more.
public enum ScopeEndMethod: TypedMethod {
    public static let method = ProtocolMethod.scopeEnd
    public typealias Params = ScopeShowMethod.Params
    public typealias Result = ScopeShowMethod.Result
}

/// `scope.show`: a scope and what its calls used.
public enum ScopeShowMethod: TypedMethod {
    public static let method = ProtocolMethod.scopeShow

    public struct Params: MethodParameters, Equatable {
        public enum Key: String, CaseIterable { case scope }
        /// Not empty.
        public var scope: String

        public init(scope: String) {
            self.scope = scope
        }

        public init(json: JSONObject) throws(ProtocolError) {
            guard let scope = try json.string(Key.scope), !scope.isEmpty else {
                throw .invalidParam(Key.scope.rawValue, expected: "a scope id", got: json[Key.scope])
            }
            self.scope = scope
        }

        public var json: JSONObject { [Key.scope.rawValue: .string(scope)] }
    }

    /// A scope with its totals: its nested scopes' calls included, its ancestors' not.
    public struct Result: JSONObjectConvertible, Equatable {
        public var scope: String
        public var name: String?
        public var parent: String?
        /// Microseconds since the Unix epoch.
        public var created: Int64
        /// Nil while the scope is open.
        public var ended: Int64?
        public var totals: UsageMethod.Totals
        /// Nil when the scope has no budget.
        public var budget: BudgetShowMethod.Limits?

        public init(
            scope: String, name: String?, parent: String?, created: Int64, ended: Int64?, totals: UsageMethod.Totals,
            budget: BudgetShowMethod.Limits?
        ) {
            (self.scope, self.name, self.parent, self.created, self.ended) = (scope, name, parent, created, ended)
            (self.totals, self.budget) = (totals, budget)
        }

        public init(json: JSONObject) throws(ProtocolError) {
            scope = try json.requiredString("scope")
            name = try json.string("name")
            parent = try json.string("parent")
            created = try json.requiredInt("created")
            ended = try json.int("ended")
            totals = try UsageMethod.Totals(json: try json.requiredObject("totals"))
            budget = try json.object("budget").map { object throws(ProtocolError) in try BudgetShowMethod.Limits(json: object) }
        }

        public var json: JSONObject {
            var object: JSONObject = [
                "scope": .string(scope), "name": name.map(JSONValue.string) ?? .null, "parent": parent.map(JSONValue.string) ?? .null,
                "created": .int(created), "ended": ended.map(JSONValue.int) ?? .null, "totals": .object(totals.json),
            ]
            object["budget"] = budget.map { .object($0.json) }
            return object
        }
    }
}

// MARK: - usage

/// How `usage` groups its rows.
public enum UsageGrouping: String, Sendable, CaseIterable {
    case session
    case model
    case provider
    /// UTC days.
    case day
    /// A call in nested scopes counts to each of them.
    case scope
    /// Where the counts came from: `provider`, `estimated` or `reported`.
    case source
}


/// `usage`: sums of the usage ledger, in total and, if asked, by group.
public enum UsageMethod: TypedMethod {
    public static let method = ProtocolMethod.usage

    public struct Params: MethodParameters, Equatable {
        public enum Key: String, CaseIterable { case session, scope, model, since, until, by }
        public var session: String?
        public var scope: String?
        public var model: String?
        /// Microseconds since the Unix epoch, inclusive.
        public var since: Int64?
        /// Microseconds since the Unix epoch, exclusive.
        public var until: Int64?
        /// `session`, `model`, `provider`, `day`, `scope` or `source`: the daemon checks it,
        /// as the groupings are the ledger's.
        public var by: String?

        public init(
            session: String? = nil, scope: String? = nil, model: String? = nil, since: Int64? = nil, until: Int64? = nil,
            by: String? = nil
        ) {
            (self.session, self.scope, self.model, self.since, self.until, self.by) = (session, scope, model, since, until, by)
        }

        public init(json: JSONObject) throws(ProtocolError) {
            scope = try json.string(Key.scope)
            model = try json.string(Key.model)
            since = try json.int(Key.since)
            until = try json.int(Key.until)
            by = try json.string(Key.by)
            session = try json.string(Key.session)
        }

        public var json: JSONObject {
            JSONObject([
                Key.session: session.map(JSONValue.string), Key.scope: scope.map(JSONValue.string),
                Key.model: model.map(JSONValue.string), Key.since: since.map(JSONValue.int), Key.until: until.map(JSONValue.int),
                Key.by: by.map(JSONValue.string),
            ])
        }
    }

    public struct Result: JSONObjectConvertible, Equatable {
        public var total: Totals
        /// With `groups`, when grouped.
        public var by: String?
        public var groups: [Totals]?

        public init(total: Totals, by: String? = nil, groups: [Totals]? = nil) {
            (self.total, self.by, self.groups) = (total, by, groups)
        }

        public init(json: JSONObject) throws(ProtocolError) {
            total = try Totals(json: try json.requiredObject("total"))
            by = try json.string("by")
            groups = try json.objects("groups")
        }

        public var json: JSONObject {
            var object: JSONObject = ["total": .object(total.json)]
            object["by"] = by.map(JSONValue.string)
            object["groups"] = groups.map(JSONValue.objects)
            return object
        }
    }

    /// Ledger sums, named as LangChain's `get_openai_callback` names them.
    public struct Totals: JSONObjectConvertible, Equatable {
        public var requests: Int64
        public var promptTokens: Int64
        public var completionTokens: Int64
        public var totalTokens: Int64
        public var cachedPromptTokens: Int64
        public var reasoningTokens: Int64
        /// US dollars, over the calls whose cost is known.
        public var cost: Double
        /// Calls whose cost is unknown, left out of `cost`.
        public var unpricedRequests: Int64
        /// Calls whose counts the daemon estimated.
        public var estimatedRequests: Int64
        /// A group's: what it is grouped by; nil for the total, and for calls without a session.
        public var key: String?
        /// A scope's name, when it has one.
        public var name: String?
        /// A deleted session's group.
        public var deleted: Bool
        /// With `deleted`: RFC 3339; nil when an earlier llmd did not record it.
        public var deletedAt: String?

        public init(
            requests: Int64 = 0, promptTokens: Int64 = 0, completionTokens: Int64 = 0, totalTokens: Int64 = 0,
            cachedPromptTokens: Int64 = 0, reasoningTokens: Int64 = 0, cost: Double = 0, unpricedRequests: Int64 = 0,
            estimatedRequests: Int64 = 0, key: String? = nil, name: String? = nil, deleted: Bool = false, deletedAt: String? = nil
        ) {
            self.requests = requests
            self.promptTokens = promptTokens
            self.completionTokens = completionTokens
            self.totalTokens = totalTokens
            self.cachedPromptTokens = cachedPromptTokens
            self.reasoningTokens = reasoningTokens
            self.cost = cost
            self.unpricedRequests = unpricedRequests
            self.estimatedRequests = estimatedRequests
            self.key = key
            self.name = name
            self.deleted = deleted
            self.deletedAt = deletedAt
        }

        public init(json: JSONObject) throws(ProtocolError) {
            requests = try json.requiredInt("requests")
            promptTokens = try json.requiredInt("prompt_tokens")
            completionTokens = try json.requiredInt("completion_tokens")
            totalTokens = try json.requiredInt("total_tokens")
            cachedPromptTokens = try json.requiredInt("cached_prompt_tokens")
            reasoningTokens = try json.requiredInt("reasoning_tokens")
            guard let cost = try json.double("cost") else { throw .invalidParam("cost", expected: "a number", got: nil) }
            self.cost = cost
            unpricedRequests = try json.requiredInt("unpriced_requests")
            estimatedRequests = try json.requiredInt("estimated_requests")
            key = try json.string("key")
            name = try json.string("name")
            deleted = try json.bool("deleted") ?? false
            deletedAt = try json.string("deleted_at")
        }

        public var json: JSONObject {
            var object: JSONObject = [
                "requests": .int(requests), "prompt_tokens": .int(promptTokens), "completion_tokens": .int(completionTokens),
                "total_tokens": .int(totalTokens), "cached_prompt_tokens": .int(cachedPromptTokens),
                "reasoning_tokens": .int(reasoningTokens), "cost": .double(cost), "unpriced_requests": .int(unpricedRequests),
                "estimated_requests": .int(estimatedRequests),
            ]
            object["key"] = key.map(JSONValue.string)
            object["name"] = name.map(JSONValue.string)
            if deleted {
                object["deleted"] = true
                object["deleted_at"] = deletedAt.map(JSONValue.string) ?? .null
            }
            return object
        }
    }
}

// MARK: - budget.set, budget.show

/// A budget as parameters name it: `session`, `scope`, or `daily: true`.
public enum BudgetName: Sendable, Equatable {
    /// The session of that name.
    case session(String)
    /// The scope of that id.
    case scope(String)
    /// The daemon-wide budget of each UTC day.
    case daily

    public enum Key: String, CaseIterable { case session, scope, daily }

    /// - Throws: `request.invalid_params` when `json` names none (the first given wins).
    public init(json: JSONObject) throws(ProtocolError) {
        if let session = try json.string(Key.session) {
            self = .session(session)
        } else if let scope = try json.string(Key.scope) {
            self = .scope(scope)
        } else if try json.bool(Key.daily) == true {
            self = .daily
        } else {
            throw ProtocolError(.invalidParams, "name a budget: 'session', 'scope', or 'daily': true", detail: ["field": "session"])
        }
    }

    /// Adds the name's member to `object`.
    public func add(to object: inout JSONObject) {
        switch self {
        case .session(let name): object[Key.session] = .string(name)
        case .scope(let id): object[Key.scope] = .string(id)
        case .daily: object[Key.daily] = true
        }
    }
}

/// `max_tokens` and `max_cost`, as `budget.set` and `scope.begin` take them: each nil when
/// absent (the limit stays as it was), `.some(nil)` for null (the limit set is removed),
/// or a positive number (the limit).
public struct BudgetLimitChange: Sendable, Equatable {
    public enum Key: String, CaseIterable { case maxTokens = "max_tokens", maxCost = "max_cost" }
    public var maxTokens: Int64??
    /// US dollars.
    public var maxCost: Double??

    public init(maxTokens: Int64?? = nil, maxCost: Double?? = nil) {
        (self.maxTokens, self.maxCost) = (maxTokens, maxCost)
    }

    public init(json: JSONObject) throws(ProtocolError) {
        maxTokens = try json.change(Key.maxTokens.rawValue) { json throws(ProtocolError) in
            let tokens = try json.int(Key.maxTokens)
            guard tokens.map({ $0 > 0 }) ?? true else {
                throw .invalidParam(Key.maxTokens.rawValue, expected: "a positive number of tokens, or null", got: json[Key.maxTokens])
            }
            return tokens
        }
        maxCost = try json.change(Key.maxCost.rawValue) { json throws(ProtocolError) in
            let dollars = try json.double(Key.maxCost)
            guard dollars.map({ $0 > 0 }) ?? true else { throw Self.invalidCost(got: json[Key.maxCost]) }
            return dollars
        }
    }

    /// Neither limit given.
    public var isEmpty: Bool { maxTokens == nil && maxCost == nil }

    /// The error for a cost that is not a positive amount of USD: the daemon gives it too
    /// for one it cannot hold exactly.
    public static func invalidCost(got: JSONValue?) -> ProtocolError {
        .invalidParam(Key.maxCost.rawValue, expected: "a positive amount of USD, or null", got: got)
    }

    /// Adds the limits given to `object`, null for those removed.
    public func add(to object: inout JSONObject) {
        object[Key.maxTokens] = maxTokens.map { $0.map(JSONValue.int) ?? .null }
        object[Key.maxCost] = maxCost.map { $0.map(JSONValue.double) ?? .null }
    }
}

/// `budget.set`: a budget's limits, kept in the session database.
public enum BudgetSetMethod: TypedMethod {
    public static let method = ProtocolMethod.budgetSet
    /// The budget set, as `budget.show` shows it.
    public typealias Result = BudgetShowMethod.Result

    public struct Params: MethodParameters, Equatable {
        public enum Key: String, CaseIterable {
            case session, scope, daily, maxTokens = "max_tokens", maxCost = "max_cost"
        }
        public var budget: BudgetName
        /// Not empty.
        public var limits: BudgetLimitChange

        public init(budget: BudgetName, limits: BudgetLimitChange) {
            (self.budget, self.limits) = (budget, limits)
        }

        public init(json: JSONObject) throws(ProtocolError) {
            budget = try BudgetName(json: json)
            limits = try BudgetLimitChange(json: json)
            guard !limits.isEmpty else {
                throw ProtocolError(
                    .invalidParams, "give 'max_tokens' or 'max_cost' (null removes a limit)", detail: ["field": "max_tokens"])
            }
        }

        public var json: JSONObject {
            var object: JSONObject = [:]
            budget.add(to: &object)
            limits.add(to: &object)
            return object
        }
    }
}

/// `budget.show`: budgets with their limits and what is spent.
public enum BudgetShowMethod: TypedMethod {
    public static let method = ProtocolMethod.budgetShow

    public struct Params: MethodParameters, Equatable {
        public typealias Key = BudgetName.Key
        /// Nil for today's daily budget and every budget set at runtime.
        public var budget: BudgetName?

        public init(budget: BudgetName? = nil) {
            self.budget = budget
        }

        public init(json: JSONObject) throws(ProtocolError) {
            // A member given, even null, names a budget: one that names none is an error.
            budget = Key.allCases.contains { json[$0] != nil } ? try BudgetName(json: json) : nil
        }

        public var json: JSONObject {
            var object: JSONObject = [:]
            budget?.add(to: &object)
            return object
        }
    }

    public struct Result: JSONObjectConvertible, Equatable {
        public var budgets: [Budget]

        public init(budgets: [Budget]) {
            self.budgets = budgets
        }

        public init(json: JSONObject) throws(ProtocolError) {
            guard let budgets = try json.objects("budgets", as: Budget.self) else {
                throw .invalidParam("budgets", expected: "an array of objects", got: nil)
            }
            self.budgets = budgets
        }

        public var json: JSONObject { ["budgets": .objects(budgets)] }
    }

    /// The limits in force: nil for none.
    public struct Limits: JSONObjectConvertible, Equatable {
        public var maxTokens: Int64?
        /// US dollars.
        public var maxCost: Double?

        public init(maxTokens: Int64?, maxCost: Double?) {
            (self.maxTokens, self.maxCost) = (maxTokens, maxCost)
        }

        public init(json: JSONObject) throws(ProtocolError) {
            maxTokens = try json.int("max_tokens")
            maxCost = try json.double("max_cost")
        }

        public var json: JSONObject {
            ["max_tokens": maxTokens.map(JSONValue.int) ?? .null, "max_cost": maxCost.map(JSONValue.double) ?? .null]
        }
    }

    /// Tokens and US dollars, spent or reserved.
    public struct Amount: JSONObjectConvertible, Equatable {
        public var tokens: Int64
        public var cost: Double

        public init(tokens: Int64, cost: Double) {
            (self.tokens, self.cost) = (tokens, cost)
        }

        public init(json: JSONObject) throws(ProtocolError) {
            tokens = try json.requiredInt("tokens")
            guard let cost = try json.double("cost") else { throw .invalidParam("cost", expected: "a number", got: nil) }
            self.cost = cost
        }

        public var json: JSONObject { ["tokens": .int(tokens), "cost": .double(cost)] }
    }

    /// One budget: whose, its limits, what the ledger holds on it and what running calls do.
    public struct Budget: JSONObjectConvertible, Equatable {
        public enum Kind: Sendable, Equatable {
            /// The UTC day, such as `2026-11-21`.
            case daily(day: String)
            /// The session's name.
            case session(String)
            /// The scope's id.
            case scope(String)
        }

        public var kind: Kind
        public var limits: Limits
        public var spent: Amount
        public var reserved: Amount

        public init(kind: Kind, limits: Limits, spent: Amount, reserved: Amount) {
            (self.kind, self.limits, self.spent, self.reserved) = (kind, limits, spent, reserved)
        }

        public init(json: JSONObject) throws(ProtocolError) {
            switch try json.requiredString("kind") {
            case "daily": kind = .daily(day: try json.requiredString("day"))
            case "session": kind = .session(try json.requiredString("session"))
            case "scope": kind = .scope(try json.requiredString("scope"))
            case let other: throw .invalidParam("kind", expected: "daily, session or scope", got: .string(other))
            }
            limits = try Limits(json: json)
            spent = try Amount(json: try json.requiredObject("spent"))
            reserved = try Amount(json: try json.requiredObject("reserved"))
        }

        public var json: JSONObject {
            var object: JSONObject
            switch kind {
            case .daily(let day): object = ["kind": "daily", "day": .string(day)]
            case .session(let name): object = ["kind": "session", "session": .string(name)]
            case .scope(let id): object = ["kind": "scope", "scope": .string(id)]
            }
            for member in limits.json { object[member.key] = member.value }
            object["spent"] = .object(spent.json)
            object["reserved"] = .object(reserved.json)
            return object
        }
    }
}

// MARK: - tokens.count

/// `tokens.count`: tokens counted as the daemon counts them.
public enum TokensCountMethod: TypedMethod {
    public static let method = ProtocolMethod.tokensCount

    public struct Params: MethodParameters, Equatable {
        public enum Key: String, CaseIterable { case text, messages, prompt, model, encoding, ids }
        /// `text` or `messages`; `prompt` is read only to be refused.
        public var input: PromptInput
        /// Default `gpt-4o`.
        public var model: String?
        /// A tiktoken encoding's name, instead of the model's: the daemon checks it.
        public var encoding: String?
        /// With a `text`: give its token ids too.
        public var ids: Bool?

        public init(input: PromptInput, model: String? = nil, encoding: String? = nil, ids: Bool? = nil) {
            (self.input, self.model, self.encoding, self.ids) = (input, model, encoding, ids)
        }

        public init(json: JSONObject) throws(ProtocolError) {
            model = try json.string(Key.model)
            encoding = try json.string(Key.encoding)
            input = try PromptInput(json: json)
            ids = try json.bool(Key.ids)
        }

        public var json: JSONObject {
            var object = JSONObject([
                Key.model: model.map(JSONValue.string), Key.encoding: encoding.map(JSONValue.string), Key.ids: ids.map(JSONValue.bool),
            ])
            input.add(to: &object)
            return object
        }
    }

    public struct Result: JSONObjectConvertible, Equatable {
        public var tokens: Int64
        /// Nil when the count is an estimate.
        public var encoding: String?
        /// False when another encoding stood in for the model's, or the count is an estimate.
        public var exact: Bool
        public var model: String
        /// When asked for.
        public var ids: [Int64]?
        /// Where the daemon looked for a vocabulary: given when it found none and the count
        /// is an estimate (`estimated: true`).
        public var vocabulary: Vocabulary?

        public init(
            tokens: Int64, encoding: String?, exact: Bool, model: String, ids: [Int64]? = nil, vocabulary: Vocabulary? = nil
        ) {
            (self.tokens, self.encoding, self.exact, self.model) = (tokens, encoding, exact, model)
            (self.ids, self.vocabulary) = (ids, vocabulary)
        }

        public init(json: JSONObject) throws(ProtocolError) {
            tokens = try json.requiredInt("tokens")
            encoding = try json.string("encoding")
            exact = try json.requiredBool("exact")
            model = try json.requiredString("model")
            switch json["ids"] {
            case nil, .null?: ids = nil
            case .array(let values)? where values.allSatisfy({ $0.integerLiteralValue != nil }):
                ids = values.compactMap(\.integerLiteralValue)
            case let other?: throw .invalidParam("ids", expected: "an array of integers", got: other)
            }
            vocabulary = try json.bool("estimated") == true ? try Vocabulary(json: try json.requiredObject("vocabulary")) : nil
        }

        public var json: JSONObject {
            var object: JSONObject = [
                "tokens": .int(tokens), "encoding": encoding.map(JSONValue.string) ?? .null, "exact": .bool(exact),
                "model": .string(model),
            ]
            object["ids"] = ids.map { .array($0.map(JSONValue.int)) }
            if let vocabulary {
                object["estimated"] = true
                object["vocabulary"] = .object(vocabulary.json)
            }
            return object
        }
    }

    /// Where the daemon looked for vocabulary files, and how to get exact counts.
    public struct Vocabulary: JSONObjectConvertible, Equatable {
        public var searched: [String]
        /// A sentence.
        public var hint: String

        public init(searched: [String], hint: String) {
            (self.searched, self.hint) = (searched, hint)
        }

        public init(json: JSONObject) throws(ProtocolError) {
            guard let searched = try json.strings("searched") else {
                throw .invalidParam("searched", expected: "an array of strings", got: nil)
            }
            self.searched = searched
            hint = try json.requiredString("hint")
        }

        public var json: JSONObject { ["searched": .array(searched.map(JSONValue.string)), "hint": .string(hint)] }
    }
}
