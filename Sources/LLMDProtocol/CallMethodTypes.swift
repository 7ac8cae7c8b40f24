/// A model call's token usage and cost, as replies, `llm_end`, `llm_error` and
/// `usage_recorded` carry it.
public struct CallUsage: JSONObjectConvertible, Equatable {
    public var tokens: TokenUsage
    /// In USD; nil when the model has no price.
    public var cost: Double?
    /// Why the cost is unknown.
    public var costUnknown: String?

    public init(tokens: TokenUsage, cost: Double?, costUnknown: String?) {
        (self.tokens, self.cost, self.costUnknown) = (tokens, cost, costUnknown)
    }

    public init(json: JSONObject) throws(ProtocolError) {
        guard let source = UsageSource(rawValue: try json.requiredString("source")) else {
            throw .invalidParam("source", expected: UsageSource.allCases.map(\.rawValue).joined(separator: ", "), got: json["source"])
        }
        tokens = TokenUsage(
            promptTokens: Int(try json.requiredInt("prompt_tokens")), completionTokens: Int(try json.requiredInt("completion_tokens")),
            cachedPromptTokens: Int(try json.requiredInt("cached_prompt_tokens")),
            reasoningTokens: Int(try json.requiredInt("reasoning_tokens")), source: source, isExact: try json.bool("exact") ?? true,
            encoding: try json.string("encoding"))
        cost = try json.double("cost")
        costUnknown = try json.string("cost_unknown")
    }

    /// `total_tokens` is the sum; `exact` and `encoding` are there for estimates only.
    public var json: JSONObject {
        var object: JSONObject = [
            "prompt_tokens": .int(Int64(tokens.promptTokens)), "completion_tokens": .int(Int64(tokens.completionTokens)),
            "total_tokens": .int(Int64(tokens.totalTokens)), "cached_prompt_tokens": .int(Int64(tokens.cachedPromptTokens)),
            "reasoning_tokens": .int(Int64(tokens.reasoningTokens)), "source": .string(tokens.source.rawValue),
            "cost": cost.map(JSONValue.double) ?? .null,
        ]
        if tokens.source == .estimated {
            object["exact"] = .bool(tokens.isExact)
            object["encoding"] = JSONValue(tokens.encoding)
        }
        object["cost_unknown"] = costUnknown.map(JSONValue.string)
        return object
    }
}

/// A model call's reply: the result of `complete`, and what `llm_end` reports.
public struct CallReply: JSONObjectConvertible, Equatable {
    public var text: String
    public var finishReason: String?
    public var model: String
    public var provider: String
    public var usage: CallUsage
    public var attempts: Int64
    public var durationMilliseconds: Int64
    /// Time to the first token, when one came.
    public var timeToFirstTokenMilliseconds: Int64?
    /// Answered by an offline provider (`Type=fake`), not a model.
    public var offline: Bool
    /// The calls the model made to the request's tools, as OpenAI's `message.tool_calls`.
    public var toolCalls: JSONValue?

    public init(
        text: String, finishReason: String?, model: String, provider: String, usage: CallUsage, attempts: Int64,
        durationMilliseconds: Int64, timeToFirstTokenMilliseconds: Int64?, offline: Bool, toolCalls: JSONValue? = nil
    ) {
        self.toolCalls = toolCalls
        self.text = text
        self.finishReason = finishReason
        self.model = model
        self.provider = provider
        self.usage = usage
        self.attempts = attempts
        self.durationMilliseconds = durationMilliseconds
        self.timeToFirstTokenMilliseconds = timeToFirstTokenMilliseconds
        self.offline = offline
    }

    public init(json: JSONObject) throws(ProtocolError) {
        text = try json.requiredString("text")
        finishReason = try json.string("finish_reason")
        model = try json.requiredString("model")
        provider = try json.requiredString("provider")
        usage = try CallUsage(json: json.requiredObject("usage"))
        attempts = try json.requiredInt("attempts")
        durationMilliseconds = try json.requiredInt("duration_ms")
        timeToFirstTokenMilliseconds = try json.int("ttft_ms")
        offline = try json.bool("offline") ?? false
        toolCalls = json["tool_calls"]
    }

    public var json: JSONObject {
        var object: JSONObject = [
            "text": .string(text), "finish_reason": JSONValue(finishReason), "model": .string(model),
            "provider": .string(provider), "usage": .object(usage.json), "attempts": .int(attempts),
            "duration_ms": .int(durationMilliseconds),
        ]
        object["ttft_ms"] = timeToFirstTokenMilliseconds.map(JSONValue.int)
        if offline { object["offline"] = true }
        object["tool_calls"] = toolCalls
        return object
    }
}

/// The sampling parameters `complete` and `send` pass to the model.
public struct GenerationParams: Sendable, Equatable {
    public enum Key: String, CaseIterable {
        case temperature, topP = "top_p", maxTokens = "max_tokens", stop, seed, extra
    }

    public var temperature: Double?
    public var topP: Double?
    public var maxTokens: Int64?
    /// Given as a string or an array of strings.
    public var stop: [String]?
    public var seed: Int64?
    /// Members passed to the provider as they are.
    public var extra: JSONObject?

    public init() {}

    public init(json: JSONObject) throws(ProtocolError) {
        temperature = try json.double(Key.temperature)
        maxTokens = try json.int(Key.maxTokens)
        seed = try json.int(Key.seed)
        topP = try json.double(Key.topP)
        switch json[Key.stop] {
        case nil, .null?: stop = nil
        case .string(let one)?: stop = [one]
        case .array(let stops)? where stops.allSatisfy({ $0.stringValue != nil }): stop = stops.compactMap(\.stringValue)
        case let other?: throw .invalidParam("stop", expected: "a string or an array of strings", got: other)
        }
        extra = try json.object(Key.extra)
    }

    public func add(to object: inout JSONObject) {
        object[Key.temperature] = temperature.map(JSONValue.double)
        object[Key.topP] = topP.map(JSONValue.double)
        object[Key.maxTokens] = maxTokens.map(JSONValue.int)
        object[Key.stop] = stop.map { .array($0.map(JSONValue.string)) }
        object[Key.seed] = seed.map(JSONValue.int)
        object[Key.extra] = extra.map(JSONValue.object)
    }
}

/// `complete`: one LLM call.
public enum CompleteMethod: TypedMethod {
    public static let method = ProtocolMethod.complete

    public struct Params: MethodParameters, Equatable {
        public enum Key: String, CaseIterable {
            case provider, model, endpoint, stream, session, tags, metadata, scopes, detach
        }

        public static var parameterNames: [String] {
            (Key.allCases.map(\.rawValue) + PromptInput.Key.allCases.map(\.rawValue) + GenerationParams.Key.allCases.map(\.rawValue))
        }

        public var provider: String?
        public var model: String?
        public var input: PromptInput
        /// `chat` or `completions`, when the caller names one.
        public var endpoint: String?
        public var stream: Bool
        public var generation: GenerationParams
        /// A label for the call's events and ledger row; no session is stored.
        public var session: String?
        public var tags: [String]
        public var metadata: JSONObject
        public var scopes: [String]
        /// Whether the call goes on when the connection closes.
        public var detach: Bool

        public init(
            provider: String? = nil, model: String? = nil, input: PromptInput, endpoint: String? = nil, stream: Bool = true,
            generation: GenerationParams = GenerationParams(), session: String? = nil, tags: [String] = [],
            metadata: JSONObject = [:], scopes: [String] = [], detach: Bool = false
        ) {
            self.provider = provider
            self.model = model
            self.input = input
            self.endpoint = endpoint
            self.stream = stream
            self.generation = generation
            self.session = session
            self.tags = tags
            self.metadata = metadata
            self.scopes = scopes
            self.detach = detach
        }

        public init(json: JSONObject) throws(ProtocolError) {
            provider = try json.string(Key.provider)
            model = try json.string(Key.model)
            endpoint = try json.string(Key.endpoint)
            input = try PromptInput(json: json)
            generation = try GenerationParams(json: json)
            stream = try json.bool(Key.stream) ?? true
            session = try json.string(Key.session)
            tags = try json.strings(Key.tags) ?? []
            metadata = try json.object(Key.metadata) ?? [:]
            scopes = try json.strings(Key.scopes) ?? []
            detach = try json.bool(Key.detach) ?? false
        }

        public var json: JSONObject {
            var object = JSONObject([
                Key.provider: provider.map(JSONValue.string), Key.model: model.map(JSONValue.string),
                Key.endpoint: endpoint.map(JSONValue.string), Key.stream: stream ? nil : false,
                Key.session: session.map(JSONValue.string), Key.tags: tags.isEmpty ? nil : .array(tags.map(JSONValue.string)),
                Key.metadata: metadata.isEmpty ? nil : .object(metadata),
                Key.scopes: scopes.isEmpty ? nil : .array(scopes.map(JSONValue.string)), Key.detach: detach ? true : nil,
            ])
            input.add(to: &object)
            generation.add(to: &object)
            return object
        }
    }

    public struct Result: JSONObjectConvertible, Equatable {
        public var reply: CallReply
        /// The chain run the call ran in.
        public var runID: String
        /// The ledger write, with `llmd --timings` only.
        public var recordMicroseconds: Int64?

        public init(reply: CallReply, runID: String, recordMicroseconds: Int64? = nil) {
            (self.reply, self.runID, self.recordMicroseconds) = (reply, runID, recordMicroseconds)
        }

        public init(json: JSONObject) throws(ProtocolError) {
            reply = try CallReply(json: json)
            runID = try json.requiredString("run_id")
            recordMicroseconds = try json.int("record_us")
        }

        public var json: JSONObject {
            var object = reply.json
            object["run_id"] = .string(runID)
            object["record_us"] = recordMicroseconds.map(JSONValue.int)
            return object
        }
    }
}

/// What a turn did to its session's memory: `memory` of `send`'s result and of `memory_updated`.
public struct MemoryReport: JSONObjectConvertible, Equatable {
    public var strategy: String
    public var keptMessages: Int64
    public var dropped: Int64
    public var leftWindow: Int64
    public var summarized: Int64
    public var historyTokens: Int64
    public var counted: TokenCounting
    public var k: Int64?
    public var maxTokens: Int64?

    public init(
        strategy: String, keptMessages: Int64, dropped: Int64, leftWindow: Int64, summarized: Int64, historyTokens: Int64,
        counted: TokenCounting, k: Int64?, maxTokens: Int64?
    ) {
        self.strategy = strategy
        self.keptMessages = keptMessages
        self.dropped = dropped
        self.leftWindow = leftWindow
        self.summarized = summarized
        self.historyTokens = historyTokens
        self.counted = counted
        self.k = k
        self.maxTokens = maxTokens
    }

    public init(json: JSONObject) throws(ProtocolError) {
        strategy = try json.requiredString("strategy")
        keptMessages = try json.requiredInt("kept_messages")
        dropped = try json.requiredInt("dropped")
        leftWindow = try json.requiredInt("left_window")
        summarized = try json.requiredInt("summarized")
        historyTokens = try json.requiredInt("history_tokens")
        counted = try TokenCounting(json: json.requiredObject("counted"))
        k = try json.int("k")
        maxTokens = try json.int("max_tokens")
    }

    public var json: JSONObject {
        var object: JSONObject = [
            "strategy": .string(strategy), "kept_messages": .int(keptMessages), "dropped": .int(dropped),
            "left_window": .int(leftWindow), "summarized": .int(summarized), "history_tokens": .int(historyTokens),
            "counted": .object(counted.json),
        ]
        object["k"] = k.map(JSONValue.int)
        object["max_tokens"] = maxTokens.map(JSONValue.int)
        return object
    }
}

/// `send`: one conversation turn on a session, created on first use.
public enum SendMethod: TypedMethod {
    public static let method = ProtocolMethod.send

    public struct Params: MethodParameters, Equatable {
        public enum Key: String, CaseIterable { case session, text, settings, stream, tags, metadata, scopes, events, detach }

        public static var parameterNames: [String] {
            Key.allCases.map(\.rawValue) + GenerationParams.Key.allCases.map(\.rawValue)
        }

        public var session: String
        public var text: String
        /// Settings to apply first, or to create the session with.
        public var settings: JSONObject
        public var stream: Bool
        public var generation: GenerationParams
        public var tags: [String]
        public var metadata: JSONObject
        public var scopes: [String]
        /// Whether the turn's events come to this connection as request callbacks.
        public var events: Bool
        public var detach: Bool

        public init(
            session: String, text: String, settings: JSONObject = [:], stream: Bool = true,
            generation: GenerationParams = GenerationParams(), tags: [String] = [], metadata: JSONObject = [:],
            scopes: [String] = [], events: Bool = true, detach: Bool = false
        ) {
            self.session = session
            self.text = text
            self.settings = settings
            self.stream = stream
            self.generation = generation
            self.tags = tags
            self.metadata = metadata
            self.scopes = scopes
            self.events = events
            self.detach = detach
        }

        public init(json: JSONObject) throws(ProtocolError) {
            session = try SessionName.read(json, Key.session)
            guard let text = try json.string(Key.text), !text.isEmpty else {
                throw .invalidParam("text", expected: "the message, a non-empty string", got: json[Key.text])
            }
            self.text = text
            generation = try GenerationParams(json: json)
            stream = try json.bool(Key.stream) ?? true
            tags = try json.strings(Key.tags) ?? []
            metadata = try json.object(Key.metadata) ?? [:]
            events = try json.bool(Key.events) ?? true
            scopes = try json.strings(Key.scopes) ?? []
            settings = try json.object(Key.settings) ?? [:]
            detach = try json.bool(Key.detach) ?? false
        }

        public var json: JSONObject {
            var object = JSONObject([
                Key.session: .string(session), Key.text: .string(text), Key.settings: settings.isEmpty ? nil : .object(settings),
                Key.stream: stream ? nil : false, Key.tags: tags.isEmpty ? nil : .array(tags.map(JSONValue.string)),
                Key.metadata: metadata.isEmpty ? nil : .object(metadata),
                Key.scopes: scopes.isEmpty ? nil : .array(scopes.map(JSONValue.string)), Key.events: events ? nil : false,
                Key.detach: detach ? true : nil,
            ])
            generation.add(to: &object)
            return object
        }
    }

    public struct Result: JSONObjectConvertible, Equatable {
        public var reply: CallReply
        public var runID: String
        public var memory: MemoryReport
        /// The summarising call's error, when it failed and the messages stayed unfolded.
        public var summaryError: JSONObject?
        /// The summarising calls' usage.
        public var summaryUsage: [CallUsage]
        /// The prompt's tokens as llmd counted them before the call.
        public var promptTokensCounted: Int64
        /// The turn's durable commit, with `llmd --timings` only.
        public var commitMicroseconds: Int64?
        public var session: String
        public var turn: Int64
        public var created: Bool
        public var changed: [String]
        public var settings: JSONObject

        public init(
            reply: CallReply, runID: String, memory: MemoryReport, summaryError: JSONObject?, summaryUsage: [CallUsage],
            promptTokensCounted: Int64, commitMicroseconds: Int64?, session: String, turn: Int64, created: Bool,
            changed: [String], settings: JSONObject
        ) {
            self.reply = reply
            self.runID = runID
            self.memory = memory
            self.summaryError = summaryError
            self.summaryUsage = summaryUsage
            self.promptTokensCounted = promptTokensCounted
            self.commitMicroseconds = commitMicroseconds
            self.session = session
            self.turn = turn
            self.created = created
            self.changed = changed
            self.settings = settings
        }

        public init(json: JSONObject) throws(ProtocolError) {
            reply = try CallReply(json: json)
            runID = try json.requiredString("run_id")
            memory = try MemoryReport(json: json.requiredObject("memory"))
            summaryError = try json.object("summary_error")
            summaryUsage = try json.objects("summary_usage") ?? []
            promptTokensCounted = try json.requiredInt("prompt_tokens_counted")
            commitMicroseconds = try json.int("commit_us")
            session = try json.requiredString("session")
            turn = try json.requiredInt("turn")
            created = try json.requiredBool("created")
            changed = try json.strings("changed") ?? []
            settings = try json.requiredObject("settings")
        }

        public var json: JSONObject {
            var object = reply.json
            object["run_id"] = .string(runID)
            object["memory"] = .object(memory.json)
            object["summary_error"] = summaryError.map(JSONValue.object)
            if !summaryUsage.isEmpty { object["summary_usage"] = .objects(summaryUsage) }
            object["prompt_tokens_counted"] = .int(promptTokensCounted)
            object["commit_us"] = commitMicroseconds.map(JSONValue.int)
            object["session"] = .string(session)
            object["turn"] = .int(turn)
            object["created"] = .bool(created)
            object["changed"] = .array(changed.map(JSONValue.string))
            object["settings"] = .object(settings)
            return object
        }
    }
}
