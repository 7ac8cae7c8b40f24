import Foundation
import LLMDClient
import LLMDProtocol
import LLMDTesting
import Testing

/// LLM calls through the whole path: llmctl or a client, the daemon, libcurl, and the
/// OpenAI-compatible fixture server on loopback.
@Suite("LLM calls")
struct CallTests {
    static let secret = "sk-test-not-a-secret-4242"

    /// Holds the key file for as long as the test runs (a fresh suite value per test).
    let keys: TemporaryDirectory

    init() throws {
        keys = try TemporaryDirectory()
    }

    /// A daemon whose provider `local` is the fixture, its key in a private file.
    private func daemon(_ fixture: FixtureServer, environment: [String: String] = [:]) throws -> DaemonProcess {
        try DaemonProcess(config: try fixture.config(keys: keys, secret: Self.secret), environment: environment)
    }

    private func firstToken(_ connection: DaemonConnection) throws -> CallbackEvent {
        while true {
            if case .event(let event) = try connection.readMessage(), event.name == "llm_new_token" { return event }
        }
    }

    @Test("llmctl send streams the reply; --json gives usage from the provider")
    func send() throws {
        let fixture = try FixtureServer()
        let daemon = try daemon(fixture)
        let plain = try llmctl(["send", "--socket", daemon.socketPath, "hello", "there"])
        #expect(plain.status == 0, "\(plain.standardError)")
        #expect(plain.standardOutput == "echo: hello there\n")
        let json = try llmctl(["send", "--socket", daemon.socketPath, "--json", "hi"])
        let lines = json.standardOutput.split(separator: "\n")
        let result = try #require(try JSONParser.parse(String(lines.last ?? "")).objectValue)
        #expect(result["text"] == "echo: hi")
        #expect(result["usage"]?.objectValue?["source"] == "provider")
        #expect(result["usage"]?.objectValue?["total_tokens"] == 7)
        #expect(result["provider"] == "local")
    }

    @Test("the offline provider answers without a network and says so")
    func offline() throws {
        let daemon = try DaemonProcess()
        let result = try llmctl(["send", "--socket", daemon.socketPath, "-p", "fake", "is", "anyone", "there"])
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardOutput == "[fake] You said: is anyone there\n")
        #expect(result.standardError.contains("offline 'fake' provider"))
    }

    @Test("upstream failures reach llmctl as named errors with exit status 1")
    func failures() throws {
        let fixture = try FixtureServer()
        let daemon = try daemon(fixture)
        let quota = try llmctl(["send", "--socket", daemon.socketPath, "-m", "fixture/quota", "x"])
        #expect(quota.status == 1)
        #expect(quota.standardError.contains("[upstream.quota_exceeded]"))
        let cut = try llmctl(["send", "--socket", daemon.socketPath, "-m", "fixture/cut", "a b c d e f"])
        #expect(cut.status == 1)
        #expect(cut.standardOutput == "echo: a b \n", "what streamed before the cut is shown")
        #expect(cut.standardError.contains("[upstream.stream_cut]"))
        let retried = try llmctl(["send", "--socket", daemon.socketPath, "-m", "fixture/500-then-ok:1", "again"])
        #expect(retried.status == 0)
        #expect(retried.standardError.contains("retrying in"))
    }

    @Test("a client that disconnects mid-stream gets its upstream transfer aborted")
    func disconnectAborts() throws {
        let fixture = try FixtureServer()
        let daemon = try daemon(fixture)
        let connection = try daemon.connect()
        try connection.send(
            Request(id: .int(1), method: "complete", params: ["model": "fixture/slow:30", "prompt": .string(String(repeating: "w ", count: 200))]))
        _ = try firstToken(connection)
        connection.close()
        #expect(waitUntil { (try? fixture.requestLog())?.first?["client_gone"] == true }, "\(daemon.log)")
        #expect(waitUntil { (try? daemon.connect().call(.status)["requests_in_flight"]) == 1 }, "only the status request")
    }

    @Test("cancel by id stops a call: its reply is request.cancelled, the server sees the client go")
    func cancelByID() throws {
        let fixture = try FixtureServer()
        let daemon = try daemon(fixture)
        let connection = try daemon.connect()
        try connection.send(
            Request(id: .string("long"), method: "complete", params: ["model": "fixture/slow:30", "prompt": .string(String(repeating: "w ", count: 200))]))
        _ = try firstToken(connection)
        try connection.send(Request(id: .int(2), method: "cancel", params: ["request": "long"]))
        var cancelledReply: JSONObject?
        var callError: ProtocolError?
        while cancelledReply == nil || callError == nil {
            switch try connection.readMessage() {
            case .reply(.int(2), let result): cancelledReply = result
            case .error(.string("long"), let error): callError = error
            default: continue
            }
        }
        #expect(cancelledReply?["cancelled"] == true)
        #expect(callError?.code == .cancelled)
        #expect(waitUntil { (try? fixture.requestLog())?.first?["client_gone"] == true })
    }

    @Test("a detached call runs on after its client leaves")
    func detached() throws {
        let fixture = try FixtureServer()
        let daemon = try daemon(fixture)
        let connection = try daemon.connect()
        try connection.send(
            Request(id: .int(1), method: "complete", params: ["model": "fixture/slow:10", "prompt": "a b c d e f g h", "detach": true]))
        _ = try firstToken(connection)
        connection.close()
        // In flight: only the status request asking. Had the call been cancelled with its
        // client, the fixture would have seen the connection go.
        #expect(waitUntil { (try? daemon.connect().call(.status)["requests_in_flight"]) == 1 }, "\(daemon.log)")
        let entry = try #require(try fixture.requestLog().first)
        #expect(entry["client_gone"] == false)
    }

    @Test("SIGTERM lets a call in flight finish before the daemon exits 0")
    func drainInFlight() throws {
        let fixture = try FixtureServer()
        let daemon = try daemon(fixture)
        let connection = try daemon.connect()
        try connection.send(Request(id: .int(1), method: "complete", params: ["model": "fixture/slow:20", "prompt": "one two three four five"]))
        _ = try firstToken(connection)
        daemon.send(signal: SIGTERM)
        var reply: JSONObject?
        while reply == nil {
            if case .reply(.int(1), let result) = try connection.readMessage() { reply = result }
        }
        #expect(reply?["text"] == "echo: one two three four five")
        #expect(daemon.waitForExit() == .exited(0))
    }

    @Test("64 concurrent calls through the daemon all complete with their own text")
    func concurrent() throws {
        let fixture = try FixtureServer()
        let daemon = try daemon(fixture)
        let connections = try (0..<8).map { _ in try daemon.connect() }
        for (index, connection) in connections.enumerated() {
            for slot in 0..<8 {
                let number = index * 8 + slot
                try connection.send(Request(id: .int(Int64(number)), method: "complete", params: ["prompt": .string("call \(number)")]))
            }
        }
        for (index, connection) in connections.enumerated() {
            var replies: [Int64: String] = [:]
            while replies.count < 8 {
                if case .reply(.int(let id), let result) = try connection.readMessage() {
                    replies[id] = result["text"]?.stringValue
                }
            }
            for slot in 0..<8 {
                let number = Int64(index * 8 + slot)
                #expect(replies[number] == "echo: call \(number)")
            }
        }
    }

    @Test("proxies come from the environment as libcurl reads them; NO_PROXY exempts hosts")
    func proxies() throws {
        let fixture = try FixtureServer()
        // Nothing listens on port 9: a call that goes through this proxy cannot connect.
        let proxied = try daemon(fixture, environment: ["http_proxy": "http://127.0.0.1:9", "NO_PROXY": ""])
        let failed = try llmctl(["send", "--socket", proxied.socketPath, "-m", "fixture", "hi"])
        #expect(failed.status == 1)
        #expect(failed.standardError.contains("[upstream.unreachable]"), "\(failed.standardError)")
        #expect(try fixture.requestLog().isEmpty, "the request never reached the server")
        let exempt = try daemon(fixture, environment: ["http_proxy": "http://127.0.0.1:9", "NO_PROXY": "127.0.0.1"])
        let direct = try llmctl(["send", "--socket", exempt.socketPath, "hi"])
        #expect(direct.status == 0, "\(direct.standardError)")
    }

    @Test("the API key never appears in replies, events or logs")
    func keyNeverLeaks() throws {
        let fixture = try FixtureServer()
        let daemon = try daemon(fixture)
        let outputs = try [
            llmctl(["send", "--socket", daemon.socketPath, "--json", "hi"]),
            llmctl(["send", "--socket", daemon.socketPath, "-m", "fixture/401", "hi"]),
            llmctl(["send", "--socket", daemon.socketPath, "-m", "fixture/429-then-ok:1", "hi"]),
            llmctl(["status", "--json", "--socket", daemon.socketPath]),
        ]
        for output in outputs {
            #expect(!output.standardOutput.contains(Self.secret))
            #expect(!output.standardError.contains(Self.secret))
        }
        #expect(!daemon.log.contains(Self.secret))
        #expect(try fixture.requestLog().first?["headers"]?.objectValue?["authorization"] == "Bearer sk-test", "sent, as a bearer token")
    }

    @Test("API keys: inline refused, world-readable files refused, missing variables reported")
    func keyConfiguration() throws {
        let directory = try TemporaryDirectory()
        let open = try directory.write("open.key", "sk-x\n")
        chmod(open, 0o644)
        let config = try directory.write(
            "llmd.conf",
            """
            [Provider a]
            APIKey=sk-inline
            [Provider b]
            APIKeyFile=\(open)
            [Provider c]
            APIKeyEnvironment=LLMD_TEST_UNSET_VARIABLE
            """)
        let result = try run(binDirectory + "/llmd", ["--check-config", "--config", config])
        #expect(result.status == 78)
        #expect(result.standardError.contains("\(config):2: error: invalid APIKey=(value not shown): API keys are not accepted inline"))
        #expect(!result.standardError.contains("sk-inline"), "the refused key is not printed")
        #expect(result.standardError.contains("\(config):4: error: APIKeyFile=\(open): readable by everyone (mode 644)"))
        #expect(result.standardError.contains("\(config):6: error: APIKeyEnvironment=LLMD_TEST_UNSET_VARIABLE: the variable is not set"))
    }

    @Test("the API key appears in no event, whether the call succeeds, retries or fails, nor in the journal file")
    func keyNeverInEvents() throws {
        let fixture = try FixtureServer()
        let daemon = try daemon(fixture)
        let watcher = try daemon.connect()
        watcher.setReadTimeout(.seconds(20))
        _ = try watcher.call(.subscribe, params: ["types": .array(["retry", "llm_error", "chat_model_start", "llm_end", "chain_error"].map(JSONValue.string))])
        for model in ["fixture", "fixture/500-then-ok:1", "fixture/401"] {
            _ = try? daemon.connect().call(.complete, params: ["model": .string(model), "prompt": "hi"])
        }
        var lines: [String] = []
        while lines.filter({ $0.contains("\"chain_error\"") || $0.contains("\"llm_end\"") }).count < 3 {
            if case .event(let event) = try watcher.readMessage() {
                lines.append(String(decoding: ServerMessage.event(event).encodedLine, as: UTF8.self))
            }
        }
        #expect(lines.contains { $0.contains("\"retry\"") })
        #expect(lines.contains { $0.contains("upstream.unauthorized") })
        #expect(!lines.contains { $0.contains(Self.secret) })
        daemon.send(signal: SIGTERM)
        #expect(daemon.waitForExit() == .exited(0))
        let journal = try Data(contentsOf: URL(fileURLWithPath: daemon.stateDirectory + "/events.db"))
        #expect(journal.count > 0)
        #expect(journal.range(of: Data(Self.secret.utf8)) == nil)
    }
}
