import LLMDCore
import LLMDProtocol
import LLMDTransport
import Logging
import NIOCore
import NIOHTTP1

/// One HTTP connection: its peer checked as the protocol socket's are, each request read
/// whole (within the body limit), run through the method table, and answered as OpenAI
/// answers: a JSON body, or server-sent events as the reply streams. Requests on a
/// keep-alive connection are answered in order; a closed connection cancels its call.
final class OpenAIHTTPHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum Peer {
        case checking
        case admitted(PeerCredentials)
        case refused(ProtocolError)
        /// A TCP client: each request must carry a key.
        case keyRequired
    }

    let environment: HTTPEnvironment
    private var peer = Peer.checking
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    /// The body passed the limit: the rest of the request is ignored, and answered with 413.
    private var tooLarge = false
    /// The request parts that came before the peer's credentials did.
    private var waiting: [HTTPServerRequestPart] = []
    /// The request being answered: its task, and for a generation what its stream has sent.
    var task: Task<Void, Never>?
    var call: CallState?
    private var nextRequest: Int64 = 1
    /// Whether the connection stays open after the response being written: not when the
    /// request said `Connection: close` (or was HTTP/1.0 without keep-alive).
    private var keepAlive = true
    /// Events queued for the write due at the end of this turn of the event loop.
    private var pendingEvents: [UInt8] = []
    private var flushScheduled = false
    /// Events are being streamed together; the last writes what they queued.
    var batchingWrites = false

    struct CallState {
        var method: GenerationCall
        var writer: OpenAIResponseWriter
        /// The chain run of the call, whose model call's tokens are the reply.
        var root: String?
        /// That model call, once it started: the stream has begun.
        var replyRun: String?
        /// A session's turn's number, from its chain's start.
        var turn: Int64?

        var streamStarted: Bool { replyRun != nil }
    }

    init(environment: HTTPEnvironment, keyRequired: Bool) {
        self.environment = environment
        if keyRequired { peer = .keyRequired }
    }

    func channelActive(context: ChannelHandlerContext) {
        guard case .checking = peer else { return context.fireChannelActive() }
        PeerCheck.credentials(of: context.channel).hop(to: context.eventLoop).assumeIsolated().whenComplete { result in
            let policy = self.environment.settings.current.peerPolicy
            switch result {
            case .success(let credentials) where PeerCheck.admits(credentials, policy: policy):
                self.peer = .admitted(credentials)
            case .success(let credentials):
                self.environment.logger.warning("refused HTTP connection from uid \(credentials.uid)")
                self.peer = .refused(policy.refusal(of: credentials))
            case .failure(let error):
                self.peer = .refused(ProtocolError(.internalError, "cannot read peer credentials: \(error)"))
            }
            let parts = self.waiting
            self.waiting = []
            for part in parts { self.receive(part, context: context) }
        }
        context.fireChannelActive()
    }

    /// Silence past `IdleTimeoutSec=` closes a connection with no call running: one that
    /// waits for its reply is not idle.
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read else {
            return context.fireUserInboundEventTriggered(event)
        }
        if task == nil { context.close(promise: nil) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        // A client that went away takes its call with it, upstream included.
        task?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        guard case .checking = peer else { return receive(part, context: context) }
        waiting.append(part)
    }

    private func receive(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let head):
            (self.head, body, tooLarge) = (head, [], false)
        case .body(var buffer):
            guard !tooLarge else { return }
            if body.count + buffer.readableBytes > environment.maximumBodyBytes {
                (tooLarge, body) = (true, [])
            } else {
                body += buffer.readBytes(length: buffer.readableBytes) ?? []
            }
        case .end:
            guard let head else { return }
            self.head = nil
            respond(to: head, context: context)
        }
    }

    private func respond(to head: HTTPRequestHead, context: ChannelHandlerContext) {
        keepAlive = head.isKeepAlive
        let path = head.uri.split(separator: "?", maxSplits: 1).first.map(String.init) ?? head.uri
        if case .refused(let error) = peer {
            return send(OpenAIError(status: 403, message: error.message, type: "permission_denied", code: error.code.rawValue), context: context)
        }
        var keyScope: String?
        if case .keyRequired = peer {
            let bearer = head.headers["authorization"].first.flatMap { value -> String? in
                value.lowercased().hasPrefix("bearer ") ? String(value.dropFirst(7)).trimmingBlanks : nil
            }
            guard let bearer, let key = environment.keys.authenticate(bearer) else {
                return send(
                    OpenAIError(
                        status: 401, message: "Incorrect API key provided: give a key from 'llmctl key create' as Authorization: Bearer",
                        type: "invalid_request_error", code: "invalid_api_key"),
                    context: context)
            }
            keyScope = key.scope
        }
        if tooLarge {
            return send(
                .invalidRequest(
                    "the request body is larger than \(environment.maximumBodyBytes) bytes (MaxBodyBytes= in [HTTP])",
                    code: "request_too_large", status: 413),
                context: context)
        }
        if path == "/metrics" { return serveMetrics(head, context: context) }
        guard environment.servesAPI else {
            return send(
                OpenAIError(
                    status: 404, message: "Invalid URL (\(head.method) \(path)): this listener serves /metrics only ([HTTP] API=no)",
                    type: "invalid_request_error", code: "unknown_url"),
                context: context)
        }
        switch (head.method, path) {
        case (.GET, "/v1/models"):
            run(context: context) { handler, context in await handler.models(context: context) }
        case (.POST, OpenAIEndpoint.chatCompletions.rawValue), (.POST, OpenAIEndpoint.completions.rawValue):
            guard head.headers["content-type"].first.map({ $0.lowercased().hasPrefix("application/json") }) ?? false else {
                return send(
                    .invalidRequest("send the request as application/json", code: "unsupported_media_type", status: 415),
                    context: context)
            }
            let providers = Set(environment.settings.current.providers.map(\.name))
            var request: OpenAIRequest
            do throws(OpenAIError) {
                request = try OpenAIRequest.decode(body, endpoint: OpenAIEndpoint(rawValue: path)!, providers: providers)
            } catch {
                return send(error, context: context)
            }
            let scopes = head.headers["x-llmd-scope"].flatMap { $0.split(separator: ",") }.map { String($0).trimmingBlanks }
            request.params.scopes = scopes.filter { !$0.isEmpty } + (keyScope.map { [$0] } ?? [])
            let call: GenerationCall
            do throws(OpenAIError) {
                call = try generationCall(request, sessions: head.headers[OpenAIRequest.sessionHeader])
            } catch {
                return send(error, context: context)
            }
            run(context: context) { [request] handler, context in await handler.generate(request, call: call, context: context) }
        case (_, "/v1/models"), (_, OpenAIEndpoint.chatCompletions.rawValue), (_, OpenAIEndpoint.completions.rawValue):
            let allowed = path == "/v1/models" ? "GET" : "POST"
            send(
                .invalidRequest("\(head.method) is not served on \(path); \(allowed) is", code: "method_not_allowed", status: 405),
                headers: [("allow", allowed)], context: context)
        default:
            send(
                OpenAIError(
                    status: 404, message: "Invalid URL (\(head.method) \(path)): llmd serves /v1/chat/completions, "
                        + "/v1/completions and /v1/models", type: "invalid_request_error", code: "unknown_url"),
                context: context)
        }
    }

    /// `GET /metrics`: Prometheus's text format 0.0.4, whatever the Accept header asks, as
    /// swift-prometheus writes no OpenMetrics; Prometheus takes either.
    private func serveMetrics(_ head: HTTPRequestHead, context: ChannelHandlerContext) {
        guard let metrics = environment.metrics else {
            return send(
                OpenAIError(
                    status: 404, message: "metrics are not served here ([HTTP] Metrics=no)", type: "invalid_request_error",
                    code: "unknown_url"),
                context: context)
        }
        guard head.method == .GET || head.method == .HEAD else {
            return send(
                .invalidRequest("\(head.method) is not served on /metrics; GET is", code: "method_not_allowed", status: 405),
                headers: [("allow", "GET")], context: context)
        }
        let body = metrics()
        let headers = HTTPHeaders([
            ("content-type", "text/plain; version=0.0.4; charset=utf-8"), ("content-length", String(body.count)),
        ])
        writeHead(status: .ok, headers: headers, context: context)
        if head.method == .GET {
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        }
        endResponse(context: context)
    }

    /// `complete`, or with one `X-LLMD-Session` header the session's next turn.
    private func generationCall(_ request: OpenAIRequest, sessions: [String]) throws(OpenAIError) -> GenerationCall {
        switch sessions.count {
        case 0: return .complete(request.params)
        case 1: return .turn(try request.sessionTurn(sessions[0]))
        default:
            throw .invalidRequest(
                "a request is a turn of one session: send one \(OpenAIRequest.sessionHeader) header",
                param: OpenAIRequest.sessionHeader)
        }
    }

    /// Runs `work` as the connection's call; one at a time, as requests are answered in order.
    private func run(
        context: ChannelHandlerContext, _ work: @escaping @Sendable (LoopBound, NIOLoopBound<ChannelHandlerContext>) async -> Void
    ) {
        let bound = LoopBound(self, eventLoop: context.eventLoop)
        let contextBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        context.channel.setOption(ChannelOptions.autoRead, value: false).whenComplete { _ in }
        task = Task {
            await work(bound, contextBound)
            bound.execute { handler in
                handler.task = nil
                contextBound.value.channel.setOption(ChannelOptions.autoRead, value: true).whenComplete { _ in }
            }
        }
    }

    func beginCall(_ method: GenerationCall, writer: OpenAIResponseWriter) {
        call = CallState(method: method, writer: writer)
    }

    func nextRequestID() -> RequestID {
        defer { nextRequest += 1 }
        return .string("http-\(nextRequest)")
    }

    // MARK: - Writing

    private func send(_ error: OpenAIError, headers: [(String, String)] = [], context: ChannelHandlerContext) {
        send(status: error.status, json: error.json, headers: headers, context: context)
    }

    private func send(
        status: Int, json: JSONObject, turn: Int64? = nil, headers extra: [(String, String)] = [], context: ChannelHandlerContext
    ) {
        var headers = HTTPHeaders([("content-type", "application/json")] + extra)
        Self.add(turn: turn, to: &headers)
        let body = JSONValue.object(json).encoded + [UInt8(ascii: "\n")]
        headers.add(name: "content-length", value: String(body.count))
        writeHead(status: .init(statusCode: status), headers: headers, context: context)
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: body)))), promise: nil)
        endResponse(context: context)
    }

    /// A response's head, saying `connection: close` when the connection ends with it.
    private func writeHead(status: HTTPResponseStatus, headers: HTTPHeaders, context: ChannelHandlerContext) {
        var headers = headers
        if !keepAlive { headers.replaceOrAdd(name: "connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: headers))), promise: nil)
    }

    /// Ends the response; closes the connection after it when the request asked so.
    private func endResponse(context: ChannelHandlerContext) {
        guard !keepAlive else { return context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil) }
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
    }

    /// `X-LLMD-Turn`: which turn of its session a request was.
    private static func add(turn: Int64?, to headers: inout HTTPHeaders) {
        if let turn { headers.add(name: "X-LLMD-Turn", value: String(turn)) }
    }

    func startEvents(turn: Int64?, context: ChannelHandlerContext) {
        var headers = HTTPHeaders([("content-type", "text/event-stream"), ("cache-control", "no-cache")])
        Self.add(turn: turn, to: &headers)
        writeHead(status: .ok, headers: headers, context: context)
        context.flush()
    }

    /// Queues an event; it is written at the end of the event loop's turn, with the others
    /// queued meanwhile, so the tokens of one read from the provider leave as one chunk.
    func writeEvent(_ bytes: [UInt8], context: ChannelHandlerContext) {
        queueEvent(context: context) { $0 += bytes }
    }

    /// ``writeEvent(_:context:)`` of what `append` writes into the queue.
    func queueEvent(context: ChannelHandlerContext, _ append: (inout [UInt8]) -> Void) {
        append(&pendingEvents)
        guard !flushScheduled, !batchingWrites else { return }
        flushScheduled = true
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        context.eventLoop.execute {
            let (handler, context) = bound.value
            handler.writePendingEvents(context: context)
            context.flush()
        }
    }

    func writePendingEvents(context: ChannelHandlerContext) {
        flushScheduled = false
        guard !pendingEvents.isEmpty else { return }
        context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: pendingEvents)))), promise: nil)
        pendingEvents.removeAll(keepingCapacity: true)
    }

    func endEvents(context: ChannelHandlerContext) {
        writePendingEvents(context: context)
        endResponse(context: context)
    }

    func answer(status: Int, json: JSONObject, turn: Int64? = nil, context: ChannelHandlerContext) {
        send(status: status, json: json, turn: turn, context: context)
    }

    var peerCredentials: PeerCredentials {
        if case .admitted(let credentials) = peer { return credentials }
        return PeerCredentials(pid: 0, uid: UInt32.max, gid: UInt32.max)
    }
}

/// The handler, reached from a call's task: each use hops to the connection's event loop.
struct LoopBound: Sendable {
    private let handler: NIOLoopBound<OpenAIHTTPHandler>

    init(_ handler: OpenAIHTTPHandler, eventLoop: EventLoop) {
        self.handler = NIOLoopBound(handler, eventLoop: eventLoop)
    }

    func execute(_ body: @escaping @Sendable (OpenAIHTTPHandler) -> Void) {
        let handler = self.handler
        handler.eventLoop.execute { body(handler.value) }
    }

    /// The handler, from its event loop.
    var onLoop: OpenAIHTTPHandler { handler.value }

    /// Runs `body` on the event loop and returns its result.
    func submit<Value: Sendable>(_ body: @escaping @Sendable (OpenAIHTTPHandler) -> Value) async -> Value {
        let handler = self.handler
        return try! await handler.eventLoop.submit { body(handler.value) }.get()
    }
}

extension OpenAIError {
    static func invalidRequest(_ message: String, code: String, status: Int) -> OpenAIError {
        OpenAIError(status: status, message: message, type: "invalid_request_error", code: code)
    }
}
