import NIOCore
import Synchronization

/// Work that waits its turn: once a millisecond the first few of those waiting go on,
/// in the order they came, so that a burst of costly work is spread over many rounds
/// of the event loop instead of holding up everyone's replies in one.
final class Turns: Sendable {
    /// Who goes at a turn while `waiting` wait: how many, and the value each is given.
    typealias Share = @Sendable (_ waiting: Int) -> (count: Int, value: Int)

    private struct Waiting {
        var eventLoop: EventLoop
        var resume: @Sendable (_ value: Int) -> Void
    }

    private struct State {
        var waiting = CircularBuffer<Waiting>()
        var turnScheduled = false
    }

    private let eventLoop: EventLoop
    private let interval: TimeAmount
    private let share: Share
    private let state = Mutex(State())

    /// - Parameter eventLoop: where the turns are timed.
    init(eventLoop: EventLoop, interval: TimeAmount = .milliseconds(1), share: @escaping Share) {
        self.eventLoop = eventLoop
        self.interval = interval
        self.share = share
    }

    /// Queues `resume`, which runs on `eventLoop` at its turn with the value `share` gave.
    func wait(on eventLoop: EventLoop, resume: @escaping @Sendable (_ value: Int) -> Void) {
        let schedule = state.withLock { state in
            state.waiting.append(Waiting(eventLoop: eventLoop, resume: resume))
            defer { state.turnScheduled = true }
            return !state.turnScheduled
        }
        if schedule { scheduleTurn() }
    }

    private func scheduleTurn() {
        eventLoop.scheduleTask(in: interval) { self.takeTurn() }
    }

    private func takeTurn() {
        let (turn, value, more) = state.withLock { state in
            let (count, value) = share(state.waiting.count)
            var turn: [Waiting] = []
            while turn.count < count, let next = state.waiting.popFirst() { turn.append(next) }
            state.turnScheduled = !state.waiting.isEmpty
            return (turn, value, state.turnScheduled)
        }
        for waiting in turn { waiting.eventLoop.execute { waiting.resume(value) } }
        if more { scheduleTurn() }
    }
}
