import LLMDEvents
import LLMDProtocol
import LLMDStore

/// Catch-up: what a subscription has not seen, replayed from the journal and then from
/// memory, after which it goes live at the exact `seq` where replay ended.
extension EventBus {
    enum CatchUpStep {
        case stop
        case done
        case waitForDrain(any SubscriberOutbox)
        case readJournal(after: UInt64, before: UInt64)
    }

    /// Replays what a subscription has not seen, from the journal and then from memory,
    /// and makes it live at the exact `seq` where replay ends.
    func catchUp(_ key: SubscriptionKey) async {
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
            let oldestInMemory = state.recent.oldestSeq ?? state.nextSeq
            if cursor + 1 < oldestInMemory, journal != nil {
                return .readJournal(after: cursor, before: oldestInMemory)
            }
            // Events no longer anywhere are passed over: `ready` and the reply say where replay began.
            let count = state.recent.count
            let first = cursor + 1 > oldestInMemory ? Int(cursor + 1 - oldestInMemory) : 0
            if first < count {
                for offset in first..<count {
                    let published = state.recent[offset]
                    if let body = Self.replayBody(
                        of: published.record, type: published.type, addressee: published.addressee, to: key,
                        filter: subscription.request.filter)
                    {
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
            guard let subscription = state.withLock({ state -> Subscription? in
                guard let subscription = state.subscriptions[key], subscription.flow.mode == .catchingUp else { return nil }
                return subscription
            }) else { return }
            // Fixed for the subscription's life: read outside the lock.
            let (filter, outbox, lineEnd) = (subscription.request.filter, subscription.outbox, subscription.lineEnd)
            let records = page.filter { $0.seq < before }
            if records.isEmpty {
                // Retention or a failed read: what is gone is passed over.
                state.withLock { $0.subscriptions[key]?.flow.caughtUp(through: before - 1) }
                return
            }
            for record in records {
                if let body = Self.replayBody(
                    of: record, type: EventType(rawValue: record.type), addressee: nil, to: key, filter: filter)
                {
                    while !outbox.offer({ line in
                        line.append(contentsOf: body)
                        line.append(contentsOf: lineEnd)
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

    /// What `key`'s subscription is replayed of an event, from memory or from the journal;
    /// nil when it does not take it. An event about this subscriber's own delivery went out
    /// live and is not replayed; nor are a session's events from before the subscriber
    /// asked for its current session (``EventFilter/predatesSession(_:time:)``).
    static func replayBody(
        of record: JournalRecord, type: EventType?, addressee: SubscriptionKey?, to key: SubscriptionKey, filter: EventFilter
    ) -> ArraySlice<UInt8>? {
        guard addressee != key, !filter.predatesSession(record.session, time: record.time),
            wants(filter, key: key, type: type, context: record.context, addressee: addressee)
        else { return nil }
        return replayedBody(record, for: filter)
    }
}
