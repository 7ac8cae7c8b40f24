/// A value that is a JSON object on the wire: decoded and encoded in one place, so the
/// daemon and its clients name each member once.
public protocol JSONObjectConvertible: Sendable {
    /// - Throws: `request.invalid_params`-style errors naming the member that is wrong.
    init(json: JSONObject) throws(ProtocolError)
    var json: JSONObject { get }
}

/// A method's parameters, whose member names are the cases of `Key`: decoding and
/// encoding use them, and a test holds each method's section of llmd-protocol(7) to them.
public protocol MethodParameters: JSONObjectConvertible {
    associatedtype Key: RawRepresentable<String>, CaseIterable
    /// Every parameter's name: `Key`'s, and those of any parameter groups read with it.
    static var parameterNames: [String] { get }
}

extension MethodParameters {
    public static var parameterNames: [String] { Key.allCases.map(\.rawValue) }
}

/// A method with typed parameters and result: the daemon registers a handler of these
/// types, a client calls with them, and the JSON of both is written here only.
public protocol TypedMethod {
    associatedtype Params: MethodParameters
    associatedtype Result: JSONObjectConvertible
    static var method: ProtocolMethod { get }
}

extension TypedMethod {
    /// The names of the parameters, as llmd-protocol(7) gives them.
    public static var parameterNames: [String] { Params.parameterNames }
}

/// Parameters of a method that takes none.
public struct NoParams: MethodParameters, Equatable {
    public enum Key: RawRepresentable, CaseIterable {
        public init?(rawValue: String) { nil }
        public var rawValue: String { switch self {} }
    }

    public init() {}
    public init(json: JSONObject) {}
    public var json: JSONObject { [:] }
}

extension JSONObject {
    /// An object of the members whose values are not nil, in the order given.
    public init<Key: RawRepresentable<String>>(_ members: KeyValuePairs<Key, JSONValue?>) {
        self.init()
        for (key, value) in members { if let value { self[key.rawValue] = value } }
    }

    public subscript<Key: RawRepresentable<String>>(_ key: Key) -> JSONValue? {
        get { self[key.rawValue] }
        set { self[key.rawValue] = newValue }
    }

    public func string<Key: RawRepresentable<String>>(_ key: Key) throws(ProtocolError) -> String? { try string(key.rawValue) }
    public func int<Key: RawRepresentable<String>>(_ key: Key) throws(ProtocolError) -> Int64? { try int(key.rawValue) }
    public func double<Key: RawRepresentable<String>>(_ key: Key) throws(ProtocolError) -> Double? { try double(key.rawValue) }
    public func bool<Key: RawRepresentable<String>>(_ key: Key) throws(ProtocolError) -> Bool? { try bool(key.rawValue) }
    public func strings<Key: RawRepresentable<String>>(_ key: Key) throws(ProtocolError) -> [String]? { try strings(key.rawValue) }
    public func object<Key: RawRepresentable<String>>(_ key: Key) throws(ProtocolError) -> JSONObject? { try object(key.rawValue) }

    /// Member `key`, which must be there, as an integer.
    public func requiredInt(_ key: String) throws(ProtocolError) -> Int64 {
        guard let value = try int(key) else { throw .invalidParam(key, expected: "an integer", got: self[key]) }
        return value
    }

    /// Member `key`, which must be there, as a string.
    public func requiredString(_ key: String) throws(ProtocolError) -> String {
        guard let value = try string(key) else { throw .invalidParam(key, expected: "a string", got: self[key]) }
        return value
    }

    /// Member `key`, which must be there, as a boolean.
    public func requiredBool(_ key: String) throws(ProtocolError) -> Bool {
        guard let value = try bool(key) else { throw .invalidParam(key, expected: "true or false", got: self[key]) }
        return value
    }

    /// Member `key`, which must be there, as an object.
    public func requiredObject(_ key: String) throws(ProtocolError) -> JSONObject {
        guard let value = try object(key) else { throw .invalidParam(key, expected: "an object", got: self[key]) }
        return value
    }

    /// Member `key`, an array of objects each decoded as `Element`; nil when absent.
    public func objects<Element: JSONObjectConvertible>(_ key: String, as _: Element.Type = Element.self) throws(ProtocolError) -> [Element]? {
        switch self[key] {
        case nil, .null?: return nil
        case .array(let values)?:
            var elements: [Element] = []
            for value in values {
                guard let object = value.objectValue else { throw .invalidParam(key, expected: "an array of objects", got: value) }
                elements.append(try Element(json: object))
            }
            return elements
        case let other?: throw .invalidParam(key, expected: "an array of objects", got: other)
        }
    }

    /// A three-way member: absent (nil), null (`.some(nil)`: remove), or a value.
    public func change<Value>(
        _ key: String, _ read: (JSONObject) throws(ProtocolError) -> Value?
    ) throws(ProtocolError) -> Value?? {
        switch self[key] {
        case nil: return nil
        case .null?: return .some(nil)
        case _?: return .some(try read(self))
        }
    }
}

extension JSONValue {
    /// An array of the elements' JSON objects.
    public static func objects(_ elements: [some JSONObjectConvertible]) -> JSONValue {
        .array(elements.map { .object($0.json) })
    }
}

// MARK: - hello, ping, status

/// `hello`: the protocol version a client speaks.
public enum HelloMethod: TypedMethod {
    public static let method = ProtocolMethod.hello

    public struct Params: MethodParameters, Equatable {
        public enum Key: String, CaseIterable { case protocolVersion = "protocol" }
        /// The protocol version the client speaks; nil asks for none in particular.
        public var protocolVersion: Int64?

        public init(protocolVersion: Int64? = nil) {
            self.protocolVersion = protocolVersion
        }

        public init(json: JSONObject) throws(ProtocolError) {
            protocolVersion = try json.int(Key.protocolVersion)
        }

        public var json: JSONObject { JSONObject([Key.protocolVersion: protocolVersion.map(JSONValue.int)]) }
    }

    public struct Result: JSONObjectConvertible, Equatable {
        public var protocolVersion: Int64
        public var version: String
        public var pid: Int64

        public init(protocolVersion: Int64, version: String, pid: Int64) {
            (self.protocolVersion, self.version, self.pid) = (protocolVersion, version, pid)
        }

        public init(json: JSONObject) throws(ProtocolError) {
            protocolVersion = try json.requiredInt("protocol")
            version = try json.requiredString("version")
            pid = try json.requiredInt("pid")
        }

        public var json: JSONObject { ["protocol": .int(protocolVersion), "version": .string(version), "pid": .int(pid)] }
    }
}

/// `ping`: a round trip.
public enum PingMethod: TypedMethod {
    public static let method = ProtocolMethod.ping
    public typealias Params = NoParams

    public struct Result: JSONObjectConvertible, Equatable {
        /// The daemon's clock, RFC 3339 with milliseconds.
        public var time: String

        public init(time: String) {
            self.time = time
        }

        public init(json: JSONObject) throws(ProtocolError) {
            time = try json.requiredString("time")
        }

        public var json: JSONObject { ["pong": true, "time": .string(time)] }
    }
}

/// `status`: what the daemon is and does now.
public enum StatusMethod: TypedMethod {
    public static let method = ProtocolMethod.status
    public typealias Params = NoParams

    public struct Result: JSONObjectConvertible, Equatable {
        public var version: String
        public var protocolVersion: Int64
        public var pid: Int64
        public var socket: String
        /// RFC 3339, with milliseconds.
        public var startedAt: String
        public var uptimeMilliseconds: Int64
        public var clients: Int64
        public var sessions: Int64
        public var requestsInFlight: Int64
        public var requestsServed: Int64

        public init(
            version: String, protocolVersion: Int64, pid: Int64, socket: String, startedAt: String, uptimeMilliseconds: Int64,
            clients: Int64, sessions: Int64, requestsInFlight: Int64, requestsServed: Int64
        ) {
            self.version = version
            self.protocolVersion = protocolVersion
            self.pid = pid
            self.socket = socket
            self.startedAt = startedAt
            self.uptimeMilliseconds = uptimeMilliseconds
            self.clients = clients
            self.sessions = sessions
            self.requestsInFlight = requestsInFlight
            self.requestsServed = requestsServed
        }

        public init(json: JSONObject) throws(ProtocolError) {
            version = try json.requiredString("version")
            protocolVersion = try json.requiredInt("protocol")
            pid = try json.requiredInt("pid")
            socket = try json.requiredString("socket")
            startedAt = try json.requiredString("started_at")
            uptimeMilliseconds = try json.requiredInt("uptime_ms")
            clients = try json.requiredInt("clients")
            sessions = try json.requiredInt("sessions")
            requestsInFlight = try json.requiredInt("requests_in_flight")
            requestsServed = try json.requiredInt("requests_served")
        }

        public var json: JSONObject {
            [
                "version": .string(version), "protocol": .int(protocolVersion), "pid": .int(pid), "socket": .string(socket),
                "started_at": .string(startedAt), "uptime_ms": .int(uptimeMilliseconds), "clients": .int(clients),
                "sessions": .int(sessions), "requests_in_flight": .int(requestsInFlight), "requests_served": .int(requestsServed),
            ]
        }
    }
}
