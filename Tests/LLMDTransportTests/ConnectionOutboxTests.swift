import LLMDBus
import LLMDProtocol
import Logging
import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@testable import LLMDTransport

#if canImport(Glibc)
import Glibc
#endif

@Suite("Connection outbox")
struct ConnectionOutboxTests {
    private static func event(_ seq: UInt64) -> CallbackEvent {
        CallbackEvent(name: "llm_new_token", seq: seq, runID: "r", data: ["token": .string("t\(seq)")])
    }

    @Test("a thread that holds flushes writes nothing until it releases them, then one write for all")
    func heldFlushes() throws {
        // Holding is a property of the thread for the rest of its life: a thread of its own,
        // with the channel and its loop, since an embedded loop stays on one thread.
        let writes = Mutex<[[String]]>([])
        try onNewThread {
            let channel = connectedChannel()
            let outbox = ConnectionOutbox(channel: channel, limits: OutboxLimits(), logger: Logger(label: "test"))
            HeldFlushes.holdOnThisThread()
            outbox.send(Self.event(1), request: .int(7))
            outbox.send(Self.event(2), request: .int(7))
            writes.withLock { $0.append(outbound(of: channel)) }
            HeldFlushes.release()
            writes.withLock { $0.append(outbound(of: channel)) }
            outbox.send(Self.event(3), request: .int(7))
            HeldFlushes.release()
            writes.withLock { $0.append(outbound(of: channel)) }
        }
        let recorded = writes.withLock { $0 }
        try #require(recorded.count == 3)
        #expect(recorded[0].isEmpty)
        // Both events, as lines addressed to the request, in a single write.
        try #require(recorded[1].count == 1)
        let lines = recorded[1][0].split(separator: "\n").map { try? JSONParser.parse(String($0)).objectValue }
        #expect(lines.map { $0?["seq"] } == [1, 2])
        #expect(lines.allSatisfy { $0?["request"] == 7 && $0?["event"] == "llm_new_token" })
        #expect(recorded[2].count == 1)
    }

    @Test("held flushes go out once the oldest has waited the limit, even if the batch never ends")
    func heldFlushesHaveAnAgeLimit() throws {
        let writes = Mutex<[Int]>([])
        try onNewThread {
            let channel = connectedChannel()
            let outbox = ConnectionOutbox(channel: channel, limits: OutboxLimits(), logger: Logger(label: "test"))
            HeldFlushes.holdOnThisThread()
            outbox.send(Self.event(1), request: .int(7))
            HeldFlushes.release(heldFor: .seconds(60))
            writes.withLock { $0.append(outbound(of: channel).count) }
            usleep(2_000)
            outbox.send(Self.event(2), request: .int(7))
            HeldFlushes.release(heldFor: .milliseconds(1))
            writes.withLock { $0.append(outbound(of: channel).count) }
            // Nothing is held now: the age check does nothing.
            HeldFlushes.release(heldFor: .zero)
            writes.withLock { $0.append(outbound(of: channel).count) }
        }
        #expect(writes.withLock { $0 } == [0, 1, 0])
    }

    @Test("without holding, each burst is flushed by the loop on its own")
    func unheldFlushes() throws {
        let channel = connectedChannel()
        let outbox = ConnectionOutbox(channel: channel, limits: OutboxLimits(), logger: Logger(label: "test"))
        outbox.send(Self.event(1), request: .int(7))
        channel.embeddedEventLoop.run()
        let buffer = try #require(try channel.readOutbound(as: ByteBuffer.self))
        #expect(String(buffer: buffer).hasSuffix(#","request":7}"# + "\n"))
    }

    @Test("a burst shared by connections is written by each from the same memory, in order with their own lines")
    func sharedBursts() throws {
        var burst = ByteBufferAllocator().buffer(capacity: 3000)
        burst.writeString(String(repeating: "s", count: 2999) + "\n")
        let channels = [connectedChannel(), connectedChannel()]
        var written: [[ByteBuffer]] = []
        for channel in channels {
            let outbox = ConnectionOutbox(channel: channel, limits: OutboxLimits(), logger: Logger(label: "test"))
            outbox.send([.ready(subscription: 1, seq: 4)])
            #expect(outbox.offer(shared: burst))
            outbox.send(Self.event(5), request: .int(9))
            #expect(outbox.queuedBytes > 3000)
            channel.embeddedEventLoop.run()
            var buffers: [ByteBuffer] = []
            while let buffer = try channel.readOutbound(as: ByteBuffer.self) { buffers.append(buffer) }
            written.append(buffers)
        }
        for buffers in written {
            let lines = buffers.map { String(buffer: $0) }
            let inOrder = lines.count == 3 && lines[0].contains(#""ready""#) && lines[1] == String(buffer: burst)
                && lines[2].contains(#""seq":5"#)
            #expect(inOrder)
        }
        let addresses = written.map { $0[1].withUnsafeReadableBytes { $0.baseAddress } }
        let sameMemory = addresses[0] != nil && addresses[0] == addresses[1]
        #expect(sameMemory, "the burst was copied")
    }

    @Test("a short shared burst is copied in with the connection's own lines, and counts against the high mark")
    func shortSharedBursts() throws {
        var burst = ByteBufferAllocator().buffer(capacity: 100)
        burst.writeString(String(repeating: "s", count: 99) + "\n")
        let channel = connectedChannel()
        let outbox = ConnectionOutbox(channel: channel, limits: OutboxLimits(highWater: 150), logger: Logger(label: "test"))
        #expect(outbox.offer(shared: burst))
        #expect(outbox.offer(shared: burst))
        #expect(!outbox.offer(shared: burst))  // 200 bytes queued, over the mark
        #expect(outbound(of: channel) == [String(repeating: String(buffer: burst), count: 2)])
    }

    @Test("a reader that stops with its queue between the marks is still disconnected as stalled")
    func stalledUnderTheHighMark() throws {
        let socket = HeldWrites()
        let channel = EmbeddedChannel(handler: socket)
        defer { socket.complete(count: socket.waiting) }  // NIO traps on a promise left unfulfilled
        _ = try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        let limits = OutboxLimits(highWater: 4096, stallTimeout: .milliseconds(50))
        let outbox = ConnectionOutbox(channel: channel, limits: limits, logger: Logger(label: "test"))
        let line = [UInt8](repeating: UInt8(ascii: "x"), count: 1500)
        // Two writes the socket has not taken, together over the high mark.
        for _ in 0..<2 { #expect(outbox.offer { $0.append(contentsOf: line) }) }
        channel.embeddedEventLoop.run()
        #expect(outbox.offer { $0.append(contentsOf: line) })
        #expect(!outbox.offer { $0.append(contentsOf: line) })  // over the mark: refused
        channel.embeddedEventLoop.run()
        // The socket takes the first write and then nothing more: 1,500 bytes stay
        // queued, under the high mark and over the low one.
        socket.complete(count: 1)
        #expect(outbox.queuedBytes == 1500)
        usleep(100_000)
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(100))
        let closed = !channel.isActive
        #expect(closed, "not disconnected")
        // A Bool, not the expression: the written lines are thousands of bytes to print.
        let toldStalled = socket.data.last.map { String(buffer: $0).contains("subscriber.stalled") } ?? false
        #expect(toldStalled)
    }
}

/// A socket that takes writes only when told: their promises wait for ``complete(count:)``.
private final class HeldWrites: ChannelOutboundHandler, @unchecked Sendable {
    typealias OutboundIn = ByteBuffer
    var data: [ByteBuffer] = []
    private var promises: [EventLoopPromise<Void>?] = []

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        self.data.append(unwrapOutboundIn(data))
        promises.append(promise)
    }

    var waiting: Int { promises.count }

    func complete(count: Int) {
        for promise in promises.prefix(count) { promise?.succeed() }
        promises.removeFirst(count)
    }
}

/// An embedded channel that is active, as an accepted connection is.
private func connectedChannel() -> EmbeddedChannel {
    let channel = EmbeddedChannel()
    _ = try? channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
    return channel
}

/// What the channel's loop writes when it runs now, one string per write.
private func outbound(of channel: EmbeddedChannel) -> [String] {
    channel.embeddedEventLoop.run()
    var written: [String] = []
    while let buffer = try? channel.readOutbound(as: ByteBuffer.self) {
        written.append(String(buffer: buffer))
    }
    return written
}

/// Runs `body` on a thread created for it, and waits for it to end.
private func onNewThread(_ body: @escaping @Sendable () -> Void) throws {
    final class Box: Sendable {
        let body: @Sendable () -> Void
        init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    }
    var thread = pthread_t()
    let argument = Unmanaged.passRetained(Box(body)).toOpaque()
    let created = pthread_create(&thread, nil, { argument in
        Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue().body()
        return nil
    }, argument)
    try #require(created == 0)
    pthread_join(thread, nil)
}
