import CoreMetrics
import Synchronization
import LLMDProtocol

/// llmd's metrics, recorded through swift-metrics into the factory the executable chose
/// (Prometheus's registry in llmd; a test's own, or none).
///
/// Everything here happens once per call, per retry or per scrape, never per token: a
/// call's tokens are counted when the ledger records it.
public final class DaemonMetrics: Sendable {
    private let factory: any MetricsFactory

    public init(factory: any MetricsFactory) {
        self.factory = factory
    }

    /// Records nothing: for code run without a daemon's metrics (tests, tools).
    public static let none = DaemonMetrics(factory: NOOPMetricsHandler.instance)

    /// The metrics' names, as llmd(8) lists them.
    public enum Name {
        public static let requests = "llmd_requests_total"
        public static let requestDuration = "llmd_request_duration_seconds"
        public static let timeToFirstToken = "llmd_time_to_first_token_seconds"
        public static let tokens = "llmd_tokens_total"
        public static let cost = "llmd_cost_usd_total"
        public static let retries = "llmd_upstream_retries_total"
        public static let budgetRefusals = "llmd_budget_refusals_total"
        public static let events = "llmd_events_published_total"
        public static let subscribers = "llmd_subscribers"
        public static let laggingSubscribers = "llmd_subscribers_lagging"
        public static let stalledSubscribers = "llmd_subscribers_stalled_total"
        public static let journalBytes = "llmd_journal_bytes"
        public static let sessions = "llmd_sessions"
        public static let busySessions = "llmd_sessions_busy"
        public static let turnsWaiting = "llmd_turns_waiting"
    }

    /// Histogram buckets by metric name, for the backend to apply: model calls take from
    /// tens of milliseconds to minutes, their first token from milliseconds to seconds.
    public static let durationBuckets: [String: [Duration]] = [
        Name.requestDuration: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300].map { .milliseconds(Int64($0 * 1000)) },
        Name.timeToFirstToken: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30].map { .milliseconds(Int64($0 * 1000)) },
    ]

    /// A model call's labels, already bounded by ``MetricLabels``.
    public struct Call: Sendable, Equatable {
        public var provider: String
        public var model: String
        /// The upstream endpoint: `chat` or `completions`.
        public var endpoint: String

        public init(provider: String, model: String, endpoint: String) {
            self.provider = provider
            self.model = model
            self.endpoint = endpoint
        }

        var dimensions: [(String, String)] { [("provider", provider), ("model", model), ("endpoint", endpoint)] }
    }

    /// How a model call ended.
    public enum Outcome: String, Sendable, CaseIterable {
        case completed, failed, cancelled
        /// Refused by a budget before it was sent.
        case refused
    }

    /// A model call ended: counted, and its duration (and first token's wait, when one
    /// came) observed.
    public func callEnded(_ call: Call, outcome: Outcome, duration: Duration, timeToFirstToken: Duration?) {
        Counter(label: Name.requests, dimensions: call.dimensions + [("outcome", outcome.rawValue)], factory: factory).increment()
        guard outcome != .refused else { return }
        Timer(label: Name.requestDuration, dimensions: call.dimensions + [("outcome", outcome.rawValue)], factory: factory)
            .recordNanoseconds(duration.nanoseconds)
        if let timeToFirstToken {
            Timer(label: Name.timeToFirstToken, dimensions: call.dimensions, factory: factory)
                .recordNanoseconds(timeToFirstToken.nanoseconds)
        }
    }

    /// A call's usage was written to the ledger: its tokens by kind, and its cost when its
    /// price is known.
    ///
    /// `cached` is part of `prompt` and `reasoning` of `completion`, as in the ledger.
    public func usageRecorded(provider: String, model: String, _ usage: TokenUsage, costUSD: Double?) {
        let kinds: [(String, Int)] = [
            ("prompt", usage.promptTokens), ("completion", usage.completionTokens), ("cached", usage.cachedPromptTokens),
            ("reasoning", usage.reasoningTokens),
        ]
        for (kind, count) in kinds {
            // Every kind's series exists from a model's first call, so a sum over kinds
            // never misses one that is still 0.
            Counter(
                label: Name.tokens,
                dimensions: [("provider", provider), ("model", model), ("kind", kind), ("source", usage.source.rawValue)],
                factory: factory
            ).increment(by: count)
        }
        if let costUSD {
            FloatingPointCounter(label: Name.cost, dimensions: [("provider", provider), ("model", model)], factory: factory)
                .increment(by: costUSD)
        }
    }

    /// An upstream attempt failed and is retried; `reason` is its error's code.
    public func retried(provider: String, reason: String) {
        Counter(label: Name.retries, dimensions: [("provider", provider), ("reason", reason)], factory: factory).increment()
    }

    /// A budget refused a call; `kind` is the budget's (`daily`, `session`, `scope`).
    public func budgetRefused(kind: String, reason: String) {
        Counter(label: Name.budgetRefusals, dimensions: [("kind", kind), ("reason", reason)], factory: factory).increment()
    }

    /// What the daemon holds at a scrape.
    public struct Health: Sendable, Equatable {
        public var sessions = 0
        /// Sessions with a turn running.
        public var busySessions = 0
        /// Turns queued behind a running one, in all sessions.
        public var turnsWaiting = 0
        public var subscribers = 0
        public var laggingSubscribers = 0
        /// Connections disconnected as `subscriber.stalled` since start.
        public var stalledSubscribers = 0
        /// The event journal's files, in bytes; 0 when events are not journaled.
        public var journalBytes = 0
        /// Events published since start, by type (custom events as `custom`).
        public var eventsPublished: [String: Int] = [:]

        public init() {}
    }

    /// Counts kept outside the metrics, as they were at the last scrape: counters only go
    /// up by the difference.
    private let exported = Mutex<(events: [String: Int], stalled: Int)>(([:], 0))

    /// Sets the gauges and counters read from the daemon's state; called at each scrape.
    public func sample(_ health: Health) {
        for (name, value) in [
            (Name.sessions, health.sessions), (Name.busySessions, health.busySessions), (Name.turnsWaiting, health.turnsWaiting),
            (Name.subscribers, health.subscribers), (Name.laggingSubscribers, health.laggingSubscribers),
            (Name.journalBytes, health.journalBytes),
        ] {
            Gauge(label: name, factory: factory).record(value)
        }
        let (events, stalled) = exported.withLock { exported in
            let events = health.eventsPublished.compactMap { type, count -> (String, Int)? in
                let delta = count - exported.events[type, default: 0]
                return delta > 0 ? (type, delta) : nil
            }
            let stalled = health.stalledSubscribers - exported.stalled
            exported = (health.eventsPublished, health.stalledSubscribers)
            return (events, stalled)
        }
        for (type, delta) in events {
            Counter(label: Name.events, dimensions: [("type", type)], factory: factory).increment(by: delta)
        }
        Counter(label: Name.stalledSubscribers, factory: factory).increment(by: max(0, stalled))
    }
}

extension Duration {
    fileprivate var nanoseconds: Int64 { components.seconds * 1_000_000_000 + components.attoseconds / 1_000_000_000 }
}
