import LLMDMetrics
import LLMDProtocol
import Prometheus
import Testing

/// llmd's metrics written by swift-prometheus's registry, as `/metrics` serves them.
@Suite("Daemon metrics")
struct DaemonMetricsTests {
    let registry = PrometheusCollectorRegistry()
    let metrics: DaemonMetrics

    init() {
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets = DaemonMetrics.durationBuckets
        metrics = DaemonMetrics(factory: factory)
    }

    /// The exposition's sample lines (no comments), as a set: series come in no set order.
    private var samples: Set<String> {
        Set(registry.emitToString().split(separator: "\n").filter { !$0.hasPrefix("#") }.map(String.init))
    }

    @Test("recorded usage adds up by provider, model, kind and source; cost by provider and model")
    func usage() {
        let usage = TokenUsage(promptTokens: 10, completionTokens: 5, cachedPromptTokens: 4, reasoningTokens: 2, source: .provider)
        metrics.usageRecorded(provider: "local", model: "fixture", usage, costUSD: 0.25)
        metrics.usageRecorded(provider: "local", model: "fixture", usage, costUSD: 0.5)
        metrics.usageRecorded(
            provider: "local", model: "fixture", TokenUsage(promptTokens: 1, completionTokens: 1, source: .estimated), costUSD: nil)
        let lines = samples
        for (kind, count) in [("prompt", 20), ("completion", 10), ("cached", 8), ("reasoning", 4)] {
            #expect(lines.contains(#"llmd_tokens_total{provider="local",model="fixture",kind="\#(kind)",source="provider"} \#(count)"#))
        }
        #expect(lines.contains(#"llmd_tokens_total{provider="local",model="fixture",kind="prompt",source="estimated"} 1"#))
        #expect(lines.contains(#"llmd_cost_usd_total{provider="local",model="fixture"} 0.75"#), "\(lines)")
    }

    @Test("calls count by outcome; durations and first tokens are observed, a refusal is not")
    func calls() {
        let call = DaemonMetrics.Call(provider: "local", model: "fixture", endpoint: "chat")
        metrics.callEnded(call, outcome: .completed, duration: .milliseconds(300), timeToFirstToken: .milliseconds(40))
        metrics.callEnded(call, outcome: .failed, duration: .milliseconds(20), timeToFirstToken: nil)
        metrics.callEnded(call, outcome: .refused, duration: .microseconds(50), timeToFirstToken: nil)
        let lines = samples
        let labels = #"provider="local",model="fixture",endpoint="chat""#
        for outcome in ["completed", "failed", "refused"] {
            #expect(lines.contains("llmd_requests_total{\(labels),outcome=\"\(outcome)\"} 1"))
        }
        #expect(lines.contains("llmd_request_duration_seconds_count{\(labels),outcome=\"completed\"} 1"))
        #expect(lines.contains("llmd_request_duration_seconds_bucket{\(labels),outcome=\"completed\",le=\"0.25\"} 0"))
        #expect(lines.contains("llmd_request_duration_seconds_bucket{\(labels),outcome=\"completed\",le=\"0.5\"} 1"))
        #expect(!lines.contains { $0.contains("outcome=\"refused\"") && $0.hasPrefix("llmd_request_duration") })
        #expect(lines.contains("llmd_time_to_first_token_seconds_bucket{\(labels),le=\"0.05\"} 1"))
        #expect(lines.contains("llmd_time_to_first_token_seconds_count{\(labels)} 1"), "only calls whose first token came")
    }

    @Test("a scrape sets the gauges, and the counters read from the daemon go up by what changed")
    func sampling() {
        var health = DaemonMetrics.Health()
        (health.sessions, health.busySessions, health.turnsWaiting) = (3, 1, 2)
        (health.subscribers, health.laggingSubscribers, health.stalledSubscribers, health.journalBytes) = (4, 1, 1, 8192)
        health.eventsPublished = ["llm_new_token": 100, "chain_start": 2]
        metrics.sample(health)
        health.eventsPublished = ["llm_new_token": 150, "chain_start": 2, "custom": 1]
        health.sessions = 2
        metrics.sample(health)
        let lines = samples
        #expect(lines.contains(#"llmd_events_published_total{type="llm_new_token"} 150"#))
        #expect(lines.contains(#"llmd_events_published_total{type="chain_start"} 2"#))
        #expect(lines.contains(#"llmd_events_published_total{type="custom"} 1"#))
        #expect(lines.contains("llmd_subscribers_stalled_total 1"), "counted once, though sampled twice")
        for line in [
            // Gauges are written as floating point numbers.
            "llmd_sessions 2.0", "llmd_sessions_busy 1.0", "llmd_turns_waiting 2.0", "llmd_subscribers 4.0",
            "llmd_subscribers_lagging 1.0", "llmd_journal_bytes 8192.0",
        ] {
            #expect(lines.contains(line), "\(line) in \(lines)")
        }
    }

    @Test("retries by reason and budget refusals by kind")
    func retriesAndRefusals() {
        metrics.retried(provider: "local", reason: "upstream.server_error")
        metrics.retried(provider: "local", reason: "upstream.server_error")
        metrics.budgetRefused(kind: "scope", reason: "tokens")
        let lines = samples
        #expect(lines.contains(#"llmd_upstream_retries_total{provider="local",reason="upstream.server_error"} 2"#))
        #expect(lines.contains(#"llmd_budget_refusals_total{kind="scope",reason="tokens"} 1"#))
    }
}
