import Foundation
import LLMDClient
import LLMDProtocol
import LLMDTesting
import Testing

/// The OpenAI-compatible HTTP API on `http.sock`, driven with curl as any HTTP client would
/// drive it: what OpenAI's API answers, and every call an llmd run with its ledger row.
@Suite("HTTP API")
struct HTTPAPITests {
    /// The daemon's HTTP socket: `http.sock` beside its protocol socket.
    private func httpSocket(_ daemon: DaemonProcess) -> String {
        URL(fileURLWithPath: daemon.socketPath).deletingLastPathComponent().appendingPathComponent("http.sock").path
    }

    /// curl on the HTTP socket: the status and the body.
    private func curl(
        _ daemon: DaemonProcess, _ path: String, json body: String? = nil, headers: [String] = [], extra: [String] = []
    ) throws -> (status: Int, body: String) {
        var arguments = ["-s", "-N", "--unix-socket", httpSocket(daemon), "-w", "\n%{http_code}", "http://llmd" + path]
        if let body { arguments += ["-H", "content-type: application/json", "--data-binary", body] }
        for header in headers { arguments += ["-H", header] }
        let result = try run("/usr/bin/curl", arguments + extra)
        let status = Int(result.standardOutput.split(separator: "\n").last ?? "") ?? -1
        return (status, String(result.standardOutput.dropLast(String(status).count + 1)))
    }

    private func object(_ text: String) throws -> JSONObject {
        try #require(try JSONParser.parse(text).objectValue, "not an object: \(text)")
    }

    private func totalRequests(_ daemon: DaemonProcess) throws -> Int64 {
        try LLMDClient(socketPath: daemon.socketPath).call(UsageMethod.self, UsageMethod.Params()).total.requests
    }

    @Test("a chat completion, whole: OpenAI's response, named after the run, its usage the ledger's")
    func chatCompletion() throws {
        let daemon = try DaemonProcess()
        let (status, body) = try curl(
            daemon, "/v1/chat/completions", json: #"{"model":"fake","messages":[{"role":"user","content":"Hello there"}]}"#)
        #expect(status == 200, "\(body)")
        let response = try object(body)
        #expect(response["object"] == "chat.completion")
        let choice = try #require(response["choices"]?.arrayValue?.first?.objectValue)
        #expect(choice["message"]?.objectValue?["content"] == "[fake] You said: Hello there")
        #expect(choice["finish_reason"] == "stop")
        let id = try #require(response["id"]?.stringValue)
        #expect(id.hasPrefix("chatcmpl-") && id != "chatcmpl-pending")
        let usage = try #require(response["usage"]?.objectValue)
        let ledger = try LLMDClient(socketPath: daemon.socketPath).call(UsageMethod.self, UsageMethod.Params()).total
        #expect(ledger.requests == 1)
        #expect(usage["total_tokens"] == .int(ledger.totalTokens))
        // The run is llmd's like any other: its events carry the id the response has.
        let events = try llmctl(["events", "-o", "json", "-t", "chain_start", "--socket", daemon.socketPath]).standardOutput
        #expect(events.contains(String(id.dropFirst("chatcmpl-".count))))
    }

    @Test("a streamed chat completion: the role, each piece, the finish, the usage asked for, then [DONE]")
    func streamedChat() throws {
        let daemon = try DaemonProcess()
        let (status, body) = try curl(
            daemon, "/v1/chat/completions",
            json: #"{"model":"fake","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Hi there"}]}"#)
        #expect(status == 200)
        let events = body.components(separatedBy: "\n\n").filter { !$0.isEmpty }
        #expect(events.allSatisfy { $0.hasPrefix("data: ") }, "\(body)")
        #expect(events.last == "data: [DONE]")
        let chunks = try events.dropLast().map { try object(String($0.dropFirst(6))) }
        #expect(chunks.allSatisfy { $0["object"] == "chat.completion.chunk" })
        #expect(Set(chunks.compactMap { $0["id"]?.stringValue }).count == 1, "one id for the whole stream")
        let deltas = chunks.compactMap { $0["choices"]?.arrayValue?.first?.objectValue?["delta"]?.objectValue }
        #expect(deltas.first?["role"] == "assistant")
        #expect(deltas.compactMap { $0["content"]?.stringValue }.joined() == "[fake] You said: Hi there")
        #expect(chunks.compactMap { $0["choices"]?.arrayValue?.first?.objectValue?["finish_reason"]?.stringValue } == ["stop"])
        let usage = try #require(chunks.last?["usage"]?.objectValue)
        #expect(chunks.last?["choices"]?.arrayValue?.isEmpty == true)
        let ledger = try LLMDClient(socketPath: daemon.socketPath).call(UsageMethod.self, UsageMethod.Params()).total
        #expect(usage["completion_tokens"] == .int(ledger.completionTokens))
    }

    @Test("a legacy completion, /v1/models, and a scope named in X-LLMD-Scope")
    func completionsModelsAndScopes() throws {
        let daemon = try DaemonProcess()
        let client = try LLMDClient(socketPath: daemon.socketPath)
        let scope = try client.call(ScopeBeginMethod.self, ScopeBeginMethod.Params(name: "http")).scope
        let (status, body) = try curl(
            daemon, "/v1/completions", json: #"{"model":"fake","prompt":"Say hi"}"#, headers: ["X-LLMD-Scope: \(scope)"])
        #expect(status == 200)
        let response = try object(body)
        #expect(response["object"] == "text_completion")
        #expect(response["choices"]?.arrayValue?.first?.objectValue?["text"] == "[fake] You said: Say hi")
        #expect(try client.call(ScopeShowMethod.self, ScopeShowMethod.Params(scope: scope)).totals.requests == 1)
        let unknown = try curl(daemon, "/v1/completions", json: #"{"model":"fake","prompt":"x"}"#, headers: ["X-LLMD-Scope: nope"])
        #expect(unknown.status == 400 && unknown.body.contains("scope.not_found"), "\(unknown)")
        #expect(try totalRequests(daemon) == 1)

        let models = try object(try curl(daemon, "/v1/models").body)
        #expect(models["object"] == "list")
        let ids = models["data"]?.arrayValue?.compactMap { $0.objectValue?["id"]?.stringValue } ?? []
        #expect(ids.contains("fake") && ids.contains("fake/fake"), "\(ids)")
    }

    @Test("the provider's answer is relayed: unknown fields go through, its 404 is model_not_found")
    func upstreamRelay() throws {
        let keys = try TemporaryDirectory()
        let fixture = try FixtureServer()
        let daemon = try DaemonProcess(config: try fixture.config(keys: keys))
        let (status, body) = try curl(
            daemon, "/v1/chat/completions",
            json: #"{"model":"local/fixture","user":"u-42","response_format":{"type":"text"},"messages":[{"role":"user","content":"relay me"}]}"#)
        #expect(status == 200, "\(body)")
        #expect(try object(body)["choices"]?.arrayValue?.first?.objectValue?["message"]?.objectValue?["content"] == "echo: relay me")
        let sent = try #require(try fixture.requestLog().last?["body"]?.objectValue)
        #expect(sent["user"] == "u-42" && sent["response_format"]?.objectValue?["type"] == "text", "\(sent)")
        #expect(sent["model"] == "fixture", "the provider prefix is llmd's, not the model's")

        let missing = try curl(daemon, "/v1/chat/completions", json: #"{"model":"fixture/404","messages":[{"role":"user","content":"x"}]}"#)
        #expect(missing.status == 404)
        #expect(try object(missing.body)["error"]?.objectValue?["code"] == "model_not_found")
        let failing = try curl(daemon, "/v1/chat/completions", json: #"{"model":"fixture/400","messages":[{"role":"user","content":"x"}]}"#)
        #expect(failing.status == 502 || failing.status == 400, "\(failing)")
    }

    @Test("bad requests get OpenAI's error object and status, and nothing reaches the ledger")
    func badRequests() throws {
        let daemon = try DaemonProcess(config: "[HTTP]\nMaxBodyBytes=2K\n")
        let cases: [(String, String?, [String], Int)] = [
            ("/v1/chat/completions", #"{"model":"fake","messages":[{"role":"user""#, [], 400),
            ("/v1/chat/completions", #"{"model":"fake","messages":[]}"#, [], 400),
            ("/v1/chat/completions", #"{"messages":[{"role":"user","content":"x"}]}"#, [], 400),
            ("/v1/chat/completions", #"{"model":"fake","n":2,"messages":[{"role":"user","content":"x"}]}"#, [], 400),
            ("/v1/chat/completions", "{\"model\":\"fake\",\"pad\":\"" + String(repeating: "x", count: 4096) + "\"}", [], 413),
            ("/v1/embeddings", "{}", [], 404),
        ]
        for (path, body, headers, expected) in cases {
            let (status, text) = try curl(daemon, path, json: body, headers: headers)
            #expect(status == expected, "\(path) \(body?.prefix(60) ?? ""): \(text)")
            #expect(try object(text)["error"]?.objectValue?["message"]?.stringValue != nil, "\(text)")
        }
        let plain = try curl(daemon, "/v1/chat/completions", extra: ["--data-binary", "{}", "-H", "content-type: text/plain"])
        #expect(plain.status == 415)
        let method = try curl(daemon, "/v1/chat/completions", extra: ["-X", "DELETE"])
        #expect(method.status == 405)
        #expect(try totalRequests(daemon) == 0)
        // The daemon serves on, over both sockets.
        #expect(try curl(daemon, "/v1/models").status == 200)
        #expect(try LLMDClient(socketPath: daemon.socketPath).ping().time.isEmpty == false)
    }

    @Test("a client that goes away mid-stream cancels the call, which is billed for what it received")
    func disconnectCancels() throws {
        let daemon = try DaemonProcess(config: "[Provider fake]\nTokenDelayMSec=200\n")
        let result = try curl(
            daemon, "/v1/chat/completions",
            json: #"{"model":"fake","stream":true,"messages":[{"role":"user","content":"one two three four five six seven eight"}]}"#,
            extra: ["--max-time", "0.9"])
        #expect(result.body.contains("\"delta\""), "some of it streamed: \(result.body)")
        #expect(!result.body.contains("[DONE]"))
        #expect(
            waitUntil {
                (try? llmctl(["events", "-o", "json", "-t", "llm_error", "--socket", daemon.socketPath]))?.standardOutput
                    .contains("request.cancelled") == true
            })
    }

    @Test("tool calls are relayed: whole, and streamed in pieces; the run's events carry them")
    func toolCalls() throws {
        let keys = try TemporaryDirectory()
        let fixture = try FixtureServer()
        let daemon = try DaemonProcess(config: try fixture.config(keys: keys))
        let request = #"{"model":"fixture/tools","tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object"}}}],"messages":[{"role":"user","content":"Weather in Paris?"}]"#
        let whole = try curl(daemon, "/v1/chat/completions", json: request + "}")
        #expect(whole.status == 200, "\(whole.body)")
        let choice = try #require(try object(whole.body)["choices"]?.arrayValue?.first?.objectValue)
        #expect(choice["finish_reason"] == "tool_calls")
        let message = try #require(choice["message"]?.objectValue)
        #expect(message["content"] == .null)
        let call = try #require(message["tool_calls"]?.arrayValue?.first?.objectValue)
        #expect(call["function"]?.objectValue?["arguments"] == #"{"city": "Paris"}"#)
        #expect(try fixture.requestLog().last?["body"]?.objectValue?["tools"] != nil, "the tools went to the provider")

        let streamed = try curl(daemon, "/v1/chat/completions", json: request + #","stream":true}"#)
        let chunks = try streamed.body.components(separatedBy: "\n\n").filter { $0.hasPrefix("data: {") }
            .map { try object(String($0.dropFirst(6))) }
        let pieces = chunks.compactMap {
            $0["choices"]?.arrayValue?.first?.objectValue?["delta"]?.objectValue?["tool_calls"]?.arrayValue?.first?.objectValue
        }
        #expect(pieces.first?["id"] == "call_fx1" && pieces.first?["function"]?.objectValue?["name"] == "get_weather")
        #expect(pieces.compactMap { $0["function"]?.objectValue?["arguments"]?.stringValue }.joined() == #"{"city": "Paris"}"#)
        #expect(chunks.contains { $0["choices"]?.arrayValue?.first?.objectValue?["finish_reason"] == "tool_calls" })
        let ends = try llmctl(["events", "-o", "json", "-t", "llm_end", "--socket", daemon.socketPath]).standardOutput
        #expect(ends.components(separatedBy: "call_fx1").count == 3, "both runs' llm_end have the call: \(ends)")
    }

    @Test("over loopback TCP every request needs a key; a key is shown once, counts to its scope, and can be revoked")
    func tcpWithKeys() throws {
        let port = try freeLoopbackPort()
        let daemon = try DaemonProcess(config: "[HTTP]\nListen=127.0.0.1:\(port)\n")
        let socket = ["--socket", daemon.socketPath]
        let base = "http://127.0.0.1:\(port)/v1/chat/completions"
        let body = #"{"model":"fake","messages":[{"role":"user","content":"over tcp"}]}"#
        func post(_ key: String?) throws -> (status: Int, body: String) {
            var arguments = ["-s", "-w", "\n%{http_code}", base, "-H", "content-type: application/json", "--data-binary", body]
            if let key { arguments += ["-H", "Authorization: Bearer \(key)"] }
            let result = try run("/usr/bin/curl", arguments)
            let status = Int(result.standardOutput.split(separator: "\n").last ?? "") ?? -1
            return (status, result.standardOutput)
        }
        #expect(waitUntil { (try? post(nil).status) == 401 }, "the listener refuses a request without a key")
        #expect(try post("llmd-not-a-key").status == 401)
        let begun = try LLMDClient(socketPath: daemon.socketPath).call(ScopeBeginMethod.self, ScopeBeginMethod.Params(name: "tcp")).scope
        let made = try llmctl(["key", "create", "ci", "--scope", begun] + socket)
        #expect(made.status == 0, "\(made.standardError)")
        let key = made.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(key.hasPrefix("llmd-") && key.count == 53)
        let answered = try post(key)
        #expect(answered.status == 200 && answered.body.contains("[fake] You said: over tcp"), "\(answered)")
        let totals = try LLMDClient(socketPath: daemon.socketPath).call(ScopeShowMethod.self, ScopeShowMethod.Params(scope: begun)).totals
        #expect(totals.requests == 1, "the key's calls count to its scope")
        let listed = try llmctl(["key", "list", "--json"] + socket).standardOutput
        #expect(listed.contains("\"ci\"") && !listed.contains(key), "the list never shows a key: \(listed)")
        #expect(try llmctl(["key", "create", "ci"] + socket).status == 1, "a name is taken for good")
        // A key with a budget of its own: a scope made for it, whose limit refuses what passes it.
        let tight = try llmctl(["key", "create", "tight", "--max-tokens", "5"] + socket)
        let refused = try post(tight.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines))
        #expect(refused.status == 429 && refused.body.contains("budget_exceeded"), "\(refused)")
        #expect(try llmctl(["key", "revoke", "ci"] + socket).status == 0)
        #expect(try post(key).status == 401, "a revoked key is refused at once")
        // The Unix socket needs no key: its peers are checked by their credentials.
        #expect(try curl(daemon, "/v1/chat/completions", json: body).status == 200)
    }

    @Test("a Listen= address other hosts could reach is refused unless AllowRemote= says so")
    func remoteListenRefused() throws {
        let directory = try TemporaryDirectory()
        let config = try directory.write("llmd.conf", "[HTTP]\nListen=0.0.0.0:8080\n")
        let checked = try run(binDirectory + "/llmd", ["--check-config", "--config", config])
        #expect(checked.status == 78, "\(checked.standardError)")
        #expect(checked.standardError.contains("Listen=0.0.0.0:8080 is not a loopback address"), "\(checked.standardError)")
        let allowed = try directory.write("allowed.conf", "[HTTP]\nListen=0.0.0.0:8080\nAllowRemote=yes\n")
        #expect(try run(binDirectory + "/llmd", ["--check-config", "--config", allowed]).status == 0)
    }

    // MARK: - Sessions over HTTP

    /// One chat request as a turn of `session`: the status, the body, and `X-LLMD-Turn`.
    private func turn(
        _ daemon: DaemonProcess, session: String, _ body: String, path: String = "/v1/chat/completions"
    ) throws -> (status: Int, body: String, turn: Int?) {
        let directory = try TemporaryDirectory()
        let headersFile = directory.file("headers")
        let (status, text) = try curl(daemon, path, json: body, headers: ["X-LLMD-Session: \(session)"], extra: ["-D", headersFile])
        let headers = (try? String(contentsOfFile: headersFile, encoding: .utf8)) ?? ""
        let turn = headers.split(separator: "\r\n").first { $0.lowercased().hasPrefix("x-llmd-turn:") }
            .flatMap { Int($0.dropFirst("x-llmd-turn:".count).trimmingCharacters(in: .whitespaces)) }
        return (status, text, turn)
    }

    /// A chat request body for the fixture's echoing model.
    private func chat(_ messages: [(String, String)], stream: Bool = false) -> String {
        let list = messages.map { #"{"role":"\#($0.0)","content":"\#($0.1)"}"# }.joined(separator: ",")
        return #"{"model":"fixture","stream":\#(stream),"stream_options":{"include_usage":\#(stream)},"messages":[\#(list)]}"#
    }

    /// The chat messages of each request the fixture saw, as `role: content`.
    private func prompts(_ fixture: FixtureServer) throws -> [[String]] {
        try fixture.requestLog().compactMap { entry in
            entry["body"]?.objectValue?["messages"]?.arrayValue?.compactMap { message -> String? in
                guard let object = message.objectValue else { return nil }
                return "\(object["role"]?.stringValue ?? ""): \(object["content"]?.stringValue ?? "")"
            }
        }
    }

    /// The text of a streamed chat response, and its usage chunk's.
    private func streamed(_ body: String) throws -> (text: String, id: String?, usage: JSONObject?) {
        let events = body.components(separatedBy: "\n\n").filter { !$0.isEmpty }
        #expect(events.last == "data: [DONE]", "\(body)")
        let chunks = try events.dropLast().map { try object(String($0.dropFirst(6))) }
        let text = chunks.compactMap {
            $0["choices"]?.arrayValue?.first?.objectValue?["delta"]?.objectValue?["content"]?.stringValue
        }.joined()
        return (text, chunks.first?["id"]?.stringValue, chunks.last?["usage"]?.objectValue)
    }

    @Test("X-LLMD-Session: each request sends only its message, the session's memory the rest; attach sees the turns")
    func sessionTurns() throws {
        let keys = try TemporaryDirectory()
        let fixture = try FixtureServer()
        let daemon = try DaemonProcess(config: try fixture.config(keys: keys))
        let client = try LLMDClient(socketPath: daemon.socketPath)
        let first = try turn(daemon, session: "shop", chat([("system", "Be brief."), ("user", "I want roses")]))
        #expect(first.status == 200, "\(first.body)")
        #expect(first.turn == 1)
        let reply = try object(first.body)
        #expect(reply["choices"]?.arrayValue?.first?.objectValue?["message"]?.objectValue?["content"] == "echo: I want roses")
        var shown = try client.call(SessionShowMethod.self, SessionShowMethod.Params(session: "shop"))
        #expect(shown.session.settings["system"] == "Be brief.", "the system message is the session's system prompt")
        #expect(reply["id"]?.stringValue == "chatcmpl-" + (shown.recentTurns.last?.runID ?? "?"), "named after the turn's run")

        let attachDirectory = try TemporaryDirectory()
        let attachOutput = attachDirectory.file("attach.out")
        let attach = try ChildProcess(
            binDirectory + "/llmctl", ["attach", "shop", "--socket", daemon.socketPath],
            environment: ProcessInfo.processInfo.environment, outputPath: attachOutput, errorPath: attachDirectory.file("attach.err"))
        defer { attach.send(signal: SIGKILL) }
        #expect(waitUntil { (try? String(contentsOfFile: attachDirectory.file("attach.err"), encoding: .utf8))?.contains("attached") == true })

        let second = try turn(daemon, session: "shop", chat([("user", "pink ones")]))
        #expect(second.status == 200 && second.turn == 2, "\(second)")
        #expect(
            try prompts(fixture).last == [
                "system: Be brief.", "user: I want roses", "assistant: echo: I want roses", "user: pink ones",
            ])
        let third = try turn(daemon, session: "shop", chat([("user", "a dozen")], stream: true))
        #expect(third.status == 200 && third.turn == 3, "\(third)")
        let stream = try streamed(third.body)
        #expect(stream.text == "echo: a dozen")
        #expect(try prompts(fixture).last?.count == 6, "the two turns before, from memory")
        shown = try client.call(SessionShowMethod.self, SessionShowMethod.Params(session: "shop"))
        #expect(stream.id == "chatcmpl-" + (shown.recentTurns.last?.runID ?? "?"))
        #expect(shown.recentTurns.map(\.input) == ["I want roses", "pink ones", "a dozen"])
        // The usage is the reply call's, as the fixture counts it: each message's words and 4, history and all.
        let usage = try #require(stream.usage)
        #expect(usage["completion_tokens"] == 3 && usage["prompt_tokens"] == 40, "\(usage)")

        let memory = try llmctl(["memory", "show", "--socket", daemon.socketPath, "shop"])
        #expect(memory.standardOutput.contains("messages: 6 in memory"), "\(memory.standardOutput)")
        #expect(memory.standardOutput.contains("Human: pink ones\n  AI: echo: pink ones\n  Human: a dozen\n  AI: echo: a dozen"))
        func attached() -> String { (try? String(contentsOfFile: attachOutput, encoding: .utf8)) ?? "" }
        #expect(waitUntil { attached().contains("echo: a dozen\n") }, "\(attached())")
        #expect(attached().contains("] > pink ones\necho: pink ones\n"), "a turn not streamed, whole: \(attached())")
        #expect(attached().contains("] > a dozen\necho: a dozen\n"), "\(attached())")
    }

    @Test("a session's turn: earlier history ignored, a system message updates the session, bad turns are 400s")
    func sessionHistoryRule() throws {
        let keys = try TemporaryDirectory()
        let fixture = try FixtureServer()
        let daemon = try DaemonProcess(config: try fixture.config(keys: keys))
        #expect(try turn(daemon, session: "s", chat([("user", "one")])).status == 200)
        // A client that resends its whole history, as OpenAI's clients do: the session's memory is the history.
        let whole = try turn(
            daemon, session: "s",
            chat([("system", "Answer in French."), ("user", "one"), ("assistant", "made up"), ("user", "two")]))
        #expect(whole.status == 200 && whole.turn == 2, "\(whole)")
        #expect(try prompts(fixture).last == ["system: Answer in French.", "user: one", "assistant: echo: one", "user: two"])
        let show = try llmctl(["session", "show", "--json", "--socket", daemon.socketPath, "s"])
        #expect(show.standardOutput.contains(#""system":"Answer in French.""#), "\(show.standardOutput)")

        let requests = try totalRequests(daemon)
        let bad: [(String, String, String)] = [
            ("s", "/v1/chat/completions", chat([("user", "three"), ("assistant", "not a turn")])),
            ("s", "/v1/completions", #"{"model":"fixture","prompt":"three"}"#),
            (String(repeating: "n", count: 201), "/v1/chat/completions", chat([("user", "three")])),
        ]
        for (session, path, body) in bad {
            let answer = try turn(daemon, session: session, body, path: path)
            #expect(answer.status == 400 && answer.turn == nil, "\(path) \(body): \(answer)")
            #expect(try object(answer.body)["error"]?.objectValue?["message"]?.stringValue != nil)
        }
        let two = try curl(
            daemon, "/v1/chat/completions", json: chat([("user", "three")]), headers: ["X-LLMD-Session: a", "X-LLMD-Session: b"])
        #expect(two.status == 400, "one session per request: \(two)")
        #expect(try totalRequests(daemon) == requests, "no bad turn reached the model")
        #expect(try llmctl(["session", "show", "--socket", daemon.socketPath, String(repeating: "n", count: 201)]).status != 0)
        #expect(try LLMDClient(socketPath: daemon.socketPath).call(SessionShowMethod.self, SessionShowMethod.Params(session: "s")).turnCount == 2)
        // A turn the provider fails is still the session's, and says which.
        let failed = try turn(daemon, session: "s", #"{"model":"fixture/400","messages":[{"role":"user","content":"three"}]}"#)
        #expect(failed.status == 502 && failed.turn == 3, "\(failed)")
    }

    @Test("a streamed turn streams its reply only, not the memory's summarising call; a queued turn waits")
    func streamedTurnAndQueue() throws {
        let keys = try TemporaryDirectory()
        let fixture = try FixtureServer()
        let daemon = try DaemonProcess(config: try fixture.config(keys: keys))
        let setup = try llmctl(
            ["send", "--socket", daemon.socketPath, "-s", "sb", "--memory", "summary-buffer", "--max-tokens", "25", "alpha beta gamma"])
        #expect(setup.status == 0, "\(setup.standardError)")
        let summarised = try turn(daemon, session: "sb", chat([("user", "delta epsilon zeta")], stream: true))
        #expect(summarised.status == 200 && summarised.turn == 2)
        #expect(try streamed(summarised.body).text == "echo: delta epsilon zeta", "\(summarised.body)")
        #expect(try prompts(fixture).last?.first?.contains("New summary:") == true, "the turn summarised")

        // A turn sent while another of the session runs waits for it, and follows it.
        let directory = try TemporaryDirectory()
        let slow = try ChildProcess(
            binDirectory + "/llmctl", ["send", "--socket", daemon.socketPath, "-s", "q", "-m", "fixture/slow:150", "one two three"],
            environment: ProcessInfo.processInfo.environment, outputPath: directory.file("slow.out"))
        defer { if slow.isRunning { slow.send(signal: SIGKILL) } }
        #expect(waitUntil { (try? fixture.requestLog().contains { $0["model"]?.stringValue == "fixture/slow:150" }) == true })
        let queued = try turn(daemon, session: "q", chat([("user", "after")]))
        #expect(queued.status == 200 && queued.turn == 2, "\(queued)")
        #expect(slow.wait(timeout: .seconds(10)) == .exited(0))
        #expect(try prompts(fixture).last == ["user: one two three", "assistant: echo: one two three", "user: after"])
    }

    @Test("docs/openapi.json describes exactly what is served: each path and method answers, valid bodies pass")
    func openAPIDocument() throws {
        let document = try object(try String(contentsOfFile: sourceRoot + "/docs/openapi.json", encoding: .utf8))
        let paths = try #require(document["paths"]?.objectValue)
        #expect(Set(paths.keys) == ["/v1/chat/completions", "/v1/completions", "/v1/models"])
        let daemon = try DaemonProcess()
        let examples = [
            "/v1/chat/completions": #"{"model":"fake","messages":[{"role":"user","content":"from the document"}]}"#,
            "/v1/completions": #"{"model":"fake","prompt":"from the document"}"#,
        ]
        for member in paths {
            let path = member.key
            for method in member.value.objectValue?.keys ?? [] {
                let answer = try curl(daemon, path, json: method == "post" ? examples[path] : nil)
                #expect(answer.status == 200, "\(method) \(path): \(answer.body)")
            }
        }
    }

    @Test("Connection: close is honoured: the response says so and the connection ends with it, whole or streamed")
    func connectionClose() throws {
        let daemon = try DaemonProcess()
        let requests = [
            "GET /v1/models HTTP/1.1\r\nHost: llmd\r\nConnection: close\r\n\r\n",
            "GET /v1/models HTTP/1.0\r\nHost: llmd\r\n\r\n",
            {
                let body = #"{"model":"fake","stream":true,"messages":[{"role":"user","content":"hi"}]}"#
                return "POST /v1/chat/completions HTTP/1.1\r\nHost: llmd\r\nContent-Type: application/json\r\n"
                    + "Content-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n" + body
            }(),
        ]
        for request in requests {
            let connection = try RawConnection(path: httpSocket(daemon))
            try connection.sendRaw(request)
            let started = ContinuousClock.now
            var lines: [String] = []
            while let line = connection.readLine(timeout: .seconds(10)) { lines.append(line) }
            // Closed by the daemon at once, not after IdleTimeoutSec= (30 s).
            #expect(ContinuousClock.now - started < .seconds(5), "\(request)")
            #expect(lines.first?.hasPrefix("HTTP/1.1 200") == true, "\(lines)")
            #expect(lines.contains { $0.lowercased().hasPrefix("connection: close") }, "\(lines)")
        }
    }

    @Test("framing attacks: conflicting Content-Length and Transfer-Encoding is refused; headers sent slowly are cut off")
    func framingAndSlowClients() throws {
        let daemon = try DaemonProcess(config: "[HTTP]\nIdleTimeoutSec=1\n")
        let smuggled = try RawConnection(path: httpSocket(daemon))
        try smuggled.sendRaw(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: llmd\r\nContent-Type: application/json\r\n"
                + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
        let status = smuggled.readLine(timeout: .seconds(5))
        #expect(status?.hasPrefix("HTTP/1.1 400") == true, "\(status ?? "closed")")

        // A byte a second: the connection is closed once it has been quiet for the timeout.
        let slow = try RawConnection(path: httpSocket(daemon))
        try slow.sendRaw("POST /v1/chat/comp")
        let started = ContinuousClock.now
        #expect(slow.readLine(timeout: .seconds(10)) == nil, "closed, not answered")
        #expect(ContinuousClock.now - started < .seconds(5))
        #expect(try totalRequests(daemon) == 0)
        #expect(try curl(daemon, "/v1/models").status == 200, "the daemon serves on")
    }
}
