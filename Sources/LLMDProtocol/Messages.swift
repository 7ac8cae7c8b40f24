/// Protocol v1: one UTF-8 JSON object per line, in both directions.
///
/// Client to daemon: requests `{"id":…,"method":"…","params":{…}}`.
/// Daemon to client: objects with a `type`: `hello` (sent once on connect), `reply`,
/// `error`, `notice`, and, in later versions, more types. Replies and errors echo the
/// request's `id`, because they share the connection with unsolicited lines.
/// Both sides ignore members they do not know, so new fields and message types do not
/// break old peers.
public enum ProtocolVersion {
    /// The version this build speaks.
    public static let current: Int64 = 1
    /// The default limit on one line, in bytes.
    public static let defaultMaximumLineLength = 1 << 20
}

/// A client-chosen request identifier: a string or an integer, echoed in the reply.
public enum RequestID: Hashable, Sendable, CustomStringConvertible {
    case int(Int64)
    case string(String)

    public var json: JSONValue {
        switch self {
        case .int(let value): .int(value)
        case .string(let value): .string(value)
        }
    }

    public init?(json: JSONValue) {
        switch json {
        case .int(let value): self = .int(value)
        case .string(let value): self = .string(value)
        default: return nil
        }
    }

    public var description: String {
        switch self {
        case .int(let value): String(value)
        case .string(let value): value
        }
    }
}

/// A request from a client.
public struct Request: Sendable, Equatable {
    public var id: RequestID
    public var method: String
    public var params: JSONObject

    public init(id: RequestID, method: String, params: JSONObject = [:]) {
        self.id = id
        self.method = method
        self.params = params
    }

    /// The request as one wire line, newline included.
    public var encodedLine: [UInt8] {
        var object: JSONObject = ["id": id.json, "method": .string(method)]
        if !params.isEmpty { object["params"] = .object(params) }
        var line: [UInt8] = []
        object.encode(into: &line)
        line.append(0x0A)
        return line
    }

    /// Why a line is not a request; carries the `id` when one could be read, so the
    /// error reply can still be matched by the client.
    public struct DecodingFailure: Error, Sendable, Equatable {
        public var id: RequestID?
        public var error: ProtocolError
    }

    /// Decodes one line (without its newline) into a request.
    public static func decode(line: [UInt8]) -> Result<Request, DecodingFailure> {
        let value: JSONValue
        do {
            value = try JSONParser.parse(line)
        } catch {
            return .failure(
                DecodingFailure(
                    id: nil,
                    error: ProtocolError(
                        .malformedJSON, "line is not valid JSON: \(error)", detail: ["offset": .int(Int64(error.offset))])
                ))
        }
        guard let object = value.objectValue else {
            return .failure(
                DecodingFailure(
                    id: nil, error: ProtocolError(.invalidRequest, "a request must be a JSON object, got \(value.typeName)")))
        }
        guard let idValue = object["id"], let id = RequestID(json: idValue) else {
            return .failure(
                DecodingFailure(
                    id: nil, error: .invalidRequestMember("id", expected: "a string or an integer", got: object["id"])))
        }
        guard let method = object["method"]?.stringValue else {
            return .failure(
                DecodingFailure(
                    id: id, error: .invalidRequestMember("method", expected: "a string", got: object["method"])))
        }
        let params: JSONObject
        switch object["params"] {
        case nil, .null: params = [:]
        case .object(let value): params = value
        case let other?:
            return .failure(
                DecodingFailure(id: id, error: .invalidRequestMember("params", expected: "an object", got: other)))
        }
        return .success(Request(id: id, method: method, params: params))
    }
}

extension ProtocolError {
    fileprivate static func invalidRequestMember(_ name: String, expected: String, got: JSONValue?) -> ProtocolError {
        typeMismatch(.invalidRequest, "request member", name, expected: expected, got: got)
    }
}

/// The greeting the daemon sends first on every connection.
public struct Hello: Sendable, Equatable {
    public var protocolVersion: Int64
    public var daemonVersion: String
    public var pid: Int64
    public var maximumLineLength: Int64

    public init(protocolVersion: Int64, daemonVersion: String, pid: Int64, maximumLineLength: Int64) {
        self.protocolVersion = protocolVersion
        self.daemonVersion = daemonVersion
        self.pid = pid
        self.maximumLineLength = maximumLineLength
    }

    var fields: JSONObject {
        [
            "protocol": .int(protocolVersion), "daemon": "llmd", "version": .string(daemonVersion),
            "pid": .int(pid), "max_line_bytes": .int(maximumLineLength),
        ]
    }

    init?(fields: JSONObject) {
        guard let version = fields["protocol"]?.intValue, let daemonVersion = fields["version"]?.stringValue
        else { return nil }
        self.init(
            protocolVersion: version, daemonVersion: daemonVersion, pid: fields["pid"]?.intValue ?? 0,
            maximumLineLength: fields["max_line_bytes"]?.intValue ?? Int64(ProtocolVersion.defaultMaximumLineLength))
    }
}

/// A connection-level announcement that answers no request, such as `shutting_down`.
public struct Notice: Sendable, Equatable {
    public var name: String
    public var message: String
    /// Further members specific to the notice (e.g. `deadline_ms`).
    public var fields: JSONObject

    public init(name: String, message: String, fields: JSONObject = [:]) {
        self.name = name
        self.message = message
        self.fields = fields
    }

    /// The daemon is stopping: it takes no new requests and closes the connection
    /// once in-flight work ends or `deadline_ms` passes.
    public static let shuttingDown = "shutting_down"
}

/// A line from the daemon to a client.
public enum ServerMessage: Sendable, Equatable {
    case hello(Hello)
    case reply(id: RequestID, result: JSONObject)
    case error(id: RequestID?, ProtocolError)
    case notice(Notice)
    case event(CallbackEvent)
    /// A subscription's replay is over: live events follow, starting after `seq`.
    case ready(subscription: Int64, seq: UInt64)
    /// A message type this client does not know, with its members other than `type`.
    case other(type: String, JSONObject)

    public var object: JSONObject {
        switch self {
        case .hello(let hello):
            var object: JSONObject = ["type": "hello"]
            for member in hello.fields { object[member.key] = member.value }
            return object
        case .reply(let id, let result):
            return ["type": "reply", "id": id.json, "result": .object(result)]
        case .error(let id, let error):
            return ["type": "error", "id": id?.json ?? .null, "error": error.json]
        case .notice(let notice):
            var object: JSONObject = [
                "type": "notice", "notice": .string(notice.name), "message": .string(notice.message),
            ]
            for member in notice.fields { object[member.key] = member.value }
            return object
        case .event(let event):
            var line: [UInt8] = []
            event.encodeBody(into: &line)
            CallbackEvent.completeLine(&line, request: event.request, subscription: event.subscription)
            // The direct encoding is the definition; the object form is for inspection.
            return (try? JSONParser.parse(Array(line.dropLast())))?.objectValue ?? [:]
        case .ready(let subscription, let seq):
            return ["type": "ready", "subscription": .int(subscription), "seq": .int(Int64(seq))]
        case .other(let type, var object):
            object["type"] = .string(type)
            return object
        }
    }

    /// The message as one wire line, newline included.
    public var encodedLine: [UInt8] {
        var line: [UInt8] = []
        line.reserveCapacity(128)
        encodeLine(into: &line)
        return line
    }

    /// Appends the message as one wire line, newline included.
    ///
    /// Events, sent once per streamed token, are written directly rather than through an
    /// intermediate object.
    public func encodeLine(into line: inout [UInt8]) {
        if case .event(let event) = self {
            event.encodeBody(into: &line)
            CallbackEvent.completeLine(&line, request: event.request, subscription: event.subscription)
        } else {
            object.encode(into: &line)
            line.append(0x0A)
        }
    }

    /// Decodes one line from the daemon.
    ///
    /// - Throws: `protocol.malformed_json` or `protocol.invalid_request` when the line is
    ///   not a message this version can read at all.
    public static func decode(line: [UInt8]) throws(ProtocolError) -> ServerMessage {
        let value: JSONValue
        do {
            value = try JSONParser.parse(line)
        } catch {
            throw ProtocolError(.malformedJSON, "daemon sent a line that is not JSON: \(error)")
        }
        guard let object = value.objectValue, let type = object["type"]?.stringValue else {
            throw ProtocolError(.invalidRequest, "daemon sent a line without a message type")
        }
        switch type {
        case "hello":
            guard let hello = Hello(fields: object) else {
                throw ProtocolError(.invalidRequest, "daemon sent a malformed hello")
            }
            return .hello(hello)
        case "reply":
            guard let idValue = object["id"], let id = RequestID(json: idValue),
                let result = object["result"]?.objectValue
            else { throw ProtocolError(.invalidRequest, "daemon sent a malformed reply") }
            return .reply(id: id, result: result)
        case "error":
            guard let errorValue = object["error"], let error = ProtocolError(json: errorValue) else {
                throw ProtocolError(.invalidRequest, "daemon sent a malformed error")
            }
            return .error(id: object["id"].flatMap(RequestID.init(json:)), error)
        case "notice":
            guard let name = object["notice"]?.stringValue else {
                throw ProtocolError(.invalidRequest, "daemon sent a malformed notice")
            }
            var fields = object
            for key in ["type", "notice", "message"] { fields[key] = nil }
            return .notice(Notice(name: name, message: object["message"]?.stringValue ?? "", fields: fields))
        case "event":
            guard let event = CallbackEvent(fields: object) else {
                throw ProtocolError(.invalidRequest, "daemon sent an event without a name")
            }
            return .event(event)
        case "ready":
            guard let subscription = object["subscription"]?.intValue, let seq = object["seq"]?.intValue else {
                throw ProtocolError(.invalidRequest, "daemon sent a malformed ready marker")
            }
            return .ready(subscription: subscription, seq: UInt64(max(0, seq)))
        default:
            var fields = object
            fields["type"] = nil
            return .other(type: type, fields)
        }
    }
}

extension JSONObject {
    /// The string parameter `key`, nil when absent or null.
    ///
    /// - Throws: `request.invalid_params` when present with another type.
    public func string(_ key: String) throws(ProtocolError) -> String? {
        try parameter(key, expected: "a string", \.stringValue)
    }

    /// The integer parameter `key`, nil when absent or null: written as an integer, since
    /// the protocol reads `2.0`, `1e3` and `1e-400` (which is 0.0) as floats.
    public func int(_ key: String) throws(ProtocolError) -> Int64? {
        try parameter(key, expected: "an integer", \.integerLiteralValue)
    }

    /// The number parameter `key`, nil when absent or null.
    public func double(_ key: String) throws(ProtocolError) -> Double? {
        try parameter(key, expected: "a number", \.doubleValue)
    }

    /// The boolean parameter `key`, nil when absent or null.
    public func bool(_ key: String) throws(ProtocolError) -> Bool? {
        try parameter(key, expected: "true or false", \.boolValue)
    }

    /// The array-of-strings parameter `key`, nil when absent or null.
    ///
    /// - Throws: `request.invalid_params` when present with another type.
    public func strings(_ key: String) throws(ProtocolError) -> [String]? {
        switch self[key] {
        case nil, .null?: return nil
        case .array(let values)? where values.allSatisfy({ $0.stringValue != nil }): return values.compactMap(\.stringValue)
        case let other?: throw .invalidParam(key, expected: "an array of strings", got: other)
        }
    }

    /// The object parameter `key`, nil when absent or null.
    public func object(_ key: String) throws(ProtocolError) -> JSONObject? {
        try parameter(key, expected: "an object", \.objectValue)
    }

    private func parameter<Value>(
        _ key: String, expected: String, _ extract: (JSONValue) -> Value?
    ) throws(ProtocolError) -> Value? {
        guard let value = self[key], !value.isNull else { return nil }
        guard let typed = extract(value) else { throw .invalidParam(key, expected: expected, got: value) }
        return typed
    }
}
