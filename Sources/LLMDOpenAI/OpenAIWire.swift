import LLMDProtocol

/// A chat message as the Chat Completions API takes it.
public struct ChatMessage: Sendable, Equatable {
    public var role: String
    public var content: String

    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// What an LLM call sends: chat messages to `/chat/completions`, or a prompt to the legacy
/// `/completions` endpoint (what LangChain's `OpenAI()` LLM calls).
public enum ModelInput: Sendable, Equatable {
    case messages([ChatMessage])
    case prompt(String)

    /// The endpoint path below the provider's base URL (which ends in `/v1`).
    public var path: String {
        switch self {
        case .messages: "/chat/completions"
        case .prompt: "/completions"
        }
    }
}

/// Sampling and length options; `nil` leaves the server's default.
public struct GenerationOptions: Sendable, Equatable {
    public var temperature: Double?
    public var maximumTokens: Int?
    public var stop: [String] = []
    public var seed: Int64?
    public var topP: Double?
    /// Further members passed to the server as they are (`presence_penalty`, `logit_bias`…).
    public var passThrough: JSONObject = [:]

    public init() {}

    /// The options as request members, the length limit under `maximumTokensName`;
    /// pass-through members last, so they win.
    public func json(maximumTokensName: String = MaximumTokensParameter.maxTokens.rawValue) -> JSONObject {
        var object: JSONObject = [:]
        if let temperature { object["temperature"] = .double(temperature) }
        if let maximumTokens { object[maximumTokensName] = .int(Int64(maximumTokens)) }
        if !stop.isEmpty { object["stop"] = .array(stop.map(JSONValue.string)) }
        if let seed { object["seed"] = .int(seed) }
        if let topP { object["top_p"] = .double(topP) }
        for member in passThrough { object[member.key] = member.value }
        return object
    }
}

/// Which name the server wants for the output length limit: current OpenAI models reject
/// `max_tokens` and take `max_completion_tokens`; most compatible servers know only the former.
public enum MaximumTokensParameter: String, Sendable {
    case maxTokens = "max_tokens"
    case maxCompletionTokens = "max_completion_tokens"
}

/// One request to an OpenAI-compatible server.
public struct CompletionRequest: Sendable, Equatable {
    public var model: String
    public var input: ModelInput
    public var options: GenerationOptions
    public var stream: Bool
    /// Ask for a final usage chunk when streaming (`stream_options.include_usage`); some
    /// servers reject the member, and the provider then turns it off.
    public var includeUsageInStream: Bool
    public var maximumTokensParameter: MaximumTokensParameter

    public init(
        model: String, input: ModelInput, options: GenerationOptions = GenerationOptions(), stream: Bool,
        includeUsageInStream: Bool = true, maximumTokensParameter: MaximumTokensParameter = .maxTokens
    ) {
        self.model = model
        self.input = input
        self.options = options
        self.stream = stream
        self.includeUsageInStream = includeUsageInStream
        self.maximumTokensParameter = maximumTokensParameter
    }

    /// The JSON request body.
    public var body: [UInt8] {
        var object: JSONObject = ["model": .string(model)]
        switch input {
        case .messages(let messages):
            object["messages"] = .array(
                messages.map { ["role": .string($0.role), "content": .string($0.content)] })
        case .prompt(let prompt):
            object["prompt"] = .string(prompt)
        }
        // The legacy endpoint only ever knew max_tokens.
        let name = input.path == "/completions" ? MaximumTokensParameter.maxTokens : maximumTokensParameter
        for member in options.json(maximumTokensName: name.rawValue) { object[member.key] = member.value }
        if stream {
            object["stream"] = true
            if includeUsageInStream { object["stream_options"] = ["include_usage": true] }
        }
        return JSONValue.object(object).encoded
    }
}

extension TokenUsage {
    /// Reads an OpenAI `usage` object; nil when it is absent, null or lacks the counts.
    init?(openAI json: JSONValue?) {
        guard let object = json?.objectValue, let prompt = object["prompt_tokens"]?.intValue,
            let completion = object["completion_tokens"]?.intValue
        else { return nil }
        self.init(
            promptTokens: Int(prompt), completionTokens: Int(completion),
            cachedPromptTokens: Int(object["prompt_tokens_details"]?.objectValue?["cached_tokens"]?.intValue ?? 0),
            reasoningTokens: Int(object["completion_tokens_details"]?.objectValue?["reasoning_tokens"]?.intValue ?? 0),
            source: .provider)
    }
}

/// A complete (non-streamed) answer.
public struct Completion: Sendable, Equatable {
    public var text: String
    public var finishReason: String?
    public var usage: TokenUsage?
    public var model: String?
    /// The message's `tool_calls`, as the server sent them.
    public var toolCalls: JSONValue? = nil
}

/// What one streamed chunk carried.
public struct StreamChunk: Sendable, Equatable {
    /// New text (a chat delta's `content`, or a legacy choice's `text`); empty when none.
    public var text: String
    public var finishReason: String?
    public var usage: TokenUsage?
    public var model: String?
    /// A chat delta's `tool_calls`: pieces of the calls the model makes, by `index`.
    public var toolCalls: JSONValue?

    public init(
        text: String = "", finishReason: String? = nil, usage: TokenUsage? = nil, model: String? = nil, toolCalls: JSONValue? = nil
    ) {
        self.text = text
        self.finishReason = finishReason
        self.usage = usage
        self.model = model
        self.toolCalls = toolCalls
    }
}

/// What a stream's last delta chunk looked like around its text.
///
/// A stream's chunks mostly differ only in their text: the same id, model and choice
/// around it, byte for byte. A chunk whose bytes before and after a single string are
/// those of the last one says what the last one said but for that string, since JSON is
/// read left to right and a string is one token, so that string is all that needs reading.
public struct ChunkShape: Sendable {
    /// The bytes before the text's string, and after it.
    private let head: [UInt8]
    private let tail: [UInt8]
    /// What the last chunk said; its text is replaced.
    private let chunk: StreamChunk
    /// Whether `chunk.model` was read: a reader that wants the model cannot take a
    /// shape that skipped it.
    private let readModel: Bool

    init(_ bytes: UnsafeBufferPointer<UInt8>, text: Range<Int>, chunk: StreamChunk, readModel: Bool) {
        head = Array(bytes[..<text.lowerBound])
        tail = Array(bytes[text.upperBound...])
        self.chunk = chunk
        self.readModel = readModel
    }

    /// The chunk `bytes` says, when it has this shape.
    func read(_ bytes: UnsafeBufferPointer<UInt8>, readingModel: Bool) -> StreamChunk? {
        guard readModel || !readingModel, bytes.count >= head.count + tail.count + 2,
            head.withUnsafeBufferPointer({ UnsafeBufferPointer(rebasing: bytes[..<head.count]).equals($0) }),
            tail.withUnsafeBufferPointer({ UnsafeBufferPointer(rebasing: bytes[(bytes.count - tail.count)...]).equals($0) })
        else { return nil }
        var reader = JSONParser(UnsafeBufferPointer(rebasing: bytes[head.count..<(bytes.count - tail.count)]))
        guard let text = try? reader.readString(), reader.peek() == nil else { return nil }
        // Made, not copied from `chunk` and changed: a copy would copy its text too.
        return StreamChunk(
            text: text, finishReason: chunk.finishReason, usage: chunk.usage, model: readingModel ? chunk.model : nil)
    }
}

/// Decoding of server bodies, for both endpoints.
public enum OpenAIWire {
    /// Decodes the `data` of one stream event (not `[DONE]`), on its own.
    public static func decodeChunk(_ data: [UInt8], readingModel: Bool = true) throws(UpstreamError) -> StreamChunk {
        var shape: ChunkShape?
        return try decodeChunk(data, readingModel: readingModel, shape: &shape)
    }

    /// Decodes the `data` of one stream event (not `[DONE]`) of a stream.
    ///
    /// - Parameters:
    ///   - readingModel: false leaves `model` out of an ordinary delta chunk: a stream
    ///     names the same model in every chunk, and the caller has it already.
    ///   - shape: the stream's last delta around its text, kept by the caller between
    ///     chunks: a chunk that matches it needs only its text read.
    /// - Throws: the server's error when the chunk is an error object (servers send those
    ///   mid-stream on a 200 response), or `upstream.protocol` for anything unreadable.
    public static func decodeChunk(
        _ data: [UInt8], readingModel: Bool = true, shape: inout ChunkShape?
    ) throws(UpstreamError) -> StreamChunk {
        // withUnsafeBytes rethrows untyped errors; carry the typed one out by hand.
        var result: Result<StreamChunk, UpstreamError>!
        data.withUnsafeBytes { bytes in
            result = Result { () throws(UpstreamError) in try decodeChunk(bytes, readingModel: readingModel, shape: &shape) }
        }
        return try result.get()
    }

    /// ``decodeChunk(_:readingModel:shape:)`` of data where it lies: an event's data
    /// as the stream parser lends it.
    package static func decodeChunk(
        _ data: UnsafeRawBufferPointer, readingModel: Bool = true, shape: inout ChunkShape?
    ) throws(UpstreamError) -> StreamChunk {
        // Most chunks are ordinary deltas: read the few members needed without building
        // the whole tree. Anything else (an error object, an unexpected shape) goes the
        // full way below.
        let bytes = data.assumingMemoryBound(to: UInt8.self)
        if let chunk = shape?.read(bytes, readingModel: readingModel) { return chunk }
        if let (chunk, textRange) = scanDelta(bytes, readingModel: readingModel) {
            if let textRange { shape = ChunkShape(bytes, text: textRange, chunk: chunk, readModel: readingModel) }
            return chunk
        }
        let object = try parseObject(Array(bytes))
        if let error = UpstreamError.fromErrorBody(object, status: nil) { throw error }
        let choice = object["choices"]?.arrayValue?.first?.objectValue
        let delta = choice?["delta"]?.objectValue
        let text = delta?["content"]?.stringValue ?? choice?["text"]?.stringValue ?? ""
        return StreamChunk(
            text: text, finishReason: choice?["finish_reason"]?.stringValue, usage: TokenUsage(openAI: object["usage"]),
            model: object["model"]?.stringValue, toolCalls: delta?["tool_calls"].flatMap { $0.isNull ? nil : $0 })
    }

    /// Reads a delta chunk (`{"choices":[{"delta":{"content":…}…}],"model":…,"usage":…}`
    /// or the legacy `{"choices":[{"text":…}]}`); nil when the chunk is anything else.
    ///
    /// Keys are compared as bytes where they lie: this runs once per streamed token.
    ///
    /// - Returns: the chunk, and where the string that gave its text lies (quotes
    ///   included) when one did.
    static func scanDelta(
        _ bytes: UnsafeBufferPointer<UInt8>, readingModel: Bool = true
    ) -> (chunk: StreamChunk, textRange: Range<Int>?)? {
        var reader = JSONParser(bytes)
        var chunk = StreamChunk()
        var textRange: Range<Int>?
        do {
            guard reader.consume(UInt8(ascii: "{")) else { return nil }
            try forEachMember(&reader) { key, reader throws(JSONSyntaxError) in
                if key.equals("choices") {
                    guard reader.consume(UInt8(ascii: "[")) else { throw JSONSyntaxError(offset: reader.index, reason: "choices") }
                    var first = true
                    while !reader.consume(UInt8(ascii: "]")) {
                        if !first { guard reader.consume(UInt8(ascii: ",")) else { throw JSONSyntaxError(offset: reader.index, reason: ",") } }
                        if first, reader.peek() == UInt8(ascii: "{") {
                            try readChoice(&reader, into: &chunk, textRange: &textRange)
                        } else {
                            try reader.skipValue()
                        }
                        first = false
                    }
                } else if readingModel, key.equals("model"), reader.peek() == UInt8(ascii: "\"") {
                    chunk.model = try reader.readString()
                } else if key.equals("usage") {
                    chunk.usage = TokenUsage(openAI: try reader.readValue())
                } else if key.equals("error") {
                    throw JSONSyntaxError(offset: reader.index, reason: "error object")  // the full path reports it
                } else if key.equals("object"), reader.peek() == UInt8(ascii: "\"") {
                    // vLLM's errors say {"object":"error",…}; chunks say chat.completion.chunk.
                    // An escaped value is not one of those: the full path decides.
                    if try reader.readPlainString().equals("error") {
                        throw JSONSyntaxError(offset: reader.index, reason: "error object")
                    }
                } else {
                    try reader.skipValue()
                }
            }
            guard reader.peek() == nil else { return nil }
            return (chunk, textRange)
        } catch {
            return nil
        }
    }

    private static func readChoice(
        _ reader: inout JSONParser, into chunk: inout StreamChunk, textRange: inout Range<Int>?
    ) throws(JSONSyntaxError) {
        func readText(_ reader: inout JSONParser) throws(JSONSyntaxError) {
            let start = reader.index  // at the quote: the caller peeked it
            chunk.text = try reader.readString()
            textRange = start..<reader.index
        }
        _ = reader.consume(UInt8(ascii: "{"))
        try forEachMember(&reader) { key, reader throws(JSONSyntaxError) in
            let next = reader.peek()
            if key.equals("delta"), next == UInt8(ascii: "{") {
                _ = reader.consume(UInt8(ascii: "{"))
                try forEachMember(&reader) { key, reader throws(JSONSyntaxError) in
                    if key.equals("content"), reader.peek() == UInt8(ascii: "\"") {
                        try readText(&reader)
                    } else if key.equals("tool_calls"), reader.peek() == UInt8(ascii: "[") {
                        chunk.toolCalls = try reader.readValue()
                    } else {
                        try reader.skipValue()
                    }
                }
            } else if key.equals("text"), next == UInt8(ascii: "\"") {
                try readText(&reader)
            } else if key.equals("finish_reason"), next == UInt8(ascii: "\"") {
                chunk.finishReason = try reader.readString()
            } else {
                try reader.skipValue()
            }
        }
    }

    /// Calls `body` with each member's key, the reader placed at its value; consumes the
    /// closing brace. The opening brace must already be consumed. A key with escapes
    /// throws, which sends the chunk down the full path.
    private static func forEachMember(
        _ reader: inout JSONParser, _ body: (UnsafeBufferPointer<UInt8>, inout JSONParser) throws(JSONSyntaxError) -> Void
    ) throws(JSONSyntaxError) {
        if reader.consume(UInt8(ascii: "}")) { return }
        repeat {
            let key = try reader.readPlainString()
            guard reader.consume(UInt8(ascii: ":")) else { throw JSONSyntaxError(offset: reader.index, reason: "expected ':'") }
            try body(key, &reader)
        } while reader.consume(UInt8(ascii: ","))
        guard reader.consume(UInt8(ascii: "}")) else { throw JSONSyntaxError(offset: reader.index, reason: "expected '}'") }
    }

    /// The model ids of a `GET /models` body, as OpenAI's API and the compatible servers
    /// (Ollama, llama.cpp's server, vLLM) send it: `{"object":"list","data":[{"id":…},…]}`.
    public static func decodeModelList(_ body: [UInt8]) throws(UpstreamError) -> [String] {
        let object = try parseObject(body)
        if let error = UpstreamError.fromErrorBody(object, status: nil) { throw error }
        guard let data = object["data"]?.arrayValue else {
            throw UpstreamError(.upstreamProtocol, "model list has no 'data' array")
        }
        return data.compactMap { $0.objectValue?["id"]?.stringValue }
    }

    /// Decodes a complete response body.
    public static func decodeCompletion(_ body: [UInt8]) throws(UpstreamError) -> Completion {
        let object = try parseObject(body)
        if let error = UpstreamError.fromErrorBody(object, status: nil) { throw error }
        guard let choice = object["choices"]?.arrayValue?.first?.objectValue else {
            throw UpstreamError(.upstreamProtocol, "response has no choices")
        }
        let message = choice["message"]?.objectValue
        let text = message?["content"]?.stringValue ?? choice["text"]?.stringValue ?? ""
        return Completion(
            text: text, finishReason: choice["finish_reason"]?.stringValue, usage: TokenUsage(openAI: object["usage"]),
            model: object["model"]?.stringValue, toolCalls: message?["tool_calls"].flatMap { $0.isNull ? nil : $0 })
    }

    static func parseObject(_ bytes: [UInt8]) throws(UpstreamError) -> JSONObject {
        let value: JSONValue
        do {
            value = try JSONParser.parse(bytes)
        } catch {
            let preview = String(decoding: bytes.prefix(200), as: UTF8.self)
            throw UpstreamError(.upstreamProtocol, "server sent a body that is not JSON (\(error)): \(preview)")
        }
        guard let object = value.objectValue else {
            throw UpstreamError(.upstreamProtocol, "server sent JSON that is not an object")
        }
        return object
    }
}
