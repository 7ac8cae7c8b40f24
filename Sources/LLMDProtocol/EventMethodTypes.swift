// The event methods: `publish`, a registered method, and `subscribe`, `unsubscribe`,
// `ack` and `cancel`, which the connection answers itself.

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
