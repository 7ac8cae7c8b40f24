import LLMDProtocol

/// Typed calls over a ``DaemonConnection``: what llmctl is built on, and tests too.
public struct LLMDClient {
    public let connection: DaemonConnection

    /// Connects to the daemon at `socketPath`, or the default location when nil.
    public init(socketPath: String? = nil) throws(ClientError) {
        self.connection = try DaemonConnection(socketPath: SocketLocation.resolve(explicit: socketPath))
    }

    /// Calls a typed method: its parameters and result as the types llmd-protocol(7)
    /// describes, a result that is not one of them a protocol violation.
    public func call<Method: TypedMethod>(_: Method.Type, _ params: Method.Params) throws(ClientError) -> Method.Result {
        try decode(Method.self, try connection.call(Method.method, params: params.json))
    }

    /// A typed method's result; one that is not of its type is a protocol violation.
    private func decode<Method: TypedMethod>(_: Method.Type, _ result: JSONObject) throws(ClientError) -> Method.Result {
        do throws(ProtocolError) {
            return try Method.Result(json: result)
        } catch {
            throw .protocolViolation("\(Method.method.rawValue) reply: \(error.message)")
        }
    }

    public func status() throws(ClientError) -> StatusMethod.Result {
        try call(StatusMethod.self, NoParams())
    }

    /// Runs one LLM call (`complete`); `onToken` receives the reply as it streams.
    ///
    /// - Parameter onRetry: told about each retry the daemon makes (its `retry` events).
    public func complete(
        _ params: CompleteMethod.Params, onToken: (String) -> Void, onRetry: (JSONObject) -> Void = { _ in }
    ) throws(ClientError) -> CompleteMethod.Result {
        var reply = ReplyTokens()
        return try decode(CompleteMethod.self, try connection.call(.complete, params: params.json) { event in
            reply.handle(event, onToken: onToken, onRetry: onRetry)
        })
    }

    /// Runs one conversation turn (`send` with a `session`); `onToken` receives the reply
    /// as it streams, not the tokens of a summarising call the memory makes.
    ///
    /// - Parameters:
    ///   - onQueued: told the place in the session's queue when other turns run first.
    ///   - onEvent: every event of the turn's run tree.
    public func send(
        _ params: SendMethod.Params, onToken: (String) -> Void, onRetry: (JSONObject) -> Void = { _ in },
        onQueued: (Int) -> Void = { _ in }, onEvent: (CallbackEvent) -> Void = { _ in }
    ) throws(ClientError) -> SendMethod.Result {
        var reply = ReplyTokens()
        let result = try connection.call(.send, params: params.json) { event in
            reply.handle(event, onToken: onToken, onRetry: onRetry)
            onEvent(event)
        } onNotice: { notice in
            if notice.name == "queued", let position = notice.fields["position"]?.intValue { onQueued(Int(position)) }
        }
        return try decode(SendMethod.self, result)
    }

    /// Calls `method` with parameters and result as JSON: for tests of the wire itself.
    public func call(_ method: ProtocolMethod, _ params: JSONObject = [:]) throws(ClientError) -> JSONObject {
        try connection.call(method, params: params)
    }

    /// Sends `ping` and returns the daemon's reply.
    public func ping() throws(ClientError) -> PingMethod.Result {
        try call(PingMethod.self, NoParams())
    }
}

/// What a subscription delivers, in order: replayed events, the `ready` marker, live events.
public enum SubscriptionMessage: Sendable {
    case event(CallbackEvent)
    /// Replay is over; live events follow, after `seq`.
    case ready(seq: UInt64)
}

extension LLMDClient {
    /// Subscribes with `params` (filter, `since`…) and hands every message of the
    /// subscription to `onMessage` until it returns false or the connection ends.
    ///
    /// - Returns: the `subscribe` reply.
    /// - Throws: the daemon's error, or `.connectionClosed` when the daemon closes.
    @discardableResult
    public func subscribe(
        _ params: SubscribeMethod.Params, onReply: (SubscribeMethod.Result) -> Void = { _ in },
        onMessage: (SubscriptionMessage) throws(ClientError) -> Bool
    ) throws(ClientError) -> SubscribeMethod.Result {
        let reply = try call(SubscribeMethod.self, params)
        onReply(reply)
        while true {
            switch try connection.readMessage() {
            case .event(let event) where event.subscription == reply.subscription:
                guard try onMessage(.event(event)) else { return reply }
            case .ready(reply.subscription, let seq):
                guard try onMessage(.ready(seq: seq)) else { return reply }
            case .error(nil, let error):
                throw .remote(error)
            default:
                continue
            }
        }
    }
}

extension LLMDClient {
    /// Acknowledges an event of a blocking subscription from within
    /// ``subscribe(_:onReply:onMessage:)``, without waiting for the reply: the
    /// subscription's events may come before it, and waiting would pass over them.
    /// `subscribe` passes over the reply itself.
    public func acknowledge(_ params: AckMethod.Params) throws(ClientError) {
        try connection.send(Request(id: connection.makeRequestID(), method: AckMethod.method.rawValue, params: params.json))
    }
}

/// Picks the reply's tokens out of a run tree: those of the model runs directly under the
/// root chain. A summarising call inside the turn is a grandchild, so its tokens stay out.
public struct ReplyTokens {
    private var root: String?
    private var replyRuns: Set<String> = []

    public init() {}

    /// Follows `event`; hands a reply token to `onToken` and a retry to `onRetry`.
    public mutating func handle(_ event: CallbackEvent, onToken: (String) -> Void, onRetry: (JSONObject) -> Void = { _ in }) {
        switch event.name {
        case "chain_start" where root == nil && event.parentRunID == nil:
            root = event.runID
        case "chat_model_start", "llm_start":
            if event.parentRunID == root { replyRuns.insert(event.runID) }
        case "llm_new_token" where replyRuns.contains(event.runID):
            if let token = event.data["token"]?.stringValue { onToken(token) }
        case "retry" where replyRuns.contains(event.runID):
            onRetry(event.data)
        default:
            break
        }
    }
}
