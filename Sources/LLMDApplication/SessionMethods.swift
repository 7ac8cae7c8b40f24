import LLMDBus
import LLMDCore
import LLMDEvents
import LLMDMemory
import LLMDMetrics
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
        upstream: LazyUpstream, state: DaemonState, metrics: DaemonMetrics, logger: Logger
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
        billing = Billing(database: database, counters: counters, settings: settings, metrics: metrics, logger: logger)
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

    /// What the metrics read of the sessions and the bus at a scrape.
    public func health() -> DaemonMetrics.Health {
        var health = DaemonMetrics.Health()
        let counters = state.snapshot
        (health.sessions, health.stalledSubscribers) = (counters.sessions, counters.stalledSubscribers)
        (health.busySessions, health.turnsWaiting) = lanes.occupancy()
        let bus = bus.health()
        (health.subscribers, health.laggingSubscribers, health.eventsPublished, health.journalBytes) =
            (bus.subscribers, bus.lagging, bus.published, bus.journalBytes)
        return health
    }

    public func register(in table: inout MethodTable) {
        table.register(SessionListMethod.self) { _, _ throws(ProtocolError) in
            let sessions = try await self.database.perform { store throws(StoreError) in try store.list() }
            return SessionListMethod.Result(sessions: sessions.map(Self.describe))
        }
        table.register(SessionCreateMethod.self) { params, _ throws(ProtocolError) in
            let (session, created, _) = try await self.resolve(
                params.session, settings: params.settings, creating: true, changingExisting: false)
            guard created else {
                throw ProtocolError(.sessionExists, "session '\(params.session)' exists", detail: ["session": .string(params.session)])
            }
            return Self.describe(session)
        }
        table.register(SessionUpdateMethod.self) { params, _ throws(ProtocolError) in
            let (session, _, changed) = try await self.resolve(params.session, settings: params.settings, creating: false)
            return SessionUpdateMethod.Result(session: Self.describe(session), changed: changed)
        }
        table.register(SessionShowMethod.self) { params, _ throws(ProtocolError) in
            try await self.show(params)
        }
        table.register(SessionRenameMethod.self) { params, _ throws(ProtocolError) in
            try await self.rename(params)
        }
        table.register(SessionDeleteMethod.self) { params, _ throws(ProtocolError) in
            try await self.delete(params)
        }
        table.register(SessionExportMethod.self) { params, _ throws(ProtocolError) in
            try await self.export(params)
        }
        table.register(MemoryShowMethod.self) { params, _ throws(ProtocolError) in
            try await self.showMemory(params)
        }
        table.register(SendMethod.self) { params, context throws(ProtocolError) in
            try await self.send(params, context: context)
        }
    }

    // MARK: - Looking sessions up

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
        // A provider, or an alias at another provider than the one named, is refused now
        // rather than at the first turn.
        let (provider, model) = ((try? changes.string("provider")) ?? nil, (try? changes.string("model")) ?? nil)
        if provider != nil || model != nil { _ = try self.settings.current.choose(provider: provider, model: model) }
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

    static func describe(_ session: StoredSession) -> SessionDescription {
        SessionDescription(
            session: session.name, created: Timestamp.rfc3339(milliseconds: session.createdAt / 1000),
            lastActivity: Timestamp.rfc3339(milliseconds: session.updatedAt / 1000), lastActivityMicroseconds: session.updatedAt,
            turns: Int64(session.turns), tokens: session.tokens, settings: settings(of: session).json)
    }

    // MARK: - Methods

    private func show(_ params: SessionShowMethod.Params) async throws(ProtocolError) -> SessionShowMethod.Result {
        let session = try await find(params.session)
        let turns = try await database.perform { store throws(StoreError) in try store.turns(sessionID: session.id) }
        var prompt: NextPrompt?
        if params.prompt {
            // `{input}` stands for the next message unless one is given.
            prompt = try await turnContext(session, input: params.input ?? "{input}").nextPrompt
        }
        return SessionShowMethod.Result(
            session: Self.describe(session), turnCount: Int64(turns.count),
            recentTurns: turns.suffix(Int(max(0, params.turns ?? 10))).map(Self.describe), busy: lanes.isBusy(session.id),
            prompt: prompt)
    }

    private func rename(_ params: SessionRenameMethod.Params) async throws(ProtocolError) -> SessionRenameMethod.Result {
        let session = try await find(params.session)
        let to = params.to
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
        return SessionRenameMethod.Result(session: to, renamedFrom: session.name)
    }

    private func delete(_ params: SessionParams) async throws(ProtocolError) -> SessionDeleteMethod.Result {
        let session = try await find(params.session)
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
        return SessionDeleteMethod.Result(deleted: session.name)
    }

    private func showMemory(_ params: SessionParams) async throws(ProtocolError) -> MemoryShowMethod.Result {
        let session = try await find(params.session)
        let settings = Self.settings(of: session)
        let memory = try await storedMemory(session)
        // Counted as the next turn will count, when its provider still resolves a model.
        let current = self.settings.current
        let model = (try? current.choose(provider: settings.provider, model: settings.model))?.model ?? ""
        let counter = counters.counter(model: model, models: current.models)
        let strategy = settings.memory
        let history = memory.historyMessages(strategy)
        return MemoryShowMethod.Result(
            session: session.name, strategy: strategy.name, summary: memory.summary,
            messages: Self.promptMessages(memory.messages), history: Self.promptMessages(history),
            historyText: memory.historyText(strategy),
            historyTokens: Int64(counter.count(history, endpoint: settings.endpoint ?? Endpoint(model: model))),
            counted: Self.counting(counter), k: strategy.k.map(Int64.init), maxTokens: strategy.maxTokens.map(Int64.init))
    }

    private func export(_ params: SessionExportMethod.Params) async throws(ProtocolError) -> SessionExportMethod.Result {
        let session = try await find(params.session)
        let (turns, messages) = try await database.perform { store throws(StoreError) in
            (try store.turns(sessionID: session.id), try store.messages(sessionID: session.id))
        }
        if params.format == .markdown { return .markdown(Self.markdown(session, turns: turns)) }
        let numbers = Dictionary(uniqueKeysWithValues: turns.map { ($0.id, $0.number) })
        // Every stored message, and whether the memory still holds it.
        return .json(
            SessionExport(
                session: Self.describe(session), summary: session.summary, turns: turns.map(Self.describe),
                messages: messages.map {
                    ExportedMessage(turn: Int64(numbers[$0.turnID] ?? 0), role: $0.role, content: $0.content, inMemory: $0.inMemory)
                }))
    }

    static func describe(_ turn: StoredTurn) -> TurnRecord {
        var record = TurnRecord(
            turn: Int64(turn.number), runID: turn.runID, status: turn.status.rawValue,
            started: Timestamp.rfc3339(milliseconds: turn.startedAt / 1000), input: turn.input)
        record.ended = turn.endedAt.map { Timestamp.rfc3339(milliseconds: $0 / 1000) }
        record.output = turn.output
        record.error = turn.error.map { error in (try? JSONParser.parse(error)) ?? .string(error) }
        if let outcome = turn.outcome, let parsed = (try? JSONParser.parse(outcome))?.objectValue {
            record.usage = parsed["usage"]?.objectValue
            record.model = parsed["model"]?.stringValue
            record.provider = parsed["provider"]?.stringValue
            record.summaries = parsed["summaries"]
        }
        return record
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

    static func promptMessages(_ messages: [ConversationMessage]) -> [PromptMessage] {
        messages.map { PromptMessage(role: $0.role.rawValue, content: $0.content) }
    }

    static func messagesJSON(_ messages: [ConversationMessage]) -> JSONValue {
        .objects(promptMessages(messages))
    }

    static func counting(_ counter: TokenCounter) -> TokenCounting {
        TokenCounting(exact: counter.isExact, encoding: counter.encodingName)
    }
}
