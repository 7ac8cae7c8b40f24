import LLMDProtocol
import NIOCore

/// How much a connection may have queued, and for how long it may stall.
package struct OutboxLimits: Sendable, Equatable {
    /// Above this many queued bytes, subscription events are no longer queued: the
    /// subscription lags.
    package var highWater: Int = 4 << 20
    /// A lagging subscription catches up once the queue falls to this.
    package var lowWater: Int { highWater / 4 }
    /// A connection over its high mark that writes nothing for this long is closed.
    package var stallTimeout: Duration = .seconds(30)

    package init(highWater: Int = 4 << 20, stallTimeout: Duration = .seconds(30)) {
        self.highWater = highWater
        self.stallTimeout = stallTimeout
    }
}

/// Where a subscription's events go: the queue of the connection that subscribed, which
/// its transport writes out. Any thread may call these.
package protocol SubscriberOutbox: AnyObject, Sendable {
    /// Queues messages whatever the queue holds: replies and notices.
    func send(_ messages: [ServerMessage])
    /// Queues lines that several subscribers share, whatever the queue holds.
    func send(shared lines: ByteBuffer)
    /// Queues shared lines unless the queue is over its high mark; false when refused.
    func offer(shared lines: ByteBuffer) -> Bool
    /// Queues what `write` appends unless the queue is over its high mark; false when refused.
    func offer(_ write: (inout [UInt8]) -> Void) -> Bool
    /// Runs `action` once the queue is at or under its low mark: at once when it is.
    func whenDrained(_ action: @escaping @Sendable () -> Void)
}
