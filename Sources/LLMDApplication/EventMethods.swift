import LLMDBus
import LLMDCore
import LLMDEvents
import LLMDProtocol
import Logging

/// The event methods: `subscribe`, `unsubscribe` and `ack` run on the connection (see
/// ``ConnectionHandler``); `publish` and `run.event` are ordinary methods.
public enum EventMethods {
    public static func register(in table: inout MethodTable, bus: EventBus, billing: Billing, logger: Logger) {
        // A `custom` event from a client, as LangChain's `dispatch_custom_event`.
        table.register(PublishMethod.self) { params, _ throws(ProtocolError) in
            try await waitForJournal(bus)
            var data: JSONObject = ["name": .string(params.name)]
            data["data"] = params.data
            let event = CallbackEvent(
                name: EventType.custom.rawValue, session: params.session, runID: params.runID ?? RunID.make(),
                parentRunID: params.parentRunID, tags: params.tags ?? [], metadata: params.metadata ?? [:], data: data)
            let published = bus.publish(event)
            await published.acknowledgements?()
            return PublishMethod.Result(seq: published.event.seq, runID: published.event.runID)
        }
        // An event of a run an external program made, as its LangChain callbacks saw it. No
        // state is kept for the run: each event stands alone, as the program may never
        // report the run's end.
        table.register(RunEventMethod.self) { params, context throws(ProtocolError) in
            // Scopes are checked before anything is published: a report in error leaves no trace.
            let scopes = params.usage == nil ? [] : try await billing.expand(scopes: params.scopes)
            try await waitForJournal(bus)
            let sink = ExternalRunSink(
                bus: bus,
                external: [
                    "source": .string(params.source), "pid": .int(Int64(context.peer.pid)), "uid": .int(Int64(context.peer.uid)),
                ])
            var data = params.data
            var pending: PendingUsage?
            if let usage = params.usage {
                // The run's manager reports the row's `usage_recorded` as an event of the run.
                let run = CallbackManager(
                    runID: params.runID, parentRunID: params.parentRunID, session: params.session, tags: params.tags,
                    metadata: params.metadata, sink: sink, logger: logger)
                let account = CallAccount(sessionID: nil, session: params.session, turnID: nil, scopes: scopes)
                let row = billing.reported(usage, provider: usage.provider ?? params.source, account: account, run: run)
                data["usage"] = .object(row.reported.json)
                pending = row
            }
            let published = sink.publish(
                CallbackEvent(
                    type: params.event, session: params.session, runID: params.runID, parentRunID: params.parentRunID,
                    tags: params.tags, metadata: params.metadata, data: data, encodedContext: nil))
            await published.acknowledgements?()
            // As for llmd's own calls: `llm_end`, then the row and its `usage_recorded`.
            if let pending { try await billing.record([pending]) }
            return RunEventMethod.Result(seq: published.event.seq, runID: params.runID, usage: pending?.reported)
        }
    }

    /// Returns once the journal has room for a client's event. A client's events wait for
    /// the journal to keep up: a flood of them is pushed back, where a run's events, tokens
    /// above all, never wait.
    ///
    /// - Throws: `journal.backlog_full` after 10 s.
    private static func waitForJournal(_ bus: EventBus) async throws(ProtocolError) {
        guard await bus.waitForJournalRoom(timeout: .seconds(10)) else {
            throw ProtocolError(
                .journalBacklogFull, "the event journal has not caught up with the events published for 10 s; publish again later",
                detail: ["waited_ms": 10_000])
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

/// The bus as an external run's events reach it: each one's `data.external` says what
/// reported it and which process, so subscribers tell external runs from llmd's own. The
/// member is the daemon's to write: a client's own `external` is replaced.
struct ExternalRunSink: EventSink {
    let bus: EventBus
    let external: JSONObject

    func publish(_ event: consuming CallbackEvent) -> Publication {
        var event = event
        event.data["external"] = .object(external)
        return bus.publish(event)
    }
}
