import Testing

@testable import LLMDProtocol

@Suite("Event methods")
struct EventMethodsTests {
    @Test("publish's parameters and result go to JSON and back; an absent or null member is left out")
    func publish() throws {
        let params = PublishMethod.Params(
            name: "deploy", data: ["version": "1.2"], session: "s", runID: "r", parentRunID: "p", tags: ["ops"], metadata: ["k": 1])
        #expect(try PublishMethod.Params(json: params.json) == params)
        #expect(params.json["run_id"] == "r" && params.json["parent_run_id"] == "p")
        #expect(try PublishMethod.Params(json: ["name": "n", "data": nil]) == PublishMethod.Params(name: "n"))
        #expect(PublishMethod.Params(name: "n").json == ["name": "n"])
        let result = PublishMethod.Result(seq: 7, runID: "r")
        #expect(result.json == ["seq": 7, "run_id": "r"])
        #expect(try PublishMethod.Result(json: result.json) == result)
    }

    @Test("subscribe's parameters and result go to JSON and back; oldest_seq is null when there is none")
    func subscribe() throws {
        let params = SubscribeMethod.Params(
            sessions: ["a"], types: ["llm_end"], tags: ["t"], runID: "r", since: 3, blocking: ["llm_end"], onLag: .skip)
        #expect(try SubscribeMethod.Params(json: params.json) == params)
        #expect(params.json["run_id"] == "r" && params.json["on_lag"] == "skip")
        #expect(SubscribeMethod.Params().json == [:])
        #expect(try SubscribeMethod.Params(json: ["since_time": 5]) == SubscribeMethod.Params(sinceTime: 5))
        let empty = SubscribeMethod.Result(subscription: 1, cursor: 0, oldestSeq: nil)
        #expect(empty.json == ["subscription": 1, "cursor": 0, "oldest_seq": nil])
        #expect(try SubscribeMethod.Result(json: empty.json) == empty)
        let some = SubscribeMethod.Result(subscription: 2, cursor: 9, oldestSeq: 4)
        #expect(try SubscribeMethod.Result(json: some.json) == some)
    }

    @Test("subscribe's invalid parameters are named as the daemon always named them")
    func subscribeErrors() {
        #expect(throws: ProtocolError.invalidParam("sessions", expected: "an array of strings", got: 3)) {
            try SubscribeMethod.Params(json: ["sessions": 3])
        }
        #expect(throws: ProtocolError.invalidParam("since", expected: "a seq, 0 or more", got: -1)) {
            try SubscribeMethod.Params(json: ["since": -1])
        }
        #expect(throws: ProtocolError(.invalidParams, "pass 'since' or 'since_time', not both", detail: ["field": "since_time"])) {
            try SubscribeMethod.Params(json: ["since": -1, "since_time": 5])
        }
        #expect(throws: ProtocolError.invalidParam("on_lag", expected: "resume or skip", got: "drop")) {
            try SubscribeMethod.Params(json: ["on_lag": "drop"])
        }
    }

    @Test("unsubscribe, ack and cancel go to JSON and back; a missing or wrong member is named")
    func others() throws {
        #expect(try UnsubscribeMethod.Params(json: ["subscription": 2]) == UnsubscribeMethod.Params(subscription: 2))
        #expect(UnsubscribeMethod.Result().json == ["unsubscribed": true])
        let ack = AckMethod.Params(subscription: 1, seq: 5)
        #expect(ack.json == ["subscription": 1, "seq": 5])
        #expect(try AckMethod.Params(json: ack.json) == ack)
        #expect(try AckMethod.Result(json: AckMethod.Result(acknowledged: true).json) == AckMethod.Result(acknowledged: true))
        let cancel = CancelMethod.Params(request: .string("long"))
        #expect(cancel.json == ["request": "long"])
        #expect(try CancelMethod.Params(json: ["request": 3]) == CancelMethod.Params(request: .int(3)))
        #expect(try CancelMethod.Result(json: ["cancelled": false]) == CancelMethod.Result(cancelled: false))

        #expect(throws: ProtocolError.invalidParam("subscription", expected: "the number subscribe returned", got: nil)) {
            try UnsubscribeMethod.Params(json: [:])
        }
        #expect(throws: ProtocolError.invalidParam("seq", expected: "the seq of the event acknowledged", got: 0)) {
            try AckMethod.Params(json: ["subscription": 1, "seq": 0])
        }
        #expect(throws: ProtocolError.invalidParam("request", expected: "a string or an integer", got: JSONValue.null)) {
            try CancelMethod.Params(json: ["request": nil])
        }
        #expect(throws: ProtocolError.invalidParam("name", expected: "the custom event's name", got: "")) {
            try PublishMethod.Params(json: ["name": ""])
        }
    }

    // MARK: run.event

    /// The fields of an error, for the checks that need only some of them.
    private func error(_ body: () throws(ProtocolError) -> Void) -> ProtocolError? {
        do {
            try body()
            return nil
        } catch {
            return error
        }
    }

    @Test("run.event's parameters go to JSON and back; source defaults to external; an llm_end's usage is read as reported")
    func runEvent() throws {
        let params = try RunEventMethod.Params(
            event: .llmEnd, runID: "r", parentRunID: "p", session: "s", tags: ["t"], metadata: ["k": 1],
            data: [
                "model": "gpt-4o", "text": "hi",
                "usage": ["prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14, "cached_prompt_tokens": 2, "reasoning_tokens": 1],
            ],
            source: "langchain", scopes: ["sc"])
        #expect(try RunEventMethod.Params(json: params.json) == params)
        #expect(params.json["event"] == "llm_end" && params.json["parent_run_id"] == "p" && params.json["source"] == "langchain")
        #expect(
            params.usage
                == ReportedUsage(
                    tokens: TokenUsage(promptTokens: 10, completionTokens: 4, cachedPromptTokens: 2, reasoningTokens: 1, source: .reported),
                    model: "gpt-4o"))

        let minimal = try RunEventMethod.Params(json: ["event": "chain_start", "run_id": "r"])
        #expect(minimal.source == "external" && minimal.usage == nil && minimal.data == [:] && minimal.tags.isEmpty)
        #expect(minimal.json == ["event": "chain_start", "run_id": "r", "source": "external"])
        // An llm_end without usage, or with null usage, is only published.
        #expect(try RunEventMethod.Params(json: ["event": "llm_end", "run_id": "r", "data": ["text": "x"]]).usage == nil)
        #expect(try RunEventMethod.Params(json: ["event": "llm_end", "run_id": "r", "data": ["usage": nil]]).usage == nil)
        // Usage on another type is its data, not a report.
        #expect(
            try RunEventMethod.Params(json: ["event": "llm_error", "run_id": "r", "data": ["usage": ["prompt_tokens": 1]]]).usage == nil)
        let provided = try RunEventMethod.Params(
            json: [
                "event": "llm_end", "run_id": "r",
                "data": ["model": "m", "provider": "azure", "usage": ["prompt_tokens": 0, "completion_tokens": 0]],
            ])
        #expect(provided.usage?.provider == "azure" && provided.usage?.tokens.totalTokens == 0)
        let token = try RunEventMethod.Params(json: ["event": "llm_new_token", "run_id": "r", "data": ["token": ""]])
        #expect(token.data == ["token": ""])

        let result = RunEventMethod.Result(seq: 7, runID: "r")
        #expect(result.json == ["seq": 7, "run_id": "r"])
        #expect(try RunEventMethod.Result(json: result.json) == result)
        let recorded = RunEventMethod.Result(
            seq: 8, runID: "r", usage: CallUsage(tokens: params.usage!.tokens, cost: nil, costUnknown: "no price"))
        #expect(recorded.json["usage"]?.objectValue?["source"] == "reported")
        #expect(try RunEventMethod.Result(json: recorded.json) == recorded)
    }

    @Test("run.event refuses other event types, naming the allowed ones, a missing or empty run_id, and a token without text")
    func runEventShapeErrors() throws {
        let allowed: JSONValue = [
            "chain_start", "chain_end", "chain_error", "chat_model_start", "llm_start", "llm_new_token", "llm_end", "llm_error",
            "retry", "text",
        ]
        for event: JSONValue? in ["custom", "usage_recorded", "no_such_event", 3, nil] {
            var json: JSONObject = ["run_id": "r"]
            json["event"] = event
            let refused = try #require(error { () throws(ProtocolError) in _ = try RunEventMethod.Params(json: json) })
            #expect(refused.code == .invalidParams && refused.detail["field"] == "event" && refused.detail["allowed"] == allowed)
            #expect(refused.message.contains("give one of chain_start, chain_end"), "\(refused.message)")
        }
        #expect(error { () throws(ProtocolError) in _ = try RunEventMethod.Params(json: ["event": "custom", "run_id": "r"]) }?
            .message.hasPrefix("'custom' is not an event type an external run can report") == true)
        #expect(throws: ProtocolError.invalidParam("run_id", expected: "the run's id, a non-empty string", got: nil)) {
            try RunEventMethod.Params(json: ["event": "chain_start"])
        }
        #expect(throws: ProtocolError.invalidParam("run_id", expected: "the run's id, a non-empty string", got: "")) {
            try RunEventMethod.Params(json: ["event": "chain_start", "run_id": ""])
        }
        #expect(throws: ProtocolError.invalidParam("source", expected: "what reports the run, a non-empty string", got: "")) {
            try RunEventMethod.Params(json: ["event": "chain_start", "run_id": "r", "source": ""])
        }
        #expect(throws: ProtocolError.invalidParam("data.token", expected: "the token's text, a string", got: nil)) {
            try RunEventMethod.Params(json: ["event": "llm_new_token", "run_id": "r", "data": ["text": "x"]])
        }
        #expect(throws: ProtocolError.invalidParam("scopes", expected: "an array of strings", got: "s")) {
            try RunEventMethod.Params(json: ["event": "chain_start", "run_id": "r", "scopes": "s"])
        }
        #expect(throws: ProtocolError.invalidParam("data", expected: "an object", got: "text")) {
            try RunEventMethod.Params(json: ["event": "text", "run_id": "r", "data": "text"])
        }
        // The typed form holds to the same rules.
        #expect(throws: ProtocolError.self) { try RunEventMethod.Params(event: .custom, runID: "r") }
        #expect(throws: ProtocolError.self) { try RunEventMethod.Params(event: .chainStart, runID: "") }
    }

    @Test("an llm_end's usage must be counts that add up, with its model; each fault names its field")
    func reportedUsageErrors() throws {
        func field(_ data: JSONObject) -> JSONValue? {
            error { () throws(ProtocolError) in _ = try RunEventMethod.Params(json: ["event": "llm_end", "run_id": "r", "data": .object(data)]) }?
                .detail["field"]
        }
        let counts: JSONObject = ["prompt_tokens": 10, "completion_tokens": 5]
        func with(_ changes: JSONObject) -> JSONObject {
            var usage = counts
            for member in changes { usage[member.key] = member.value }
            return ["model": "m", "usage": .object(usage)]
        }
        #expect(field(["model": "m", "usage": "lots"]) == "data.usage")
        #expect(field(["model": "m", "usage": ["completion_tokens": 5]]) == "data.usage.prompt_tokens")
        #expect(field(["model": "m", "usage": ["prompt_tokens": 5]]) == "data.usage.completion_tokens")
        #expect(field(with(["prompt_tokens": -1])) == "data.usage.prompt_tokens")
        #expect(field(with(["completion_tokens": 2.5])) == "data.usage.completion_tokens")
        #expect(field(with(["completion_tokens": "5"])) == "data.usage.completion_tokens")
        #expect(field(with(["prompt_tokens": 3_000_000_000])) == "data.usage.prompt_tokens")
        #expect(field(with(["total_tokens": 16])) == "data.usage.total_tokens")
        #expect(field(with(["cached_prompt_tokens": 11])) == "data.usage.cached_prompt_tokens")
        #expect(field(with(["reasoning_tokens": 6])) == "data.usage.reasoning_tokens")
        #expect(field(with(["reasoning_tokens": -1])) == "data.usage.reasoning_tokens")
        #expect(field(["usage": .object(counts)]) == "data.model")
        #expect(field(["model": "", "usage": .object(counts)]) == "data.model")
        #expect(field(["model": "m", "provider": 3, "usage": .object(counts)]) == "data.provider")
        #expect(field(with(["total_tokens": 15, "cached_prompt_tokens": 10, "reasoning_tokens": 5])) == nil)
        #expect(throws: ProtocolError(
            .invalidParams, "data.usage.total_tokens is 16, not prompt_tokens + completion_tokens = 15",
            detail: ["field": "data.usage.total_tokens"])) {
            try RunEventMethod.Params(json: ["event": "llm_end", "run_id": "r", "data": .object(with(["total_tokens": 16]))])
        }
    }

    @Test("CallUsage reads every source, reported included, and names them all when the source is unknown")
    func usageSources() throws {
        for source in UsageSource.allCases {
            let usage = CallUsage(tokens: TokenUsage(promptTokens: 1, completionTokens: 2, source: source), cost: 0.5, costUnknown: nil)
            #expect(try CallUsage(json: usage.json) == usage)
        }
        var json = CallUsage(tokens: TokenUsage(promptTokens: 1, completionTokens: 2, source: .reported), cost: nil, costUnknown: "x").json
        #expect(json["exact"] == nil && json["encoding"] == nil, "a report is exact, and counted by no encoding of llmd's")
        json["source"] = "guessed"
        #expect(throws: ProtocolError.invalidParam("source", expected: "provider, estimated, reported", got: "guessed")) {
            try CallUsage(json: json)
        }
    }
}
