import LLMDBus
import LLMDCore
import LLMDEvents
import LLMDProtocol

/// The event methods: `subscribe`, `unsubscribe` and `ack` run on the connection (see
/// ``ConnectionHandler``); `publish` is an ordinary method.
public enum EventMethods {
    public static func register(in table: inout MethodTable, bus: EventBus) {
        // `publish {name, data?, session?, run_id?, parent_run_id?, tags?, metadata?}`: a
        // `custom` event from a client, as LangChain's `dispatch_custom_event`.
        table.register(.publish) { request, _ throws(ProtocolError) in
            let params = request.params
            guard let name = try params.string("name"), !name.isEmpty else {
                throw .invalidParam("name", expected: "the custom event's name", got: params["name"])
            }
            // A client's events wait for the journal to keep up: a flood of them is pushed
            // back, where a run's events, tokens above all, never wait.
            guard await bus.waitForJournalRoom(timeout: .seconds(10)) else {
                throw ProtocolError(
                    .journalBacklogFull, "the event journal has not caught up with the events published for 10 s; publish again later",
                    detail: ["waited_ms": 10_000])
            }
            var data: JSONObject = ["name": .string(name)]
            switch params["data"] {
            case nil, .null?: break
            case let value?: data["data"] = value
            }
            let event = CallbackEvent(
                name: EventType.custom.rawValue, session: try params.string("session"),
                runID: try params.string("run_id") ?? RunID.make(), parentRunID: try params.string("parent_run_id"),
                tags: try params.strings("tags") ?? [], metadata: try params.object("metadata") ?? [:], data: data)
            let published = bus.publish(event)
            await published.acknowledgements?()
            return ["seq": .int(Int64(published.event.seq)), "run_id": .string(published.event.runID)]
        }
    }

    /// `subscribe`'s parameters: the filter, `since` (a seq) or `since_time` (microseconds
    /// since the epoch), `blocking` (event types to wait for acks on) and `on_lag`.
    package static func subscriptionRequest(_ params: JSONObject, bus: EventBus) throws(ProtocolError) -> SubscriptionRequest {
        let filter = try EventFilter(params: params)
        var since: UInt64?
        switch (try params.int("since"), try params.int("since_time")) {
        case (let seq?, nil):
            guard seq >= 0 else { throw .invalidParam("since", expected: "a seq, 0 or more", got: params["since"]) }
            since = UInt64(seq)
        case (nil, let time?):
            // Replay from the first event at or after the time; none yet means live only.
            since = bus.firstSeq(atOrAfter: time).map { $0 - 1 } ?? bus.latestSeq
        case (nil, nil):
            since = nil
        case (_?, _?):
            throw ProtocolError(.invalidParams, "pass 'since' or 'since_time', not both", detail: ["field": "since_time"])
        }
        var blocking = Set<EventType>()
        for name in try params.strings("blocking") ?? [] {
            guard let type = EventType(rawValue: name), type != .llmNewToken, !type.isAddressed else {
                throw ProtocolError(
                    .invalidParams,
                    "'\(name)' cannot block: tokens never wait, and blocking applies to run events only",
                    detail: ["field": "blocking"])
            }
            blocking.insert(type)
        }
        let resume: Bool
        switch try params.string("on_lag") ?? "resume" {
        case "resume": resume = true
        case "skip": resume = false
        case let other: throw .invalidParam("on_lag", expected: "resume or skip", got: .string(other))
        }
        return SubscriptionRequest(filter: filter, since: since, blocking: blocking, resumeAfterLag: resume)
    }

    package static func subscriptionNumber(_ params: JSONObject) throws(ProtocolError) -> Int64 {
        guard let number = try params.int("subscription") else {
            throw .invalidParam("subscription", expected: "the number subscribe returned", got: params["subscription"])
        }
        return number
    }

    package static func notFound(_ number: Int64) -> ProtocolError {
        ProtocolError(
            .subscriptionNotFound, "this connection has no subscription \(number)", detail: ["subscription": .int(number)])
    }
}
