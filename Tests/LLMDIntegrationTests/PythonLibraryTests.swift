import Foundation
import LLMDClient
import LLMDProtocol
import LLMDTesting
import Testing

/// llmd's own Python library, clients/python, installed in the venv `make venv` makes:
/// Tests/Python/llmd_client_check.py drives a daemon with its offline provider through it,
/// and its summary is held here against the daemon's ledger; mypy --strict passes it.
@Suite("Python library")
struct PythonLibraryTests {
    private static let python = sourceRoot + "/.build/venv/bin/python"

    private func requireVenv() throws {
        try #require(
            FileManager.default.isExecutableFile(atPath: Self.python),
            "no Python venv at \(Self.python): run `make venv` (make test makes it first)")
    }

    @Test("llmd.Client: turns, a call, scopes, subscriptions live, replayed, blocking and async; the ledger agrees")
    func library() throws {
        try requireVenv()
        let daemon = try DaemonProcess()
        let result = try run(
            Self.python, [sourceRoot + "/Tests/Python/llmd_client_check.py", daemon.socketPath], timeout: .seconds(90))
        try #require(result.status == 0 && !result.signalled, "llmd_client_check.py failed (\(result.status)):\n\(result.standardError)")
        let summary = try #require(try JSONParser.parse(result.standardOutput).objectValue, "printed: \(result.standardOutput)")

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

    @Test("the library's type hints pass mypy --strict")
    func mypy() throws {
        try requireVenv()
        let result = try run(
            Self.python, ["-m", "mypy", "--strict", "--cache-dir=/dev/null", sourceRoot + "/clients/python/llmd"],
            timeout: .seconds(120))
        #expect(result.status == 0, "\(result.standardOutput)\(result.standardError)")
    }
}
