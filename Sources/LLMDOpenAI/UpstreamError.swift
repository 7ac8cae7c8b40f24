import LLMDProtocol

/// A failed upstream call, named for users and classified for retrying.
public struct UpstreamError: Error, Sendable, Equatable, CustomStringConvertible {
    public var code: ErrorCode
    public var message: String
    /// The HTTP status, when the server answered.
    public var status: Int?
    /// The server's own error code or type (`insufficient_quota`, `rate_limit_exceeded`).
    public var providerCode: String?

    public init(_ code: ErrorCode, _ message: String, status: Int? = nil, providerCode: String? = nil) {
        self.code = code
        self.message = message
        self.status = status
        self.providerCode = providerCode
    }

    public var description: String { "\(code): \(message)" }

    /// How this failure counts for ``RetryPolicy``.
    ///
    /// A stream that broke off or carried an error object counts as a transport failure:
    /// retried, but only while no token has reached subscribers, which the caller checks.
    public var failure: UpstreamFailure {
        if let status { return .http(status: status, errorCode: providerCode) }
        switch code {
        case .upstreamUnreachable, .upstreamTimeout, .upstreamStreamCut, .upstreamStreamError: return .transport
        default: return .http(status: 0, errorCode: providerCode)  // unreadable responses: not retried
        }
    }

    /// The error as the protocol carries it to clients.
    public var protocolError: ProtocolError {
        var detail: JSONObject = [:]
        if let status { detail["status"] = .int(Int64(status)) }
        if let providerCode { detail["provider_code"] = .string(providerCode) }
        return ProtocolError(code, message, detail: detail)
    }

    /// The error for an HTTP error status, with the body's message when it has one.
    ///
    /// Bodies come in several dialects: OpenAI's `{"error":{"message","type","code"}}`,
    /// vLLM's `{"object":"error","message","type","code"}`, and `{"error":"text"}` from
    /// Ollama and others; anything else is quoted.
    public static func fromResponse(status: Int, body: [UInt8]) -> UpstreamError {
        let object = (try? JSONParser.parse(body))?.objectValue
        if let object, let error = fromErrorBody(object, status: status) { return error }
        let text = String(decoding: body.prefix(300), as: UTF8.self).trimmingBlanks
        return UpstreamError(
            code(forStatus: status, providerCode: nil), text.isEmpty ? "HTTP \(status)" : "HTTP \(status): \(text)",
            status: status)
    }

    /// The error an error-shaped JSON body describes, or nil when the body is not an error.
    static func fromErrorBody(_ object: JSONObject, status: Int?) -> UpstreamError? {
        let message: String
        var providerCode: String?
        if let error = object["error"]?.objectValue {
            message = error["message"]?.stringValue ?? "unspecified error"
            providerCode = error["code"]?.stringValue ?? error["type"]?.stringValue
        } else if let text = object["error"]?.stringValue {
            message = text
        } else if object["object"]?.stringValue == "error" {
            message = object["message"]?.stringValue ?? "unspecified error"
            providerCode = object["type"]?.stringValue
        } else {
            return nil
        }
        guard let httpStatus = status else {
            // An error object inside a 200 stream or body.
            return UpstreamError(.upstreamStreamError, message, status: nil, providerCode: providerCode)
        }
        return UpstreamError(
            code(forStatus: httpStatus, providerCode: providerCode), message, status: httpStatus,
            providerCode: providerCode)
    }

    static func code(forStatus status: Int, providerCode: String?) -> ErrorCode {
        switch status {
        case 400: .upstreamBadRequest
        case 401: .upstreamUnauthorized
        case 403: .upstreamForbidden
        case 404: .upstreamNotFound
        case 408: .upstreamTimeout
        case 409: .upstreamConflict
        case 429 where providerCode == "insufficient_quota": .upstreamQuotaExceeded
        case 429: .upstreamRateLimited
        case 500...599: .upstreamServerError
        default: .upstreamHTTPError
        }
    }
}
