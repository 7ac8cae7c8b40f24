import LLMDProtocol
import LLMDStore

/// An event as published: numbered and encoded, as the journal records it.
struct PublishedEvent {
    var record: JournalRecord
    /// The record's type, looked up once.
    var type: EventType?
    /// The one subscription a `lagged` or `ack_timeout` event is about.
    var addressee: SubscriptionKey?
}

/// The newest events, oldest first, at most `capacity` of them: catch-up reads the
/// journal only for what is older.
struct RecentEvents {
    private var events: [PublishedEvent] = []
    /// Where the oldest is, once the ring is full.
    private var start = 0
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    var count: Int { events.count }

    var oldestSeq: UInt64? { events.isEmpty ? nil : events[start].record.seq }

    /// The event `offset` places after the oldest.
    subscript(offset: Int) -> PublishedEvent { events[(start + offset) % events.count] }

    /// Keeps `event`, letting the oldest go when full.
    mutating func append(_ event: PublishedEvent) {
        if events.count < capacity {
            events.append(event)
        } else if capacity > 0 {
            events[start] = event
            start = (start + 1) % events.count
        }
    }

    /// The `seq` of the first event at or after `time` (microseconds since the epoch).
    func firstSeq(atOrAfter time: Int64) -> UInt64? {
        for offset in 0..<count where self[offset].record.time >= time { return self[offset].record.seq }
        return nil
    }
}
