import Foundation
import LLMDClient
import LLMDProtocol
import LLMDTesting
import Testing

/// `run.event` through the whole path: a program's own runs reported to a real daemon,
/// seen by a subscriber, recorded in the ledger, counted to scopes and budgets.
@Suite("External runs")
struct ExternalRunTests {
    /// The subscription helpers of the event tests.
    let events = EventTests()

    /// The offline provider, for llmd's own calls, and a priced model for the reports:
    /// $2 per million prompt tokens, $8 per million completion tokens.
    private func daemon(extra: String = "") throws -> DaemonProcess {
        try DaemonProcess(
            config: EventTests.fakeConfig(words: 2, extra: "[Model ext-model]\nInputPrice=2\nOutputPrice=8\n" + extra))
    }

    /// Reports an event the typed way, as a program's callback handler would.
    private func report(
        _ client: LLMDClient, _ event: EventType, run: String, parent: String? = nil, data: JSONObject = [:],
        scopes: [String] = []
    ) throws -> RunEventMethod.Result {
        try client.call(
            RunEventMethod.self,
            try RunEventMethod.Params(
                event: event, runID: run, parentRunID: parent, session: "lc", tags: ["ext"], metadata: ["user": "bob"],
                data: data, source: "langchain", scopes: scopes))
    }

    /// The error of a report sent as raw JSON, which the typed form would refuse to build.
    private func refusal(_ client: LLMDClient, _ params: JSONObject) throws -> ProtocolError {
        do {
            _ = try client.call(.runEvent, params)
        } catch .remote(let error) {
            return error
        }
        throw ClientError.protocolViolation("the daemon accepted \(params)")
    }

    /// An llm_end's data with usage; `total` is sent when given.
    private static func usage(_ prompt: Int64, _ completion: Int64, total: Int64? = nil) -> JSONObject {
        var usage: JSONObject = ["prompt_tokens": .int(prompt), "completion_tokens": .int(completion)]
        usage["total_tokens"] = total.map(JSONValue.int)
        return ["model": "ext-model", "text": "done", "usage": .object(usage)]
    }

    @Test("a subscriber sees an external run tree with data.external; its llm_end's usage is in the ledger as reported")
    func runTreeAndLedger() throws {
        let daemon = try daemon()
        let watcher = try daemon.connect()
        watcher.setReadTimeout(.seconds(10))
        try events.subscribe(watcher)
        let client = try LLMDClient(socketPath: daemon.socketPath)
        let scope = try #require(try client.call(.scopeBegin, ["name": "job"])["scope"]?.stringValue)

        let (chain, model) = ("ext-chain-1", "ext-llm-1")
        _ = try report(client, .chainStart, run: chain, data: ["name": "RunnableSequence", "inputs": ["input": "hi"]])
        _ = try report(
            client, .chatModelStart, run: model, parent: chain,
            data: ["model": "ext-model", "messages": [["role": "user", "content": "hi"]]])
        _ = try report(client, .llmNewToken, run: model, parent: chain, data: ["token": "do"])
        _ = try report(client, .llmNewToken, run: model, parent: chain, data: ["token": "ne"])
        var end = Self.usage(10, 5, total: 15)
        end["external"] = "forged"
        let ended = try report(client, .llmEnd, run: model, parent: chain, data: end, scopes: [scope])
        let chainEnded = try report(client, .chainEnd, run: chain, data: ["outputs": ["text": "done"]])
        #expect(chainEnded.usage == nil)

        let seen = try events.read(watcher) { $0.name == "chain_end" }
        #expect(
            seen.map(\.name) == [
                "chain_start", "chat_model_start", "llm_new_token", "llm_new_token", "llm_end", "usage_recorded", "chain_end",
            ])
        let external: JSONValue = ["source": "langchain", "pid": .int(Int64(getpid())), "uid": .int(Int64(getuid()))]
        for event in seen {
            #expect(event.data["external"] == external, "\(event.name): \(event.data)")
            #expect(event.session == "lc" && event.tags == ["ext"] && event.metadata == ["user": "bob"])
        }
        #expect(seen.map(\.runID) == [chain, model, model, model, model, model, chain])
        #expect(seen.map(\.parentRunID) == [nil, chain, chain, chain, chain, chain, nil])
        #expect(seen[2].data["token"] == "do" && seen[0].data["name"] == "RunnableSequence")

        // The llm_end carries the usage as llmd records it, priced from its price table.
        let cost = (10.0 * 2 + 5 * 8) / 1e6
        let published = seen[4]
        #expect(published.seq == ended.seq)
        let usage = try #require(published.data["usage"]?.objectValue)
        #expect(usage["source"] == "reported" && usage["total_tokens"] == 15 && usage["cost"] == .double(cost))
        #expect(published.data["text"] == "done" && published.data["model"] == "ext-model")
        #expect(ended.usage == (try CallUsage(json: usage)))
        let recorded = seen[5]
        #expect(recorded.data["source"] == "reported" && recorded.data["model"] == "ext-model")
        #expect(recorded.data["provider"] == "langchain", "no data.provider: the source names it")
        #expect(recorded.data["scopes"] == [.string(scope)] && recorded.data["status"] == "completed")
        #expect(recorded.data["prompt_tokens"] == 10 && recorded.data["completion_tokens"] == 5)

        // In the ledger: the totals, by source, by session label, and the scope's.
        let total = try #require(try client.call(.usage, [:])["total"]?.objectValue)
        #expect(total["requests"] == 1 && total["total_tokens"] == 15 && total["cost"] == .double(cost))
        #expect(total["estimated_requests"] == 0 && total["unpriced_requests"] == 0)
        let bySource = try client.call(UsageMethod.self, UsageMethod.Params(by: "source"))
        #expect(bySource.groups?.map(\.key) == ["reported"])
        #expect(try client.call(UsageMethod.self, UsageMethod.Params(session: "lc")).total.requests == 1)
        let scoped = try client.call(ScopeShowMethod.self, ScopeShowMethod.Params(scope: scope)).totals
        #expect(scoped.requests == 1 && scoped.promptTokens == 10 && scoped.completionTokens == 5)

        // llmctl shows the run as another program's, and its row under its source.
        let shown = try llmctl(["events", "--socket", daemon.socketPath, "-o", "short"])
        #expect(shown.status == 0)
        #expect(shown.standardOutput.contains("llm_end via langchain[\(getpid())] [lc] tokens=10+5 (reported)"), "\(shown.standardOutput)")
        let listed = try llmctl(["usage", "--socket", daemon.socketPath, "--by", "source"])
        #expect(listed.status == 0)
        #expect(listed.standardOutput.split(separator: "\n").contains { $0.hasPrefix("reported ") }, "\(listed.standardOutput)")
    }

    @Test("an unknown event, a missing run_id, usage that does not add up and an unknown scope are refused; nothing is left")
    func badReports() throws {
        let daemon = try daemon()
        let client = try LLMDClient(socketPath: daemon.socketPath)
        let unknown = try refusal(client, ["event": "session_created", "run_id": "r"])
        #expect(unknown.code == .invalidParams && unknown.detail["field"] == "event")
        #expect(unknown.detail["allowed"]?.arrayValue?.contains("llm_end") == true)
        let anonymous = try refusal(client, ["event": "chain_start"])
        #expect(anonymous.code == .invalidParams && anonymous.detail["field"] == "run_id")
        let badUsage = try refusal(client, ["event": "llm_end", "run_id": "r", "data": .object(Self.usage(10, 5, total: 16))])
        #expect(badUsage.code == .invalidParams && badUsage.detail["field"] == "data.usage.total_tokens")
        let noModel = try refusal(client, ["event": "llm_end", "run_id": "r", "data": ["usage": ["prompt_tokens": 1, "completion_tokens": 1]]])
        #expect(noModel.code == .invalidParams && noModel.detail["field"] == "data.model")
        let noScope = try refusal(
            client, ["event": "llm_end", "run_id": "r", "data": .object(Self.usage(10, 5)), "scopes": ["no-such-scope"]])
        #expect(noScope.code == .scopeNotFound && noScope.detail["scope"] == "no-such-scope")
        let scope = try #require(try client.call(.scopeBegin, [:])["scope"])
        _ = try client.call(.scopeEnd, ["scope": scope])
        let ended = try refusal(client, ["event": "llm_end", "run_id": "r", "data": .object(Self.usage(10, 5)), "scopes": [scope]])
        #expect(ended.code == .scopeEnded)

        #expect(try client.call(UsageMethod.self, UsageMethod.Params()).total.requests == 0)
        let journal = try daemon.connect()
        #expect(try events.subscribe(journal, ["since": 0]).replayed.isEmpty, "a refused report publishes nothing")
    }

    @Test("a budget never refuses a report, but counts it: llmd's next call to that scope is refused")
    func budgets() throws {
        let daemon = try daemon()
        let client = try LLMDClient(socketPath: daemon.socketPath)
        /// A call of llmd's own, counted to `scope`.
        func complete(_ scope: String) throws -> Result<JSONObject, ProtocolError> {
            do {
                return .success(
                    try client.call(.complete, ["messages": [["role": "user", "content": "hi"]], "max_tokens": 2, "scopes": [.string(scope)]]))
            } catch .remote(let error) {
                return .failure(error)
            }
        }

        // A scope whose spending llmd has loaded: its own call first, then reports past the limit.
        let loaded = try #require(try client.call(.scopeBegin, ["max_tokens": 100])["scope"]?.stringValue)
        let first = try complete(loaded).get()
        let spent = try #require(first["usage"]?.objectValue?["total_tokens"]?.intValue)
        let atLimit = try report(client, .llmEnd, run: "r1", data: Self.usage(100 - spent - 20, 20), scopes: [loaded])
        #expect(atLimit.usage?.tokens.totalTokens == Int(100 - spent))
        let beyond = try report(client, .llmEnd, run: "r2", data: Self.usage(30, 20), scopes: [loaded])
        #expect(beyond.usage?.tokens.totalTokens == 50, "a report past the limit is recorded all the same")
        guard case .failure(let refused) = try complete(loaded) else {
            Issue.record("a call passed a budget that reports had used up")
            return
        }
        #expect(refused.code == .budgetExceeded && refused.detail["scope"] == .string(loaded))
        #expect(refused.detail["spent"]?.objectValue?["tokens"] == 150)

        // A scope no call of llmd's has touched: the ledger is read when the next call needs it.
        let fresh = try #require(try client.call(.scopeBegin, ["max_tokens": 50])["scope"]?.stringValue)
        _ = try report(client, .llmEnd, run: "r3", data: Self.usage(40, 20), scopes: [fresh])
        guard case .failure(let refusedFresh) = try complete(fresh) else {
            Issue.record("a call passed a budget that a report had used up")
            return
        }
        #expect(refusedFresh.code == .budgetExceeded && refusedFresh.detail["spent"]?.objectValue?["tokens"] == 60)
        #expect(try client.call(ScopeShowMethod.self, ScopeShowMethod.Params(scope: fresh)).totals.totalTokens == 60)
    }

    @Test("models without a price are warned about once each, and only up to a bound: reports name any models they like")
    func unpricedWarningsAreBounded() throws {
        let daemon = try daemon()
        let client = try LLMDClient(socketPath: daemon.socketPath)
        let limit = 256
        for index in 0..<(limit + 20) {
            var data = Self.usage(1, 1)
            data["model"] = .string("made-up-\(index)")
            let result = try report(client, .llmEnd, run: "r\(index)", data: data)
            #expect(result.usage?.cost == nil)
        }
        _ = try report(client, .llmEnd, run: "again", data: ["model": "made-up-0", "text": "", "usage": Self.usage(1, 1)["usage"]!])
        let warnings = daemon.log.split(separator: "\n").filter { $0.contains("no price for model 'made-up-") }
        #expect(warnings.count == limit, "\(warnings.count)")
        #expect(warnings.last?.contains("no more such warnings until llmd restarts") == true)
        #expect(try client.call(UsageMethod.self, UsageMethod.Params()).total.requests == Int64(limit + 21))
    }

    @Test("a subscriber blocking on llm_end holds the report's answer until it acknowledges the event")
    func blockingSubscriber() throws {
        let daemon = try daemon()
        let gate = try daemon.connect()
        gate.setReadTimeout(.seconds(10))
        let number = try events.subscribe(gate, ["types": ["llm_end"], "blocking": ["llm_end"]]).number
        let reporter = try daemon.connect()
        let params = try RunEventMethod.Params(event: .llmEnd, runID: "held", data: ["text": "x"])
        try reporter.send(Request(id: .int(1), method: RunEventMethod.method.rawValue, params: params.json))
        let held = try events.read(gate) { $0.name == "llm_end" }[0]
        #expect(held.runID == "held" && held.data["external"]?.objectValue?["source"] == "external")
        reporter.setReadTimeout(.milliseconds(300))
        #expect(throws: ClientError.self, "answered before the subscriber acknowledged") { try reporter.readMessage() }
        _ = try gate.call(.ack, params: ["subscription": .int(number), "seq": .int(Int64(held.seq))])
        reporter.setReadTimeout(.seconds(10))
        guard case .reply(.int(1), let result) = try reporter.readMessage() else {
            Issue.record("no answer after the acknowledgement")
            return
        }
        #expect(result["seq"]?.intValue == Int64(held.seq))
    }
}
