/// Where a subscription is between replay and live delivery, and its lag rule.
///
/// A subscription first catches up (from the journal, then from recent events kept in
/// memory) and goes live at the exact point where catch-up ends, so nothing is seen twice
/// or missed. When its connection's queue refuses a live event, it lags: the events it
/// misses are counted, and when the queue drains it learns how many it missed and where
/// to resume, then catches up from there — or, if it asked not to, goes on live.
public struct SubscriptionFlow: Sendable, Equatable {
    public enum Mode: Sendable, Equatable {
        case catchingUp
        case live
        case lagging(firstMissed: UInt64, missed: Int)
    }

    public private(set) var mode: Mode
    /// The last `seq` delivered or passed over: catch-up continues after it.
    public private(set) var cursor: UInt64

    /// - Parameter cursor: the `seq` after which events are wanted.
    public init(cursor: UInt64, live: Bool) {
        self.cursor = cursor
        self.mode = live ? .live : .catchingUp
    }

    public enum LiveAction: Sendable, Equatable {
        /// Queue the event.
        case offer
        /// Not for this subscription now: catch-up will read it, or it is counted missed.
        case skip
    }

    /// `count` matching live events arrive, one after another (a run's tokens read together).
    public mutating func live(count: Int = 1) -> LiveAction {
        switch mode {
        case .live: return .offer
        case .catchingUp: return .skip
        case .lagging(let first, let missed):
            mode = .lagging(firstMissed: first, missed: missed + count)
            return .skip
        }
    }

    /// The outcome of ``live(count:)``'s `.offer` for the events numbered `seqs`: queued,
    /// or refused by a full queue, all of them.
    public mutating func offered(_ seqs: ClosedRange<UInt64>, accepted: Bool) {
        if accepted {
            cursor = seqs.upperBound
        } else {
            mode = .lagging(firstMissed: seqs.lowerBound, missed: seqs.count)
        }
    }

    /// What to do once a lagging subscription's queue has drained.
    public enum Recovery: Sendable, Equatable {
        /// Report `lagged`, then catch up from `resumeFrom`.
        case catchUp(missed: Int, resumeFrom: UInt64)
        /// Report `lagged` and go on live; the missed events stay in the journal.
        case skipAhead(missed: Int, resumeFrom: UInt64)
    }

    /// The queue drained; nil when the subscription was not lagging.
    ///
    /// - Parameters:
    ///   - resume: whether the subscriber wants missed events replayed.
    ///   - latest: the newest `seq` published, where a subscriber that does not resume goes on.
    public mutating func drained(resume: Bool, latest: UInt64) -> Recovery? {
        guard case .lagging(let first, let missed) = mode else { return nil }
        if resume {
            mode = .catchingUp
            cursor = first - 1
            return .catchUp(missed: missed, resumeFrom: first)
        }
        mode = .live
        cursor = latest
        return .skipAhead(missed: missed, resumeFrom: first)
    }

    /// Catch-up delivered or passed over everything through `seq`.
    public mutating func caughtUp(through seq: UInt64) {
        cursor = max(cursor, seq)
    }

    /// Catch-up reached the newest event: live delivery starts with the next.
    public mutating func goLive() {
        mode = .live
    }
}
