/// A dotted, greppable error name: `family.reason`.
///
/// The same names appear on the wire, in llmctl's messages and in llmd-protocol(7).
/// Clients must treat an unknown code by its family (the part before the dot).
public struct ErrorCode: RawRepresentable, Hashable, Sendable, ExpressibleByStringLiteral, CustomStringConvertible {
    public var rawValue: String

    public init(rawValue: String) { self.rawValue = rawValue }
    public init(stringLiteral value: String) { self.rawValue = value }

    public var description: String { rawValue }

    /// The part before the first dot: `protocol`, `request`, `auth`, `daemon`…
    public var family: Substring { rawValue.prefix { $0 != "." } }
}

extension ErrorCode {
    // Framing and syntax of a line.
    /// The line is not valid JSON (detail: `offset`).
    public static let malformedJSON: ErrorCode = "protocol.malformed_json"
    /// The line is longer than the daemon's limit (detail: `limit`, `length`).
    public static let lineTooLong: ErrorCode = "protocol.line_too_long"
    /// The line is JSON but not a request object (missing or mistyped `id`/`method`).
    public static let invalidRequest: ErrorCode = "protocol.invalid_request"
    /// The client asked for a protocol version the daemon does not speak (detail: `supported`).
    public static let unsupportedVersion: ErrorCode = "protocol.unsupported_version"

    // Requests.
    /// No such method (detail: `method`).
    public static let unknownMethod: ErrorCode = "request.unknown_method"
    /// A parameter is missing or has the wrong type (detail: `field`, `expected`, `got`).
    public static let invalidParams: ErrorCode = "request.invalid_params"
    /// The request was cancelled before it finished.
    public static let cancelled: ErrorCode = "request.cancelled"

    // Access.
    /// The peer's uid or group may not use this daemon (detail: `uid`, `gid`).
    public static let peerRefused: ErrorCode = "auth.peer_refused"

    // The daemon itself.
    /// The daemon is shutting down and takes no new work.
    public static let shuttingDown: ErrorCode = "daemon.shutting_down"
    /// An unexpected failure inside the daemon; the detail says what.
    public static let internalError: ErrorCode = "daemon.internal"
}

/// An error as the protocol carries it: a code, a human message, and details that help
/// (which parameter, which limit).
public struct ProtocolError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: ErrorCode
    public var message: String
    public var detail: JSONObject

    public init(_ code: ErrorCode, _ message: String, detail: JSONObject = [:]) {
        self.code = code
        self.message = message
        self.detail = detail
    }

    public var description: String { "\(code): \(message)" }

    public var json: JSONValue {
        var object: JSONObject = ["code": .string(code.rawValue), "message": .string(message)]
        if !detail.isEmpty { object["detail"] = .object(detail) }
        return .object(object)
    }

    /// Reads an `error` object; a missing or mistyped field makes it a protocol violation.
    public init?(json: JSONValue) {
        guard let object = json.objectValue, let code = object["code"]?.stringValue,
            let message = object["message"]?.stringValue
        else { return nil }
        self.init(ErrorCode(rawValue: code), message, detail: object["detail"]?.objectValue ?? [:])
    }
}

extension ProtocolError {
    /// `request.invalid_params` for a parameter of the wrong type or missing.
    public static func invalidParam(_ name: String, expected: String, got: JSONValue?) -> ProtocolError {
        typeMismatch(.invalidParams, "parameter", name, expected: expected, got: got)
    }

    /// An error naming a field, what it must be and what came instead (detail: `field`,
    /// `expected`, `got`).
    static func typeMismatch(
        _ code: ErrorCode, _ noun: String, _ name: String, expected: String, got: JSONValue?
    ) -> ProtocolError {
        let gotName = got?.typeName ?? "nothing"
        return ProtocolError(
            code,
            "\(noun) '\(name)' must be \(expected), got \(gotName)",
            detail: ["field": .string(name), "expected": .string(expected), "got": .string(gotName)]
        )
    }
}
