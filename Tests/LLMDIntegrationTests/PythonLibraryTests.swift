import Foundation
import LLMDClient
import LLMDProtocol
import LLMDTesting
import Testing

/// llmd's own Python library, clients/python, with the venv `make venv` makes:
/// Tests/Python/llmd_client_check.py drives a daemon with its offline provider through it,
/// and langchain_handlers_check.py feeds LangChain's callback handlers with a daemon's
/// events through llmd.langchain; their summaries are held here against the daemon's
/// ledger and journal. mypy --strict passes the package.
@Suite("Python library")
struct PythonLibraryTests {
    private static let python = sourceRoot + "/.build/venv/bin/python"

    private func requireVenv() throws {
        try #require(
            FileManager.default.isExecutableFile(atPath: Self.python),
            "no Python venv at \(Self.python): run `make venv` (make test makes it first)")
    }

    /// Runs Tests/Python/`script` with the venv's Python and this tree's clients/python
    /// first on its path, whichever copy the venv installed; the JSON it printed.
    private func runCheck(_ script: String, _ arguments: [String]) throws -> JSONObject {
        try requireVenv()
        var environment = ProcessInfo.processInfo.environment
        environment["PYTHONPATH"] = sourceRoot + "/clients/python"
        let result = try run(
            Self.python, [sourceRoot + "/Tests/Python/" + script] + arguments, environment: environment,
            timeout: .seconds(90))
        try #require(result.status == 0 && !result.signalled, "\(script) failed (\(result.status)):\n\(result.standardError)")
        return try #require(try JSONParser.parse(result.standardOutput).objectValue, "\(script) printed: \(result.standardOutput)")
    }

    /// The journal's events of `session`, of `types` if given, oldest first.
    private func journal(_ daemon: DaemonProcess, session: String, types: [String]? = nil) throws -> [CallbackEvent] {
        var events: [CallbackEvent] = []
        try LLMDClient(socketPath: daemon.socketPath).subscribe(
            SubscribeMethod.Params(sessions: [session], types: types, since: 0)
        ) { message throws(ClientError) in
            guard case .event(let event) = message else { return false }
            events.append(event)
            return true
        }
        return events
    }

    @Test("llmd.Client: turns, a call, scopes, subscriptions live, replayed, blocking and async; the ledger agrees")
    func library() throws {
        let daemon = try DaemonProcess()
        let summary = try runCheck("llmd_client_check.py", [daemon.socketPath])

        let client = try LLMDClient(socketPath: daemon.socketPath)
        let replies = summary["replies"]?.arrayValue?.compactMap(\.objectValue) ?? []
        #expect(replies.map { $0["session"]?.stringValue } == ["trip", "trip", nil, "other"])
        #expect(replies.map { $0["turn"]?.intValue } == [1, 2, nil, 1])

        // The callback's totals are the scope's, as the daemon keeps them.
        let scopeSummary = try #require(summary["scope"]?.objectValue)
        let scope = try #require(scopeSummary["id"]?.stringValue)
        let totals = try client.call(ScopeShowMethod.self, ScopeShowMethod.Params(scope: scope)).totals
        #expect(scopeSummary["successful_requests"] == .int(totals.requests) && totals.requests == 3)
        #expect(scopeSummary["total_tokens"] == .int(totals.totalTokens))
        #expect(scopeSummary["prompt_tokens"] == .int(totals.promptTokens))
        #expect(scopeSummary["completion_tokens"] == .int(totals.completionTokens))
        #expect(summary["inner_scope"]?.objectValue?["successful_requests"] == 1)

        // Every call the library made is in the ledger: three in the scope, the blocked
        // turn, and the asynchronous call.
        let ledger = try client.call(UsageMethod.self, UsageMethod.Params()).total
        #expect(ledger.requests == 5)
        let usageTrip = try #require(summary["usage_trip"]?.objectValue)
        #expect(usageTrip["requests"] == 2)

        #expect(summary["turn_count"] == 2 && summary["memory_messages"] == 4)
        #expect(summary["budget"]?.objectValue?["shown"] == 100000)
        #expect(summary["tokens"] == 2)
        let errors = try #require(summary["errors"]?.objectValue)
        #expect(errors["session"]?.objectValue?["code"] == "session.not_found")
        #expect(errors["complete"]?.objectValue?["code"] == "request.invalid_params")
        #expect(errors["not_llmd"] == ["http": "client.not_llmd", "silent": "client.not_llmd"])
        let asynchronous = try #require(summary["async"]?.objectValue)
        #expect(asynchronous["llm_ends"] == 5 && asynchronous["chain_ends"] == 5, "\(asynchronous)")
        let asyncScope = try #require(asynchronous["scope"]?.objectValue)
        let asyncTotals = try client.call(
            ScopeShowMethod.self, ScopeShowMethod.Params(scope: try #require(asyncScope["id"]?.stringValue))
        ).totals
        #expect(asyncScope["successful_requests"] == 1 && asyncTotals.requests == 1)
        #expect(asyncScope["total_tokens"] == .int(asyncTotals.totalTokens))
    }

    @Test("subscriptions, sync and async, resume across a daemon restart from their last event; one whose daemon stays away gives up by name")
    func resumeAcrossRestart() throws {
        try requireVenv()
        let shared = try TemporaryDirectory()
        let socket = shared.file("llmd.sock")
        let stage = shared.file("stage")
        var daemon: DaemonProcess? = try DaemonProcess(socketPath: socket, stateDirectory: shared.file("state"))
        let output = shared.file("check.out")
        let check = try ChildProcess(
            Self.python, [sourceRoot + "/Tests/Python/llmd_resume_check.py", socket, stage],
            environment: ProcessInfo.processInfo.environment, outputPath: output, errorPath: shared.file("check.err"))
        defer { check.send(signal: SIGKILL) }
        func staged(_ word: String) -> Bool {
            waitUntil(timeout: .seconds(60)) {
                (try? String(contentsOfFile: stage, encoding: .utf8))?.hasPrefix(word) == true || !check.isRunning
            } && check.isRunning
        }
        try #require(staged("restart"), "\((try? String(contentsOfFile: shared.file("check.err"), encoding: .utf8)) ?? "")")
        daemon!.send(signal: SIGTERM)
        #expect(daemon!.waitForExit() == .exited(0))
        daemon = nil
        daemon = try DaemonProcess(socketPath: socket, stateDirectory: shared.file("state"))
        _ = try LLMDClient(socketPath: socket).complete(CompleteMethod.Params(input: PromptInput(text: "after the restart")), onToken: { _ in })
        try #require(staged("stop"), "\((try? String(contentsOfFile: shared.file("check.err"), encoding: .utf8)) ?? "")")
        daemon!.send(signal: SIGTERM)
        #expect(daemon!.waitForExit() == .exited(0))
        #expect(check.wait(timeout: .seconds(30)) == .exited(0), "\((try? String(contentsOfFile: shared.file("check.err"), encoding: .utf8)) ?? "")")

        let summary = try #require(try JSONParser.parse(String(contentsOfFile: output, encoding: .utf8)).objectValue)
        for side in ["sync", "async"] {
            let seen = try #require(summary[side]?.objectValue)
            let seqs = seen["seqs"]?.arrayValue?.compactMap(\.intValue) ?? []
            // Every event of both calls, each once, in order: after a clean stop seq goes on by one.
            #expect(!seqs.isEmpty && seqs == Array(1...Int64(seqs.count)), "\(side): \(seqs)")
            #expect(seen["reconnects"] == 1, "\(side)")
        }
        #expect(summary["sync"]?.objectValue?["seqs"] == summary["async"]?.objectValue?["seqs"])
        #expect(summary["gave_up"] == "client.connection_closed")
    }

    @Test("llmd.langchain: LangChain's own handlers on llmd's events write and receive what they do on LangChain's chain")
    func langChainHandlers() throws {
        let keys = try TemporaryDirectory()
        let fixture = try FixtureServer()
        let daemon = try DaemonProcess(config: try fixture.config(keys: keys))
        // The script holds the handlers' output and calls against LangChain's own; here,
        // against the journal of the tutorial's session.
        let summary = try runCheck("langchain_handlers_check.py", [daemon.socketPath, fixture.baseURL, "fixture"])

        let types = summary["handled_types"]?.arrayValue?.compactMap(\.stringValue) ?? []
        let events = try journal(daemon, session: "tutorial", types: types)
        let count = JSONValue.int(Int64(events.count))
        #expect(!types.isEmpty && summary["handled"] == .object(["live": count, "replay": count, "async": count]))
        let tokens = events.filter { $0.name == "llm_new_token" }
        #expect(summary["tokens"] == .int(Int64(tokens.count)) && !tokens.isEmpty)
        // langchain-openai's three chunks without text in each of the three streams: the
        // finish_reason, the usage, and the last-chunk marker.
        #expect(summary["native_empty_tokens"] == 9)

        // StdOutCallbackHandler: each turn's chain, and its prompt in green as LLMChain shows it.
        let stdout = try #require(summary["stdout"]?.stringValue)
        let roots = events.filter { $0.name == "chain_end" && $0.parentRunID == nil }.count
        #expect(roots == 3 && stdout.components(separatedBy: "> Finished chain.").count == roots + 1)
        for text in events.filter({ $0.name == "text" }).compactMap({ $0.data["text"]?.stringValue }) {
            #expect(stdout.contains("Prompt after formatting:\n\u{1B}[32;1m\u{1B}[1;3m" + text + "\u{1B}[0m\n"))
        }
        #expect(summary["file"]?.stringValue?.components(separatedBy: "> Finished chain.").count == roots + 1)

        // The slow asynchronous handler's calls, and the usage its on_llm_end read: the ledger's.
        let slowCalls = ["on_chain_start", "on_text", "on_llm_start", "on_llm_end", "on_chain_end"]
        #expect(summary["slow_calls"]?.arrayValue?.compactMap(\.stringValue) == Array(repeating: slowCalls, count: 3).flatMap { $0 })
        let recorded = try journal(daemon, session: "tutorial", types: ["usage_recorded"]).map(\.data)
        let usage = summary["usage"]?.arrayValue?.compactMap(\.objectValue) ?? []
        #expect(usage.count == recorded.count && recorded.count == 3)
        for (read, row) in zip(usage, recorded) {
            #expect(read["input_tokens"] == row["prompt_tokens"] && read["output_tokens"] == row["completion_tokens"])
            #expect(read["total_tokens"] == row["total_tokens"])
        }
        // The turns waited for on_llm_start before calling the model.
        let waits = summary["model_waits"]?.arrayValue?.compactMap(\.doubleValue) ?? []
        #expect(waits.count == 3 && waits.allSatisfy { $0 >= 0.25 }, "\(waits)")

        #expect(summary["ignore_llm_calls"] == 9)
        let logged = summary["logged"]?.arrayValue?.compactMap(\.stringValue) ?? []
        #expect(logged.count == 3 && logged.allSatisfy { $0.hasPrefix("Error in FailingHandler.on_chain_start callback: RuntimeError(") })
        #expect(summary["raised"] == "no chain may start: Hi there!")
        #expect(summary["llmd_errors"] == ["LlmdError", "LlmdError"])
        #expect(summary["retry"]?.objectValue?["attempt"] == 1)
    }

    @Test("the library's type hints pass mypy --strict")
    func mypy() throws {
        try requireVenv()
        let result = try run(
            Self.python, ["-m", "mypy", "--strict", "--cache-dir=/dev/null", sourceRoot + "/clients/python/llmd"],
            timeout: .seconds(120))
        #expect(result.status == 0, "\(result.standardOutput)\(result.standardError)")
    }
}
