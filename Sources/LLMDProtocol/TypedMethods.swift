/// A value that is a JSON object on the wire: decoded and encoded in one place, so the
/// daemon and its clients name each member once.
public protocol JSONObjectConvertible: Sendable {
    /// - Throws: `request.invalid_params`-style errors naming the member that is wrong.
    init(json: JSONObject) throws(ProtocolError)
    var json: JSONObject { get }
}

/// A method with typed parameters and result: the daemon registers a handler of these
/// types, a client calls with them, and the JSON of both is written here only.
public protocol TypedMethod {
    associatedtype Params: JSONObjectConvertible
    associatedtype Result: JSONObjectConvertible
    static var method: ProtocolMethod { get }
}

/// Parameters of a method that takes none.
public struct NoParams: JSONObjectConvertible, Equatable {
    public init() {}
    public init(json: JSONObject) {}
    public var json: JSONObject { [:] }
}

extension JSONObject {
    /// Member `key`, which must be there, as an integer.
    func requiredInt(_ key: String) throws(ProtocolError) -> Int64 {
        guard let value = try int(key) else { throw .invalidParam(key, expected: "an integer", got: self[key]) }
        return value
    }

    /// Member `key`, which must be there, as a string.
    func requiredString(_ key: String) throws(ProtocolError) -> String {
        guard let value = try string(key) else { throw .invalidParam(key, expected: "a string", got: self[key]) }
        return value
    }
}

// MARK: - hello, ping, status

/// `hello`: the protocol version a client speaks.
public enum HelloMethod: TypedMethod {
    public static let method = ProtocolMethod.hello

    public struct Params: JSONObjectConvertible, Equatable {
        /// The protocol version the client speaks; nil asks for none in particular.
        public var protocolVersion: Int64?

        public init(protocolVersion: Int64? = nil) {
            self.protocolVersion = protocolVersion
        }

        public init(json: JSONObject) throws(ProtocolError) {
            protocolVersion = try json.int("protocol")
        }

        public var json: JSONObject { protocolVersion.map { ["protocol": .int($0)] } ?? [:] }
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
