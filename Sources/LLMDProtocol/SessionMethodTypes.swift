/// The `session` parameter: a name of 1 to 200 bytes without control characters.
public enum SessionName {
    public static func validated(_ name: String?, key: String = "session", got: JSONValue?) throws(ProtocolError) -> String {
        guard let name, !name.isEmpty, name.utf8.count <= 200,
            !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F })
        else {
            throw .invalidParam(key, expected: "a session name of 1 to 200 bytes without control characters", got: got)
        }
        return name
    }

    /// The member `key` of `json`, validated.
    static func read(_ json: JSONObject, _ key: some RawRepresentable<String>) throws(ProtocolError) -> String {
        try validated(try json.string(key), key: "session", got: json[key])
    }
}

/// Parameters naming one session and nothing else.
public struct SessionParams: MethodParameters, Equatable {
    public enum Key: String, CaseIterable { case session }
    public var session: String

    public init(session: String) { self.session = session }

    public init(json: JSONObject) throws(ProtocolError) {
        session = try SessionName.read(json, Key.session)
    }

    public var json: JSONObject { [Key.session.rawValue: .string(session)] }
}

/// How token counts were made: by the model's own tokenizer, or estimated.
public struct TokenCounting: JSONObjectConvertible, Equatable {
    public var exact: Bool
    /// The tokenizer's encoding, nil when estimated.
    public var encoding: String?

    public init(exact: Bool, encoding: String?) { (self.exact, self.encoding) = (exact, encoding) }

    public init(json: JSONObject) throws(ProtocolError) {
        exact = try json.requiredBool("exact")
        encoding = try json.string("encoding")
    }

    public var json: JSONObject { ["exact": .bool(exact), "encoding": JSONValue(encoding)] }
}

/// A stored session as `session.list`, `session.create` and others describe it.
public struct SessionDescription: JSONObjectConvertible, Equatable {
    public var session: String
    /// RFC 3339, with milliseconds.
    public var created: String
    public var lastActivity: String
    public var lastActivityMicroseconds: Int64
    /// Completed turns.
    public var turns: Int64
    public var tokens: Int64
    /// The session settings, as llmd-protocol(7) lists them.
    public var settings: JSONObject

    public init(
        session: String, created: String, lastActivity: String, lastActivityMicroseconds: Int64, turns: Int64, tokens: Int64,
        settings: JSONObject
    ) {
        self.session = session
        self.created = created
        self.lastActivity = lastActivity
        self.lastActivityMicroseconds = lastActivityMicroseconds
        self.turns = turns
        self.tokens = tokens
        self.settings = settings
    }

    public init(json: JSONObject) throws(ProtocolError) {
        session = try json.requiredString("session")
        created = try json.requiredString("created")
        lastActivity = try json.requiredString("last_activity")
        lastActivityMicroseconds = try json.requiredInt("last_activity_us")
        turns = try json.requiredInt("turns")
        tokens = try json.requiredInt("tokens")
        settings = try json.requiredObject("settings")
    }

    public var json: JSONObject {
        [
            "session": .string(session), "created": .string(created), "last_activity": .string(lastActivity),
            "last_activity_us": .int(lastActivityMicroseconds), "turns": .int(turns), "tokens": .int(tokens),
            "settings": .object(settings),
        ]
    }
}

/// A stored turn, as `session.show` and `session.export` list them.
public struct TurnRecord: JSONObjectConvertible, Equatable {
    public var turn: Int64
    public var runID: String
    /// `running`, `completed`, `failed`, `cancelled` or `interrupted`.
    public var status: String
    public var started: String
    public var input: String
    public var ended: String?
    public var output: String?
    /// The error object of a turn that did not complete.
    public var error: JSONValue?
    /// Of a completed turn: its call's usage, model, provider, and summarising calls'
    /// usage, as the turn stored them.
    public var usage: JSONObject?
    public var model: String?
    public var provider: String?
    public var summaries: JSONValue?

    public init(turn: Int64, runID: String, status: String, started: String, input: String) {
        (self.turn, self.runID, self.status, self.started, self.input) = (turn, runID, status, started, input)
    }

    public init(json: JSONObject) throws(ProtocolError) {
        turn = try json.requiredInt("turn")
        runID = try json.requiredString("run_id")
        status = try json.requiredString("status")
        started = try json.requiredString("started")
        input = try json.requiredString("input")
        ended = try json.string("ended")
        output = try json.string("output")
        error = json["error"]
        usage = try json.object("usage")
        model = try json.string("model")
        provider = try json.string("provider")
        summaries = json["summaries"]
    }

    public var json: JSONObject {
        var object: JSONObject = [
            "turn": .int(turn), "run_id": .string(runID), "status": .string(status), "started": .string(started),
            "input": .string(input),
        ]
        object["ended"] = ended.map(JSONValue.string)
        object["output"] = output.map(JSONValue.string)
        object["error"] = error
        object["usage"] = usage.map(JSONValue.object)
        object["model"] = model.map(JSONValue.string)
        object["provider"] = provider.map(JSONValue.string)
        object["summaries"] = summaries
        return object
    }
}

// MARK: - session.*

/// `session.list`: every stored session.
public enum SessionListMethod: TypedMethod {
    public static let method = ProtocolMethod.sessionList
    public typealias Params = NoParams

    public struct Result: JSONObjectConvertible, Equatable {
        public var sessions: [SessionDescription]

        public init(sessions: [SessionDescription]) { self.sessions = sessions }

        public init(json: JSONObject) throws(ProtocolError) {
            sessions = try json.objects("sessions") ?? []
        }

        public var json: JSONObject { ["sessions": .objects(sessions)] }
    }
}

/// `session.create`: a new session with its settings.
public enum SessionCreateMethod: TypedMethod {
    public static let method = ProtocolMethod.sessionCreate
    public typealias Result = SessionDescription

    public struct Params: MethodParameters, Equatable {
        public enum Key: String, CaseIterable { case session, settings }
        public var session: String
        public var settings: JSONObject

        public init(session: String, settings: JSONObject = [:]) { (self.session, self.settings) = (session, settings) }

        public init(json: JSONObject) throws(ProtocolError) {
            session = try SessionName.read(json, Key.session)
            settings = try json.object(Key.settings) ?? [:]
        }

        public var json: JSONObject { JSONObject([Key.session: .string(session), Key.settings: .object(settings)]) }
    }
}

/// `session.update`: changes a session's settings.
public enum SessionUpdateMethod: TypedMethod {
    public static let method = ProtocolMethod.sessionUpdate

    public struct Params: MethodParameters, Equatable {
        public enum Key: String, CaseIterable { case session, settings }
        public var session: String
        public var settings: JSONObject

        public init(session: String, settings: JSONObject) { (self.session, self.settings) = (session, settings) }

        public init(json: JSONObject) throws(ProtocolError) {
            session = try SessionName.read(json, Key.session)
            guard let settings = try json.object(Key.settings) else {
                throw .invalidParam("settings", expected: "an object of session settings", got: json[Key.settings])
            }
            self.settings = settings
        }

        public var json: JSONObject { JSONObject([Key.session: .string(session), Key.settings: .object(settings)]) }
    }

    public struct Result: JSONObjectConvertible, Equatable {
        public var session: SessionDescription
        /// The settings that changed, by name.
        public var changed: [String]

        public init(session: SessionDescription, changed: [String]) { (self.session, self.changed) = (session, changed) }

        public init(json: JSONObject) throws(ProtocolError) {
            session = try SessionDescription(json: json)
            changed = try json.strings("changed") ?? []
        }

        public var json: JSONObject {
            var object = session.json
            object["changed"] = .array(changed.map(JSONValue.string))
            return object
        }
    }
}

/// Exactly what a session's next turn would send.
public struct NextPrompt: JSONObjectConvertible, Equatable {
    public var endpoint: String
    public var model: String
    public var provider: String
    public var tokens: Int64
    public var counted: TokenCounting
    /// The chat messages, or the completion prompt: one of the two.
    public var messages: [PromptMessage]?
    public var prompt: String?
    public var contextWindow: Int64?

    public init(
        endpoint: String, model: String, provider: String, tokens: Int64, counted: TokenCounting, messages: [PromptMessage]?,
        prompt: String?, contextWindow: Int64?
    ) {
        self.endpoint = endpoint
        self.model = model
        self.provider = provider
        self.tokens = tokens
        self.counted = counted
        self.messages = messages
        self.prompt = prompt
        self.contextWindow = contextWindow
    }

    public init(json: JSONObject) throws(ProtocolError) {
        endpoint = try json.requiredString("endpoint")
        model = try json.requiredString("model")
        provider = try json.requiredString("provider")
        tokens = try json.requiredInt("tokens")
        counted = try TokenCounting(json: json.requiredObject("counted"))
        messages = try json.objects("messages")
        prompt = try json.string("prompt")
        contextWindow = try json.int("context_window")
    }

    public var json: JSONObject {
        var object: JSONObject = [
            "endpoint": .string(endpoint), "model": .string(model), "provider": .string(provider), "tokens": .int(tokens),
            "counted": .object(counted.json), "context_window": contextWindow.map(JSONValue.int) ?? .null,
        ]
        object["messages"] = messages.map(JSONValue.objects)
        object["prompt"] = prompt.map(JSONValue.string)
        return object
    }
}

/// `session.show`: a session, its recent turns, and optionally its next prompt.
public enum SessionShowMethod: TypedMethod {
    public static let method = ProtocolMethod.sessionShow

    public struct Params: MethodParameters, Equatable {
        public enum Key: String, CaseIterable { case session, turns, prompt, input }
        public var session: String
        /// How many recent turns to list; nil for 10.
        public var turns: Int64?
        /// Whether to build the next turn's prompt.
        public var prompt: Bool
        /// The next message for `prompt`; nil for a `{input}` placeholder.
        public var input: String?

        public init(session: String, turns: Int64? = nil, prompt: Bool = false, input: String? = nil) {
            (self.session, self.turns, self.prompt, self.input) = (session, turns, prompt, input)
        }

        public init(json: JSONObject) throws(ProtocolError) {
            session = try SessionName.read(json, Key.session)
            turns = try json.int(Key.turns)
            prompt = try json.bool(Key.prompt) ?? false
            input = try json.string(Key.input)
        }

        public var json: JSONObject {
            JSONObject([
                Key.session: .string(session), Key.turns: turns.map(JSONValue.int), Key.prompt: prompt ? true : nil,
                Key.input: input.map(JSONValue.string),
            ])
        }
    }

    public struct Result: JSONObjectConvertible, Equatable {
        public var session: SessionDescription
        /// All turns, running and failed ones included.
        public var turnCount: Int64
        public var recentTurns: [TurnRecord]
        /// Whether a turn runs now.
        public var busy: Bool
        public var prompt: NextPrompt?

        public init(session: SessionDescription, turnCount: Int64, recentTurns: [TurnRecord], busy: Bool, prompt: NextPrompt?) {
            (self.session, self.turnCount, self.recentTurns, self.busy, self.prompt) = (session, turnCount, recentTurns, busy, prompt)
        }

        public init(json: JSONObject) throws(ProtocolError) {
            session = try SessionDescription(json: json)
            turnCount = try json.requiredInt("turn_count")
            recentTurns = try json.objects("recent_turns") ?? []
            busy = try json.requiredBool("busy")
            prompt = try json.object("prompt").map { object throws(ProtocolError) in try NextPrompt(json: object) }
        }

        public var json: JSONObject {
            var object = session.json
            object["turn_count"] = .int(turnCount)
            object["recent_turns"] = .objects(recentTurns)
            object["busy"] = .bool(busy)
            object["prompt"] = prompt.map { .object($0.json) }
            return object
        }
    }
}

/// `session.rename`.
public enum SessionRenameMethod: TypedMethod {
    public static let method = ProtocolMethod.sessionRename

    public struct Params: MethodParameters, Equatable {
        public enum Key: String, CaseIterable { case session, to }
        public var session: String
        public var to: String

        public init(session: String, to: String) { (self.session, self.to) = (session, to) }

        public init(json: JSONObject) throws(ProtocolError) {
            session = try SessionName.read(json, Key.session)
            guard let to = try json.string(Key.to), !to.isEmpty else {
                throw .invalidParam("to", expected: "the new session name", got: json[Key.to])
            }
            // Reported as `session`, as the name a session may take.
            self.to = try SessionName.validated(to, got: .string(to))
        }

        public var json: JSONObject { JSONObject([Key.session: .string(session), Key.to: .string(to)]) }
    }

    public struct Result: JSONObjectConvertible, Equatable {
        public var session: String
        public var renamedFrom: String

        public init(session: String, renamedFrom: String) { (self.session, self.renamedFrom) = (session, renamedFrom) }

        public init(json: JSONObject) throws(ProtocolError) {
            session = try json.requiredString("session")
            renamedFrom = try json.requiredString("renamed_from")
        }

        public var json: JSONObject { ["session": .string(session), "renamed_from": .string(renamedFrom)] }
    }
}

/// `session.delete`.
public enum SessionDeleteMethod: TypedMethod {
    public static let method = ProtocolMethod.sessionDelete
    public typealias Params = SessionParams

    public struct Result: JSONObjectConvertible, Equatable {
        public var deleted: String

        public init(deleted: String) { self.deleted = deleted }

        public init(json: JSONObject) throws(ProtocolError) {
            deleted = try json.requiredString("deleted")
        }

        public var json: JSONObject { ["deleted": .string(deleted)] }
    }
}

/// A stored message, as `session.export` lists it.
public struct ExportedMessage: JSONObjectConvertible, Equatable {
    /// The turn's number; 0 when unknown.
    public var turn: Int64
    public var role: String
    public var content: String
    /// Whether the session's memory still holds it.
    public var inMemory: Bool

    public init(turn: Int64, role: String, content: String, inMemory: Bool) {
        (self.turn, self.role, self.content, self.inMemory) = (turn, role, content, inMemory)
    }

    public init(json: JSONObject) throws(ProtocolError) {
        turn = try json.requiredInt("turn")
        role = try json.requiredString("role")
        content = try json.requiredString("content")
        inMemory = try json.requiredBool("in_memory")
    }

    public var json: JSONObject {
        ["turn": .int(turn), "role": .string(role), "content": .string(content), "in_memory": .bool(inMemory)]
    }
}

/// `session.export`: a session's whole history, as JSON or Markdown.
public enum SessionExportMethod: TypedMethod {
    public static let method = ProtocolMethod.sessionExport

    public enum Format: String, Sendable { case json, markdown }

    public struct Params: MethodParameters, Equatable {
        public enum Key: String, CaseIterable { case session, format }
        public var session: String
        public var format: Format

        public init(session: String, format: Format = .json) { (self.session, self.format) = (session, format) }

        public init(json: JSONObject) throws(ProtocolError) {
            session = try SessionName.read(json, Key.session)
            guard let format = Format(rawValue: try json.string(Key.format) ?? "json") else {
                throw .invalidParam("format", expected: "json or markdown", got: json[Key.format])
            }
            self.format = format
        }

        public var json: JSONObject { JSONObject([Key.session: .string(session), Key.format: .string(format.rawValue)]) }
    }

    public enum Result: JSONObjectConvertible, Equatable {
        case markdown(String)
        case json(SessionExport)

        public init(json: JSONObject) throws(ProtocolError) {
            if let markdown = try json.string("markdown") {
                self = .markdown(markdown)
            } else {
                self = .json(try SessionExport(json: json))
            }
        }

        public var json: JSONObject {
            switch self {
            case .markdown(let text): ["markdown": .string(text)]
            case .json(let export): export.json
            }
        }
    }
}

/// A session's whole history: its turns and every stored message.
public struct SessionExport: JSONObjectConvertible, Equatable {
    public var session: SessionDescription
    /// The memory's running summary.
    public var summary: String
    public var turns: [TurnRecord]
    public var messages: [ExportedMessage]

    public init(session: SessionDescription, summary: String, turns: [TurnRecord], messages: [ExportedMessage]) {
        (self.session, self.summary, self.turns, self.messages) = (session, summary, turns, messages)
    }

    public init(json: JSONObject) throws(ProtocolError) {
        session = try SessionDescription(json: json)
        summary = try json.requiredString("summary")
        turns = try json.objects("turn_list") ?? []
        messages = try json.objects("messages") ?? []
    }

    public var json: JSONObject {
        var object = session.json
        object["summary"] = .string(summary)
        object["turn_list"] = .objects(turns)
        object["messages"] = .objects(messages)
        return object
    }
}

/// `memory.show`: what a session remembers, and what its next prompt keeps of it.
public enum MemoryShowMethod: TypedMethod {
    public static let method = ProtocolMethod.memoryShow
    public typealias Params = SessionParams

    public struct Result: JSONObjectConvertible, Equatable {
        public var session: String
        public var strategy: String
        public var summary: String
        public var messages: [PromptMessage]
        /// What the next prompt keeps of `messages` and the summary.
        public var history: [PromptMessage]
        public var historyText: String
        public var historyTokens: Int64
        public var counted: TokenCounting
        public var k: Int64?
        public var maxTokens: Int64?

        public init(
            session: String, strategy: String, summary: String, messages: [PromptMessage], history: [PromptMessage],
            historyText: String, historyTokens: Int64, counted: TokenCounting, k: Int64?, maxTokens: Int64?
        ) {
            self.session = session
            self.strategy = strategy
            self.summary = summary
            self.messages = messages
            self.history = history
            self.historyText = historyText
            self.historyTokens = historyTokens
            self.counted = counted
            self.k = k
            self.maxTokens = maxTokens
        }

        public init(json: JSONObject) throws(ProtocolError) {
            session = try json.requiredString("session")
            strategy = try json.requiredString("strategy")
            summary = try json.requiredString("summary")
            messages = try json.objects("messages") ?? []
            history = try json.objects("history") ?? []
            historyText = try json.requiredString("history_text")
            historyTokens = try json.requiredInt("history_tokens")
            counted = try TokenCounting(json: json.requiredObject("counted"))
            k = try json.int("k")
            maxTokens = try json.int("max_tokens")
        }

        public var json: JSONObject {
            var object: JSONObject = [
                "session": .string(session), "strategy": .string(strategy), "summary": .string(summary),
                "messages": .objects(messages), "history": .objects(history), "history_text": .string(historyText),
                "history_tokens": .int(historyTokens), "counted": .object(counted.json),
            ]
            object["k"] = k.map(JSONValue.int)
            object["max_tokens"] = maxTokens.map(JSONValue.int)
            return object
        }
    }
}
