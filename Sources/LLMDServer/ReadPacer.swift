import NIOCore
import Synchronization

/// Takes turns among connections in the middle of long lines, so that a burst of them
/// does not hold up everyone else's replies.
///
/// A request line is rarely longer than a few kilobytes. A connection past
/// ``longLine`` bytes of a line, or past ``shortLine`` while the unfinished lines of all
/// clients hold ``pressure``, stops reading and waits here; every millisecond those
/// waiting may read about a megabyte among them, in the order they came, shared
/// evenly. Without it, 2,000 clients each pushing a megabyte held the event loop in
/// rounds of copying hundreds of megabytes while every other reply waited (ping p99
/// 140-500 ms); paced, a round copies about a megabyte of them. A client alone with a
/// long line gets the whole megabyte at each turn.
final class ReadPacer: Sendable {
    /// Bytes of one line past which a connection reads only in turn.
    static let longLine = 64 << 10
    /// While the unfinished lines of all clients hold `pressure` bytes, a connection
    /// reads in turn from `shortLine` bytes of a line on: else thousands of clients
    /// would each read up to `longLine` unpaced, at once.
    static let pressure = 4 << 20
    static let shortLine = 1 << 10
    /// What those waiting read among them at each turn.
    static let bytesPerTurn = 1 << 20
    /// The least a connection reads at its turn: one read (SocketServer's largest).
    static let leastAllowance = 16 << 10
    static let turn = TimeAmount.milliseconds(1)

    /// Whether a connection `lineBytes` into a line must wait for its turn to read on,
    /// when all connections hold `allLinesBytes` of unfinished lines.
    static func mustWait(lineBytes: Int, allLinesBytes: Int) -> Bool {
        lineBytes >= longLine || (lineBytes >= shortLine && allLinesBytes >= pressure)
    }

    private struct Waiting {
        var eventLoop: EventLoop
        var resume: @Sendable (_ allowance: Int) -> Void
    }

    private struct State {
        var waiting = CircularBuffer<Waiting>()
        var turnScheduled = false
    }

    private let eventLoop: EventLoop
    private let state = Mutex(State())

    /// - Parameter eventLoop: where the turns are timed.
    init(eventLoop: EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Queues a connection. At its turn `resume` runs on `eventLoop` with the bytes the
    /// connection may read before it asks again.
    func wait(on eventLoop: EventLoop, resume: @escaping @Sendable (_ allowance: Int) -> Void) {
        let schedule = state.withLock { state in
            state.waiting.append(Waiting(eventLoop: eventLoop, resume: resume))
            defer { state.turnScheduled = true }
            return !state.turnScheduled
        }
        if schedule { scheduleTurn() }
    }

    private func scheduleTurn() {
        eventLoop.scheduleTask(in: Self.turn) { self.takeTurn() }
    }

    private func takeTurn() {
        let (turn, allowance, more) = state.withLock { state in
            let allowance = max(Self.leastAllowance, Self.bytesPerTurn / max(1, state.waiting.count))
            var turn: [Waiting] = []
            while turn.count * allowance < Self.bytesPerTurn, let next = state.waiting.popFirst() { turn.append(next) }
            state.turnScheduled = !state.waiting.isEmpty
            return (turn, allowance, state.turnScheduled)
        }
        for waiting in turn { waiting.eventLoop.execute { waiting.resume(allowance) } }
        if more { scheduleTurn() }
    }
}
