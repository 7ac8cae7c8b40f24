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
}
