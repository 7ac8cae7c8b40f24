import LLMDProtocol
import LLMDTesting
import Testing

@testable import LLMDOpenAI

@Suite("OpenAI wire format")
struct OpenAIWireTests {
    private func json(_ bytes: [UInt8]) throws -> JSONObject {
        try #require(try JSONParser.parse(bytes).objectValue)
    }

    @Test("a streaming chat request asks for usage and names the length limit as the provider wants")
    func chatRequest() throws {
        var options = GenerationOptions()
        options.temperature = 0.2
        options.maximumTokens = 64
        options.stop = ["\n\nHuman:"]
        options.seed = 7
        options.topP = 0.9
        options.passThrough = ["presence_penalty": 0.5]
        let request = CompletionRequest(
            model: "gpt-4o-mini", input: .messages([ChatMessage(role: "user", content: "Hi")]), options: options,
            stream: true, maximumTokensParameter: .maxCompletionTokens)
        let body = try json(request.body)
        #expect(body["model"] == "gpt-4o-mini")
        #expect(body["messages"] == [["role": "user", "content": "Hi"]])
        #expect(body["max_completion_tokens"] == 64)
        #expect(body["max_tokens"] == nil)
        #expect(body["stop"] == ["\n\nHuman:"])
        #expect(body["seed"] == 7)
        #expect(body["top_p"] == 0.9)
        #expect(body["temperature"] == 0.2)
        #expect(body["presence_penalty"] == 0.5)
        #expect(body["stream"] == true)
        #expect(body["stream_options"] == ["include_usage": true])
        #expect(request.input.path == "/chat/completions")
    }

    @Test("the legacy completions request sends a prompt and max_tokens; usage can be left out of streams")
    func legacyRequest() throws {
        var options = GenerationOptions()
        options.maximumTokens = 16
        let request = CompletionRequest(
            model: "gpt-3.5-turbo-instruct", input: .prompt("Say hi"), options: options, stream: true,
            includeUsageInStream: false, maximumTokensParameter: .maxCompletionTokens)
        let body = try json(request.body)
        #expect(body["prompt"] == "Say hi")
        #expect(body["max_tokens"] == 16)
        #expect(body["stream_options"] == nil)
        #expect(request.input.path == "/completions")
        #expect(try json(CompletionRequest(model: "m", input: .prompt("x"), stream: false).body)["stream"] == nil)
    }

    @Test("stream chunks: chat deltas, legacy text, finish reason, the final usage chunk")
    func chunks() throws {
        let delta = try OpenAIWire.decodeChunk(
            Array(#"{"id":"c1","object":"chat.completion.chunk","model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}"#.utf8))
        #expect(delta == StreamChunk(text: "Hel", model: "gpt-4o"))
        let finish = try OpenAIWire.decodeChunk(
            Array(#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}"#.utf8))
        #expect(finish.finishReason == "stop" && finish.text.isEmpty && finish.usage == nil)
        let legacy = try OpenAIWire.decodeChunk(
            Array(#"{"object":"text_completion","choices":[{"text":" world","index":0,"finish_reason":null}]}"#.utf8))
        #expect(legacy.text == " world")
        let usage = try OpenAIWire.decodeChunk(
            Array(#"{"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17,"prompt_tokens_details":{"cached_tokens":8},"completion_tokens_details":{"reasoning_tokens":2}}}"#.utf8))
        #expect(usage.usage == TokenUsage(promptTokens: 12, completionTokens: 5, cachedPromptTokens: 8, reasoningTokens: 2, source: .provider))
        #expect(usage.usage?.totalTokens == 17)
    }

    @Test("an error object mid-stream is a named error, in each server's dialect")
    func streamErrors() {
        let bodies = [
            #"{"error":{"message":"The server had an error","type":"server_error","code":null}}"#,
            #"{"object":"error","message":"boom","type":"InternalServerError","code":500}"#,
            #"{"error":"model crashed"}"#,
        ]
        for body in bodies {
            #expect(throws: UpstreamError.self) { try OpenAIWire.decodeChunk(Array(body.utf8)) }
            do {
                _ = try OpenAIWire.decodeChunk(Array(body.utf8))
            } catch {
                #expect(error.code == .upstreamStreamError, "\(body)")
                #expect(error.failure == .transport)
            }
        }
        #expect(throws: UpstreamError(.upstreamProtocol, "server sent JSON that is not an object")) {
            try OpenAIWire.decodeChunk(Array("[1]".utf8))
        }
    }

    @Test("complete responses for both endpoints")
    func completions() throws {
        let chat = try OpenAIWire.decodeCompletion(
            Array(#"{"model":"gpt-4o","choices":[{"index":0,"message":{"role":"assistant","content":"Hello!"},"finish_reason":"stop"}],"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}"#.utf8))
        #expect(chat == Completion(text: "Hello!", finishReason: "stop", usage: TokenUsage(promptTokens: 9, completionTokens: 2, source: .provider), model: "gpt-4o"))
        let legacy = try OpenAIWire.decodeCompletion(
            Array(#"{"choices":[{"text":"Hi","index":0,"finish_reason":"length"}]}"#.utf8))
        #expect(legacy.text == "Hi" && legacy.finishReason == "length" && legacy.usage == nil)
    }

    @Test(
        "HTTP errors are named by status and body",
        arguments: [
            (429, #"{"error":{"message":"Rate limit reached","type":"requests","code":"rate_limit_exceeded"}}"#, ErrorCode.upstreamRateLimited, "Rate limit reached"),
            (429, #"{"error":{"message":"You exceeded your current quota","type":"insufficient_quota","code":"insufficient_quota"}}"#, .upstreamQuotaExceeded, "You exceeded your current quota"),
            (401, #"{"error":{"message":"Incorrect API key provided","type":"invalid_request_error","code":"invalid_api_key"}}"#, .upstreamUnauthorized, "Incorrect API key provided"),
            (400, #"{"object":"error","message":"stream_options is not supported","type":"BadRequestError","code":400}"#, .upstreamBadRequest, "stream_options is not supported"),
            (404, #"{"error":"model 'x' not found"}"#, .upstreamNotFound, "model 'x' not found"),
            (502, "<html>Bad Gateway</html>", .upstreamServerError, "HTTP 502: <html>Bad Gateway</html>"),
            (418, "", .upstreamHTTPError, "HTTP 418"),
        ])
    func httpErrors(status: Int, body: String, code: ErrorCode, message: String) {
        let error = UpstreamError.fromResponse(status: status, body: Array(body.utf8))
        #expect(error.code == code)
        #expect(error.message == message)
        #expect(error.status == status)
        #expect(error.protocolError.detail["status"] == .int(Int64(status)))
    }

    @Test("quota exhaustion is not retried, rate limiting is")
    func quotaVersusRate() {
        let quota = UpstreamError.fromResponse(
            status: 429, body: Array(#"{"error":{"message":"q","code":"insufficient_quota"}}"#.utf8))
        #expect(!quota.failure.isRetryable)
        #expect(UpstreamError.fromResponse(status: 429, body: []).failure.isRetryable)
    }
}

@Suite("Delta fast path")
struct DeltaFastPathTests {
    /// The full decoder's answer, for comparison.
    private func full(_ text: String) throws -> StreamChunk {
        let object = try #require(try JSONParser.parse(text).objectValue)
        let choice = object["choices"]?.arrayValue?.first?.objectValue
        return StreamChunk(
            text: choice?["delta"]?.objectValue?["content"]?.stringValue ?? choice?["text"]?.stringValue ?? "",
            finishReason: choice?["finish_reason"]?.stringValue, usage: TokenUsage(openAI: object["usage"]),
            model: object["model"]?.stringValue, toolCalls: choice?["delta"]?.objectValue?["tool_calls"])
    }

    @Test(
        "agrees with the full decoder on every shape servers send",
        arguments: [
            #"{"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#,
            #"{"choices":[{"index":0,"delta":{"content":"q\"uote \\ back\nline \u00e9 \ud83d\ude00 [}{]"},"finish_reason":null}]}"#,
            #"{"choices":[{"index":0,"delta":{},"finish_reason":"length"}],"usage":null}"#,
            #"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4,"prompt_tokens_details":{"cached_tokens":1},"completion_tokens_details":{"reasoning_tokens":2}}}"#,
            #"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"t","function":{"name":"f","arguments":"{\"a\":[1,2]}"}}]},"finish_reason":null}]}"#,
            #"{"choices":[{"index":0,"delta":{"content":"x"},"logprobs":{"content":[{"token":"]","logprob":-0.1,"bytes":[93],"top_logprobs":[]}]},"finish_reason":null}]}"#,
            #"{"object":"text_completion","choices":[{"text":" legacy","index":0,"logprobs":null,"finish_reason":null}],"model":"gpt-3.5-turbo-instruct"}"#,
            #"{"choices":[{"index":0,"delta":{"content":"first"}},{"index":1,"delta":{"content":"second"}}]}"#,
            #" { "choices" : [ { "delta" : { "content" : "spaced" } } ] } "#,
        ])
    func agrees(text: String) throws {
        let fast = try #require(Array(text.utf8).withUnsafeBufferPointer { OpenAIWire.scanDelta($0)?.chunk }, "fast path declined")
        #expect(fast == (try full(text)))
        #expect(try OpenAIWire.decodeChunk(Array(text.utf8)) == fast)
        // A caller that has the stream's model already is spared reading it again.
        var withoutModel = fast
        withoutModel.model = nil
        #expect(try OpenAIWire.decodeChunk(Array(text.utf8), readingModel: false) == withoutModel)
    }

    @Test("escaped keys still decode, through the full path")
    func escapedKeys() throws {
        let chunk = try OpenAIWire.decodeChunk(Array(#"{"cho\u0069ces":[{"delta":{"c\u006fntent":"x"}}]}"#.utf8))
        #expect(chunk.text == "x")
        #expect(throws: UpstreamError.self) {
            try OpenAIWire.decodeChunk(Array(#"{"object":"err\u006fr","message":"m"}"#.utf8))
        }
    }

    @Test("declines what is not a plain delta, so the full path can judge it")
    func declines() {
        for text in [
            #"{"error":{"message":"m"}}"#, #"{"object":"error","message":"m"}"#, "[1]", #"{"choices":[1,]}"#,
            #"{"choices":[{"delta":{"content":"x"}}]} trailing"#,
            // Escapes in keys, or in the object's type, are left to the full decoder.
            #"{"cho\u0069ces":[{"delta":{"content":"x"}}]}"#, #"{"object":"err\u006fr","message":"m"}"#,
        ] {
            #expect(Array(text.utf8).withUnsafeBufferPointer { OpenAIWire.scanDelta($0) } == nil, "\(text)")
        }
    }
}

@Suite("Chunk shapes")
struct ChunkShapeTests {
    private static let openAI =
        #"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-4o","choices":[{"index":0,"delta":{"content":TEXT},"logprobs":null,"finish_reason":null}]}"#

    private func chunk(_ template: String, _ text: String) -> [UInt8] {
        Array(template.replacingOccurrences(of: "TEXT", with: JSONValue.string(text).encodedString).utf8)
    }

    @Test("a chunk shaped like the last is read from its text alone")
    func sameShape() throws {
        var shape: ChunkShape?
        let first = try OpenAIWire.decodeChunk(chunk(Self.openAI, "Hel"), shape: &shape)
        #expect(first == StreamChunk(text: "Hel", model: "gpt-4o"))
        let known = try #require(shape)
        for text in ["lo", "", "q\"uote \\ \n é 😀", #"},"finish_reason":"stop"}]}"#] {
            let bytes = chunk(Self.openAI, text)
            #expect(bytes.withUnsafeBufferPointer { known.read($0, readingModel: true) } == StreamChunk(text: text, model: "gpt-4o"))
            #expect(bytes.withUnsafeBufferPointer { known.read($0, readingModel: false) } == StreamChunk(text: text))
        }
        // Anything else around the text, or more than one string where the text was.
        for other in [
            Self.openAI.replacingOccurrences(of: "chatcmpl-1", with: "chatcmpl-2"),
            Self.openAI.replacingOccurrences(of: #""finish_reason":null"#, with: #""finish_reason":"ab""#),
            Self.openAI.replacingOccurrences(of: "TEXT", with: #"TEXT,"content":"x""#),
            Self.openAI.replacingOccurrences(of: "TEXT", with: "null"),
        ] {
            #expect(chunk(other, "a").withUnsafeBufferPointer { known.read($0, readingModel: true) } == nil, "\(other)")
        }
    }

    @Test("a shape that skipped the model is not taken by a reader that wants it")
    func modelSkipped() throws {
        var shape: ChunkShape?
        _ = try OpenAIWire.decodeChunk(chunk(Self.openAI, "a"), readingModel: false, shape: &shape)
        #expect(chunk(Self.openAI, "b").withUnsafeBufferPointer { shape?.read($0, readingModel: true) } == nil)
        #expect(try OpenAIWire.decodeChunk(chunk(Self.openAI, "b"), shape: &shape) == StreamChunk(text: "b", model: "gpt-4o"))
    }

    @Test("a stream of mixed chunks decodes through its shape as each chunk does alone")
    func agreesWithDecodingAlone() throws {
        let templates = [
            Self.openAI,
            Self.openAI.replacingOccurrences(of: "gpt-4o", with: "gpt-4o-mini"),
            #"{"choices":[{"index":0,"delta":{"content":TEXT},"finish_reason":null}],"usage":null}"#,
            #"{"choices":[{"index":0,"delta":{"content":"x","content":TEXT}}]}"#,
            #"{"choices":[{"index":0,"delta":{"content":TEXT,"content":"last"}}]}"#,
            #"{"choices":[{"index":0,"delta":{"content":TEXT}},{"index":1,"delta":{"content":"other"}}]}"#,
            #"{"object":"text_completion","choices":[{"text":TEXT,"index":0,"finish_reason":null}],"model":"m"}"#,
            #" { "choices" : [ { "delta" : { "content" :  TEXT } } ] } "#,
            #"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":null}"#,
            #"{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":TOKENS}}"#,
            #"{"choices":[{"index":0,"delta":{"content":TEXT},"finish_reason":FINISH}],"obfuscation":"OBF"}"#,
            #"{"choices":[{"index":0,"delta":{"content":TEXT}}],"usage":{"prompt_tokens":3,"completion_tokens":TOKENS}}"#,
        ]
        // Same lengths, so that only the bytes tell these apart.
        let finishReasons = ["null", #""ab""#, #""cd""#]
        let texts = ["", "a", " the", "\"", "\\", "line\nbreak", "é", "😀", #"","x":""#, "}]}", "TEXT"]
        var random = SplitMix64(state: 7)
        var shape: ChunkShape?
        var hits = 0
        for _ in 0..<3_000 {
            let template = templates[Int(random.next() % UInt64(templates.count))]
                .replacingOccurrences(of: "TOKENS", with: String(10 + random.next() % 90))
                .replacingOccurrences(of: "OBF", with: String(100 + random.next() % 900))
                .replacingOccurrences(of: "FINISH", with: finishReasons[Int(random.next() % 3)])
            let bytes = chunk(template, texts[Int(random.next() % UInt64(texts.count))])
            let readingModel = random.next() % 4 != 0
            if shape != nil, bytes.withUnsafeBufferPointer({ shape!.read($0, readingModel: readingModel) }) != nil { hits += 1 }
            let alone = try OpenAIWire.decodeChunk(bytes, readingModel: readingModel)
            #expect(try OpenAIWire.decodeChunk(bytes, readingModel: readingModel, shape: &shape) == alone, "\(String(decoding: bytes, as: UTF8.self))")
        }
        #expect(hits > 100)  // the shape was taken, not only declined
    }

    @Test("tool calls: streamed pieces are read on the fast path and put together by index; whole ones relayed")
    func toolCalls() throws {
        let pieces = [
            #"{"id":"c","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":null,"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":""}}]},"finish_reason":null}]}"#,
            #"{"id":"c","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"city\": "}}]},"finish_reason":null}]}"#,
            #"{"id":"c","object":"chat.completion.chunk","model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_2","type":"function","function":{"name":"now","arguments":"{}"}},{"index":0,"function":{"arguments":"\"Paris\"}"}}]},"finish_reason":null}]}"#,
        ]
        var calls = ToolCallAccumulator()
        for piece in pieces {
            let chunk = try OpenAIWire.decodeChunk(Array(piece.utf8))
            #expect(chunk.text.isEmpty)
            calls.add(try #require(chunk.toolCalls))
        }
        #expect(
            calls.toolCalls == [
                ["id": "call_1", "type": "function", "function": ["name": "get_weather", "arguments": #"{"city": "Paris"}"#]],
                ["id": "call_2", "type": "function", "function": ["name": "now", "arguments": "{}"]],
            ])
        let whole = try OpenAIWire.decodeCompletion(
            Array(#"{"choices":[{"index":0,"finish_reason":"tool_calls","message":{"role":"assistant","content":null,"tool_calls":[{"id":"x","type":"function","function":{"name":"f","arguments":"{}"}}]}}]}"#.utf8))
        #expect(whole.text.isEmpty && whole.finishReason == "tool_calls")
        #expect(whole.toolCalls?.arrayValue?.first?.objectValue?["id"] == "x")
    }
}
