import LLMDEvents
import LLMDProtocol
import LLMDStore
import NIOCore

/// Fan-out: the events published together, offered to each subscription that wants them,
/// as lines every subscriber's connection shares.
extension EventBus {
    /// Offers the bodies of numbered events to each subscription that wants them; under
    /// the lock.
    func fanOut(
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
    static func replayedBody(_ record: JournalRecord, for filter: EventFilter) -> ArraySlice<UInt8> {
        guard filter.takesChatModelStartsAsLLMStarts, record.type == EventType.chatModelStart.rawValue else { return record.body }
        return asLLMStart(record.body)[...]
    }

    static func wants(
        _ filter: EventFilter, key: SubscriptionKey, type: EventType?, context: JournalRecord.Context,
        addressee: SubscriptionKey?
    ) -> Bool {
        if let addressee, addressee == key { return true }
        return filter.matches(
            type: type, session: context.session, runID: context.runID, parentRunID: context.parentRunID, tags: context.tags)
    }
}
