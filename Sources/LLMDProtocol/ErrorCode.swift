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
    /// No provider by that name (detail: `provider`, `providers`).
    public static let providerNotFound: ErrorCode = "provider.not_found"
    /// The call names no model and its provider has no `DefaultModel=`.
    public static let modelMissing: ErrorCode = "provider.no_model"

    // Access.
    /// The peer's uid or group may not use this daemon (detail: `uid`, `gid`).
    public static let peerRefused: ErrorCode = "auth.peer_refused"

    // Upstream: the LLM server a call goes to.
    /// 400: the server rejected the request as malformed (detail: `status`, `provider_code`).
    public static let upstreamBadRequest: ErrorCode = "upstream.bad_request"
    /// 401: the API key is missing or wrong.
    public static let upstreamUnauthorized: ErrorCode = "upstream.unauthorized"
    /// 403: the key may not use this model or endpoint.
    public static let upstreamForbidden: ErrorCode = "upstream.forbidden"
    /// 404: no such model or endpoint.
    public static let upstreamNotFound: ErrorCode = "upstream.not_found"
    /// 409: a conflict the server says may pass.
    public static let upstreamConflict: ErrorCode = "upstream.conflict"
    /// 429: too many requests; retried, honouring `Retry-After`.
    public static let upstreamRateLimited: ErrorCode = "upstream.rate_limited"
    /// 429 with `insufficient_quota`: the account is out of credit; not retried.
    public static let upstreamQuotaExceeded: ErrorCode = "upstream.quota_exceeded"
    /// 5xx: the server failed.
    public static let upstreamServerError: ErrorCode = "upstream.server_error"
    /// Any other HTTP error status.
    public static let upstreamHTTPError: ErrorCode = "upstream.http_error"
    /// The server could not be reached: DNS, refused or reset connection, TLS.
    public static let upstreamUnreachable: ErrorCode = "upstream.unreachable"
    /// 408, or a connect, idle or total timeout of llmd's own; the message says which.
    public static let upstreamTimeout: ErrorCode = "upstream.timeout"
    /// The server sent an error object in the middle of a stream.
    public static let upstreamStreamError: ErrorCode = "upstream.stream_error"
    /// The stream ended before `[DONE]`; what arrived is kept.
    public static let upstreamStreamCut: ErrorCode = "upstream.stream_cut"
    /// The server sent something that is not the OpenAI wire format.
    public static let upstreamProtocol: ErrorCode = "upstream.protocol"

    // Events and subscriptions.
    /// A subscriber's queue stayed full past `StallTimeoutSec=`: it is disconnected.
    public static let subscriberStalled: ErrorCode = "subscriber.stalled"
    /// `unsubscribe` or `ack` named a subscription this connection does not have.
    public static let subscriptionNotFound: ErrorCode = "subscription.not_found"
    /// A raising callback handler failed, which fails the run.
    public static let callbackFailed: ErrorCode = "callback.handler_failed"
    /// `publish` waited for the event journal to catch up with a flood, in vain: the
    /// event was not published (detail: `waited_ms`).
    public static let journalBacklogFull: ErrorCode = "journal.backlog_full"
    /// The event journal cannot be read or written (a full disk, say); live events go on.
    public static let journalUnavailable: ErrorCode = "journal.unavailable"

    // Keys of the HTTP API.
    /// No key has that name (detail: `name`).
    public static let keyNotFound: ErrorCode = "key.not_found"
    /// `key.create` named a key that exists, revoked or not (detail: `name`).
    public static let keyExists: ErrorCode = "key.exists"

    // Sessions and their memory.
    /// No session has that name (detail: `session`).
    public static let sessionNotFound: ErrorCode = "session.not_found"
    /// `session.create` or `session.rename` named a session that exists (detail: `session`).
    public static let sessionExists: ErrorCode = "session.exists"
    /// The session has a turn running or queued, so it cannot be deleted now.
    public static let sessionBusy: ErrorCode = "session.busy"
    /// The turn's prompt does not fit the model's context window even after the memory
    /// strategy (detail: `prompt_tokens`, `reply_tokens`, `context_window`, `excess`).
    public static let contextWindowExceeded: ErrorCode = "context.window_exceeded"
    /// The session database cannot be written (a full disk, say); nothing half-written is kept.
    public static let storeUnavailable: ErrorCode = "store.unavailable"

    // Usage and budgets.
    /// The call would pass a budget (detail: `budget`, `reason`, the limit, `spent`,
    /// `reserved`, `needed`); nothing was sent upstream.
    public static let budgetExceeded: ErrorCode = "budget.exceeded"
    /// No scope has that id (detail: `scope`).
    public static let scopeNotFound: ErrorCode = "scope.not_found"
    /// The scope has ended: its totals are final (detail: `scope`).
    public static let scopeEnded: ErrorCode = "scope.ended"

    // Token counting.
    /// Token ids were asked for, but the daemon has no vocabulary file of the encoding
    /// (detail: `encoding`, `searched`, `hint`); counts alone are estimated instead.
    public static let vocabularyMissing: ErrorCode = "tokenizer.no_vocabulary"

    // The daemon itself.
    /// `MaxConnections=` clients are connected: this one is refused, instead of the
    /// greeting (detail: `limit`).
    public static let tooManyConnections: ErrorCode = "daemon.too_many_connections"
    /// The unfinished request lines of all clients together passed `MaxBufferedInput=`,
    /// and this connection held the most: it is disconnected (detail: `buffered`,
    /// `budget`).
    public static let inputBudgetExceeded: ErrorCode = "daemon.input_budget_exceeded"
    /// The daemon had no file descriptor for this client: refused at once, instead of the
    /// greeting (detail: `clients`, `limit`).
    public static let outOfDescriptors: ErrorCode = "daemon.out_of_descriptors"
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
