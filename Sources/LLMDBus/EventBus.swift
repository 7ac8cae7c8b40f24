import Dispatch
import LLMDCore
import LLMDEvents
import LLMDLifecycle
import LLMDProtocol
import LLMDStore
import LLMDSystemd
import Logging
import NIOCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A subscription, named by its connection and its number there.
package struct SubscriptionKey: Hashable, Sendable {
    package var connection: UInt64
    package var id: Int64

    package init(connection: UInt64, id: Int64) {
        self.connection = connection
        self.id = id
    }
}

/// What `subscribe` asked for.
package struct SubscriptionRequest: Sendable {
    package var filter: EventFilter
    /// Replay events after this `seq` first; nil starts live.
    package var since: UInt64?
    /// Types whose events the run waits for this subscriber to `ack`.
    package var blocking: Set<EventType>
    /// After lagging, replay what was missed (true) or go on live (false).
    package var resumeAfterLag: Bool

    package init(filter: EventFilter, since: UInt64?, blocking: Set<EventType>, resumeAfterLag: Bool) {
        self.filter = filter
        self.since = since
        self.blocking = blocking
        self.resumeAfterLag = resumeAfterLag
    }
}

/// Settings of the event machinery, from `[Events]` in llmd.conf(5).
package struct EventBusSettings: Sendable {
    /// Recent events kept in memory, so catch-up rarely reads the journal.
    package var recentCapacity = 8192
    package var outbox = OutboxLimits()
    /// How long a run waits for a blocking subscriber's `ack`.
    package var ackTimeout: Duration = .seconds(5)
    /// Retention: events older than this go, when set.
    package var journalMaximumAge: Duration? = .seconds(30 * 24 * 3600)
    /// Retention: the oldest events go while the journal is larger than this, when set.
    package var journalMaximumBytes: Int64? = 256 << 20
    /// How long events gather before the journal commits them together.
    package var journalCommitDelay: Duration = .milliseconds(5)
    /// Uncommitted events, in bytes, past which clients' `publish` waits for a commit.
    package var journalBacklogSoftLimit = 32 << 20
    /// Uncommitted events, in bytes, past which events are left out of the journal.
    package var journalBacklogHardLimit = 128 << 20
    /// The write-ahead log is checkpointed and cut back when it grows past this.
    package var journalLogLimit: Int64 = 32 << 20
    /// How long the last commit may take at shutdown: the backlog's hard limit is
    /// written in a second or two; what a slower disk leaves is left out and counted.
    package var finalCommitTime: Duration = .seconds(5)
    /// How many bytes are committed between retention passes: what the journal may
    /// exceed `journalMaximumBytes` by, at most 32 MiB.
    package var retentionSlack: Int64 { min(32 << 20, max(1 << 20, (journalMaximumBytes ?? (256 << 20)) / 8)) }
}

/// The daemon's event bus: numbers every event, journals it, and fans it out to the
/// subscriptions that match and to the daemon-wide handlers.
///
/// Publishing takes one lock, under which the event gets its `seq`, joins the recent
/// events and the journal's next batch, and is offered to each live subscription's
/// connection queue; nothing there blocks or does I/O, so a token costs the stream
/// microseconds whatever the subscribers do. A subscription whose queue refuses an event
/// lags (``SubscriptionFlow``); catch-up runs in its own task.
///
/// Its parts: ``RecentEvents``, the newest events in memory; fan-out (FanOut.swift), the
/// lines all subscribers share; catch-up (SubscriptionReplay.swift); the journal's files,
/// writer and committing thread (``JournalFiles``, ``JournalWriter``) with the
/// ``JournalBacklog`` of events waiting for them; the ``AcknowledgementGate`` a blocking
/// subscriber's events wait at; and the daemon-wide handlers the configuration names
/// (EventBusConfiguration.swift).
public final class EventBus: EventSink, Sendable {
    /// A class so the publish loop updates flows without copying the dictionary; touched
    /// only under the bus's lock.
    final class Subscription {
        let request: SubscriptionRequest
        let outbox: any SubscriberOutbox
        var flow: SubscriptionFlow
        var readySent = false
        /// What follows a published body in this subscription's lines: its id, the
        /// closing brace and the newline, encoded once instead of for every event.
        let lineEnd: [UInt8]

        init(id: Int64, request: SubscriptionRequest, outbox: any SubscriberOutbox, flow: SubscriptionFlow) {
            self.request = request
            self.outbox = outbox
            self.flow = flow
            var lineEnd: [UInt8] = []
            CallbackEvent.completeLine(&lineEnd, request: nil, subscription: id)
            self.lineEnd = lineEnd
        }
    }

    struct State {
        var nextSeq: UInt64
        var recent: RecentEvents
        var subscriptions: [SubscriptionKey: Subscription] = [:]
        /// Made by the publishing thread, whose caches hold the event: the journal's thread
        /// touching the event itself (its fields, its reference count) cost it a cache miss
        /// each, which was most of its work.
        var journalBacklog: JournalBacklog
        var journalFlushScheduled = false
        /// The highest `seq` the journal has committed.
        var durableSeq: UInt64
        var durableWaiters: [(seq: UInt64, continuation: CheckedContinuation<Void, Never>)] = []
        var acknowledgements: [UInt64: AcknowledgementGate] = [:]
        /// Events published since start by type (nil: custom), for the metrics.
        var published: [EventType?: Int] = [:]
    }

    package let settings: EventBusSettings
    let state: Mutex<State>
    let journal: JournalFiles?
    /// The journal's SQLite file, whose size the metrics report.
    private let journalPath: String?
    private let handlers: [FilteredCallbackHandler]
    /// Types some handler takes: others (tokens, usually) never reach the handler queue.
    private let handledTypes: EventTypeMask
    private let handlerQueue = DispatchQueue(label: "llmd.event-handlers")
    let logger: Logger

    /// - Parameters:
    ///   - journalPath: the journal's SQLite file; nil keeps events in memory only, and
    ///     numbering starts at 1 on each start.
    ///   - handlers: daemon-wide handlers, called in order on a queue of their own.
    init(
        settings: EventBusSettings, journalPath: String?, handlers: [FilteredCallbackHandler], logger: Logger
    ) throws(StoreError) {
        self.settings = settings
        self.handlers = handlers
        self.handledTypes = EventTypeMask(handlers.flatMap(\.acceptedTypes))
        self.logger = logger
        self.journalPath = journalPath
        var next: UInt64 = 1
        if let journalPath {
            let files = try JournalFiles(path: journalPath)
            let (unclean, seq) = try files.writer.withLock { writer throws(StoreError) in
                (try writer.journal.beginWriting(), try writer.journal.nextSeq())
            }
            if unclean {
                logger.warning(
                    "the event journal was not closed cleanly; the events of the last commit may be lost, and numbering skips ahead",
                    metadata: ["next_seq": "\(seq)"])
            }
            next = seq
            journal = files
        } else {
            journal = nil
        }
        state = Mutex(
            State(
                nextSeq: next, recent: RecentEvents(capacity: settings.recentCapacity),
                journalBacklog: JournalBacklog(
                    softLimit: settings.journalBacklogSoftLimit, hardLimit: settings.journalBacklogHardLimit),
                durableSeq: next - 1))
        guard let journal else { return }
        // Retention also runs at start, before anyone can subscribe, so a daemon that was
        // down past the age limit does not replay what it should have dropped.
        journal.writer.withLock { $0.applyRetention(settings: settings, logger: logger) }
        // Weak, so a bus dropped without running (in tests) ends its thread.
        journal.startCommitting(gathering: settings.journalCommitDelay) { [weak self] in self?.flushJournal() }
    }

    deinit {
        journal?.stopCommitting()
        flushJournal()
    }

    /// The `seq` of the newest event, 0 before any.
    package var latestSeq: UInt64 { state.withLock { $0.nextSeq - 1 } }

    // MARK: - Publishing

    public func publish(_ event: consuming CallbackEvent) -> Publication {
        publish(event, addressee: nil)
    }

    /// A run's tokens read together go out as one: each subscription takes one filter
    /// check and one queue append for all of them. No event is made of a token unless a
    /// handler takes it: the bodies are written from the tokens.
    public func publishTokens(_ tokens: [String], of run: CallbackEvent, makingEvents: Bool) -> [CallbackEvent] {
        guard !tokens.isEmpty else { return [] }
        let runContext = run.encodedContext ?? run.encodeContext()
        var numbering: (first: UInt64, time: Int64) = (0, 0)
        var published: EncodedBodies?
        _ = publishGroup(count: tokens.count, type: .llmNewToken, context: JournalRecord.Context(run), addressee: nil) {
            first, time in
            numbering = (first, time)
            let bodies = CallbackEvent.encodeTokenBodies(tokens, firstSeq: first, time: time, context: runContext)
            published = bodies
            return bodies
        }
        let handled = handledTypes.contains(.llmNewToken)
        guard makingEvents || handled, let published else { return [] }
        let events = tokens.indices.map { index in
            var event = run
            (event.seq, event.time) = (numbering.first + UInt64(index), numbering.time)
            event.data = ["token": .string(tokens[index])]
            event.publishedBody = Array(published[index])
            return event
        }
        if handled { handOver(events) }
        return events
    }

    func publish(_ event: consuming CallbackEvent, addressee: SubscriptionKey?) -> Publication {
        var event = event
        let context = JournalRecord.Context(event)
        let gate = publishGroup(count: 1, type: event.type, context: context, addressee: addressee) { seq, time in
            (event.seq, event.time) = (seq, time)
            var body: [UInt8] = []
            body.reserveCapacity(256 + event.data.count * 32)
            event.encodeBody(into: &body)
            event.publishedBody = body
            return EncodedBodies(bytes: body, ends: [body.count])
        }
        if let type = event.type, handledTypes.contains(type) { handOver([event]) }
        guard let gate else { return Publication(event: event) }
        return Publication(event: event) { await self.awaitAcknowledgements(gate) }
    }

    /// Numbers, records and fans out `count` events published together, which share their
    /// type and run: filters are checked once for all of them.
    ///
    /// - Parameter encode: the events' bodies, given the first one's `seq` and their time;
    ///   called under the bus's lock.
    /// - Returns: the acknowledgements the events await (only ever a single event's:
    ///   tokens, the only events published together, never wait).
    private func publishGroup(
        count: Int, type: EventType?, context: JournalRecord.Context, addressee: SubscriptionKey?,
        encode: (_ firstSeq: UInt64, _ time: Int64) -> EncodedBodies
    ) -> AcknowledgementGate? {
        var refused: [(SubscriptionKey, any SubscriberOutbox)] = []
        var gate: AcknowledgementGate?
        let wakeJournal = state.withLock { state -> Bool in
            // One time for the group: its events were read together.
            let time = Timestamp.nowMicroseconds()
            let first = state.nextSeq
            state.nextSeq += UInt64(count)
            state.published[type, default: 0] += count
            let bodies = encode(first, time)
            let journaled =
                journal != nil
                && state.journalBacklog.reserve(count: count, bodyBytes: bodies.bytes.count, seqs: first...first + UInt64(count - 1))
            for index in 0..<count {
                let record = JournalRecord(seq: first + UInt64(index), time: time, context: context, body: bodies[index])
                state.recent.append(PublishedEvent(record: record, type: type, addressee: addressee))
                if journaled { state.journalBacklog.add(record) }
            }
            if !state.subscriptions.isEmpty {
                fanOut(
                    bodies, seqs: first...state.nextSeq - 1, type: type, context: context, addressee: addressee,
                    in: &state, refused: &refused, gate: &gate)
            }
            if let gate { state.acknowledgements[gate.seq] = gate }
            guard journal != nil else { return false }
            defer { state.journalFlushScheduled = true }
            return !state.journalFlushScheduled
        }
        if wakeJournal { journal?.wake.signal() }
        for (key, outbox) in refused {
            outbox.whenDrained { self.recover(key) }
        }
        return gate
    }

    /// Gives events to the daemon-wide handlers, in order, on their queue.
    private func handOver(_ events: [CallbackEvent]) {
        handlerQueue.async { [handlers, logger] in
            for event in events {
                for handler in handlers {
                    do { try handler.handle(event) } catch {
                        logger.warning("event handler failed", metadata: ["event": "\(event.name)", "error": "\(error)"])
                    }
                }
            }
        }
    }

    /// What the metrics read at a scrape: subscriptions, those lagging, events published
    /// since start by type, and the journal's size on disk (its file and write-ahead log).
    public func health() -> (subscribers: Int, lagging: Int, published: [String: Int], journalBytes: Int) {
        let (subscribers, lagging, published) = state.withLock { state in
            let lagging = state.subscriptions.values.count { subscription in
                if case .lagging = subscription.flow.mode { return true }
                return false
            }
            return (state.subscriptions.count, lagging, state.published)
        }
        let byName = Dictionary(published.map { ($0.key?.rawValue ?? "custom", $0.value) }, uniquingKeysWith: +)
        let journalBytes = journalPath.map { path in [path, path + "-wal"].reduce(0) { $0 + fileSize($1) } } ?? 0
        return (subscribers, lagging, byName, journalBytes)
    }

    // MARK: - Subscriptions

    /// Registers a subscription; its events start flowing when `start` is called, after
    /// the reply to `subscribe` is written.
    ///
    /// - Returns: the cursor replay starts after, and the oldest `seq` still retained.
    package func subscribe(
        _ key: SubscriptionKey, _ request: SubscriptionRequest, outbox: any SubscriberOutbox
    ) -> (cursor: UInt64, oldest: UInt64?) {
        let oldest = oldestRetainedSeq()
        return state.withLock { state in
            let latest = state.nextSeq - 1
            let cursor = min(request.since ?? latest, latest)
            state.subscriptions[key] = Subscription(
                id: key.id, request: request, outbox: outbox, flow: SubscriptionFlow(cursor: cursor, live: false))
            return (cursor, oldest ?? state.recent.oldestSeq)
        }
    }

    /// Starts delivery: replay from the cursor, the `ready` marker, then live events.
    package func start(_ key: SubscriptionKey) {
        Task { await self.catchUp(key) }
    }

    /// - Returns: false when there was no such subscription.
    @discardableResult
    package func unsubscribe(_ key: SubscriptionKey) -> Bool {
        let (found, gates) = state.withLock { state in
            (state.subscriptions.removeValue(forKey: key) != nil, Array(state.acknowledgements.values))
        }
        // A vanished blocking subscriber never holds a run up.
        for gate in gates { gate.acknowledge(key) }
        return found
    }

    /// Ends every subscription of a connection that closed.
    package func connectionClosed(_ connection: UInt64) {
        let keys = state.withLock { $0.subscriptions.keys.filter { $0.connection == connection } }
        for key in keys { unsubscribe(key) }
    }

    /// `ack`: a blocking subscriber has handled event `seq`.
    ///
    /// - Returns: false when that subscription has no such event outstanding.
    package func acknowledge(_ key: SubscriptionKey, seq: UInt64) -> Bool {
        guard let gate = state.withLock({ $0.acknowledgements[seq] }) else { return false }
        return gate.acknowledge(key)
    }

    package func hasSubscription(_ key: SubscriptionKey) -> Bool {
        state.withLock { $0.subscriptions[key] != nil }
    }

    private func awaitAcknowledgements(_ gate: AcknowledgementGate) async {
        let late = await gate.wait(timeout: settings.ackTimeout)
        state.withLock { _ = $0.acknowledgements.removeValue(forKey: gate.seq) }
        for key in late {
            _ = publish(
                CallbackEvent(
                    name: EventType.ackTimeout.rawValue, runID: "",
                    data: [
                        "subscription": .int(key.id), "connection": .int(Int64(key.connection)), "seq": .int(Int64(gate.seq)),
                        "timeout_ms": .int(settings.ackTimeout.wholeMilliseconds),
                    ]),
                addressee: key)
        }
    }

    /// A lagging subscription's queue drained: report `lagged`, then catch up or go on live.
    func recover(_ key: SubscriptionKey) {
        let recovery = state.withLock { state -> SubscriptionFlow.Recovery? in
            guard let subscription = state.subscriptions[key] else { return nil }
            return subscription.flow.drained(resume: subscription.request.resumeAfterLag, latest: state.nextSeq - 1)
        }
        guard let recovery else { return }
        let (missed, resumeFrom): (Int, UInt64)
        switch recovery {
        case .catchUp(let count, let from), .skipAhead(let count, let from): (missed, resumeFrom) = (count, from)
        }
        logger.info(
            "subscriber lagged", metadata: ["connection": "\(key.connection)", "subscription": "\(key.id)", "missed": "\(missed)"])
        _ = publish(
            CallbackEvent(
                name: EventType.lagged.rawValue, runID: "",
                data: [
                    "subscription": .int(key.id), "connection": .int(Int64(key.connection)), "missed": .int(Int64(missed)),
                    "resume_from": .int(Int64(resumeFrom)),
                ]),
            addressee: key)
        if case .catchUp = recovery { start(key) }
    }

    // MARK: - The journal

    private func oldestRetainedSeq() -> UInt64? {
        guard let journal else { return nil }
        return try? journal.reader.withLock { reader throws(StoreError) in try reader.oldestSeq() }
    }

    /// The first `seq` at or after `time` (microseconds since the epoch).
    package func firstSeq(atOrAfter time: Int64) -> UInt64? {
        if let journal, let seq = try? journal.reader.withLock({ reader throws(StoreError) in try reader.firstSeq(atOrAfter: time) }) {
            return seq
        }
        return state.withLock { $0.recent.firstSeq(atOrAfter: time) }
    }

    func waitUntilDurable(through seq: UInt64) async {
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> Bool in
                if state.durableSeq >= seq { return true }
                state.durableWaiters.append((seq, continuation))
                return false
            }
            if now { continuation.resume() }
        }
    }

    /// Commits everything published since the last commit: on the journal's thread, or
    /// once it has ended.
    ///
    /// - Parameter deadline: at shutdown, when committing must end; what is left then is
    ///   left out of the journal (and counted), and its numbers are not given again.
    /// - Returns: false when the commit failed (a full disk); the batch is kept, within the
    ///   backlog's hard limit, and the thread tries again each second.
    @discardableResult
    private func flushJournal(until deadline: ContinuousClock.Instant? = nil) -> Bool {
        guard let journal else { return true }
        let committed = journal.writer.withLock { writer -> Bool in
            let batch = state.withLock { state -> [JournalRecord] in
                state.journalFlushScheduled = false
                return state.journalBacklog.take()
            }
            guard let last = batch.last else { return true }
            do {
                if let left = try writer.commit(batch, settings: settings, logger: logger, until: deadline) {
                    state.withLock { $0.journalBacklog.leftOut(left) }
                }
            } catch {
                logger.error("cannot write the event journal, will retry: \(error)", metadata: ["code": "journal.unavailable"])
                state.withLock { state in
                    state.journalBacklog.putBack(batch)
                    // Publishers need not wake the thread: it tries again on its own.
                    state.journalFlushScheduled = true
                }
                return false
            }
            let woken = state.withLock { state -> [CheckedContinuation<Void, Never>] in
                state.durableSeq = last.seq
                let ready = state.durableWaiters.filter { $0.seq <= last.seq }
                state.durableWaiters.removeAll { $0.seq <= last.seq }
                return ready.map(\.continuation)
            }
            for continuation in woken { continuation.resume() }
            if ContinuousClock.now - writer.lastRetention > .seconds(60) { writer.applyRetention(settings: settings, logger: logger) }
            return true
        }
        announceGap()
        return committed
    }

    /// Says, in the log and as a `journal_gap` event, which events a commit could not
    /// keep: they went out live, but replay will not have them.
    private func announceGap() {
        guard let gap = state.withLock({ $0.journalBacklog.takeGap() }) else { return }
        logger.warning(
            "the event journal could not keep up: \(gap.count) events between \(gap.first) and \(gap.last) went out live but were not journaled",
            metadata: ["code": "journal.gap"])
        _ = publish(
            CallbackEvent(
                name: EventType.journalGap.rawValue, runID: RunID.make(),
                data: ["count": .int(Int64(gap.count)), "first_seq": .int(Int64(gap.first)), "last_seq": .int(Int64(gap.last))]))
    }

    /// Whether a publisher that may wait can publish now: true at once while the journal
    /// keeps up; otherwise after a commit made room, or false after `timeout`.
    package func waitForJournalRoom(timeout: Duration) async -> Bool {
        guard journal != nil else { return true }
        let deadline = ContinuousClock.now + timeout
        while state.withLock({ $0.journalBacklog.isOverSoftLimit }) {
            // Only while the journal falls behind, which commits every few milliseconds.
            guard ContinuousClock.now < deadline, (try? await Task.sleep(for: .milliseconds(5))) != nil else { return false }
        }
        return true
    }
}

extension EventBus: Service {
    /// Runs until shutdown, then commits the last events.
    public func run(shutdown: GracefulShutdown) async throws {
        await shutdown.wait()
        journal?.stopCommitting()
        flushJournal(until: .now + settings.finalCommitTime)
        do {
            try journal?.writer.withLock { writer throws(StoreError) in try writer.journal.endWriting() }
        } catch {
            logger.error("cannot mark the event journal closed: \(error)")
        }
    }
}

/// The size of the file at `path`, 0 when there is none.
private func fileSize(_ path: String) -> Int {
    var status = stat()
    return stat(path, &status) == 0 ? Int(status.st_size) : 0
}
