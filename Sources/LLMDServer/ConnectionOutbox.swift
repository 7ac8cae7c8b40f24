import LLMDProtocol
import NIOCore
import Synchronization

/// Lines waiting to be written to one connection, produced on any thread.
///
/// Producers append under a lock and schedule a flush on the channel's event loop only
/// when none is pending; everything that arrives meanwhile goes out with that flush. A
/// fast stream thus costs one wake-up and one write per burst, not per token.
final class ConnectionOutbox: Sendable {
    private struct State {
        var pending: [UInt8] = []
        var flushScheduled = false
    }

    private let channel: Channel
    private let state = Mutex(State())

    init(channel: Channel) {
        self.channel = channel
    }

    /// Queues `messages` as lines; they are written in the order queued.
    func send(_ messages: [ServerMessage]) {
        let schedule = state.withLock { state -> Bool in
            for message in messages { message.encodeLine(into: &state.pending) }
            defer { state.flushScheduled = true }
            return !state.flushScheduled
        }
        guard schedule else { return }
        channel.eventLoop.execute { self.flush() }
    }

    /// Writes everything queued; runs on the event loop.
    func flush() {
        let lines = state.withLock { state -> [UInt8] in
            state.flushScheduled = false
            defer { state.pending = [] }
            return state.pending
        }
        guard !lines.isEmpty, channel.isActive else { return }
        channel.writeAndFlush(channel.allocator.buffer(bytes: lines), promise: nil)
    }
}
