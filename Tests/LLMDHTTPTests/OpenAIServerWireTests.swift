import LLMDProtocol
import Testing

@testable import LLMDHTTP

@Suite("OpenAI server wire")
struct OpenAIServerWireTests {
    private func decode(_ json: String, _ endpoint: OpenAIEndpoint = .chatCompletions) throws(OpenAIError) -> OpenAIRequest {
        try OpenAIRequest.decode(Array(json.utf8), endpoint: endpoint, providers: ["openai", "local"])
    }

    @Test("a chat request becomes complete's parameters; what llmd does not read goes to the provider as it is")
    func chatRequest() throws {
        let request = try decode(
            #"{"model":"openai/gpt-4o","messages":[{"role":"system","content":"Be brief."},{"role":"user","content":[{"type":"text","text":"Hi "},{"type":"text","text":"there"}]}],"temperature":0.5,"max_completion_tokens":12,"stream":true,"stream_options":{"include_usage":true},"tools":[{"type":"function"}],"user":"u"}"#)
        #expect(request.params.provider == "openai" && request.params.model == "gpt-4o")
        #expect(request.params.input.messages == [
            PromptMessage(role: "system", content: "Be brief."), PromptMessage(role: "user", content: "Hi there"),
        ])
        #expect(request.params.stream && request.includeUsage && request.params.endpoint == "chat")
        #expect(request.params.generation.temperature == 0.5 && request.params.generation.maxTokens == 12)
        #expect(request.params.generation.extra == ["tools": [["type": "function"]], "user": "u"])
        // A slash that names no provider is part of the model's name.
        #expect(try decode(#"{"model":"Qwen/Qwen2.5","messages":[{"role":"user","content":"x"}]}"#).params.model == "Qwen/Qwen2.5")
    }

    @Test("bad requests are 400s naming the member")
    func badRequests() {
        #expect(throws: OpenAIError.self) { try decode("not json") }
        #expect(throws: OpenAIError.invalidRequest("the request body must be a JSON object")) { try decode("[1]") }
        do {
            _ = try decode(#"{"model":"m","prompt":["a","b"]}"#, .completions)
            Issue.record("two prompts were taken")
        } catch {
            #expect(error.status == 400 && error.param == "prompt")
        }
    }

    @Test("with X-LLMD-Session the final user message is the turn, a leading system message and the model the session's")
    func sessionTurn() throws {
        let request = try decode(
            #"{"model":"local/fixture","temperature":0.2,"stream":true,"messages":[{"role":"system","content":"Be brief."},{"role":"user","content":"old"},{"role":"assistant","content":"older"},{"role":"user","content":"new"}]}"#)
        let turn = try request.sessionTurn("notes")
        #expect(turn.session == "notes" && turn.text == "new")
        #expect(turn.settings == ["provider": "local", "model": "fixture", "system": "Be brief."])
        #expect(turn.generation.temperature == 0.2 && turn.stream && turn.events)
        // A bare model is the default provider's; without a system message the session keeps its own.
        let bare = try decode(#"{"model":"fixture","messages":[{"role":"user","content":"hi"}]}"#).sessionTurn("notes")
        #expect(bare.settings == ["provider": nil, "model": "fixture"])
        #expect(!bare.stream && !bare.events)
        let developer = try decode(
            #"{"model":"m","messages":[{"role":"developer","content":"Terse."},{"role":"user","content":"hi"}]}"#)
        #expect(try developer.sessionTurn("s").settings["system"] == "Terse.")
    }

    @Test("a session's turn that is not a user's chat message, or a bad session name, is a 400")
    func badSessionTurns() throws {
        let cases: [(String, OpenAIEndpoint, String, String)] = [
            (#"{"model":"m","messages":[{"role":"user","content":"x"},{"role":"assistant","content":"y"}]}"#, .chatCompletions, "s", "messages"),
            (#"{"model":"m","messages":[{"role":"system","content":"x"}]}"#, .chatCompletions, "s", "messages"),
            (#"{"model":"m","messages":[{"role":"user","content":""}]}"#, .chatCompletions, "s", "messages"),
            (#"{"model":"m","prompt":"x"}"#, .completions, "s", "X-LLMD-Session"),
            (#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#, .chatCompletions, "", "X-LLMD-Session"),
            (#"{"model":"m","messages":[{"role":"user","content":"x"}]}"#, .chatCompletions, "a\u{1}b", "X-LLMD-Session"),
        ]
        for (body, endpoint, session, param) in cases {
            do {
                _ = try decode(body, endpoint).sessionTurn(session)
                Issue.record("taken: \(body) as a turn of '\(session)'")
            } catch {
                #expect(error.status == 400 && error.param == param, "\(body): \(error)")
            }
        }
    }

    @Test("llmd's errors as OpenAI's: statuses and codes")
    func errors() {
        #expect(OpenAIError(ProtocolError(.upstreamNotFound, "no such model")).status == 404)
        #expect(OpenAIError(ProtocolError(.upstreamNotFound, "no such model")).code == "model_not_found")
        #expect(OpenAIError(ProtocolError(.budgetExceeded, "over")).status == 429)
        #expect(OpenAIError(ProtocolError(.scopeNotFound, "no scope x")).status == 400)
        #expect(OpenAIError(ProtocolError(.upstreamTimeout, "slow")).status == 504)
        #expect(OpenAIError(ProtocolError("upstream.rate_limited", "busy")) == OpenAIError(
            status: 502, message: "busy", type: "api_error", code: "upstream.rate_limited"))
        #expect(OpenAIError(ProtocolError(.contextWindowExceeded, "long")).code == "context_length_exceeded")
    }

    @Test("chunks and the usage chunk are shaped as OpenAI streams them")
    func chunks() throws {
        var writer = OpenAIResponseWriter(request: try decode(#"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"}]}"#), created: 7)
        writer.started(runID: "r1", model: "m-2025")
        let role = writer.chunk(role: true)
        #expect(role["id"] == "chatcmpl-r1" && role["model"] == "m-2025" && role["usage"] == .null)
        #expect(role["choices"]?.arrayValue?.first?.objectValue?["delta"] == ["role": "assistant", "content": ""])
        let last = writer.chunk(finishReason: .some("stop"))
        #expect(last["choices"]?.arrayValue?.first?.objectValue?["finish_reason"] == "stop")
        let usage = writer.usageChunk(
            CallUsage(tokens: TokenUsage(promptTokens: 3, completionTokens: 2, source: .provider), cost: nil, costUnknown: nil))
        #expect(usage["choices"] == [] && usage["usage"]?.objectValue?["total_tokens"] == 5)
        #expect(OpenAIResponseWriter.event(["a": 1]) == Array("data: {\"a\":1}\n\n".utf8))
    }

    @Test("a text chunk's event, made from its cached parts, is the chunk's event byte for byte, for both endpoints")
    func textChunkEvents() throws {
        for (endpoint, body) in [
            (OpenAIEndpoint.chatCompletions, #"{"model":"m","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"x"}]}"#),
            (.completions, #"{"model":"m","stream":true,"prompt":"x"}"#),
        ] {
            var writer = OpenAIResponseWriter(request: try decode(body, endpoint), created: 7)
            writer.started(runID: "r", model: "m")
            func event(_ text: String) -> [UInt8] {
                var bytes = Array("before".utf8)
                writer.appendTextChunkEvent(text, to: &bytes)
                return Array(bytes.dropFirst(6))
            }
            for text in ["plain", "q\"uote \\ and\nline", "", "é😀"] {
                #expect(event(text) == OpenAIResponseWriter.event(writer.chunk(text: text)), "\(endpoint) \(text)")
            }
            writer.started(runID: "r2", model: "m2")
            #expect(event("x") == OpenAIResponseWriter.event(writer.chunk(text: "x")), "a new run, new parts")
        }
    }
}
