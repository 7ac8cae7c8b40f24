// The event methods: `publish` and `run.event`, registered methods, and `subscribe`,
// `unsubscribe`, `ack` and `cancel`, which the connection answers itself.

/// `publish`: a `custom` event from a client, as LangChain's `dispatch_custom_event`.
public enum PublishMethod: TypedMethod {
    public static let method = ProtocolMethod.publish

    public struct Params: MethodParameters, Equatable {
        public enum Key: String, CaseIterable {
            case name, data, session
            case runID = "run_id"
            case parentRunID = "parent_run_id"
            case tags, metadata
        }

        /// The custom event's name, sent as `data.name`; never empty.
        public var name: String
        /// Any value but null, sent as `data.data`.
        public var data: JSONValue?
        public var session: String?
        /// The event's run; nil has the daemon make one.
        public var runID: String?
        public var parentRunID: String?
        public var tags: [String]?
        public var metadata: JSONObject?

        public init(
            name: String, data: JSONValue? = nil, session: String? = nil, runID: String? = nil, parentRunID: String? = nil,
            tags: [String]? = nil, metadata: JSONObject? = nil
        ) {
            self.name = name
            self.data = data
            self.session = session
            self.runID = runID
            self.parentRunID = parentRunID
            self.tags = tags
            self.metadata = metadata
        }

        public init(json: JSONObject) throws(ProtocolError) {
            guard let name = try json.string(Key.name), !name.isEmpty else {
                throw .invalidParam(Key.name.rawValue, expected: "the custom event's name", got: json[Key.name])
            }
            self.name = name
            switch json[Key.data] {
            case nil, .null?: data = nil
            case let value?: data = value
            }
            session = try json.string(Key.session)
            runID = try json.string(Key.runID)
            parentRunID = try json.string(Key.parentRunID)
            tags = try json.strings(Key.tags)
            metadata = try json.object(Key.metadata)
        }

        public var json: JSONObject {
            JSONObject([
                Key.name: .string(name), Key.data: data, Key.session: session.map(JSONValue.string),
                Key.runID: runID.map(JSONValue.string), Key.parentRunID: parentRunID.map(JSONValue.string),
                Key.tags: tags.map { .array($0.map(JSONValue.string)) }, Key.metadata: metadata.map(JSONValue.object),
            ])
        }
    }

    public struct Result: JSONObjectConvertible, Equatable {
        /// The event's seq.
        public var seq: UInt64
        public var runID: String

        public init(seq: UInt64, runID: String) {
            (self.seq, self.runID) = (seq, runID)
        }

        public init(json: JSONObject) throws(ProtocolError) {
            seq = try json.requiredSeq("seq")
            runID = try json.requiredString("run_id")
        }

        public var json: JSONObject { ["seq": .int(Int64(seq)), "run_id": .string(runID)] }
    }
}

/// `run.event`: one callback event of a run a program made itself, not through llmd, so
/// that it shows beside llmd's own; an `llm_end` with usage is recorded in the ledger.
public enum RunEventMethod: TypedMethod {
    public static let method = ProtocolMethod.runEvent

    /// What an external run may report: the events of LangChain's LLM and chain runs, not
    /// llmd's own about sessions, the ledger or subscribers.
    public static let eventTypes: [EventType] = [
        .chainStart, .chainEnd, .chainError, .chatModelStart, .llmStart, .llmNewToken, .llmEnd, .llmError, .retry, .text,
    ]

    public struct Params: MethodParameters, Equatable {
        public enum Key: String, CaseIterable {
            case event
            case runID = "run_id"
            case parentRunID = "parent_run_id"
            case session, tags, metadata, data, source, scopes
        }

        // What the initialiser checks is constant: `usage` is what `event` and `data` say.
        public let event: EventType
        /// The external run's own id; never empty.
        public let runID: String
        public var parentRunID: String?
        /// A label, as for `publish`; the ledger row's too.
        public var session: String?
        public var tags: [String]
        public var metadata: JSONObject
        /// The event's data, in llmd's shape for its type.
        public let data: JSONObject
        /// What reported the run, such as `langchain`: `data.external.source`; never empty.
        public let source: String
        /// The scopes reported usage counts to.
        public var scopes: [String]
        /// `data`'s usage, for an `llm_end` that has one.
        public let usage: ReportedUsage?

        /// - Throws: `request.invalid_params` for a type an external run cannot report, an
        ///   empty `run_id` or `source`, an `llm_new_token` without its token, or an
        ///   `llm_end` whose usage is not one (``ReportedUsage/read(llmEnd:)``).
        public init(
            event: EventType, runID: String, parentRunID: String? = nil, session: String? = nil, tags: [String] = [],
            metadata: JSONObject = [:], data: JSONObject = [:], source: String = "external", scopes: [String] = []
        ) throws(ProtocolError) {
            guard Self.reportable(event) else { throw Self.unreportable(.string(event.rawValue)) }
            guard !runID.isEmpty else {
                throw .invalidParam(Key.runID.rawValue, expected: "the run's id, a non-empty string", got: .string(runID))
            }
            guard !source.isEmpty else {
                throw .invalidParam(Key.source.rawValue, expected: "what reports the run, a non-empty string", got: .string(source))
            }
            if event == .llmNewToken, data["token"]?.stringValue == nil {
                throw .invalidParam("data.token", expected: "the token's text, a string", got: data["token"])
            }
            self.event = event
            self.runID = runID
            self.parentRunID = parentRunID
            self.session = session
            self.tags = tags
            self.metadata = metadata
            self.data = data
            self.source = source
            self.scopes = scopes
            usage = event == .llmEnd ? try ReportedUsage.read(llmEnd: data) : nil
        }

        public init(json: JSONObject) throws(ProtocolError) {
            guard let event = json[Key.event]?.stringValue.flatMap(EventType.init(rawValue:)), Self.reportable(event) else {
                throw Self.unreportable(json[Key.event])
            }
            guard let runID = try json.string(Key.runID) else {
                throw .invalidParam(Key.runID.rawValue, expected: "the run's id, a non-empty string", got: json[Key.runID])
            }
            try self.init(
                event: event, runID: runID, parentRunID: try json.string(Key.parentRunID), session: try json.string(Key.session),
                tags: try json.strings(Key.tags) ?? [], metadata: try json.object(Key.metadata) ?? [:],
                data: try json.object(Key.data) ?? [:], source: try json.string(Key.source) ?? "external",
                scopes: try json.strings(Key.scopes) ?? [])
        }

        public var json: JSONObject {
            JSONObject([
                Key.event: .string(event.rawValue), Key.runID: .string(runID), Key.parentRunID: parentRunID.map(JSONValue.string),
                Key.session: session.map(JSONValue.string), Key.tags: tags.isEmpty ? nil : .array(tags.map(JSONValue.string)),
                Key.metadata: metadata.isEmpty ? nil : .object(metadata), Key.data: data.isEmpty ? nil : .object(data),
                Key.source: .string(source), Key.scopes: scopes.isEmpty ? nil : .array(scopes.map(JSONValue.string)),
            ])
        }

        private static func reportable(_ event: EventType) -> Bool { RunEventMethod.eventTypes.contains(event) }

        private static func unreportable(_ got: JSONValue?) -> ProtocolError {
            let allowed = RunEventMethod.eventTypes.map(\.rawValue)
            let problem = got?.stringValue.map { "'\($0)' is not an event type an external run can report" } ?? "'event' is missing"
            return ProtocolError(
                .invalidParams, "\(problem): give one of \(allowed.joined(separator: ", "))",
                detail: ["field": .string(Key.event.rawValue), "allowed": .array(allowed.map(JSONValue.string))])
        }
    }

    public struct Result: JSONObjectConvertible, Equatable {
        /// The published event's seq.
        public var seq: UInt64
        public var runID: String
        /// The ledger row's usage, when the event's usage was recorded.
        public var usage: CallUsage?

        public init(seq: UInt64, runID: String, usage: CallUsage? = nil) {
            (self.seq, self.runID, self.usage) = (seq, runID, usage)
        }

        public init(json: JSONObject) throws(ProtocolError) {
            seq = try json.requiredSeq("seq")
            runID = try json.requiredString("run_id")
            usage = try json.object("usage").map { object throws(ProtocolError) in try CallUsage(json: object) }
        }

        public var json: JSONObject {
            var object: JSONObject = ["seq": .int(Int64(seq)), "run_id": .string(runID)]
            object["usage"] = usage.map { .object($0.json) }
            return object
        }
    }
}

/// The usage an external run reports with its `llm_end`: the tokens a model call it made
/// itself used, which the ledger records as `reported`.
public struct ReportedUsage: Sendable, Equatable {
    /// Counts whose source is `reported`.
    public var tokens: TokenUsage
    /// The model called, as the ledger names it.
    public var model: String
    /// The provider called; nil leaves it to what reported the run.
    public var provider: String?

    public init(tokens: TokenUsage, model: String, provider: String? = nil) {
        (self.tokens, self.model, self.provider) = (tokens, model, provider)
    }

    /// `data.usage` of an `llm_end`, with `data.model` and `data.provider`; nil when it has
    /// no usage, which is no error: such an event is only published.
    ///
    /// - Throws: `request.invalid_params` for counts that are not integers from 0 to
    ///   2^31 − 1; a `total_tokens` that is not their sum; cached or reasoning tokens beyond
    ///   the prompt or completion they are part of; or no `data.model`.
    public static func read(llmEnd data: JSONObject) throws(ProtocolError) -> ReportedUsage? {
        let usage: JSONObject
        switch data["usage"] {
        case nil, .null?: return nil
        case .object(let object)?: usage = object
        case let other?: throw .invalidParam("data.usage", expected: "an object of token counts", got: other)
        }
        // Bounded so that sums cannot overflow; no call uses two billion tokens.
        let expected = "a token count, an integer from 0 to 2147483647"
        func count(_ key: String, required: Bool = false) throws(ProtocolError) -> Int? {
            let field = "data.usage.\(key)"
            switch usage[key] {
            case nil, .null?:
                guard !required else { throw .invalidParam(field, expected: expected, got: nil) }
                return nil
            case let value?:
                guard let count = value.integerLiteralValue, (0...Int64(Int32.max)).contains(count) else {
                    throw .invalidParam(field, expected: expected, got: value)
                }
                return Int(count)
            }
        }
        func mismatch(_ key: String, _ message: String) -> ProtocolError {
            ProtocolError(.invalidParams, "data.usage.\(key) \(message)", detail: ["field": .string("data.usage.\(key)")])
        }
        let prompt = try count("prompt_tokens", required: true)!
        let completion = try count("completion_tokens", required: true)!
        let cached = try count("cached_prompt_tokens") ?? 0
        let reasoning = try count("reasoning_tokens") ?? 0
        if let total = try count("total_tokens"), total != prompt + completion {
            throw mismatch("total_tokens", "is \(total), not prompt_tokens + completion_tokens = \(prompt + completion)")
        }
        if cached > prompt {
            throw mismatch("cached_prompt_tokens", "is \(cached), more than the prompt_tokens (\(prompt)) that include them")
        }
        if reasoning > completion {
            throw mismatch("reasoning_tokens", "is \(reasoning), more than the completion_tokens (\(completion)) that include them")
        }
        guard let model = data["model"]?.stringValue, !model.isEmpty else {
            throw .invalidParam("data.model", expected: "the model called, a non-empty string", got: data["model"])
        }
        let provider: String?
        switch data["provider"] {
        case nil, .null?: provider = nil
        case .string(let name)? where !name.isEmpty: provider = name
        case let other?: throw .invalidParam("data.provider", expected: "the provider called, a non-empty string", got: other)
        }
        return ReportedUsage(
            tokens: TokenUsage(
                promptTokens: prompt, completionTokens: completion, cachedPromptTokens: cached, reasoningTokens: reasoning,
                source: .reported),
            model: model, provider: provider)
    }
}

/// `subscribe`: the events that match a filter, replayed from the journal if asked, then live.
public enum SubscribeMethod: TypedMethod {
    public static let method = ProtocolMethod.subscribe

    public struct Params: MethodParameters, Equatable {
        public enum Key: String, CaseIterable {
            case sessions, types, tags
            case runID = "run_id"
            case since
            case sinceTime = "since_time"
            case blocking
            case onLag = "on_lag"
        }

        /// What a subscription does after it lagged behind.
        public enum OnLag: String, Sendable {
            /// Replay the events it missed (the default).
            case resume
            /// Go on with live events.
            case skip
        }

        public var sessions: [String]?
        /// Event type names: which the daemon knows is its to say, so these stay strings.
        public var types: [String]?
        public var tags: [String]?
        public var runID: String?
        /// Replay the matching events after this seq first.
        public var since: UInt64?
        /// Replay from the first event at or after this time, microseconds since the epoch.
        public var sinceTime: Int64?
        /// Event type names whose events wait for this subscriber's `ack`.
        public var blocking: [String]?
        public var onLag: OnLag?

        public init(
            sessions: [String]? = nil, types: [String]? = nil, tags: [String]? = nil, runID: String? = nil,
            since: UInt64? = nil, sinceTime: Int64? = nil, blocking: [String]? = nil, onLag: OnLag? = nil
        ) {
            self.sessions = sessions
            self.types = types
            self.tags = tags
            self.runID = runID
            self.since = since
            self.sinceTime = sinceTime
            self.blocking = blocking
            self.onLag = onLag
        }

        /// - Throws: `request.invalid_params` for a wrong type, both `since` and
        ///   `since_time`, a negative `since`, or an `on_lag` that is neither value.
        public init(json: JSONObject) throws(ProtocolError) {
            types = try json.strings(Key.types)
            sessions = try json.strings(Key.sessions)
            tags = try json.strings(Key.tags)
            runID = try json.string(Key.runID)
            let since = try json.int(Key.since)
            sinceTime = try json.int(Key.sinceTime)
            guard since == nil || sinceTime == nil else {
                throw ProtocolError(.invalidParams, "pass 'since' or 'since_time', not both", detail: ["field": "since_time"])
            }
            self.since = try json.seq(Key.since.rawValue)
            blocking = try json.strings(Key.blocking)
            if let name = try json.string(Key.onLag) {
                guard let onLag = OnLag(rawValue: name) else {
                    throw .invalidParam(Key.onLag.rawValue, expected: "resume or skip", got: .string(name))
                }
                self.onLag = onLag
            }
        }

        public var json: JSONObject {
            let strings = { (values: [String]?) in values.map { JSONValue.array($0.map(JSONValue.string)) } }
            return JSONObject([
                Key.sessions: strings(sessions), Key.types: strings(types), Key.tags: strings(tags),
                Key.runID: runID.map(JSONValue.string), Key.since: since.map { .int(Int64($0)) },
                Key.sinceTime: sinceTime.map(JSONValue.int), Key.blocking: strings(blocking),
                Key.onLag: onLag.map { .string($0.rawValue) },
            ])
        }
    }

    public struct Result: JSONObjectConvertible, Equatable {
        /// The subscription's number on its connection, for its events, `ack` and `unsubscribe`.
        public var subscription: Int64
        /// The seq after which replay starts.
        public var cursor: UInt64
        /// The oldest event the journal retains; nil when it has none.
        public var oldestSeq: UInt64?

        public init(subscription: Int64, cursor: UInt64, oldestSeq: UInt64?) {
            (self.subscription, self.cursor, self.oldestSeq) = (subscription, cursor, oldestSeq)
        }

        public init(json: JSONObject) throws(ProtocolError) {
            subscription = try json.requiredInt("subscription")
            cursor = try json.requiredSeq("cursor")
            oldestSeq = try json.seq("oldest_seq")
        }

        /// `oldest_seq` is null, not left out, when there is no event.
        public var json: JSONObject {
            ["subscription": .int(subscription), "cursor": .int(Int64(cursor)), "oldest_seq": oldestSeq.map { .int(Int64($0)) } ?? .null]
        }
    }
}

/// `unsubscribe`: ends a subscription of the connection.
public enum UnsubscribeMethod: TypedMethod {
    public static let method = ProtocolMethod.unsubscribe

    public struct Params: MethodParameters, Equatable {
        public enum Key: String, CaseIterable { case subscription }
        public var subscription: Int64

        public init(subscription: Int64) {
            self.subscription = subscription
        }

        public init(json: JSONObject) throws(ProtocolError) {
            subscription = try json.subscriptionNumber()
        }

        public var json: JSONObject { JSONObject([Key.subscription: .int(subscription)]) }
    }

    /// Always `unsubscribed: true`: a subscription that is not there is an error.
    public struct Result: JSONObjectConvertible, Equatable {
        public init() {}
        public init(json: JSONObject) {}
        public var json: JSONObject { ["unsubscribed": true] }
    }
}

/// `ack`: a blocking subscription has handled an event.
public enum AckMethod: TypedMethod {
    public static let method = ProtocolMethod.ack

    public struct Params: MethodParameters, Equatable {
        public enum Key: String, CaseIterable { case subscription, seq }
        public var subscription: Int64
        /// The event's seq, 1 or more.
        public var seq: UInt64

        public init(subscription: Int64, seq: UInt64) {
            (self.subscription, self.seq) = (subscription, seq)
        }

        public init(json: JSONObject) throws(ProtocolError) {
            subscription = try json.subscriptionNumber()
            guard let seq = try json.int(Key.seq), seq > 0 else {
                throw .invalidParam(Key.seq.rawValue, expected: "the seq of the event acknowledged", got: json[Key.seq])
            }
            self.seq = UInt64(seq)
        }

        public var json: JSONObject { JSONObject([Key.subscription: .int(subscription), Key.seq: .int(Int64(seq))]) }
    }

    public struct Result: JSONObjectConvertible, Equatable {
        /// Whether the subscription owed an acknowledgement for that seq.
        public var acknowledged: Bool

        public init(acknowledged: Bool) {
            self.acknowledged = acknowledged
        }

        public init(json: JSONObject) throws(ProtocolError) {
            acknowledged = try json.requiredBool("acknowledged")
        }

        public var json: JSONObject { ["acknowledged": .bool(acknowledged)] }
    }
}

/// `cancel`: stops a request the connection sent earlier.
public enum CancelMethod: TypedMethod {
    public static let method = ProtocolMethod.cancel

    public struct Params: MethodParameters, Equatable {
        public enum Key: String, CaseIterable { case request }
        /// The id of the request to stop.
        public var request: RequestID

        public init(request: RequestID) {
            self.request = request
        }

        public init(json: JSONObject) throws(ProtocolError) {
            guard let request = json[Key.request].flatMap(RequestID.init(json:)) else {
                throw .invalidParam(Key.request.rawValue, expected: "a string or an integer", got: json[Key.request])
            }
            self.request = request
        }

        public var json: JSONObject { JSONObject([Key.request: request.json]) }
    }

    public struct Result: JSONObjectConvertible, Equatable {
        /// Whether such a request was in flight and has been told to stop.
        public var cancelled: Bool

        public init(cancelled: Bool) {
            self.cancelled = cancelled
        }

        public init(json: JSONObject) throws(ProtocolError) {
            cancelled = try json.requiredBool("cancelled")
        }

        public var json: JSONObject { ["cancelled": .bool(cancelled)] }
    }
}

extension JSONObject {
    /// Member `key` as a seq: an integer, 0 or more; nil when absent or null.
    fileprivate func seq(_ key: String) throws(ProtocolError) -> UInt64? {
        guard let value = try int(key) else { return nil }
        guard value >= 0 else { throw .invalidParam(key, expected: "a seq, 0 or more", got: self[key]) }
        return UInt64(value)
    }

    /// Member `key`, which must be there, as a seq.
    fileprivate func requiredSeq(_ key: String) throws(ProtocolError) -> UInt64 {
        guard let value = try seq(key) else { throw .invalidParam(key, expected: "a seq, 0 or more", got: self[key]) }
        return value
    }

    /// `subscription`, the number `subscribe` returned: what `unsubscribe` and `ack` name.
    fileprivate func subscriptionNumber() throws(ProtocolError) -> Int64 {
        guard let number = try int("subscription") else {
            throw .invalidParam("subscription", expected: "the number subscribe returned", got: self["subscription"])
        }
        return number
    }
}
