import LLMDBus
import LLMDCore
import LLMDEvents
import LLMDMemory
import LLMDOpenAI
import LLMDProtocol
import LLMDStore
import Logging

/// Conversation sessions: stored in SQLite, one turn at a time each, shared by every client.
public final class Sessions: Sendable {
    let database: SessionDatabase
    let lanes = TurnLanes()
    let counters: TokenCounters
    public let billing: Billing
    let settings: LiveSettings
    let bus: EventBus
    let upstream: LazyUpstream
    let state: DaemonState
    /// Since when each session's name has named it, for subscriptions that replay by name.
    public let nameEpochs = SessionNameEpochs()
    let logger: Logger

    /// Opens (creating it) `sessions.db` in the state directory.
    ///
    /// - Throws: ``EventSetupError`` naming the file when it cannot be opened.
    public init(
        stateDirectory: String, configuration: DaemonConfiguration, settings: LiveSettings, bus: EventBus,
        upstream: LazyUpstream, state: DaemonState, logger: Logger
    ) throws(EventSetupError) {
        let path = try privateStateFile("sessions.db", in: stateDirectory)
        do {
            database = try SessionDatabase(path: path)
        } catch {
            throw EventSetupError(message: "cannot open the session database \(path): \(error)")
        }
        if database.interruptedAtOpen > 0 {
            logger.warning("\(database.interruptedAtOpen) turn(s) were cut short by the last stop; marked interrupted")
        }
        counters = TokenCounters(configured: configuration.vocabularyDirectory, logger: logger)
        billing = Billing(database: database, counters: counters, settings: settings, logger: logger)
        self.settings = settings
        self.bus = bus
        self.upstream = upstream
        self.state = state
        self.logger = logger
    }

    /// Counts the stored sessions for `status`, and learns their names' epochs.
    public func start() async throws(ProtocolError) {
        let names = try await database.perform { store throws(StoreError) in try store.sessionNames() }
        state.setSessions(names.count)
        nameEpochs.load(names)
        try await billing.start()
    }

    public func register(in table: inout MethodTable) {
        table.register(.sessionList) { _, _ throws(ProtocolError) in
            let sessions = try await self.database.perform { store throws(StoreError) in try store.list() }
            return ["sessions": .array(sessions.map { .object(Self.describe($0)) })]
        }
        table.register(.sessionCreate) { request, _ throws(ProtocolError) in
            let name = try Self.sessionName(request.params)
            let (session, created, _) = try await self.resolve(
                name, settings: try request.params.object("settings") ?? [:], creating: true, changingExisting: false)
            guard created else {
                throw ProtocolError(.sessionExists, "session '\(name)' exists", detail: ["session": .string(name)])
            }
            return Self.describe(session)
        }
        table.register(.sessionUpdate) { request, _ throws(ProtocolError) in
            let name = try Self.sessionName(request.params)
            guard let changes = try request.params.object("settings") else {
                throw .invalidParam("settings", expected: "an object of session settings", got: request.params["settings"])
            }
            let (session, _, changed) = try await self.resolve(name, settings: changes, creating: false)
            var result = Self.describe(session)
            result["changed"] = .array(changed.map(JSONValue.string))
            return result
        }
        table.register(.sessionShow) { request, _ throws(ProtocolError) in
            try await self.show(request.params)
        }
        table.register(.sessionRename) { request, _ throws(ProtocolError) in
            try await self.rename(request.params)
        }
        table.register(.sessionDelete) { request, _ throws(ProtocolError) in
            try await self.delete(request.params)
        }
        table.register(.sessionExport) { request, _ throws(ProtocolError) in
            try await self.export(request.params)
        }
        table.register(.memoryShow) { request, _ throws(ProtocolError) in
            try await self.showMemory(request.params)
        }
        table.register(.send) { request, context throws(ProtocolError) in
            try await self.send(request, context: context)
        }
    }

    // MARK: - Looking sessions up

    /// The `session` parameter: a name of 1 to 200 bytes without control characters.
    static func sessionName(_ params: JSONObject) throws(ProtocolError) -> String {
        guard let name = try params.string("session"), !name.isEmpty, name.utf8.count <= 200,
            !name.unicodeScalars.contains(where: { $0.value < 0x20 || $0.value == 0x7F })
        else {
            throw .invalidParam(
                "session", expected: "a session name of 1 to 200 bytes without control characters", got: params["session"])
        }
        return name
    }

    /// Refuses a name a new session may not take: one with a character that changes how a
    /// terminal shows what follows it (C1 controls such as U+009B CSI, line and paragraph
    /// separators, bidirectional overrides such as U+202E), which `llmctl sessions` would
    /// print. Names taken before stay usable, so such a session can still be renamed.
    ///
    /// - Parameter field: the parameter the name came in, for the error.
    static func checkNewName(_ name: String, field: String) throws(ProtocolError) {
        let joiners: Set<UInt32> = [0x200C, 0x200D]  // ZWNJ and ZWJ: scripts and emoji need them
        guard
            let bad = name.unicodeScalars.first(where: { scalar in
                switch scalar.properties.generalCategory {
                case .control, .lineSeparator, .paragraphSeparator: return true
                case .format: return !joiners.contains(scalar.value)
                default: return false
                }
            })
        else { return }
        let code = String(bad.value, radix: 16, uppercase: true)
        let written = "U+" + String(repeating: "0", count: max(0, 4 - code.count)) + code
        throw ProtocolError(
            .invalidParams,
            "a session name may not contain \(written), a control or formatting character that changes how "
                + "terminals show text",
            detail: ["field": .string(field), "character": .string(written)])
    }

    func find(_ name: String) async throws(ProtocolError) -> StoredSession {
        guard let session = try await database.perform({ store throws(StoreError) in try store.session(named: name) })
        else { throw Self.notFound(name) }
        return session
    }

    static func notFound(_ name: String) -> ProtocolError {
        ProtocolError(.sessionNotFound, "no session named '\(name)'", detail: ["session": .string(name)])
    }

    /// The session called `name`, created when missing and `creating`, with `changes`
    /// applied (and announced with `session_created` or `session_updated`).
    ///
    /// - Parameter changingExisting: false leaves an existing session as it is.
    /// - Returns: the session, whether it was created, and the settings that changed.
    func resolve(
        _ name: String, settings changes: JSONObject, creating: Bool, changingExisting: Bool = true
    ) async throws(ProtocolError) -> (StoredSession, created: Bool, changed: [String]) {
        if let provider = try? changes.string("provider") { _ = try self.settings.current.provider(named: provider) }
        // The changes are checked against the defaults for a new session, against the
        // stored settings for an existing one.
        var fresh = SessionSettings()
        let validForNew = Result { () throws(ProtocolError) in try fresh.apply(changes) }
        let encoded = JSONValue.object(fresh.json).encodedString
        let now = Timestamp.nowMicroseconds()
        // Checked only when the name is not taken: a session named before stays usable.
        var nameProblem: ProtocolError?
        do throws(ProtocolError) { try Self.checkNewName(name, field: "session") } catch { nameProblem = error }
        let create = creating && (try? validForNew.get()) != nil && nameProblem == nil
        // The count, taken in the same step, is only needed when a session was created.
        let (found, created, count) = try await database.perform { store throws(StoreError) -> (StoredSession?, Bool, Int) in
            if let existing = try store.session(named: name) { return (existing, false, 0) }
            guard create else { return (nil, false, 0) }
            let session = try store.create(name: name, settings: encoded, now: now)
            return (session, true, try store.sessionCount())
        }
        guard var session = found else {
            if creating, case .failure(let error) = validForNew { throw error }
            if creating, let nameProblem { throw nameProblem }
            throw Self.notFound(name)
        }
        if created {
            state.setSessions(count)
            nameEpochs.began(name, at: session.namedAt)
            publish(.sessionCreated, session: name, ["settings": .object(fresh.json)])
            return (session, true, [])
        }
        guard changingExisting else { return (session, false, []) }
        var settings = Self.settings(of: session)
        let before = settings
        let changed = try settings.apply(changes)
        guard !changed.isEmpty else { return (session, false, []) }
        let updated = JSONValue.object(settings.json).encodedString
        let id = session.id
        try await database.perform { store throws(StoreError) in
            try store.updateSettings(sessionID: id, settings: updated, now: now)
        }
        session.settings = updated
        var from: JSONObject = [:]
        for name in changed { from[name] = before.json[name] ?? .null }
        if changed.contains("memory") {
            from["k"] = before.json["k"]
            from["max_tokens"] = before.json["max_tokens"]
        }
        publish(.sessionUpdated, session: name, ["changed": .array(changed.map(JSONValue.string)), "from": .object(from), "settings": .object(settings.json)])
        return (session, false, changed)
    }

    static func settings(of session: StoredSession) -> SessionSettings {
        SessionSettings(stored: (try? JSONParser.parse(session.settings))?.objectValue ?? [:])
    }

    /// A session event outside any turn: a run of its own.
    func publish(_ type: EventType, session: String, _ data: JSONObject) {
        _ = bus.publish(CallbackEvent(name: type.rawValue, session: session, runID: RunID.make(), data: data))
    }

    static func describe(_ session: StoredSession) -> JSONObject {
        [
            "session": .string(session.name),
            "created": .string(Timestamp.rfc3339(milliseconds: session.createdAt / 1000)),
            "last_activity": .string(Timestamp.rfc3339(milliseconds: session.updatedAt / 1000)),
            "last_activity_us": .int(session.updatedAt),
            "turns": .int(Int64(session.turns)), "tokens": .int(session.tokens),
            "settings": .object(settings(of: session).json),
        ]
    }

    // MARK: - Methods

    private func show(_ params: JSONObject) async throws(ProtocolError) -> JSONObject {
        let session = try await find(try Self.sessionName(params))
        let limit = try params.int("turns") ?? 10
        let turns = try await database.perform { store throws(StoreError) in try store.turns(sessionID: session.id) }
        var result = Self.describe(session)
        result["turn_count"] = .int(Int64(turns.count))
        result["recent_turns"] = .array(turns.suffix(Int(max(0, limit))).map { .object(Self.describe($0)) })
        result["busy"] = .bool(lanes.isBusy(session.id))
        if try params.bool("prompt") == true {
            // `{input}` stands for the next message unless one is given.
            let context = try await turnContext(session, input: try params.string("input") ?? "{input}")
            result["prompt"] = .object(context.promptJSON)
        }
        return result
    }

    private func rename(_ params: JSONObject) async throws(ProtocolError) -> JSONObject {
        let session = try await find(try Self.sessionName(params))
        guard let to = try params.string("to"), !to.isEmpty else {
            throw .invalidParam("to", expected: "the new session name", got: params["to"])
        }
        _ = try Self.sessionName(["session": .string(to)])
        try Self.checkNewName(to, field: "to")
        let now = Timestamp.nowMicroseconds()
        let renamed = try await database.perform { store throws(StoreError) -> Bool in
            guard try store.session(named: to) == nil else { return false }
            try store.rename(sessionID: session.id, to: to, now: now)
            return true
        }
        guard renamed else { throw ProtocolError(.sessionExists, "session '\(to)' exists", detail: ["session": .string(to)]) }
        nameEpochs.ended(session.name)
        nameEpochs.began(to, at: now)
        // Under the old name, so those following the session learn where it went.
        publish(.sessionRenamed, session: session.name, ["from": .string(session.name), "to": .string(to)])
        return ["session": .string(to), "renamed_from": .string(session.name)]
    }

    private func delete(_ params: JSONObject) async throws(ProtocolError) -> JSONObject {
        let session = try await find(try Self.sessionName(params))
        guard !lanes.isBusy(session.id) else {
            throw ProtocolError(
                .sessionBusy, "session '\(session.name)' has a turn running; cancel it or wait",
                detail: ["session": .string(session.name)])
        }
        let now = Timestamp.nowMicroseconds()
        let count = try await database.perform { store throws(StoreError) in
            try store.delete(sessionID: session.id, now: now)
            self.database.budgets.withLock { $0.setLimit(nil, for: .session(session.id)) }
            return try store.sessionCount()
        }
        state.setSessions(count)
        nameEpochs.ended(session.name)
        publish(.sessionDeleted, session: session.name, ["turns": .int(Int64(session.turns))])
        return ["deleted": .string(session.name)]
    }

    private func showMemory(_ params: JSONObject) async throws(ProtocolError) -> JSONObject {
        let session = try await find(try Self.sessionName(params))
        let settings = Self.settings(of: session)
        let memory = try await storedMemory(session)
        // Counted as the next turn will count, when its provider still resolves a model.
        let current = self.settings.current
        let model = (try? current.provider(named: settings.provider))?.model(settings.model) ?? ""
        let counter = counters.counter(model: model, models: current.models)
        let strategy = settings.memory
        let history = memory.historyMessages(strategy)
        var result: JSONObject = [
            "session": .string(session.name), "strategy": .string(strategy.name),
            "summary": .string(memory.summary),
            "messages": Self.messagesJSON(memory.messages),
            "history": Self.messagesJSON(history),
            "history_text": .string(memory.historyText(strategy)),
            "history_tokens": .int(Int64(counter.count(history, endpoint: settings.endpoint ?? Endpoint(model: model)))),
            "counted": .object(Self.countedJSON(counter)),
        ]
        if let k = strategy.k { result["k"] = .int(Int64(k)) }
        if let limit = strategy.maxTokens { result["max_tokens"] = .int(Int64(limit)) }
        return result
    }

    private func export(_ params: JSONObject) async throws(ProtocolError) -> JSONObject {
        let session = try await find(try Self.sessionName(params))
        let format = try params.string("format") ?? "json"
        guard format == "json" || format == "markdown" else {
            throw .invalidParam("format", expected: "json or markdown", got: params["format"])
        }
        let (turns, messages) = try await database.perform { store throws(StoreError) in
            (try store.turns(sessionID: session.id), try store.messages(sessionID: session.id))
        }
        if format == "markdown" { return ["markdown": .string(Self.markdown(session, turns: turns))] }
        var result = Self.describe(session)
        result["summary"] = .string(session.summary)
        result["turn_list"] = .array(turns.map { .object(Self.describe($0)) })
        let numbers = Dictionary(uniqueKeysWithValues: turns.map { ($0.id, $0.number) })
        // Every stored message, and whether the memory still holds it.
        result["messages"] = .array(
            messages.map {
                [
                    "turn": .int(Int64(numbers[$0.turnID] ?? 0)), "role": .string($0.role), "content": .string($0.content),
                    "in_memory": .bool($0.inMemory),
                ]
            })
        return result
    }

    static func describe(_ turn: StoredTurn) -> JSONObject {
        var object: JSONObject = [
            "turn": .int(Int64(turn.number)), "run_id": .string(turn.runID), "status": .string(turn.status.rawValue),
            "started": .string(Timestamp.rfc3339(milliseconds: turn.startedAt / 1000)), "input": .string(turn.input),
        ]
        if let ended = turn.endedAt { object["ended"] = .string(Timestamp.rfc3339(milliseconds: ended / 1000)) }
        if let output = turn.output { object["output"] = .string(output) }
        if let error = turn.error { object["error"] = (try? JSONParser.parse(error)) ?? .string(error) }
        if let outcome = turn.outcome, let parsed = (try? JSONParser.parse(outcome))?.objectValue {
            for key in ["usage", "model", "provider", "summaries"] { object[key] = parsed[key] }
        }
        return object
    }

    /// The conversation as Markdown: a heading per turn, the human's words and the reply.
    static func markdown(_ session: StoredSession, turns: [StoredTurn]) -> String {
        let settings = settings(of: session)
        var text = "# \(session.name)\n\n"
        text += "- created: \(Timestamp.rfc3339(milliseconds: session.createdAt / 1000))\n"
        text += "- model: \(settings.model ?? "(provider default)") via \(settings.provider ?? "(default provider)")\n"
        text += "- memory: \(settings.memoryDescription), prompt style: \(settings.promptStyle.rawValue)\n"
        text += "- turns: \(session.turns) completed, \(session.tokens) tokens\n"
        if let system = settings.systemPrompt { text += "\n> System: \(system)\n" }
        for turn in turns {
            text += "\n## Turn \(turn.number)"
            if turn.status != .completed { text += " (\(turn.status.rawValue))" }
            text += "\n\n*\(Timestamp.rfc3339(milliseconds: turn.startedAt / 1000))*\n\n"
            text += "**Human:** \(turn.input)\n\n"
            if let output = turn.output, !output.isEmpty { text += "**AI:** \(output)\n" }
            if turn.status != .completed, let error = turn.error,
                let message = (try? JSONParser.parse(error))?.objectValue?["message"]?.stringValue
            {
                text += "\n*\(message)*\n"
            }
        }
        return text
    }

    static func messagesJSON(_ messages: [ConversationMessage]) -> JSONValue {
        .array(messages.map { ["role": .string($0.role.rawValue), "content": .string($0.content)] })
    }

    static func countedJSON(_ counter: TokenCounter) -> JSONObject {
        ["exact": .bool(counter.isExact), "encoding": counter.encodingName.map(JSONValue.string) ?? .null]
    }
}
