import Foundation
import LLMDClient
import LLMDProtocol
import LLMDTesting
import Testing

/// Real Python clients, unmodified, against a real daemon whose provider is the OpenAI
/// fixture: OpenAI's SDK, LangChain and the `llm` CLI, at the versions
/// Tests/Python/requirements.txt pins, in the venv `make venv` makes. Each script under
/// Tests/Python makes its calls, checks what its client parsed, and prints a summary that
/// is held here against llmd's ledger and journal.
@Suite("Python clients")
struct PythonClientTests {
    /// The venv's interpreter, which has the pinned clients.
    private static let python = sourceRoot + "/.build/venv/bin/python"

    /// A daemon whose default provider `local` is the fixture, with the fixture and the
    /// key's directory kept alive beside it.
    private struct Setup {
        let keys: TemporaryDirectory
        let fixture: FixtureServer
        let daemon: DaemonProcess

        /// The HTTP API's TCP listener, on a free loopback port.
        let port: Int

        init() throws {
            keys = try TemporaryDirectory()
            fixture = try FixtureServer()
            port = try freeLoopbackPort()
            daemon = try DaemonProcess(config: try fixture.config(keys: keys, extra: "[HTTP]\nListen=127.0.0.1:\(port)\n"))
        }

        /// A key for the TCP listener, made as a user makes one.
        func makeKey(_ name: String) throws -> String {
            let made = try llmctl(["key", "create", name, "--socket", daemon.socketPath])
            try #require(made.status == 0, "\(made.standardError)")
            return made.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        }

        var httpSocket: String {
            URL(fileURLWithPath: daemon.socketPath).deletingLastPathComponent().appendingPathComponent("http.sock").path
        }

        var client: LLMDClient { get throws { try LLMDClient(socketPath: daemon.socketPath) } }

        /// The journal's events of `type`, as `llmctl events -o json` prints them.
        func events(_ type: String) throws -> [JSONObject] {
            let output = try llmctl(["events", "-o", "json", "-t", type, "--socket", daemon.socketPath]).standardOutput
            return try output.split(separator: "\n").filter { $0.hasPrefix("{") }.compactMap {
                try JSONParser.parse(String($0)).objectValue
            }
        }
    }

    /// Runs Tests/Python/`script` with the venv's Python; its summary, the JSON it printed.
    private func runScript(_ script: String, _ arguments: [String]) throws -> JSONObject {
        try #require(
            FileManager.default.isExecutableFile(atPath: Self.python),
            "no Python venv at \(Self.python): run `make venv` (make test makes it first)")
        let result = try run(Self.python, [sourceRoot + "/Tests/Python/" + script] + arguments, timeout: .seconds(90))
        try #require(result.status == 0 && !result.signalled, "\(script) failed (\(result.status)):\n\(result.standardError)")
        return try #require(try JSONParser.parse(result.standardOutput).objectValue, "\(script) printed: \(result.standardOutput)")
    }

    @Test("OpenAI's SDK over http.sock: chat and completions, whole and streamed, each call's usage the ledger's")
    func openAISDK() throws {
        let setup = try Setup()
        let summary = try runScript(
            "openai_sdk_check.py", [setup.httpSocket, "fixture", "http://127.0.0.1:\(setup.port)/v1", try setup.makeKey("sdk")])
        let calls = summary["calls"]?.arrayValue?.compactMap(\.objectValue) ?? []
        #expect(calls.map { $0["kind"]?.stringValue } == ["chat", "chat_stream", "completion", "completion_stream", "tcp_chat_stream"])
        #expect(calls.allSatisfy { $0["text"] == "echo: Hello from the OpenAI SDK" && $0["finish_reason"] == "stop" }, "\(calls)")

        // Each call is a run of llmd's, and the usage the SDK read is what its run recorded.
        let recorded = try Dictionary(
            setup.events("usage_recorded").compactMap { event in
                event["parent_run_id"]?.stringValue.map { ($0, event["data"]?.objectValue ?? [:]) }
            }, uniquingKeysWith: { first, _ in first })
        for call in calls {
            let id = try #require(call["id"]?.stringValue)
            let run = String(id.drop { $0 != "-" }.dropFirst())
            let usage = try #require(call["usage"]?.objectValue)
            let data = try #require(recorded[run], "no usage_recorded for \(id)")
            for key in ["prompt_tokens", "completion_tokens", "total_tokens"] {
                #expect(usage[key] == data[key], "\(id) \(key)")
            }
        }
        let ledger = try setup.client.call(UsageMethod.self, UsageMethod.Params()).total
        #expect(ledger.requests == 5 + 2, "the refused requests are not in the ledger; the two tool calls are")
        #expect(summary["wrong_key"]?.objectValue?["status"] == 401 && summary["wrong_key"]?.objectValue?["code"] == "invalid_api_key")
        let toolCalls = try #require(summary["tool_calls"]?.objectValue)
        #expect(toolCalls["whole"]?.objectValue?["finish_reason"] == "tool_calls")
        for form in ["whole", "streamed"] {
            #expect(toolCalls[form]?.objectValue?["name"] == "get_weather", "\(form)")
            #expect(toolCalls[form]?.objectValue?["arguments"] == #"{"city": "Paris"}"#, "\(form)")
        }

        #expect(summary["bad_request"]?.objectValue?["status"] == 400)
        let models = summary["models"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(models.contains("fixture") && models.contains("local/fixture"), "\(models)")
    }

    @Test("LangChain's ChatOpenAI: its usage callbacks' totals, cost too, are the scope's; a subscriber saw every token")
    func langChain() throws {
        let setup = try Setup()
        let client = try setup.client
        let scope = try client.call(ScopeBeginMethod.self, ScopeBeginMethod.Params(name: "langchain")).scope
        // gpt-4o-mini, which the fixture serves as it does `fixture`, is priced alike by
        // LangChain and llmd: the costs can be compared too.
        let summary = try runScript("langchain_check.py", [setup.httpSocket, setup.daemon.socketPath, "gpt-4o-mini", scope])

        let totals = try client.call(ScopeShowMethod.self, ScopeShowMethod.Params(scope: scope)).totals
        let callback = try #require(summary["openai_callback"]?.objectValue)
        #expect(callback["successful_requests"] == .int(totals.requests) && totals.requests == 5 + 3, "\(callback) \(totals)")
        #expect(callback["prompt_tokens"] == .int(totals.promptTokens))
        #expect(callback["completion_tokens"] == .int(totals.completionTokens))
        #expect(callback["total_tokens"] == .int(totals.totalTokens))
        let cost = try #require(callback["total_cost"]?.doubleValue)
        #expect(totals.cost > 0 && abs(cost - totals.cost) < 1e-12, "LangChain \(cost), llmd \(totals.cost)")
        let metadata = try #require(summary["usage_metadata"]?.objectValue?["gpt-4o-mini"]?.objectValue)
        #expect(metadata["input_tokens"] == .int(totals.promptTokens) && metadata["output_tokens"] == .int(totals.completionTokens))

        // What the script's live subscriber saw is what the journal keeps.
        #expect(summary["subscriber_tokens"] == .int(Int64(try setup.events("llm_new_token").count)))
        let chains = Set(try setup.events("chain_start").compactMap { $0["run_id"]?.stringValue })
        let reported = summary["chains"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(reported.count == 5 + 3 && Set(reported) == chains, "\(reported) \(chains)")
    }

    @Test("LlmdCallbackHandler: a LangChain app's own runs are in llmd's journal with LangChain's run tree, its usage in the ledger as reported")
    func langChainRunsIntoLLMD() throws {
        let setup = try Setup()
        let client = try setup.client
        let scope = try client.call(ScopeBeginMethod.self, ScopeBeginMethod.Params(name: "langchain-app")).scope
        let summary = try runScript("langchain_reporting_check.py", [setup.fixture.baseURL, setup.daemon.socketPath, scope])
        #expect(summary["failed"] == true && summary["dropped"] == 0)
        // With llmd away the app's call still answers; its events are counted as dropped.
        #expect(summary["away"]?.objectValue?["answered"] == "echo: llmd is away")
        #expect((summary["away"]?.objectValue?["dropped"]?.intValue ?? 0) > 2)
        #expect(summary["replies"]?.arrayValue?.count == 3)

        // Every run LangChain saw is in the journal under its own id and parent, with the
        // same events in the same order, each marked as LangChain's.
        let journal = try llmctl(["events", "-o", "json", "--socket", setup.daemon.socketPath]).standardOutput
            .split(separator: "\n").filter { $0.hasPrefix("{") }.compactMap { try JSONParser.parse(String($0)).objectValue }
        let runs = try #require(summary["runs"]?.objectValue)
        #expect(runs.count == 3 * 2 + 1, "\(runs.keys)")
        for member in runs.members {
            let (runID, run) = (member.key, member.value.objectValue)
            let events = journal.filter { $0["run_id"]?.stringValue == runID && $0["event"]?.stringValue != "usage_recorded" }
            let expected = run?["events"]?.arrayValue?.compactMap(\.stringValue) ?? []
            #expect(events.compactMap { $0["event"]?.stringValue } == expected, "\(runID)")
            #expect(events.allSatisfy { $0["parent_run_id"] == (run?["parent"] ?? .null) }, "\(runID)")
            #expect(events.allSatisfy { $0["data"]?.objectValue?["external"]?.objectValue?["source"] == "langchain" })
        }

        // What LangChain counted is what llmd's ledger and the scope hold, as reported usage.
        let callback = try #require(summary["openai_callback"]?.objectValue)
        let usage = try client.call(UsageMethod.self, UsageMethod.Params(by: "source"))
        #expect(usage.groups?.map(\.key) == ["reported"])
        for totals in [usage.total, try client.call(ScopeShowMethod.self, ScopeShowMethod.Params(scope: scope)).totals] {
            #expect(callback["successful_requests"] == .int(totals.requests) && totals.requests == 3, "\(callback) \(totals)")
            #expect(callback["prompt_tokens"] == .int(totals.promptTokens))
            #expect(callback["completion_tokens"] == .int(totals.completionTokens))
            let cost = try #require(callback["total_cost"]?.doubleValue)
            #expect(totals.cost > 0 && abs(cost - totals.cost) < 1e-12, "LangChain \(cost), llmd \(totals.cost)")
        }
        let bySource = try llmctl(["usage", "--by", "source", "--socket", setup.daemon.socketPath]).standardOutput
        let reportedLine = bySource.split(separator: "\n").first { $0.hasPrefix("reported") }.map(String.init) ?? ""
        #expect(reportedLine.contains(" 3 ") && reportedLine.contains(String(usage.total.totalTokens)), "\(bySource)")
        let shown = try llmctl(["events", "-o", "short", "-t", "llm_end", "--socket", setup.daemon.socketPath]).standardOutput
        #expect(shown.contains("via langchain") && shown.contains("(reported)"), "\(shown)")
    }

    @Test("the llm CLI with an OpenAI-compatible model entry: its replies, and the usage it logged is the ledger's")
    func llmCLI() throws {
        let setup = try Setup()
        let summary = try runScript("llm_check.py", ["http://127.0.0.1:\(setup.port)/v1", try setup.makeKey("llm"), "fixture"])
        #expect(summary["replies"] == ["echo: Streamed through llm", "echo: Whole through llm"])
        let logged = summary["logged"]?.arrayValue?.compactMap(\.objectValue) ?? []
        #expect(logged.map { $0["response"] } == summary["replies"]?.arrayValue)
        let ledger = try setup.client.call(UsageMethod.self, UsageMethod.Params()).total
        #expect(ledger.requests == 2)
        #expect(ledger.promptTokens == logged.compactMap { $0["input_tokens"]?.intValue }.reduce(0, +), "\(logged) \(ledger)")
        #expect(ledger.completionTokens == logged.compactMap { $0["output_tokens"]?.intValue }.reduce(0, +))
    }
}
