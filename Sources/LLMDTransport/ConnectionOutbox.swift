import LLMDApplication
import LLMDBus
import LLMDProtocol
import Logging
import NIOCore
import NIOPosix
import Synchronization

/// Lines waiting to be written to one connection, produced on any thread, bounded.
///
/// Producers append under a lock and schedule a flush on the channel's event loop only
/// when none is pending; everything that arrives meanwhile goes out with that flush. A
/// fast stream thus costs one wake-up and one write per burst, not per token.
///
/// Replies and a request's own events are always queued (``send(_:)``); subscription
/// events are offered (``offer(_:)``) and refused above the high mark, so a slow reader
/// costs only itself. A reader that stays over the mark without reading is disconnected
/// with `subscriber.stalled`.
///
/// A burst of events that several connections get is queued by each as one shared buffer
/// (``offer(shared:)``), not copied: with hundreds of subscribers, copies are most of the
/// cost of fan-out, and a backlog of them most of the daemon's memory.
final class ConnectionOutbox: SubscriberOutbox {
    /// What a flush writes, in order.
    private enum Piece {
        /// Lines of this connection's own, copied in.
        case own([UInt8])
        /// Lines other connections write too.
        case shared(ByteBuffer)
    }

    private struct State {
        var pieces: [Piece] = []
        var pieceBytes = 0
        /// Own lines after the last piece, appended to until a shared piece or a flush.
        var tail: [UInt8] = []
        var flushScheduled = false
        /// Bytes handed to the channel that the socket has not taken yet.
        var unwritten = 0
        var lastProgress = NIODeadline.now()
        var stallCheckScheduled = false
        /// Disconnected as stalled: nothing more is queued, the notice goes last.
        var stalled = false
        var drainWaiters: [@Sendable () -> Void] = []

        var queued: Int { pieceBytes + tail.count + unwritten }
    }

    /// Shared lines shorter than this are copied in: writing a piece on its own costs more
    /// than copying it.
    static let smallestSharedPiece = 2048

    private let channel: Channel
    private let limits: OutboxLimits
    private let logger: Logger
    /// Told when the connection is disconnected as stalled, for the metrics.
    private let stalled: @Sendable () -> Void
    private let state = Mutex(State())

    init(channel: Channel, limits: OutboxLimits, logger: Logger, stalled: @escaping @Sendable () -> Void = {}) {
        self.channel = channel
        self.limits = limits
        self.logger = logger
        self.stalled = stalled
    }

    /// Bytes queued and not yet taken by the socket.
    var queuedBytes: Int { state.withLock { $0.queued } }

    /// Queues `messages` as lines, whatever the queue holds; they go out in order.
    package func send(_ messages: [ServerMessage]) {
        enqueue(evenWhenFull: true) { state in
            for message in messages { message.encodeLine(into: &state.tail) }
        }
    }

    /// Queues `event` as a callback of `request`, whatever the queue holds; a published
    /// event's encoding is copied, not made again.
    func send(_ event: CallbackEvent, request: RequestID) {
        enqueue(evenWhenFull: true) { state in
            event.encodeBody(into: &state.tail)
            CallbackEvent.completeLine(&state.tail, request: request, subscription: nil)
        }
    }

    /// Queues the lines `write` appends, unless the queue is over its high mark.
    ///
    /// - Returns: false when refused; the caller counts the events as missed.
    package func offer(_ write: (inout [UInt8]) -> Void) -> Bool {
        enqueue(evenWhenFull: false) { state in write(&state.tail) }
    }

    /// Queues `lines`, which other connections may queue too, unless the queue is over its
    /// high mark.
    ///
    /// - Returns: false when refused; the caller counts the events as missed.
    package func offer(shared lines: ByteBuffer) -> Bool {
        enqueue(shared: lines, evenWhenFull: false)
    }

    /// Queues `lines`, which other connections may queue too, whatever the queue holds.
    package func send(shared lines: ByteBuffer) {
        enqueue(shared: lines, evenWhenFull: true)
    }

    @discardableResult
    private func enqueue(shared lines: ByteBuffer, evenWhenFull: Bool) -> Bool {
        enqueue(evenWhenFull: evenWhenFull) { state in
            guard lines.readableBytes >= Self.smallestSharedPiece else {
                state.tail.append(contentsOf: lines.readableBytesView)
                return
            }
            if !state.tail.isEmpty {
                state.pieces.append(.own(state.tail))
                state.pieceBytes += state.tail.count
                state.tail = []
            }
            state.pieces.append(.shared(lines))
            state.pieceBytes += lines.readableBytes
        }
    }

    @discardableResult
    private func enqueue(evenWhenFull: Bool, _ append: (inout State) -> Void) -> Bool {
        let (admitted, schedule, checkStall) = state.withLock { state -> (Bool, Bool, Bool) in
            guard !state.stalled, evenWhenFull || state.queued < limits.highWater else { return (false, false, false) }
            append(&state)
            let schedule = !state.flushScheduled
            state.flushScheduled = true
            let checkStall = state.queued >= limits.highWater && !state.stallCheckScheduled
            if checkStall { state.stallCheckScheduled = true }
            return (true, schedule, checkStall)
        }
        if schedule { HeldFlushes.schedule(self) }
        if checkStall { scheduleStallCheck() }
        return admitted
    }

    /// Runs `action` once the queue is at or under its low mark: at once when it is.
    package func whenDrained(_ action: @escaping @Sendable () -> Void) {
        let now = state.withLock { state -> Bool in
            if state.queued <= limits.lowWater { return true }
            state.drainWaiters.append(action)
            return false
        }
        if now { action() }
    }

    /// Writes everything queued; runs on the event loop.
    func flush() {
        let (pieces, tail) = state.withLock { state -> ([Piece], [UInt8]) in
            state.flushScheduled = false
            defer {
                state.unwritten += state.pieceBytes + state.tail.count
                (state.pieces, state.pieceBytes, state.tail) = ([], 0, [])
            }
            return (state.pieces, state.tail)
        }
        var buffers = pieces.map { piece -> ByteBuffer in
            switch piece {
            case .own(let lines): channel.allocator.buffer(bytes: lines)
            case .shared(let lines): lines
            }
        }
        if !tail.isEmpty { buffers.append(channel.allocator.buffer(bytes: tail)) }
        guard let last = buffers.popLast() else { return }
        let count = buffers.reduce(last.readableBytes) { $0 + $1.readableBytes }
        guard channel.isActive else {
            wrote(count)
            return
        }
        // Written together: the socket gets them in one writev.
        for buffer in buffers { channel.write(buffer, promise: nil) }
        let promise = channel.eventLoop.makePromise(of: Void.self)
        promise.futureResult.whenComplete { _ in self.wrote(count) }
        channel.writeAndFlush(last, promise: promise)
    }

    /// The socket took `count` bytes (or the connection is gone and never will).
    private func wrote(_ count: Int) {
        let waiters = state.withLock { state -> [@Sendable () -> Void] in
            state.unwritten -= count
            state.lastProgress = .now()
            guard state.queued <= limits.lowWater else { return [] }
            defer { state.drainWaiters = [] }
            return state.drainWaiters
        }
        for waiter in waiters { waiter() }
    }

    /// From the high mark until the queue is down to the low one, checks every
    /// `stallTimeout` that the socket took something; closes the connection when it took
    /// nothing. Down to the low mark, not the high one: a lagging subscription offers
    /// nothing more until then, so a reader that stops with its queue just under the high
    /// mark would otherwise never be checked again.
    private func scheduleStallCheck() {
        channel.eventLoop.scheduleTask(in: .microseconds(limits.stallTimeout.wholeMicroseconds)) {
            let stalled = self.state.withLock { state -> Bool? in
                guard state.queued > self.limits.lowWater else {
                    state.stallCheckScheduled = false
                    return nil
                }
                return NIODeadline.now() - state.lastProgress >= .microseconds(self.limits.stallTimeout.wholeMicroseconds)
            }
            switch stalled {
            case nil: return
            case false?: self.scheduleStallCheck()
            case true?: self.disconnectStalled()
            }
        }
    }

    /// How long a stalled connection has to read what was written to it, the notice last,
    /// before it is closed all the same.
    var noticeGrace: Duration { min(limits.stallTimeout, .seconds(5)) }

    /// Ends a connection that stalled: nothing more is queued, and what is queued but not
    /// yet written, whole lines, is dropped; the `subscriber.stalled` notice follows what
    /// the channel already holds, and the connection closes once the notice is written,
    /// or after ``noticeGrace``. A client that reads again in time gets the notice; one
    /// that reads nothing cannot be told, its socket being full, and sees the end of the
    /// connection.
    private func disconnectStalled() {
        let queued = state.withLock { state -> Int in
            state.stalled = true
            defer { (state.pieces, state.pieceBytes, state.tail) = ([], 0, []) }
            return state.queued
        }
        stalled()
        logger.warning(
            "disconnecting a client that read nothing with its queue full",
            metadata: ["code": "\(ErrorCode.subscriberStalled)", "queued_bytes": "\(queued)"])
        let error = ProtocolError(
            .subscriberStalled,
            "this connection read nothing for \(limits.stallTimeout.wholeMilliseconds) ms with its queue full; disconnecting",
            detail: ["queued_bytes": .int(Int64(queued)), "limit_bytes": .int(Int64(limits.highWater))])
        let written = channel.eventLoop.makePromise(of: Void.self)
        channel.writeAndFlush(
            channel.allocator.buffer(bytes: ServerMessage.error(id: nil, error).encodedLine), promise: written)
        let channel = channel
        let grace = channel.eventLoop.scheduleTask(in: .microseconds(noticeGrace.wholeMicroseconds)) {
            channel.close(promise: nil)
        }
        written.futureResult.whenComplete { _ in
            grace.cancel()
            channel.close(promise: nil)
        }
    }
}

extension ConnectionOutbox: LoopFlushable {
    var flushLoop: any EventLoop { channel.eventLoop }
}
