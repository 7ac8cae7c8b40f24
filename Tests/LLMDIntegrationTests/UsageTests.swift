import Foundation
import LLMDClient
import LLMDProtocol
import LLMDTesting
import Synchronization
import Testing

/// Usage, cost, scopes and budgets through the whole path: llmctl or a client, the daemon
/// with its ledger in SQLite, and the fixture server or the offline provider.
@Suite("Usage and budgets")
struct UsageTests {
    /// Holds the key file for as long as the test runs.
    let keys: TemporaryDirectory

    init() throws {
        keys = try TemporaryDirectory()
    }

    /// A daemon whose provider `local` is the fixture; `fixture/cached:4:3` has a price.
    private func daemon(_ fixture: FixtureServer, extra: String = "", arguments: [String] = []) throws -> DaemonProcess {
        try DaemonProcess(
            config: try fixture.config(
                keys: keys,
                extra: """

                    [Provider slowfake]
                    Type=fake
                    TokenDelayMSec=60

                    [Model fixture/cached:4:3]
                    InputPrice=2
                    CachedInputPrice=0.5
                    OutputPrice=8
                    \(extra)
                    """),
            arguments: arguments)
    }

    private func complete(_ daemon: DaemonProcess, _ params: JSONObject) throws -> Result<JSONObject, ProtocolError> {
        let client = try LLMDClient(socketPath: daemon.socketPath)
        let typed = try CompleteMethod.Params(json: params)
        do {
            return .success(try client.complete(typed, onToken: { _ in }).json)
        } catch .remote(let error) {
            return .failure(error)
        }
    }

    private func call(_ daemon: DaemonProcess, _ method: ProtocolMethod, _ params: JSONObject) throws -> JSONObject {
        try LLMDClient(socketPath: daemon.socketPath).call(method, params)
    }

    private func tokens(_ daemon: DaemonProcess, _ params: JSONObject) throws -> Int64 {
        try #require(try call(daemon, .tokensCount, params)["tokens"]?.intValue)
    }

    private static func messages(_ text: String) -> JSONValue { [["role": "user", "content": .string(text)]] }

    @Test("provider usage with cached and reasoning tokens is priced from llmd.conf, exactly, and recorded")
    func providerUsage() throws {
        let fixture = try FixtureServer()
        let daemon = try daemon(fixture)
        let result = try complete(daemon, ["model": "fixture/cached:4:3", "messages": Self.messages("a b c")]).get()
        let usage = try #require(result["usage"]?.objectValue)
        #expect(usage["source"] == "provider")
        #expect(usage["cached_prompt_tokens"] == 4)
        #expect(usage["reasoning_tokens"] == 3)
        let prompt = try #require(usage["prompt_tokens"]?.intValue)
        let completion = try #require(usage["completion_tokens"]?.intValue)
        // (prompt − 4) × $2 + 4 × $0.50 + completion × $8, per million tokens.
        let picodollars = (prompt - 4) * 2_000_000 + 4 * 500_000 + completion * 8_000_000
        #expect(usage["cost"] == .double(Double(picodollars) / 1e12), "\(usage)")
        #expect(result["record_us"] == nil, "the ledger write's timing only under llmd --timings")

        let total = try #require(try call(daemon, .usage, [:])["total"]?.objectValue)
        #expect(total["requests"] == 1)
        #expect(total["prompt_tokens"] == .int(prompt) && total["completion_tokens"] == .int(completion))
        #expect(total["cached_prompt_tokens"] == 4 && total["reasoning_tokens"] == 3)
        #expect(total["cost"] == usage["cost"])
        #expect(total["estimated_requests"] == 0 && total["unpriced_requests"] == 0)
    }

    @Test("under llmd --timings a call's reply says how long its ledger write took, and a turn's its commit")
    func timings() throws {
        let fixture = try FixtureServer()
        let daemon = try daemon(fixture, arguments: ["--timings"])
        let result = try complete(daemon, ["model": "fixture/cached:4:3", "messages": Self.messages("a b c")]).get()
        #expect((result["record_us"]?.intValue ?? -1) >= 0)
        let client = try LLMDClient(socketPath: daemon.socketPath)
        let turn = try client.send(SendMethod.Params(session: "t", text: "hi"), onToken: { _ in })
        #expect((turn.commitMicroseconds ?? -1) >= 0, "\(turn)")
    }

    @Test("a stream without usage is counted with the tokenizer; an unknown model's cost is unknown, not $0")
    func estimatedAndUnpriced() throws {
        let fixture = try FixtureServer()
        let daemon = try daemon(fixture)
        let result = try complete(daemon, ["model": "fixture/no-usage", "messages": Self.messages("hi there")]).get()
        let usage = try #require(result["usage"]?.objectValue)
        #expect(usage["source"] == "estimated")
        #expect(usage["exact"] == false, "fixture/no-usage has no known encoding: cl100k_base stands in")
        #expect(usage["encoding"] == "cl100k_base")
        #expect(
            usage["prompt_tokens"]
                == .int(try tokens(daemon, ["messages": Self.messages("hi there"), "model": "fixture/no-usage"])))
        #expect(usage["completion_tokens"] == .int(try tokens(daemon, ["text": "echo: hi there", "model": "fixture/no-usage"])))
        #expect(usage["cost"] == .null)
        #expect(usage["cost_unknown"]?.stringValue?.contains("no price for model 'fixture/no-usage'") == true)
        #expect(daemon.log.contains("no price for model 'fixture/no-usage'"))

        let listed = try llmctl(["usage", "--socket", daemon.socketPath, "--by", "model"])
        #expect(listed.status == 0)
        #expect(listed.standardOutput.contains("$0.00+?"), "\(listed.standardOutput)")
        #expect(listed.standardOutput.contains("1 request(s) to models without a known price are not in the cost"))
        #expect(listed.standardOutput.contains("1 request(s) were counted by llmd's tokenizer"))

        // A cost budget cannot be checked without a price: the call is refused, not let through.
        _ = try call(daemon, .budgetSet, ["daily": true, "max_cost": 5])
        guard case .failure(let refused) = try complete(daemon, ["model": "fixture", "messages": Self.messages("x")]) else {
            Issue.record("an unpriced call passed a cost budget")
            return
        }
        #expect(refused.code == .budgetExceeded)
        #expect(refused.detail["reason"] == "price_unknown")
    }

    @Test("a cut stream is billed for the text received, recorded as failed")
    func cutStream() throws {
        let fixture = try FixtureServer()
        let daemon = try daemon(fixture)
        guard case .failure(let error) = try complete(daemon, ["model": "fixture/cut", "messages": Self.messages("a b c d e")])
        else {
            Issue.record("a cut stream succeeded")
            return
        }
        #expect(error.code == .upstreamStreamCut)
        let partial = try #require(error.detail["partial_text"]?.stringValue)
        #expect(!partial.isEmpty)
        let usage = try #require(error.detail["usage"]?.objectValue)
        #expect(usage["source"] == "estimated")
        #expect(usage["completion_tokens"] == .int(try tokens(daemon, ["text": .string(partial), "model": "fixture/cut"])))
        let total = try #require(try call(daemon, .usage, [:])["total"]?.objectValue)
        #expect(total["requests"] == 1)
        #expect(total["completion_tokens"] == usage["completion_tokens"])
    }

    @Test("three concurrent calls in one scope sum exactly; a nested scope counts to its parent too")
    func nestedScopes() throws {
        let fixture = try FixtureServer()
        let daemon = try daemon(fixture)
        let outer = try #require(try call(daemon, .scopeBegin, ["name": "outer"])["scope"])
        let inner = try #require(try call(daemon, .scopeBegin, ["name": "inner", "parent": outer])["scope"])
        let totals = Mutex<[Int64]>([])
        let errors = Mutex<[String]>([])
        let threads = (0..<3).map { index in
            Thread {
                do {
                    let result = try complete(
                        daemon, ["messages": Self.messages("call \(index) " + String(repeating: "x ", count: index)), "scopes": [inner]]
                    ).get()
                    totals.withLock { $0.append(result["usage"]?.objectValue?["total_tokens"]?.intValue ?? -1) }
                } catch {
                    errors.withLock { $0.append("\(error)") }
                }
            }
        }
        threads.forEach { $0.start() }
        #expect(waitUntil(timeout: .seconds(30)) { totals.withLock { $0.count } + errors.withLock { $0.count } == 3 })
        #expect(errors.withLock { $0 }.isEmpty)
        let outside = try complete(daemon, ["messages": Self.messages("outer only"), "scopes": [outer]]).get()
        let outsideTokens = try #require(outside["usage"]?.objectValue?["total_tokens"]?.intValue)

        let innerTotals = try #require(try call(daemon, .scopeEnd, ["scope": inner])["totals"]?.objectValue)
        #expect(innerTotals["requests"] == 3)
        #expect(innerTotals["total_tokens"] == .int(totals.withLock { $0.reduce(0, +) }))
        let outerTotals = try #require(try call(daemon, .scopeEnd, ["scope": outer])["totals"]?.objectValue)
        #expect(outerTotals["requests"] == 4)
        #expect(outerTotals["total_tokens"] == .int(totals.withLock { $0.reduce(0, +) } + outsideTokens))

        guard case .failure(let ended) = try complete(daemon, ["messages": Self.messages("late"), "scopes": [inner]]) else {
            Issue.record("a call counted to an ended scope")
            return
        }
        #expect(ended.code == .scopeEnded)
        guard case .failure(let unknown) = try complete(daemon, ["messages": Self.messages("x"), "scopes": ["nope"]]) else {
            Issue.record("a call counted to an unknown scope")
            return
        }
        #expect(unknown.code == .scopeNotFound)
    }

    @Test("llmctl scope counts every llmctl call of the command, nests, prints the totals and passes its status")
    func llmctlScope() throws {
        let fixture = try FixtureServer()
        let daemon = try daemon(fixture)
        let bin = ProcessInfo.processInfo.environment["LLMD_BIN_DIR"].flatMap { $0.isEmpty ? nil : $0 } ?? binDirectory
        let send = "\(bin)/llmctl send --socket \(daemon.socketPath)"
        let script = """
            \(send) one >/dev/null & \(send) two >/dev/null & \(send) -s s three >/dev/null; wait
            \(bin)/llmctl scope --socket \(daemon.socketPath) --json -o "$1" -- \(send) four >/dev/null
            exit 3
            """
        let nestedReport = daemon.directory.file("nested.json")
        let outerReport = daemon.directory.file("outer.json")
        let outer = try llmctl([
            "scope", "--socket", daemon.socketPath, "--json", "-o", outerReport, "--", "sh", "-c", script, "sh", nestedReport,
        ])
        #expect(outer.status == 3, "\(outer.standardError)")
        let totals = try #require(try JSONParser.parse(String(contentsOfFile: outerReport, encoding: .utf8)).objectValue)
        #expect(totals["requests"] == 4, "\(totals)")
        #expect(totals["exit_status"] == 3)
        let nested = try #require(try JSONParser.parse(String(contentsOfFile: nestedReport, encoding: .utf8)).objectValue)
        #expect(nested["requests"] == 1)
        let all = try #require(try call(daemon, .usage, [:])["total"]?.objectValue)
        #expect(totals["total_tokens"] == all["total_tokens"], "every call of the command was counted, and nothing else")

        let human = try llmctl(["scope", "--socket", daemon.socketPath, "--", "true"])
        #expect(human.status == 0)
        #expect(human.standardError.hasPrefix("Tokens Used: 0\n\tPrompt Tokens: 0\n\t\tPrompt Tokens Cached: 0\n"), "\(human.standardError)")
        #expect(human.standardError.contains("Requests: 0\nTotal Cost (USD): $0.00"))
    }

    @Test("a turn's calls are committed with the turn and reported as usage_recorded")
    func turnLedger() throws {
        let fixture = try FixtureServer()
        let daemon = try daemon(fixture)
        let client = try LLMDClient(socketPath: daemon.socketPath)
        var recorded: [JSONObject] = []
        _ = try client.send(SendMethod.Params(session: "s", text: "alpha beta gamma"), onToken: { _ in })
        let reply = try client.send(
            SendMethod.Params(session: "s", text: "delta", settings: ["memory": "summary-buffer", "max_tokens": 10]), onToken: { _ in },
            onEvent: { event in
                if event.name == "usage_recorded" { recorded.append(event.data) }
            })
        #expect(recorded.count == 2, "the reply and the memory's summary: \(recorded)")
        #expect(Set(recorded.compactMap { $0["id"]?.intValue }).count == 2)
        #expect(reply.summaryUsage.count == 1)
        let bySession = try #require(try call(daemon, .usage, ["by": "session"])["groups"]?.arrayValue?.first?.objectValue)
        #expect(bySession["key"] == "s")
        #expect(bySession["requests"] == 3)
        // Renamed, the session is still one group; deleted, its usage stays under its old name.
        _ = try call(daemon, .sessionRename, ["session": "s", "to": "t"])
        var again = 0
        _ = try client.send(
            SendMethod.Params(session: "t", text: "again"), onToken: { _ in },
            onEvent: { event in
                if event.name == "usage_recorded" { again += 1 }
            })
        let renamed = try #require(try call(daemon, .usage, ["by": "session"])["groups"]?.arrayValue)
        #expect(renamed.count == 1 && renamed.first?.objectValue?["key"] == "t")
        #expect(renamed.first?.objectValue?["requests"] == .int(3 + Int64(again)))
        _ = try call(daemon, .sessionDelete, ["session": "t"])
        #expect(try call(daemon, .usage, ["session": "t"])["total"]?.objectValue?["requests"] == .int(Int64(again)))
        #expect(try call(daemon, .usage, ["session": "s"])["total"]?.objectValue?["requests"] == 3)
    }

    @Test("20 concurrent calls at a scope's token limit: reservations keep the total within it")
    func budgetRace() throws {
        let fixture = try FixtureServer()
        let daemon = try daemon(fixture)
        let watcher = try daemon.connect()
        _ = try watcher.call(.subscribe, params: ["types": ["budget_exceeded"]])
        // Each call reserves its prompt plus 20 reply tokens; the limit holds about five.
        let prompt = try tokens(daemon, ["messages": Self.messages("go"), "model": "fake"])
        let limit = (prompt + 20) * 5 + 3
        let scope = try #require(try call(daemon, .scopeBegin, ["max_tokens": .int(limit)])["scope"])
        let outcomes = Mutex<[Result<Int64, ProtocolError>]>([])
        let threads = (0..<20).map { _ in
            Thread {
                let outcome: Result<Int64, ProtocolError>
                do {
                    outcome = try complete(
                        daemon, ["provider": "slowfake", "max_tokens": 20, "messages": Self.messages("go"), "scopes": [scope]]
                    ).map { $0["usage"]?.objectValue?["total_tokens"]?.intValue ?? -1 }
                } catch {
                    outcome = .failure(ProtocolError(.internalError, "\(error)"))
                }
                outcomes.withLock { $0.append(outcome) }
            }
        }
        threads.forEach { $0.start() }
        #expect(waitUntil(timeout: .seconds(60)) { outcomes.withLock { $0.count } == 20 })
        let results = outcomes.withLock { $0 }
        let succeeded = results.compactMap { try? $0.get() }
        let refused = results.compactMap { if case .failure(let error) = $0 { error } else { nil } }
        #expect(refused.allSatisfy { $0.code == .budgetExceeded && $0.detail["reason"] == "tokens" }, "\(refused)")
        #expect(succeeded.count >= 5 && !refused.isEmpty, "\(succeeded.count) succeeded")
        let totals = try #require(try call(daemon, .scopeShow, ["scope": scope])["totals"]?.objectValue)
        let spent = try #require(totals["total_tokens"]?.intValue)
        #expect(spent <= limit, "the scope spent \(spent) tokens over its limit of \(limit)")
        #expect(spent == succeeded.reduce(0, +), "exactly the successful calls were counted")
        var exceededEvents = 0
        while exceededEvents < refused.count {
            guard case .event(let event) = try watcher.readMessage() else { continue }
            #expect(event.name == "budget_exceeded" && event.data["scope"] == scope)
            exceededEvents += 1
        }
        #expect(exceededEvents == refused.count)
        let shown = try #require(try call(daemon, .budgetShow, ["scope": scope])["budgets"]?.arrayValue?.first?.objectValue)
        #expect(shown["spent"]?.objectValue?["tokens"] == .int(spent))
        #expect(shown["reserved"]?.objectValue?["tokens"] == 0, "every reservation was settled or given back")
    }

    @Test("a session budget fails the turn with budget.exceeded and survives a restart")
    func sessionBudget() throws {
        let fixture = try FixtureServer()
        let first = try daemon(fixture)
        _ = try call(first, .sessionCreate, ["session": "b"])
        _ = try call(first, .budgetSet, ["session": "b", "max_tokens": 30])
        let ok = try llmctl(["send", "--socket", first.socketPath, "-s", "b", "--max-reply-tokens", "5", "hi"])
        #expect(ok.status == 0, "\(ok.standardError)")
        let refused = try llmctl(["send", "--socket", first.socketPath, "-s", "b", "hello again, a longer message"])
        #expect(refused.status == 1)
        #expect(refused.standardError.contains("[budget.exceeded]"), "\(refused.standardError)")
        #expect(refused.standardError.contains("the budget of session 'b' of 30 tokens"))
        let state = first.stateDirectory
        first.send(signal: SIGTERM)
        _ = first.waitForExit()

        let second = try DaemonProcess(config: try String(contentsOfFile: first.configPath, encoding: .utf8), stateDirectory: state)
        let shown = try llmctl(["budget", "show", "--socket", second.socketPath])
        #expect(shown.standardOutput.contains("session b"), "\(shown.standardOutput)")
        #expect(shown.standardOutput.contains(" of 30"))
        let again = try llmctl(["send", "--socket", second.socketPath, "-s", "b", "hello again, a longer message"])
        #expect(again.status == 1 && again.standardError.contains("[budget.exceeded]"))
    }

    @Test("llmctl tokens counts as tiktoken does, for a model or an encoding")
    func llmctlTokens() throws {
        let daemon = try DaemonProcess()
        let counted = try llmctl(["tokens", "--socket", daemon.socketPath, "--ids", "hello", "world"])
        #expect(counted.standardOutput == "2\n24912 2375\n", "gpt-4o's o200k_base")
        let cl100k = try llmctl(["tokens", "--socket", daemon.socketPath, "--ids", "-m", "gpt-4", "hello world"])
        #expect(cl100k.standardOutput == "2\n15339 1917\n")
        let unknown = try llmctl(["tokens", "--socket", daemon.socketPath, "-m", "llama3", "hello world"])
        #expect(unknown.standardOutput == "2\n")
        #expect(unknown.standardError.contains("counted with cl100k_base, so approximately"))
    }

    @Test("without any vocabulary, llmctl tokens prints an estimate, says so and how to count exactly; ids are a named error")
    func tokensWithoutVocabulary() throws {
        let empty = try TemporaryDirectory()
        let daemon = try DaemonProcess(config: "[Daemon]\nVocabularyDirectory=\(empty.path)\n")
        let counted = try llmctl(["tokens", "--socket", daemon.socketPath, "-m", "gpt-4o", "hello", "world"])
        #expect(counted.status == 0, "\(counted.standardError)")
        #expect(counted.standardOutput == "3\n", "eleven bytes, four a token, rounded up")
        #expect(counted.standardError.contains("an estimate"), "\(counted.standardError)")
        #expect(counted.standardError.contains(empty.path))
        #expect(counted.standardError.contains("scripts/fetch-tiktoken-vocab.sh"))
        let reply = try call(daemon, .tokensCount, ["text": "hello world"])
        #expect(reply["estimated"] == true && reply["exact"] == false && reply["encoding"] == .null)
        // Parameters are checked before anything else.
        #expect(throws: ClientError.remote(ProtocolError(.invalidParams, "parameter 'text' must be a string, got integer", detail: ["field": "text", "expected": "a string", "got": "integer"]))) {
            try call(daemon, .tokensCount, ["text": 5, "ids": true])
        }
        let withIDs = try llmctl(["tokens", "--socket", daemon.socketPath, "--ids", "hello"])
        #expect(withIDs.status == 1)
        #expect(withIDs.standardError.contains("[tokenizer.no_vocabulary]"), "\(withIDs.standardError)")
        #expect(!withIDs.standardError.contains("daemon.internal"))
        // The log says where it looked and what to run, once.
        let log = daemon.log
        #expect(log.contains("no o200k_base.tiktoken in \(empty.path)"), "\(log)")
        #expect(log.contains("scripts/fetch-tiktoken-vocab.sh DIR"))
        // Sessions still work, their counts labelled as estimates.
        let sent = try llmctl(["send", "--socket", daemon.socketPath, "--json", "-s", "v", "hi"])
        #expect(sent.status == 0, "\(sent.standardError)")
    }
}
