import LLMDApplication
import LLMDBus
import LLMDCore
import LLMDProtocol
import Logging
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Everything a connection needs from the daemon, shared by all connections.
struct ConnectionEnvironment: Sendable {
    var methods: MethodTable
    var state: DaemonState
    var registry: ConnectionRegistry
    var settings: LiveSettings
    var bus: EventBus
    var sessionNames: SessionNameEpochs
    /// Unfinished request lines held for all clients, within `MaxBufferedInput=`.
    var inputBudget: InputBudget
    /// Turns among connections in the middle of a long line.
    var readPacer: ReadPacer
    /// Turns among connections evicted for the input budget, to write their error and close.
    var evictions: Turns
    var logger: Logger
}

/// One client connection: frames lines, checks the peer, dispatches requests, writes replies.
///
/// Runs on the channel's event loop. Requests run as tasks so a slow method never
/// blocks the loop; their replies come back through `channel.writeAndFlush`, which
/// NIO orders per calling thread.
final class ConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let environment: ConnectionEnvironment
    private let id: UInt64
    private var logger: Logger
    private var framer: LineFramer
    /// What this connection last counted against the input budget.
    private var heldInput = 0

    private enum Phase {
        /// Waiting for the peer's credentials; bytes are buffered, not processed.
        case checkingPeer
        case serving(PeerCredentials)
        /// Shutdown notice sent: new requests get `daemon.shutting_down`.
        case draining(PeerCredentials)
        case closed
    }

    private var phase = Phase.checkingPeer

    /// Requests of one connection that run at once; the lines after wait, unread, so a
    /// client that sends faster than its requests finish is pushed back by its socket.
    static let maximumRequestsInFlight = 32
    /// `maximumRequestsInFlight` requests run: lines wait in the framer and the socket.
    private var atRequestLimit = false
    /// In the middle of a long line, waiting for a turn to read (``ReadPacer``).
    private var waitingForTurn = false
    /// What this connection may still read of its last turn before it asks again.
    private var readAllowance = 0
    /// Whether the channel reads on its own, as last set.
    private var reading = true
    private var tasks: [UInt64: Task<Void, Never>] = [:]
    /// Which task serves which request, for `cancel`; detached ones outlive the connection.
    private var taskIDs: [RequestID: UInt64] = [:]
    private var detached: Set<UInt64> = []
    private var nextTaskID: UInt64 = 0
    /// The peer closed its sending side; close once in-flight replies are written.
    private var inputClosed = false
    /// Everything but the greeting and protocol errors goes out through here: replies,
    /// request events and subscription events, in order.
    private var outbox: ConnectionOutbox?

    init(environment: ConnectionEnvironment, id: UInt64) {
        self.environment = environment
        self.id = id
        self.logger = environment.logger
        self.logger[metadataKey: "connection"] = "\(id)"
        self.framer = LineFramer(maximumLineLength: environment.settings.current.maximumLineLength)
    }

    func channelActive(context: ChannelHandlerContext) {
        environment.state.clientConnected()
        outbox = ConnectionOutbox(
            channel: context.channel, limits: environment.bus.settings.outbox, logger: logger,
            stalled: { [state = environment.state] in state.subscriberStalled() })
        let loopBound = NIOLoopBound(self, eventLoop: context.eventLoop)
        let contextBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        let limit = environment.settings.current.maximumConnections
        let admission = environment.registry.admit(
            id: id, channel: context.channel, limit: limit,
            beginDraining: { notice in loopBound.value.beginDraining(context: contextBound.value, notice: notice) },
            disconnect: { error in loopBound.value.evict(context: contextBound.value, error: error) })
        if case .refused(let first) = admission, let limit {
            if first { logger.warning("\(limit) clients are connected (MaxConnections=); refusing new ones until some leave") }
            refuse(
                context: context,
                error: ProtocolError(
                    .tooManyConnections, "llmd serves \(limit) clients at once (MaxConnections=), all connected now; try again later",
                    detail: ["limit": .int(Int64(limit))]))
            return
        }
        PeerCheck.credentials(of: context.channel).hop(to: context.eventLoop).assumeIsolated().whenComplete { result in
            switch result {
            case .success(let peer):
                self.admitOrRefuse(context: context, peer: peer)
            case .failure(let error):
                self.refuse(context: context, error: ProtocolError(.internalError, "cannot read peer credentials: \(error)"))
            }
        }
    }

    private func admitOrRefuse(context: ChannelHandlerContext, peer: PeerCredentials) {
        guard case .checkingPeer = phase else { return }
        logger[metadataKey: "peer_pid"] = "\(peer.pid)"
        logger[metadataKey: "peer_uid"] = "\(peer.uid)"
        let policy = environment.settings.current.peerPolicy
        guard PeerCheck.admits(peer, policy: policy) else {
            logger.warning("refused connection from uid \(peer.uid)")
            refuse(context: context, error: policy.refusal(of: peer))
            return
        }
        logger.debug("client connected")
        phase = .serving(peer)
        let hello = Hello(
            protocolVersion: ProtocolVersion.current, daemonVersion: LLMDVersion.string,
            pid: Int64(environment.state.pid), maximumLineLength: Int64(framer.maximumLineLength))
        write(context: context, .hello(hello))
        if environment.registry.isDraining {
            beginDraining(context: context, notice: environment.registry.shutdownNotice)
        }
        processFrames(context: context)
        finishInput(context: context)
    }

    /// Ends the connection with `error`, written first, whatever it was doing.
    private func refuse(context: ChannelHandlerContext, error: ProtocolError) {
        guard stopServing(context: context) else { return }
        writeAndClose(context: context, error: error)
    }

    /// Ends a connection that held too much of the input budget. It stops reading and
    /// lets go of what it held at once; writing `error` and closing wait their turn
    /// (``ConnectionEnvironment/evictions``): hundreds of connections evicted together,
    /// closed together, held up everyone's replies for 5-9 ms.
    private func evict(context: ChannelHandlerContext, error: ProtocolError) {
        guard stopServing(context: context) else { return }
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        environment.evictions.wait(on: context.eventLoop) { _ in
            let (handler, context) = loopBound.value
            handler.writeAndClose(context: context, error: error)
        }
    }

    /// Stops reading and drops what the connection holds; false if it is closed already.
    private func stopServing(context: ChannelHandlerContext) -> Bool {
        guard context.channel.isActive else { return false }
        if case .closed = phase { return false }
        phase = .closed
        // Nothing more is read: what the client still sends is not held meanwhile.
        framer = LineFramer(maximumLineLength: framer.maximumLineLength)
        environment.inputBudget.release(id)
        context.channel.setOption(ChannelOptions.autoRead, value: false).whenFailure { _ in }
        return true
    }

    private func writeAndClose(context: ChannelHandlerContext, error: ProtocolError) {
        guard context.channel.isActive else { return }
        let line = ServerMessage.error(id: nil, error).encodedLine
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: line))).assumeIsolated()
            .whenComplete { _ in context.close(promise: nil) }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .closed = phase { return }
        let buffer = unwrapInboundIn(data)
        let read = buffer.readableBytes
        framer.append(buffer.readableBytesView)
        processFrames(context: context)
        countHeldInput(context: context)
        readAllowance = max(0, readAllowance - read)
        if readAllowance == 0, !waitingForTurn, context.channel.isActive,
            ReadPacer.mustWait(lineBytes: framer.bytesSinceLastLine, allLinesBytes: environment.inputBudget.total)
        {
            waitingForTurn = true
            updateReading(context: context)
            let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
            environment.readPacer.wait(on: context.eventLoop) { allowance in
                let (handler, context) = loopBound.value
                handler.readAllowance = allowance
                handler.waitingForTurn = false
                handler.updateReading(context: context)
            }
        }
    }

    /// Counts what is left of an unfinished line against the daemon-wide budget, and ends
    /// the connections that hold the most when all of them together hold too much.
    private func countHeldInput(context: ChannelHandlerContext) {
        let held = framer.bufferedByteCount
        guard held != heldInput else { return }
        if case .closed = phase { return }
        heldInput = held
        let budget = environment.settings.current.maximumBufferedInput
        let victims = environment.inputBudget.hold(held, by: id, limit: budget)
        guard !victims.isEmpty else { return }
        // One line for the lot: under a flood of long lines, a line each would flood the log too.
        logger.warning(
            "unfinished request lines of all clients passed MaxBufferedInput=\(budget) bytes; disconnecting the \(victims.count) connections that held the most, \(victims.reduce(0) { $0 + $1.held }) bytes in all")
        for victim in victims {
            let error = ProtocolError(
                .inputBudgetExceeded,
                "the unfinished request lines of all clients passed llmd's limit of \(budget) bytes, and this connection's, \(victim.held) bytes, was among the largest; disconnecting",
                detail: ["buffered": .int(Int64(victim.held)), "budget": .int(Int64(budget))])
            if victim.id == id {
                evict(context: context, error: error)
            } else {
                environment.registry.disconnect(id: victim.id, with: error)
            }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard case ChannelEvent.inputClosed = event else {
            context.fireUserInboundEventTriggered(event)
            return
        }
        // A client may send requests and shut down its side (`… | nc -U`): answer them all.
        inputClosed = true
        finishInput(context: context)
    }

    /// After the peer's half-close, handles an unterminated last line and closes once
    /// everything is answered. Waits while the peer check is still pending.
    private func finishInput(context: ChannelHandlerContext) {
        // At the request limit, complete lines still wait in the framer: the last one is not yet due.
        guard inputClosed, isAcceptingFrames, !atRequestLimit else { return }
        if let last = framer.finish() { handle(frame: last, context: context) }
        closeIfFinished(context: context)
    }

    func channelInactive(context: ChannelHandlerContext) {
        phase = .closed
        // The client is gone: stop its work, which aborts upstream transfers, unless it
        // asked for a request to run on without it.
        for (id, task) in tasks where !detached.contains(id) { task.cancel() }
        tasks.removeAll()
        environment.bus.connectionClosed(id)
        environment.inputBudget.release(id)
        environment.registry.remove(id: id)
        environment.state.clientDisconnected()
        logger.debug("client disconnected")
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        logger.debug("connection error: \(error)")
        context.close(promise: nil)
    }

    private func processFrames(context: ChannelHandlerContext) {
        atRequestLimit = false
        while isAcceptingFrames {
            guard tasks.count < Self.maximumRequestsInFlight else {
                atRequestLimit = true
                break
            }
            guard let frame = framer.next() else { break }
            handle(frame: frame, context: context)
        }
        updateReading(context: context)
    }

    /// Reads while neither the request limit nor a wait for a turn holds reading back.
    private func updateReading(context: ChannelHandlerContext) {
        let wanted = !atRequestLimit && !waitingForTurn
        guard wanted != reading, context.channel.isActive else { return }
        reading = wanted
        context.channel.setOption(ChannelOptions.autoRead, value: wanted).whenFailure { _ in }
        if wanted { context.read() }
    }

    private var isAcceptingFrames: Bool {
        switch phase {
        case .serving, .draining: true
        case .checkingPeer, .closed: false
        }
    }

    private func handle(frame: LineFramer.Frame, context: ChannelHandlerContext) {
        switch frame {
        case .oversized(let length):
            let limit = framer.maximumLineLength
            write(
                context: context,
                .error(
                    id: nil,
                    ProtocolError(
                        .lineTooLong, "line of \(length) bytes exceeds the limit of \(limit) bytes",
                        detail: ["limit": .int(Int64(limit)), "length": .int(Int64(length))])))
        case .line(let line):
            switch Request.decode(line: line) {
            case .failure(let failure):
                write(context: context, .error(id: failure.id, failure.error))
            case .success(let request):
                dispatch(request, context: context)
            }
        }
    }

    private func dispatch(_ request: Request, context: ChannelHandlerContext) {
        let peer: PeerCredentials
        switch phase {
        case .serving(let servingPeer): peer = servingPeer
        case .draining:
            write(context: context, .error(id: request.id, ProtocolError(.shuttingDown, "llmd is shutting down")))
            return
        case .checkingPeer, .closed: return
        }
        guard let outbox else { return }
        switch ProtocolMethod(rawValue: request.method) {
        case .cancel?:
            cancel(request, context: context)
            return
        case let method? where method.isConnectionLevel:
            // Connection-level: their replies must precede the events they start.
            var started: SubscriptionKey?
            let reply: ServerMessage
            do throws(ProtocolError) {
                let result: JSONObject
                switch method {
                case .subscribe:
                    let subscribed = try subscribe(try SubscribeMethod.Params(json: request.params), outbox: outbox)
                    started = SubscriptionKey(connection: id, id: subscribed.subscription)
                    result = subscribed.json
                case .unsubscribe: result = try unsubscribe(try UnsubscribeMethod.Params(json: request.params)).json
                default: result = try acknowledge(try AckMethod.Params(json: request.params)).json
                }
                reply = .reply(id: request.id, result: result)
            } catch {
                reply = .error(id: request.id, error)
            }
            outbox.send([reply])
            if let started { environment.bus.start(started) }
            return
        default:
            break
        }
        let taskID = nextTaskID
        nextTaskID += 1
        let environment = self.environment
        let channel = context.channel
        let requestContext = RequestContext(
            requestID: request.id, connectionID: id, peer: peer, send: { messages in outbox.send(messages) },
            sendEvent: { event, id in outbox.send(event, request: id) })
        do throws(ProtocolError) {
            if try request.params.bool("detach") == true { detached.insert(taskID) }
        } catch {
            write(context: context, .error(id: request.id, error))
            return
        }
        taskIDs[request.id] = taskID
        let loopBound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        environment.state.requestStarted()
        tasks[taskID] = Task {
            let reply = await environment.methods.handle(request, context: requestContext)
            channel.eventLoop.execute {
                let (handler, context) = loopBound.value
                // Events queued by the request go first, then its reply.
                handler.outbox?.send([reply])
                handler.tasks[taskID] = nil
                handler.detached.remove(taskID)
                if handler.taskIDs[request.id] == taskID { handler.taskIDs[request.id] = nil }
                environment.state.requestFinished()
                if handler.atRequestLimit {
                    handler.processFrames(context: context)
                    handler.finishInput(context: context)
                }
                handler.closeIfFinished(context: context)
            }
        }
    }

    private var nextSubscription: Int64 = 1

    /// `subscribe` (llmd-protocol(7)): the reply; the subscription starts once it is queued.
    private func subscribe(_ params: SubscribeMethod.Params, outbox: ConnectionOutbox) throws(ProtocolError) -> SubscribeMethod.Result {
        var subscription = try EventMethods.subscriptionRequest(params, bus: environment.bus)
        if let sessions = subscription.filter.sessions {
            subscription.filter.sessionStarts = environment.sessionNames.epochs(of: sessions)
        }
        let key = SubscriptionKey(connection: id, id: nextSubscription)
        nextSubscription += 1
        let (cursor, oldest) = environment.bus.subscribe(key, subscription, outbox: outbox)
        return SubscribeMethod.Result(subscription: key.id, cursor: cursor, oldestSeq: oldest)
    }

    /// `unsubscribe` (llmd-protocol(7)).
    private func unsubscribe(_ params: UnsubscribeMethod.Params) throws(ProtocolError) -> UnsubscribeMethod.Result {
        let key = SubscriptionKey(connection: id, id: params.subscription)
        guard environment.bus.unsubscribe(key) else { throw EventMethods.notFound(key.id) }
        return UnsubscribeMethod.Result()
    }

    /// `ack` (llmd-protocol(7)).
    private func acknowledge(_ params: AckMethod.Params) throws(ProtocolError) -> AckMethod.Result {
        let key = SubscriptionKey(connection: id, id: params.subscription)
        guard environment.bus.hasSubscription(key) else { throw EventMethods.notFound(key.id) }
        return AckMethod.Result(acknowledged: environment.bus.acknowledge(key, seq: params.seq))
    }

    /// `cancel {request}`: cancels this connection's request with that id; its own reply
    /// then says `request.cancelled`.
    private func cancel(_ request: Request, context: ChannelHandlerContext) {
        let target: RequestID
        do throws(ProtocolError) {
            target = try CancelMethod.Params(json: request.params).request
        } catch {
            write(context: context, .error(id: request.id, error))
            return
        }
        let task = taskIDs[target].flatMap { tasks[$0] }
        task?.cancel()
        write(context: context, .reply(id: request.id, result: CancelMethod.Result(cancelled: task != nil).json))
    }

    private func write(context: ChannelHandlerContext, _ message: ServerMessage) {
        guard context.channel.isActive else { return }
        if let outbox {
            outbox.send([message])
            return
        }
        context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: message.encodedLine)), promise: nil)
    }

    /// Sends the shutdown notice; the connection closes when its requests are answered.
    private func beginDraining(context: ChannelHandlerContext, notice: Notice) {
        guard case .serving(let peer) = phase else { return }
        phase = .draining(peer)
        write(context: context, .notice(notice))
        closeIfFinished(context: context)
    }

    private func closeIfFinished(context: ChannelHandlerContext) {
        let draining: Bool
        if case .draining = phase { draining = true } else { draining = false }
        guard (inputClosed || draining), tasks.isEmpty, context.channel.isActive else { return }
        // Write what is queued (the last replies) before closing.
        outbox?.flush()
        context.close(promise: nil)
    }
}
