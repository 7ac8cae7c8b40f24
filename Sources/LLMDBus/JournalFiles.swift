import Dispatch
import LLMDProtocol
import Logging
import LLMDLifecycle
import LLMDStore
import Synchronization

/// The journal's two connections, one writing and one reading for replay, and the thread
/// that commits.
final class JournalFiles: Sendable {
    let writer: Mutex<JournalWriter>
    let reader: Mutex<EventJournal>
    /// Signalled when a batch starts gathering, and at stop.
    let wake = DispatchSemaphore(value: 0)
    private let stopping = Atomic(false)
    private let thread = Mutex<DedicatedThread?>(nil)

    init(path: String) throws(StoreError) {
        writer = Mutex(JournalWriter(journal: try EventJournal(path: path)))
        reader = Mutex(try EventJournal(path: path))
    }

    var isStopping: Bool { stopping.load(ordering: .acquiring) }

    /// Starts the thread that calls `commit` each time a batch has gathered for `delay`,
    /// and each second while it fails; it ends at stop, or when `commit` returns nil.
    func startCommitting(gathering delay: Duration, commit: @escaping @Sendable () -> Bool?) {
        // Batch scheduling: a commit that wakes up never preempts the stream's threads.
        let started = DedicatedThread(name: "llmd-journal", scheduling: .batch) { [self] in
            // Each wait can take the stop's signal, so the flag is read after each.
            while true {
                wake.wait()
                guard !isStopping else { return }
                // A token stream publishes every few microseconds: gathering them for a
                // few milliseconds makes one page of hundreds out of a commit each.
                // Publishers stay quiet until the commit, so only a stop cuts this short.
                _ = wake.wait(timeout: .now() + .microseconds(Int(delay.wholeMicroseconds)))
                while true {
                    guard let committed = commit() else { return }
                    guard !isStopping else { return }
                    if committed { break }
                    _ = wake.wait(timeout: .now() + .seconds(1))
                }
            }
        }
        thread.withLock { $0 = started }
    }

    /// Ends the thread after the commit it is making, if any; the caller commits the rest.
    func stopCommitting() {
        stopping.store(true, ordering: .releasing)
        wake.signal()
        // Not joined when the last reference to the bus went on that thread itself.
        guard let started = thread.withLock({ $0.take() }), !started.isCurrent else { return }
        started.join()
    }
}

/// The journal's writing connection, and when to keep its files within their bounds:
/// retention between pages, the write-ahead log cut back when long.
struct JournalWriter {
    var journal: EventJournal
    var bytesSinceRetention: Int64 = 0
    var lastRetention = ContinuousClock.now
    /// Retention that removes events is logged at level info at most once a minute:
    /// under a flood it runs several times a second.
    var lastRetentionReport = ContinuousClock.now - .seconds(60)

    /// Commits `batch` a page's worth at a time, at most an eighth of JournalMaxSize each,
    /// with retention between them when due and the write-ahead log cut back when long:
    /// a backlog of many megabytes, committed at once, would take the files that far past
    /// their bounds. With a deadline, leaves out what the deadline does not leave time for.
    ///
    /// - Returns: the numbers left out for the deadline, which went out live; the next
    ///   start does not give them again.
    mutating func commit(
        _ batch: [JournalRecord], settings: EventBusSettings, logger: Logger, until deadline: ContinuousClock.Instant?
    ) throws(StoreError) -> ClosedRange<UInt64>? {
        var start = 0
        while start < batch.count {
            if let deadline, ContinuousClock.now >= deadline {
                let left = batch[start...]
                try journal.saveNextSeq(left.last!.seq + 1)
                return left.first!.seq...left.last!.seq
            }
            var end = start
            var bytes: Int64 = 0
            while end < batch.count, end - start < EventJournal.pageCapacity, end == start || bytes < settings.retentionSlack {
                bytes += Int64(JournalBacklog.size(of: CollectionOfOne(batch[end])))
                end += 1
            }
            if bytesSinceRetention + bytes > settings.retentionSlack { applyRetention(settings: settings, logger: logger) }
            try journal.append(batch[start..<end])
            bytesSinceRetention += bytes
            start = end
            do {
                if try journal.checkpointIfLogExceeds(settings.journalLogLimit) {
                    logger.debug("event journal: write-ahead log checkpointed and cut back")
                }
            } catch {
                logger.warning("cannot checkpoint the event journal's write-ahead log: \(error)")
            }
        }
        return nil
    }

    /// Deletes events past the configured age and size.
    mutating func applyRetention(settings: EventBusSettings, logger: Logger) {
        bytesSinceRetention = 0
        lastRetention = .now
        let cutoff = settings.journalMaximumAge.map { Timestamp.nowMicroseconds() - $0.wholeMicroseconds }
        do {
            let deleted = try journal.applyRetention(olderThan: cutoff, maximumBytes: settings.journalMaximumBytes)
            if deleted > 0 {
                if ContinuousClock.now - lastRetentionReport >= .seconds(60) {
                    lastRetentionReport = .now
                    logger.info("event journal retention removed \(deleted) events")
                } else {
                    logger.debug("event journal retention removed \(deleted) events")
                }
            }
        } catch {
            logger.error("event journal retention failed: \(error)")
        }
    }
}
