import LLMDProtocol

/// What a method handler knows about the connection a request came on.
public struct RequestContext: Sendable {
    /// The request's id, which its callback events carry.
    public var requestID: RequestID
    public var connectionID: UInt64
    public var peer: PeerCredentials
    /// Sends lines to the requesting client ahead of the reply (callback events), in one
    /// write. Lines arrive in the order sent, and all before the reply.
    public var send: @Sendable ([ServerMessage]) -> Void
    /// Sends a published event to the requesting client as one of request `id`'s, in
    /// order with ``send``, without copying the event to address it (this runs once per
    /// streamed token).
    public var sendEvent: @Sendable (_ event: CallbackEvent, _ id: RequestID) -> Void

    public init(
        requestID: RequestID = .int(0), connectionID: UInt64, peer: PeerCredentials, send: @escaping @Sendable ([ServerMessage]) -> Void = { _ in },
        sendEvent: @escaping @Sendable (CallbackEvent, RequestID) -> Void = { _, _ in }
    ) {
        self.requestID = requestID
        self.connectionID = connectionID
        self.peer = peer
        self.send = send
        self.sendEvent = sendEvent
    }
}

/// Maps method names to handlers, and turns each request into exactly one reply or error.
///
/// Later features add methods by registering them; the socket server knows none by name.
public struct MethodTable: Sendable {
    public typealias Handler = @Sendable (Request, RequestContext) async throws(ProtocolError) -> JSONObject

    private var handlers: [ProtocolMethod: Handler] = [:]

    public init() {}

    public mutating func register(_ method: ProtocolMethod, _ handler: @escaping Handler) {
        precondition(!method.isConnectionLevel, "\(method.rawValue) is answered by the connection")
        precondition(handlers[method] == nil, "method \(method.rawValue) registered twice")
        handlers[method] = handler
    }

    /// Registers a typed method: its parameters decoded before `handler` runs, its result
    /// encoded after.
    public mutating func register<Method: TypedMethod>(
        _: Method.Type, _ handler: @escaping @Sendable (Method.Params, RequestContext) async throws(ProtocolError) -> Method.Result
    ) {
        register(Method.method) { request, context throws(ProtocolError) in
            try await handler(try Method.Params(json: request.params), context).json
        }
    }

    /// Names of all methods, sorted: those registered and those the connection answers.
    public var methods: [String] {
        ProtocolMethod.allCases.filter { $0.isConnectionLevel || handlers[$0] != nil }.map(\.rawValue).sorted()
    }

    /// Runs the request's handler and returns the reply or error to send.
    public func handle(_ request: Request, context: RequestContext) async -> ServerMessage {
        guard let handler = ProtocolMethod(rawValue: request.method).flatMap({ handlers[$0] }) else {
            return .error(
                id: request.id,
                ProtocolError(
                    .unknownMethod, "unknown method '\(request.method)'",
                    detail: ["method": .string(request.method), "methods": .array(methods.map(JSONValue.string))]))
        }
        do {
            return .reply(id: request.id, result: try await handler(request, context))
        } catch {
            return .error(id: request.id, error)
        }
    }
}
