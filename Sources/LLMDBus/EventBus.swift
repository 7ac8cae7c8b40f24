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
public final class EventBus: EventSink, Sendable {
    /// An event as published: numbered and encoded, as the journal records it.
    private struct PublishedEvent {
        var record: JournalRecord
        /// The record's type, looked up once.
        var type: EventType?
        /// The one subscription a `lagged` or `ack_timeout` event is about.
        var addressee: SubscriptionKey?
    }

    /// A class so the publish loop updates flows without copying the dictionary; touched
    /// only under the bus's lock.
    private final class Subscription {
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

    private struct State {
        var nextSeq: UInt64
        /// The newest events, oldest first, at most `recentCapacity`.
        var recent: [PublishedEvent] = []
        var recentStart = 0
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

        var oldestRecentSeq: UInt64? { recent.isEmpty ? nil : recent[recentStart].record.seq }
    }

    package let settings: EventBusSettings
    private let state: Mutex<State>
    private let journal: JournalFiles?
    private let handlers: [FilteredCallbackHandler]
    /// Types some handler takes: others (tokens, usually) never reach the handler queue.
    private let handledTypes: EventTypeMask
    private let handlerQueue = DispatchQueue(label: "llmd.event-handlers")
    private let logger: Logger

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
                nextSeq: next,
                journalBacklog: JournalBacklog(
                    softLimit: settings.journalBacklogSoftLimit, hardLimit: settings.journalBacklogHardLimit),
                durableSeq: next - 1))
        guard let journal else { return }
        // Retention also runs at start, before anyone can subscribe, so a daemon that was
        // down past the age limit does not replay what it should have dropped.
        journal.writer.withLock { applyRetention(&$0) }
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

    private func publish(_ event: consuming CallbackEvent, addressee: SubscriptionKey?) -> Publication {
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
            let bodies = encode(first, time)
            let journaled =
                journal != nil
                && state.journalBacklog.reserve(count: count, bodyBytes: bodies.bytes.count, seqs: first...first + UInt64(count - 1))
            for index in 0..<count {
                let record = JournalRecord(seq: first + UInt64(index), time: time, context: context, body: bodies[index])
                remember(PublishedEvent(record: record, type: type, addressee: addressee), in: &state)
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

    /// Offers the bodies of numbered events to each subscription that wants them; under
    /// the lock.
    private func fanOut(
        _ bodies: EncodedBodies, seqs: ClosedRange<UInt64>, type: EventType?, context: JournalRecord.Context,
        addressee: SubscriptionKey?, in state: inout State, refused: inout [(SubscriptionKey, any SubscriberOutbox)],
        gate: inout AcknowledgementGate?
    ) {
        var lines = GroupLines(bodies: bodies)
        var llmStartLines: GroupLines?
        for (key, subscription) in state.subscriptions {
            guard Self.wants(subscription.request.filter, key: key, type: type, context: context, addressee: addressee) else {
                continue
            }
            if key == addressee {
                // About this subscriber's own delivery: it goes out now, whatever its
                // state, at the point of the gap it reports; catch-up passes it over.
                subscription.outbox.send(shared: lines.lines(subscription: key.id, lineEnd: subscription.lineEnd))
                continue
            }
            guard subscription.flow.live(count: bodies.count) == .offer else { continue }
            // The type the subscriber sees, which its blocking types are about.
            var seen = type
            let shared: ByteBuffer
            if type == .chatModelStart, subscription.request.filter.takesChatModelStartsAsLLMStarts {
                seen = .llmStart
                // Made from the body once, when a subscription takes it: one event per call.
                if llmStartLines == nil { llmStartLines = GroupLines(bodies: Self.asLLMStart(bodies)) }
                shared = llmStartLines!.lines(subscription: key.id, lineEnd: subscription.lineEnd)
            } else {
                shared = lines.lines(subscription: key.id, lineEnd: subscription.lineEnd)
            }
            let accepted = subscription.outbox.offer(shared: shared)
            subscription.flow.offered(seqs, accepted: accepted)
            if !accepted {
                refused.append((key, subscription.outbox))
            } else if let seen, seen != .llmNewToken, subscription.request.blocking.contains(seen) {
                gate = gate ?? AcknowledgementGate(seq: seqs.upperBound)
                gate!.expect(key)
            }
        }
    }

    /// The lines of events published together, as each subscription gets them: made once
    /// per subscription number (nearly always 1), and shared by every connection.
    private struct GroupLines {
        let bodies: EncodedBodies
        private var made: [(subscription: Int64, lines: ByteBuffer)] = []

        init(bodies: EncodedBodies) {
            self.bodies = bodies
        }

        mutating func lines(subscription: Int64, lineEnd: [UInt8]) -> ByteBuffer {
            if let index = made.firstIndex(where: { $0.subscription == subscription }) { return made[index].lines }
            let size = bodies.bytes.count + bodies.count * lineEnd.count
            var lines = ByteBufferAllocator().buffer(capacity: size)
            // One write for the group, not two for each line: a write checks the buffer's
            // capacity and uniqueness each time.
            lines.writeWithUnsafeMutableBytes(minimumWritableBytes: size) { output in
                var offset = 0
                func copy(_ bytes: ArraySlice<UInt8>) {
                    bytes.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: output[offset...]).copyMemory(from: $0) }
                    offset += bytes.count
                }
                for index in 0..<bodies.count {
                    copy(bodies[index])
                    copy(lineEnd[...])
                }
                return size
            }
            made.append((subscription, lines))
            return lines
        }
    }

    /// A `chat_model_start`'s body as the subscriptions that take chat-model starts as
    /// `llm_start` get it (``EventFilter/takesChatModelStartsAsLLMStarts``).
    private static func asLLMStart(_ bodies: EncodedBodies) -> EncodedBodies {
        var bytes: [UInt8] = []
        var ends: [Int] = []
        for index in 0..<bodies.count {
            bytes += asLLMStart(bodies[index])
            ends.append(bytes.count)
        }
        return EncodedBodies(bytes: bytes, ends: ends)
    }

    private static func asLLMStart(_ body: ArraySlice<UInt8>) -> [UInt8] {
        guard let event = CallbackEvent(publishedBody: body) else { return Array(body) }
        var converted: [UInt8] = []
        event.asLLMStart.encodeBody(into: &converted)
        return converted
    }

    /// A replayed record's body as `filter` takes it: a `chat_model_start` as `llm_start`
    /// when it asks so, any other as recorded.
    private static func replayedBody(_ record: JournalRecord, for filter: EventFilter) -> ArraySlice<UInt8> {
        guard filter.takesChatModelStartsAsLLMStarts, record.type == EventType.chatModelStart.rawValue else { return record.body }
        return asLLMStart(record.body)[...]
    }

    private func remember(_ event: PublishedEvent, in state: inout State) {
        if state.recent.count < settings.recentCapacity {
            state.recent.append(event)
        } else {
            state.recent[state.recentStart] = event
            state.recentStart = (state.recentStart + 1) % state.recent.count
        }
    }

    private static func wants(
        _ filter: EventFilter, key: SubscriptionKey, type: EventType?, context: JournalRecord.Context,
        addressee: SubscriptionKey?
    ) -> Bool {
        if let addressee, addressee == key { return true }
        return filter.matches(
            type: type, session: context.session, runID: context.runID, parentRunID: context.parentRunID, tags: context.tags)
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
            return (cursor, oldest ?? state.oldestRecentSeq)
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
    private func recover(_ key: SubscriptionKey) {
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

    // MARK: - Catch-up

    private enum CatchUpStep {
        case stop
        case done
        case waitForDrain(any SubscriberOutbox)
        case readJournal(after: UInt64, before: UInt64)
    }

    /// Replays what a subscription has not seen, from the journal and then from memory,
    /// and makes it live at the exact `seq` where replay ends.
    private func catchUp(_ key: SubscriptionKey) async {
        while true {
            switch catchUpFromMemory(key) {
            case .stop, .done:
                return
            case .waitForDrain(let outbox):
                await withCheckedContinuation { continuation in outbox.whenDrained { continuation.resume() } }
            case .readJournal(let after, let before):
                await replayJournal(key, after: after, before: before)
            }
        }
    }

    private func catchUpFromMemory(_ key: SubscriptionKey) -> CatchUpStep {
        state.withLock { state -> CatchUpStep in
            guard let subscription = state.subscriptions[key], subscription.flow.mode == .catchingUp else { return .stop }
            let cursor = subscription.flow.cursor
            let oldestInMemory = state.oldestRecentSeq ?? state.nextSeq
            if cursor + 1 < oldestInMemory, journal != nil {
                return .readJournal(after: cursor, before: oldestInMemory)
            }
            // Events no longer anywhere are passed over: `ready` and the reply say where replay began.
            let count = state.recent.count
            let first = cursor + 1 > oldestInMemory ? Int(cursor + 1 - oldestInMemory) : 0
            if first < count {
                for offset in first..<count {
                    let published = state.recent[(state.recentStart + offset) % count]
                    if published.addressee != key,
                        !subscription.request.filter.predatesSession(published.record.session, time: published.record.time),
                        Self.wants(
                            subscription.request.filter, key: key, type: published.type, context: published.record.context,
                            addressee: published.addressee)
                    {
                        let body = Self.replayedBody(published.record, for: subscription.request.filter)
                        let accepted = subscription.outbox.offer { line in
                            line.append(contentsOf: body)
                            line.append(contentsOf: subscription.lineEnd)
                        }
                        guard accepted else { return .waitForDrain(subscription.outbox) }
                    }
                    subscription.flow.caughtUp(through: published.record.seq)
                }
            }
            subscription.flow.caughtUp(through: state.nextSeq - 1)
            subscription.flow.goLive()
            if !subscription.readySent {
                subscription.readySent = true
                subscription.outbox.send([.ready(subscription: key.id, seq: state.nextSeq - 1)])
            }
            return .done
        }
    }

    /// Replays journaled events after `after` and before `before` (which memory holds).
    private func replayJournal(_ key: SubscriptionKey, after: UInt64, before: UInt64) async {
        guard let journal else { return }
        await waitUntilDurable(through: before - 1)
        var cursor = after
        while cursor + 1 < before {
            let page: [JournalRecord]
            do {
                page = try journal.reader.withLock { reader throws(StoreError) in try reader.records(after: cursor, limit: 512) }
            } catch {
                logger.error("cannot read the event journal: \(error)")
                page = []
            }
            guard let (filter, outbox) = state.withLock({ state -> (EventFilter, any SubscriberOutbox)? in
                guard let subscription = state.subscriptions[key], subscription.flow.mode == .catchingUp else { return nil }
                return (subscription.request.filter, subscription.outbox)
            }) else { return }
            let records = page.filter { $0.seq < before }
            if records.isEmpty {
                // Retention or a failed read: what is gone is passed over.
                state.withLock { $0.subscriptions[key]?.flow.caughtUp(through: before - 1) }
                return
            }
            for record in records {
                if filter.matches(
                    type: EventType(rawValue: record.type), session: record.session, runID: record.runID,
                    parentRunID: record.parentRunID, tags: record.tags),
                    !filter.predatesSession(record.session, time: record.time)
                {
                    let body = Self.replayedBody(record, for: filter)
                    while !outbox.offer({ line in
                        line.append(contentsOf: body)
                        CallbackEvent.completeLine(&line, request: nil, subscription: key.id)
                    }) {
                        await withCheckedContinuation { continuation in
                            outbox.whenDrained { continuation.resume() }
                        }
                        guard hasSubscription(key) else { return }
                    }
                }
                cursor = record.seq
            }
            state.withLock { $0.subscriptions[key]?.flow.caughtUp(through: cursor) }
        }
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
        return state.withLock { state in
            let count = state.recent.count
            for offset in 0..<count where state.recent[(state.recentStart + offset) % count].record.time >= time {
                return state.recent[(state.recentStart + offset) % count].record.seq
            }
            return nil
        }
    }

    private func waitUntilDurable(through seq: UInt64) async {
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
                try commit(batch, to: &writer, until: deadline)
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
            if ContinuousClock.now - writer.lastRetention > .seconds(60) { applyRetention(&writer) }
            return true
        }
        announceGap()
        return committed
    }

    /// Commits `batch` a page's worth at a time, at most an eighth of JournalMaxSize each,
    /// with retention between them when due and the write-ahead log cut back when long:
    /// a backlog of many megabytes, committed at once, would take the files that far past
    /// their bounds. With a deadline, leaves out what the deadline does not leave time for.
    private func commit(
        _ batch: [JournalRecord], to writer: inout JournalFiles.Writer, until deadline: ContinuousClock.Instant?
    ) throws(StoreError) {
        var start = 0
        while start < batch.count {
            if let deadline, ContinuousClock.now >= deadline {
                let left = batch[start...]
                state.withLock { $0.journalBacklog.leftOut(left.first!.seq...left.last!.seq) }
                // Those numbers went out live: the next start must not give them again.
                try writer.journal.saveNextSeq(left.last!.seq + 1)
                return
            }
            var end = start
            var bytes: Int64 = 0
            while end < batch.count, end - start < EventJournal.pageCapacity, end == start || bytes < settings.retentionSlack {
                bytes += Int64(JournalBacklog.size(of: CollectionOfOne(batch[end])))
                end += 1
            }
            if writer.bytesSinceRetention + bytes > settings.retentionSlack { applyRetention(&writer) }
            try writer.journal.append(batch[start..<end])
            writer.bytesSinceRetention += bytes
            start = end
            do {
                if try writer.journal.checkpointIfLogExceeds(settings.journalLogLimit) {
                    logger.debug("event journal: write-ahead log checkpointed and cut back")
                }
            } catch {
                logger.warning("cannot checkpoint the event journal's write-ahead log: \(error)")
            }
        }
    }

    /// Says, in the log and as a `journal_gap` event, which events a commit could not
    /// keep: they went out live, but replay will not have them.
    private func announceGap() {
        guard let gap = state.withLock({ $0.journalBacklog.takeGap() }) else { return }
        logger.warning(
            "the event journal could not keep up: \(gap.count) events between \(gap.first) and \(gap.last) went out live but were not journaled",
            metadata: ["code": "journal.gap"])
        publish(
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

    /// Deletes events past the configured age and size; under the writer's lock.
    private func applyRetention(_ writer: inout JournalFiles.Writer) {
        writer.bytesSinceRetention = 0
        writer.lastRetention = .now
        let cutoff = settings.journalMaximumAge.map { Timestamp.nowMicroseconds() - $0.wholeMicroseconds }
        do {
            let deleted = try writer.journal.applyRetention(olderThan: cutoff, maximumBytes: settings.journalMaximumBytes)
            if deleted > 0 {
                if ContinuousClock.now - writer.lastRetentionReport >= .seconds(60) {
                    writer.lastRetentionReport = .now
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

extension EventBus {
    /// The bus the configuration describes, with its daemon-wide handlers.
    ///
    /// - Parameters:
    ///   - stateDirectory: where the journal file goes, created when missing; unused
    ///     when `Journal=no`.
    ///   - verbose: add a stdout handler (`llmd --verbose`).
    /// - Throws: ``EventSetupError`` naming the file that cannot be opened.
    public static func make(
        configuration: DaemonConfiguration, stateDirectory: String, verbose: Bool, logger: Logger
    ) throws(EventSetupError) -> EventBus {
        let events = configuration.events
        var settings = EventBusSettings()
        settings.outbox = OutboxLimits(highWater: events.queueSize, stallTimeout: events.stallTimeout)
        settings.ackTimeout = events.ackTimeout
        settings.journalMaximumAge = events.journalMaximumAge
        settings.journalMaximumBytes = events.journalMaximumBytes
        settings.journalCommitDelay = events.journalCommitDelay
        var handlers: [FilteredCallbackHandler] = []
        var configured = configuration.handlers
        if verbose { configured.append(HandlerConfiguration(name: "--verbose", kind: .stdout)) }
        for handler in configured {
            let made: any CallbackHandler
            switch handler.kind {
            case .stdout:
                made = TextCallbackHandler(color: isatty(STDOUT_FILENO) == 1) { text in
                    var text = text
                    text.withUTF8 { _ = write(STDOUT_FILENO, $0.baseAddress, $0.count) }
                }
            case .journald:
                made = JournaldCallbackHandler()
            case .file:
                guard let path = handler.path else {
                    throw EventSetupError(message: "[Handler \(handler.name)]: Type=file needs Path=")
                }
                do {
                    made = try FileCallbackHandler(path: path, format: handler.format)
                } catch {
                    throw EventSetupError(message: "[Handler \(handler.name)]: cannot open \(error)")
                }
            }
            handlers.append(FilteredCallbackHandler(types: handler.handledTypes, handler: made))
        }
        var journalPath: String?
        if events.journal {
            journalPath = try privateStateFile("events.db", in: stateDirectory)
        }
        do {
            return try EventBus(settings: settings, journalPath: journalPath, handlers: handlers, logger: logger)
        } catch {
            throw EventSetupError(message: "cannot open the event journal \(journalPath ?? ""): \(error)")
        }
    }
}

extension JournalRecord.Context {
    /// `event`'s fields that the journal keeps beside its body, and filters look at.
    convenience init(_ event: CallbackEvent) {
        self.init(
            type: event.name, session: event.session, runID: event.runID, parentRunID: event.parentRunID, tags: event.tags)
    }
}

/// Why the event machinery cannot start.
public struct EventSetupError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }

    package init(message: String) {
        self.message = message
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

/// The journal's two connections, one writing and one reading for replay, and the thread
/// that commits.
private final class JournalFiles: Sendable {
    struct Writer {
        var journal: EventJournal
        var bytesSinceRetention: Int64 = 0
        var lastRetention = ContinuousClock.now
        /// Retention that removes events is logged at level info at most once a minute:
        /// under a flood it runs several times a second.
        var lastRetentionReport = ContinuousClock.now - .seconds(60)
    }

    let writer: Mutex<Writer>
    let reader: Mutex<EventJournal>
    /// Signalled when a batch starts gathering, and at stop.
    let wake = DispatchSemaphore(value: 0)
    private let stopping = Atomic(false)
    private let thread = Mutex<DedicatedThread?>(nil)

    init(path: String) throws(StoreError) {
        writer = Mutex(Writer(journal: try EventJournal(path: path)))
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

/// The acknowledgements one event awaits from blocking subscribers.
final class AcknowledgementGate: Sendable {
    private struct State {
        var waiting: Set<SubscriptionKey> = []
        var continuation: CheckedContinuation<Void, Never>?
        var finished = false
    }

    let seq: UInt64
    private let state = Mutex(State())

    init(seq: UInt64) {
        self.seq = seq
    }

    func expect(_ key: SubscriptionKey) {
        state.withLock { _ = $0.waiting.insert(key) }
    }

    /// - Returns: whether `key` was still owed.
    @discardableResult
    func acknowledge(_ key: SubscriptionKey) -> Bool {
        let (owed, continuation) = state.withLock { state -> (Bool, CheckedContinuation<Void, Never>?) in
            guard state.waiting.remove(key) != nil else { return (false, nil) }
            guard state.waiting.isEmpty, !state.finished else { return (true, nil) }
            state.finished = true
            defer { state.continuation = nil }
            return (true, state.continuation)
        }
        continuation?.resume()
        return owed
    }

    /// Waits for every acknowledgement or `timeout`; returns the subscriptions still owing.
    func wait(timeout: Duration) async -> Set<SubscriptionKey> {
        let timer = Task {
            try? await Task.sleep(for: timeout)
            self.finish()
        }
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> Bool in
                if state.finished || state.waiting.isEmpty { return true }
                state.continuation = continuation
                return false
            }
            if now { continuation.resume() }
        }
        timer.cancel()
        return state.withLock { $0.waiting }
    }

    private func finish() {
        let continuation = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard !state.finished else { return nil }
            state.finished = true
            defer { state.continuation = nil }
            return state.continuation
        }
        continuation?.resume()
    }
}
