import NIOCore

/// Takes turns among connections in the middle of long lines, so that a burst of them
/// does not hold up everyone else's replies.
///
/// A request line is rarely longer than a few kilobytes. A connection past
/// ``longLine`` bytes of a line, or past ``shortLine`` while the unfinished lines of all
/// clients hold ``pressure``, stops reading and waits here; every millisecond those
/// waiting may read 256 KiB among them, in the order they came, shared evenly. Without
/// it, 2,000 clients each pushing a megabyte held the event loop in rounds of copying
/// hundreds of megabytes while every other reply waited (ping p99 140-500 ms). A
/// megabyte a turn was still too much: rounds that read one ran 4-9 ms with the closes
/// beside them, and a ping waited for them (p99 11-26 ms); at 256 KiB no round passed
/// 2.3 ms. A client alone with a long line gets all 256 KiB at each turn: a 1 MB
/// request takes about 6 ms.
final class ReadPacer: Sendable {
    /// Bytes of one line past which a connection reads only in turn.
    static let longLine = 64 << 10
    /// While the unfinished lines of all clients hold `pressure` bytes, a connection
    /// reads in turn from `shortLine` bytes of a line on: else thousands of clients
    /// would each read up to `longLine` unpaced, at once.
    static let pressure = 4 << 20
    static let shortLine = 1 << 10
    /// What those waiting read among them at each turn.
    static let bytesPerTurn = 256 << 10
    /// The least a connection reads at its turn: one read (SocketServer's largest).
    static let leastAllowance = 16 << 10
    static let turn = TimeAmount.milliseconds(1)

    /// Whether a connection `lineBytes` into a line must wait for its turn to read on,
    /// when all connections hold `allLinesBytes` of unfinished lines: asked only of a
    /// connection in the middle of a line, since reading the total takes a lock.
    static func mustWait(lineBytes: Int, allLinesBytes: @autoclosure () -> Int) -> Bool {
        lineBytes >= longLine || (lineBytes >= shortLine && allLinesBytes() >= pressure)
    }

    private let turns: Turns

    /// - Parameter eventLoop: where the turns are timed.
    init(eventLoop: EventLoop) {
        turns = Turns(eventLoop: eventLoop, interval: Self.turn) { waiting in
            let allowance = max(Self.leastAllowance, Self.bytesPerTurn / max(1, waiting))
            return (count: (Self.bytesPerTurn + allowance - 1) / allowance, value: allowance)
        }
    }

    /// Queues a connection. At its turn `resume` runs on `eventLoop` with the bytes the
    /// connection may read before it asks again.
    func wait(on eventLoop: EventLoop, resume: @escaping @Sendable (_ allowance: Int) -> Void) {
        turns.wait(on: eventLoop, resume: resume)
    }
}
