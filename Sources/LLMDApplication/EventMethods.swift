import LLMDBus
import LLMDCore
import LLMDEvents
import LLMDProtocol

/// The event methods: `subscribe`, `unsubscribe` and `ack` run on the connection (see
/// ``ConnectionHandler``); `publish` is an ordinary method.
public enum EventMethods {
    public static func register(in table: inout MethodTable, bus: EventBus) {
        // A `custom` event from a client, as LangChain's `dispatch_custom_event`.
        table.register(PublishMethod.self) { params, _ throws(ProtocolError) in
            // A client's events wait for the journal to keep up: a flood of them is pushed
            // back, where a run's events, tokens above all, never wait.
            guard await bus.waitForJournalRoom(timeout: .seconds(10)) else {
                throw ProtocolError(
                    .journalBacklogFull, "the event journal has not caught up with the events published for 10 s; publish again later",
                    detail: ["waited_ms": 10_000])
            }
            var data: JSONObject = ["name": .string(params.name)]
            data["data"] = params.data
            let event = CallbackEvent(
                name: EventType.custom.rawValue, session: params.session, runID: params.runID ?? RunID.make(),
                parentRunID: params.parentRunID, tags: params.tags ?? [], metadata: params.metadata ?? [:], data: data)
            let published = bus.publish(event)
            await published.acknowledgements?()
            return PublishMethod.Result(seq: published.event.seq, runID: published.event.runID)
        }
    }

    /// What `subscribe` asks of the bus: `since_time` found in the journal, and the
    /// event types of the filter and of `blocking` checked.
    package static func subscriptionRequest(_ params: SubscribeMethod.Params, bus: EventBus) throws(ProtocolError) -> SubscriptionRequest {
        let filter = try EventFilter(params: params)
        var since = params.since
        if let time = params.sinceTime {
            // Replay from the first event at or after the time; none yet means live only.
            since = bus.firstSeq(atOrAfter: time).map { $0 - 1 } ?? bus.latestSeq
        }
        var blocking = Set<EventType>()
        for name in params.blocking ?? [] {
            guard let type = EventType(rawValue: name), type.canBlock else {
                throw ProtocolError(
                    .invalidParams,
                    "'\(name)' cannot block: tokens never wait, and blocking applies to run events only",
                    detail: ["field": "blocking"])
            }
            blocking.insert(type)
        }
        return SubscriptionRequest(filter: filter, since: since, blocking: blocking, resumeAfterLag: params.onLag != .skip)
    }

    package static func notFound(_ number: Int64) -> ProtocolError {
        ProtocolError(
            .subscriptionNotFound, "this connection has no subscription \(number)", detail: ["subscription": .int(number)])
    }
}
