import Foundation
import LLMDClient
import LLMDProtocol
import LLMDTesting
import Testing

/// `/metrics` as Prometheus itself reads it: a real server scraping llmd's TCP listener,
/// its query API holding llmd's counters against the ledger.
@Suite("Prometheus metrics")
struct MetricsTests {
    let keys: TemporaryDirectory

    init() throws {
        keys = try TemporaryDirectory()
    }

    private func complete(_ client: LLMDClient, _ params: JSONObject) throws -> ProtocolError? {
        let typed = try CompleteMethod.Params(json: params)
        do {
            _ = try client.complete(typed, onToken: { _ in })
            return nil
        } catch .remote(let error) {
            return error
        }
    }

    private static func messages(_ text: String) -> JSONValue { [["role": "user", "content": .string(text)]] }

    @Test("Prometheus scraping llmd over TCP with a key holds the ledger's requests, tokens by kind and cost")
    func prometheusMatchesLedger() throws {
        let fixture = try FixtureServer()
        let port = try freeLoopbackPort()
        let daemon = try DaemonProcess(
            config: try fixture.config(
                keys: keys,
                extra: """

                    [Model fixture]
                    InputPrice=2
                    OutputPrice=8

                    [Model fixture/cached:4:3]
                    InputPrice=2
                    CachedInputPrice=0.5
                    OutputPrice=8

                    [HTTP]
                    Listen=127.0.0.1:\(port)
                    """))
        let made = try llmctl(["key", "create", "prometheus", "--socket", daemon.socketPath])
        #expect(made.status == 0, "\(made.standardError)")
        let key = made.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        let prometheus = try PrometheusServer(scraping: "127.0.0.1:\(port)", key: key)

        let client = try LLMDClient(socketPath: daemon.socketPath)
        #expect(try complete(client, ["model": "fixture", "messages": Self.messages("one whole reply")]) == nil)
        #expect(try complete(client, ["model": "fixture", "messages": Self.messages("streamed"), "stream": true]) == nil)
        #expect(try complete(client, ["model": "fixture", "messages": Self.messages("streamed again, longer"), "stream": true]) == nil)
        #expect(try complete(client, ["model": "fixture/cached:4:3", "messages": Self.messages("a b c"), "stream": true]) == nil)
        #expect(try complete(client, ["model": "fixture/500-then-ok:1", "messages": Self.messages("retried once")]) == nil)
        #expect(try complete(client, ["model": "fixture/401", "messages": Self.messages("refused upstream")])?.code != nil)
        let scope = try client.call(
            ScopeBeginMethod.self, ScopeBeginMethod.Params(name: "tight", limits: BudgetLimitChange(maxTokens: 5))
        ).scope
        let refused = try complete(client, ["model": "fixture", "messages": Self.messages("over budget"), "scopes": [.string(scope)]])
        #expect(refused?.code == .budgetExceeded)
        let ledger = try client.call(UsageMethod.self, UsageMethod.Params()).total
        #expect(ledger.requests == 5)

        // A scrape that began after the last call holds all of them.
        let callsDone = Date().timeIntervalSince1970
        let scraped = waitUntil(timeout: .seconds(30)) {
            ((try? prometheus.query(#"timestamp(up{job="llmd"} == 1)"#).first?.value) ?? 0) > callsDone
        }
        #expect(scraped, "Prometheus never scraped llmd after the calls: \(prometheus.log)\n\(daemon.log)")

        #expect(try prometheus.value(#"sum(llmd_requests_total{outcome="completed"})"#) == Double(ledger.requests))
        #expect(try prometheus.value(#"sum(llmd_requests_total{outcome="failed"})"#) == 1)
        #expect(try prometheus.value(#"sum(llmd_requests_total{outcome="refused"})"#) == 1)
        #expect(try prometheus.value(#"sum(llmd_budget_refusals_total{kind="scope",reason="tokens"})"#) == 1)
        #expect(
            try prometheus.value(#"sum(llmd_requests_total{model="other"})"#) == 2,
            "models configuration does not name are counted as other")
        #expect(try prometheus.value(#"sum(llmd_requests_total{model="fixture/cached:4:3",endpoint="chat"})"#) == 1)
        #expect(try prometheus.value(#"sum(llmd_upstream_retries_total{provider="local"})"#) == 1)
        for (kind, total) in [
            ("prompt", ledger.promptTokens), ("completion", ledger.completionTokens), ("cached", ledger.cachedPromptTokens),
            ("reasoning", ledger.reasoningTokens),
        ] {
            #expect(try prometheus.value("sum(llmd_tokens_total{kind=\"\(kind)\"})") == Double(total), "\(kind) tokens")
        }
        #expect(ledger.cachedPromptTokens == 4 && ledger.reasoningTokens == 3)
        let cost = try prometheus.value("sum(llmd_cost_usd_total)")
        #expect(ledger.cost > 0 && abs(cost - ledger.cost) <= ledger.cost * 1e-12, "cost \(cost), ledger \(ledger.cost)")
        #expect(try prometheus.value(#"sum(llmd_request_duration_seconds_count)"#) == 6, "every call sent upstream")
        #expect(try prometheus.value(#"sum(llmd_time_to_first_token_seconds_count)"#) == 5, "every call whose reply came")
        #expect(try prometheus.value(#"llmd_events_published_total{type="chain_start"}"#) == 7)
        #expect(try prometheus.value(#"llmd_events_published_total{type="llm_new_token"}"#) > 0)
        #expect(try prometheus.value("llmd_journal_bytes") > 0)
    }

    @Test("/metrics on the socket with no key, on TCP only with one; API=no serves it alone")
    func listeners() throws {
        let port = try freeLoopbackPort()
        let daemon = try DaemonProcess(config: "[HTTP]\nAPI=no\nListen=127.0.0.1:\(port)\n")
        let socket = URL(fileURLWithPath: daemon.socketPath).deletingLastPathComponent().appendingPathComponent("http.sock").path
        func get(_ arguments: [String]) throws -> (status: Int, body: String, type: String) {
            let result = try run("/usr/bin/curl", ["-s", "-w", "\n%{http_code} %{content_type}"] + arguments)
            let last = result.standardOutput.split(separator: "\n").last ?? ""
            let status = Int(last.split(separator: " ").first ?? "") ?? -1
            let body = result.standardOutput.dropLast(last.count)
            return (status, String(body), last.split(separator: " ", maxSplits: 1).last.map(String.init) ?? "")
        }
        let local = try get(["--unix-socket", socket, "http://llmd/metrics"])
        #expect(local.status == 200 && local.type == "text/plain; version=0.0.4; charset=utf-8", "\(local)")
        #expect(local.body.contains("llmd_sessions 0"), "\(local.body)")
        // OpenMetrics asked for: swift-prometheus writes only the text format, which Prometheus takes.
        let asked = try get(["--unix-socket", socket, "-H", "Accept: application/openmetrics-text; version=1.0.0", "http://llmd/metrics"])
        #expect(asked.status == 200 && asked.type.hasPrefix("text/plain; version=0.0.4"))
        #expect(try get(["--unix-socket", socket, "http://llmd/v1/models"]).status == 404, "API=no serves no API")
        #expect(try get(["http://127.0.0.1:\(port)/metrics"]).status == 401, "TCP needs a key, as for the API")
        let key = try llmctl(["key", "create", "scraper", "--socket", daemon.socketPath]).standardOutput
            .trimmingCharacters(in: .whitespacesAndNewlines)
        let remote = try get(["-H", "Authorization: Bearer \(key)", "http://127.0.0.1:\(port)/metrics"])
        #expect(remote.status == 200 && remote.body.contains("llmd_subscribers 0"), "\(remote)")
        #expect(try get(["-X", "POST", "--unix-socket", socket, "http://llmd/metrics"]).status == 405)
    }
}
