import Testing

@testable import LLMDProtocol

@Suite("Typed methods: sessions, send and complete")
struct SessionMethodsTests {
    @Test("a session name is 1 to 200 bytes without control characters, in every method that takes one")
    func sessionNames() throws {
        #expect(try SessionParams(json: ["session": "notes"]) == SessionParams(session: "notes"))
        let expected = "a session name of 1 to 200 bytes without control characters"
        for bad: JSONValue in ["", .string(String(repeating: "x", count: 201)), "tab\there"] {
            #expect(throws: ProtocolError.invalidParam("session", expected: expected, got: bad)) {
                try SessionShowMethod.Params(json: ["session": bad])
            }
        }
        #expect(throws: ProtocolError.invalidParam("session", expected: expected, got: nil)) { try SendMethod.Params(json: ["text": "hi"]) }
        #expect(throws: ProtocolError.invalidParam("session", expected: "a string", got: 7)) { try SessionParams(json: ["session": 7]) }
        // The new name of a rename is held to the same rule, and reported as a session name.
        #expect(throws: ProtocolError.invalidParam("session", expected: expected, got: "a\u{7F}")) {
            try SessionRenameMethod.Params(json: ["session": "a", "to": "a\u{7F}"])
        }
        #expect(throws: ProtocolError.invalidParam("to", expected: "the new session name", got: nil)) {
            try SessionRenameMethod.Params(json: ["session": "a"])
        }
    }

    @Test("send's parameters: the text is required and non-empty, the rest defaults as the page says")
    func sendParams() throws {
        let params = try SendMethod.Params(
            json: ["session": "s", "text": "hello", "stop": "\n", "max_tokens": 5, "events": false, "scopes": ["a"], "detach": true])
        #expect(params.stream && !params.events && params.detach && params.scopes == ["a"])
        #expect(params.generation.stop == ["\n"] && params.generation.maxTokens == 5)
        #expect(try SendMethod.Params(json: params.json) == params)
        #expect(throws: ProtocolError.invalidParam("text", expected: "the message, a non-empty string", got: "")) {
            try SendMethod.Params(json: ["session": "s", "text": ""])
        }
        #expect(throws: ProtocolError.invalidParam("stop", expected: "a string or an array of strings", got: [1])) {
            try SendMethod.Params(json: ["session": "s", "text": "x", "stop": [1]])
        }
    }

    @Test("complete's messages must be a non-empty array of {role, content}")
    func completeMessages() throws {
        let params = try CompleteMethod.Params(json: ["messages": [["role": "user", "content": "hi"]], "model": "m"])
        #expect(params.input.messages == [PromptMessage(role: "user", content: "hi")])
        #expect(try CompleteMethod.Params(json: params.json) == params)
        #expect(throws: ProtocolError.invalidParam("messages", expected: "a non-empty array of {role, content}", got: [])) {
            try CompleteMethod.Params(json: ["messages": []])
        }
        #expect(throws: ProtocolError.invalidParam("messages", expected: "objects with string role and content", got: "x")) {
            try CompleteMethod.Params(json: ["messages": ["x"]])
        }
    }

    @Test("a call's usage keeps exact and encoding only when llmd counted, and cost as null when unknown")
    func callUsage() throws {
        let provider = CallUsage(
            tokens: TokenUsage(promptTokens: 3, completionTokens: 2, source: .provider), cost: 0.25, costUnknown: nil)
        #expect(provider.json["exact"] == nil && provider.json["cost"] == 0.25 && provider.json["total_tokens"] == 5)
        #expect(try CallUsage(json: provider.json) == provider)
        let estimated = CallUsage(
            tokens: TokenUsage(promptTokens: 3, completionTokens: 2, source: .estimated, isExact: false), cost: nil,
            costUnknown: "no price")
        #expect(estimated.json["encoding"] == .null && estimated.json["exact"] == false && estimated.json["cost"] == .null)
        #expect(try CallUsage(json: estimated.json) == estimated)
    }

    @Test("session.export answers Markdown or the whole history, each decoded as what it is")
    func export() throws {
        #expect(try SessionExportMethod.Params(json: ["session": "s"]).format == .json)
        #expect(throws: ProtocolError.invalidParam("format", expected: "json or markdown", got: "pdf")) {
            try SessionExportMethod.Params(json: ["session": "s", "format": "pdf"])
        }
        #expect(try SessionExportMethod.Result(json: ["markdown": "# s\n"]) == .markdown("# s\n"))
        let session = SessionDescription(
            session: "s", created: "2026-12-07T21:00:00.000Z", lastActivity: "2026-12-07T21:01:00.000Z",
            lastActivityMicroseconds: 1, turns: 1, tokens: 9, settings: ["memory": "buffer"])
        var turn = TurnRecord(turn: 1, runID: "r", status: "failed", started: "2026-12-07T21:00:30.000Z", input: "hi")
        turn.error = ["code": "upstream.timeout"]
        let whole = SessionExportMethod.Result.json(
            SessionExport(
                session: session, summary: "", turns: [turn],
                messages: [ExportedMessage(turn: 1, role: "user", content: "hi", inMemory: true)]))
        #expect(try SessionExportMethod.Result(json: whole.json) == whole)
    }
}
