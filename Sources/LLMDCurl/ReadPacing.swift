/// When the engine thread reads again after a round of reading: as soon as the network
/// has data, or after a pause in which a fast stream's next pieces gather in the socket.
///
/// A server with nothing between its tokens sends each in a packet of its own, every few
/// microseconds. Read as it comes, every token costs the thread a wake-up, a poll and a
/// `recv`, which is most of what the daemon spends on it. Read at most once per
/// `interval`, a dozen tokens come with one `recv`, each having waited at most `interval`.
/// A stream slower than that is read the moment data comes, as if there were no pacing:
/// pacing starts only when a round reads within `interval` of the one before, and stops at
/// the first paced round that finds nothing to read.
///
/// Pure: the engine tells it when rounds started and whether they read; it answers with
/// what to do next.
struct ReadPacing {
    enum Next: Equatable {
        /// Wait for the network (or a command, or a timeout).
        case waitForNetwork
        /// Read again after this pause; zero when the round itself took the interval.
        case readAgain(after: Duration)
    }

    let interval: Duration
    /// When the last round that read something started.
    private var lastRead: ContinuousClock.Instant?
    private var pacing = false

    init(interval: Duration) {
        self.interval = interval
    }

    /// - Parameters:
    ///   - started: when the round that just ended started.
    ///   - read: whether it read anything of a transfer still going.
    ///   - now: the time now.
    mutating func roundEnded(started: ContinuousClock.Instant, read: Bool, now: ContinuousClock.Instant) -> Next {
        guard read, interval > .zero else {
            pacing = false
            return .waitForNetwork
        }
        if let lastRead, started - lastRead < interval { pacing = true }
        lastRead = started
        guard pacing else { return .waitForNetwork }
        return .readAgain(after: max(.zero, started + interval - now))
    }
}
