import LLMDCore
import LLMDEvents
import LLMDMemory
import LLMDOpenAI
import LLMDProtocol
import LLMDStore
import LLMDUpstream

/// Everything a turn's prompt is built from, read fresh when the turn gets its session.
struct TurnContext {
    var session: StoredSession
    var settings: SessionSettings
    var provider: ResolvedProvider
    var model: String
    var endpoint: Endpoint
    var memory: ConversationMemory
    var counter: TokenCounter
    var prompt: TurnPrompt
    var promptTokens: Int
    var contextWindow: Int?

    var modelInput: ModelInput { Self.modelInput(prompt) }

    static func modelInput(_ prompt: TurnPrompt) -> ModelInput {
        switch prompt {
        case .chat(let messages): .messages(messages.map { ChatMessage(role: $0.role.rawValue, content: $0.content) })
        case .completion(let text): .prompt(text)
        }
    }

    /// What `session.show --prompt` reports: exactly what the next turn sends.
    var nextPrompt: NextPrompt {
        var messages: [PromptMessage]?
        var text: String?
        switch prompt {
        case .chat(let chat): messages = Sessions.promptMessages(chat)
        case .completion(let completion): text = completion
        }
        return NextPrompt(
            endpoint: endpoint.rawValue, model: model, provider: provider.name, tokens: Int64(promptTokens),
            counted: Sessions.counting(counter), messages: messages, prompt: text, contextWindow: contextWindow.map(Int64.init))
    }
}

extension Sessions {
    /// Resolves the session's provider, model and memory, and builds the prompt for `input`.
    func turnContext(_ session: StoredSession, input: String) async throws(ProtocolError) -> TurnContext {
        let settings = Self.settings(of: session)
        let current = self.settings.current
        let (provider, model) = try current.choose(provider: settings.provider, model: settings.model, session: session.name)
        guard let model else {
            throw await provider.noModelError(session: session.name, upstream: upstream)
        }
        let memory = try await storedMemory(session)
        let endpoint = settings.endpoint ?? Endpoint(model: model)
        let counter = counters.counter(model: model, models: current.models)
        let prompt = TurnPrompt(
            style: settings.promptStyle, endpoint: endpoint, systemPrompt: settings.systemPrompt, memory: memory,
            strategy: settings.memory, input: input)
        return TurnContext(
            session: session, settings: settings, provider: provider, model: model, endpoint: endpoint, memory: memory,
            counter: counter, prompt: prompt, promptTokens: prompt.tokens(counter),
            contextWindow: ContextWindow.tokens(for: model, configured: current.models.contextWindows))
    }

    func storedMemory(_ session: StoredSession) async throws(ProtocolError) -> ConversationMemory {
        let stored = try await database.perform { store throws(StoreError) in try store.memory(sessionID: session.id) }
        return ConversationMemory(
            summary: stored.summary,
            messages: stored.messages.map {
                ConversationMessage(ConversationMessage.Role(rawValue: $0.role) ?? .user, $0.content)
            })
    }

    /// `send`: one conversation turn on a session, created on first use.
    ///
    /// The turn waits for the session's earlier turns, builds its prompt from memory,
    /// calls the model, lets the memory strategy prune or summarise, and commits the
    /// exchange, its usage and the new memory in one transaction before `chain_end`.
    func send(_ params: SendMethod.Params, context: RequestContext) async throws(ProtocolError) -> SendMethod.Result {
        let name = params.session
        let input = params.text
        let options = GenerationOptions(params.generation)
        var metadata = params.metadata
        let scopes = try await billing.expand(scopes: params.scopes)
        let (found, created, changed) = try await resolve(name, settings: params.settings, creating: true)

        try await lanes.enter(found.id) { position in
            context.send([
                .notice(
                    Notice(
                        name: "queued", message: "waiting for \(position) turn(s) ahead on session '\(name)'",
                        fields: ["request": context.requestID.json, "session": .string(name), "position": .int(Int64(position))]))
            ])
        }
        defer { lanes.leave(found.id) }
        // Settings may have changed, or the session been renamed, while this turn waited.
        guard let session = try await database.perform({ store throws(StoreError) in try store.session(id: found.id) }) else {
            throw Self.notFound(name)
        }
        let turn = try await turnContext(session, input: input)
        let now = Timestamp.nowMicroseconds()
        let chainRunID = RunID.make()
        let stored = try await database.perform { store throws(StoreError) in
            try store.beginTurn(sessionID: session.id, runID: chainRunID, input: input, now: now)
        }
        metadata["turn"] = .int(Int64(stored.number))
        let chain = CallbackManager(
            runID: chainRunID, session: session.name,
            tags: turn.settings.tags + params.tags.filter { !turn.settings.tags.contains($0) }, metadata: metadata,
            inheritableHandlers: params.events ? [.sync(RequestCallbacks(context: context))] : [],
            sink: bus, logger: logger)

        do throws(TurnFailure) {
            let account = CallAccount(sessionID: session.id, session: session.name, turnID: stored.id, scopes: scopes)
            let ran = try await runTurn(
                turn, chain: chain, input: input, turnID: stored.id, account: account, options: options, stream: params.stream,
                peer: context.peer)
            return SendMethod.Result(
                reply: ran.call.reply, runID: chain.runID, memory: ran.memory.report,
                summaryError: ran.memory.summaryError?.json.objectValue, summaryUsage: ran.memory.summaries,
                promptTokensCounted: Int64(turn.promptTokens), commitMicroseconds: ran.commitMicroseconds,
                session: session.name, turn: Int64(stored.number), created: created, changed: changed,
                settings: turn.settings.json)
        } catch {
            let (error, partial) = (error.error, error.partialText)
            let status: TurnStatus = error.code == .cancelled ? .cancelled : .failed
            let errorText = error.json.encodedString
            let ended = Timestamp.nowMicroseconds()
            do throws(ProtocolError) {
                _ = try await database.perform { store throws(StoreError) in
                    try store.finishTurn(turnID: stored.id, status: status, output: partial, error: errorText, now: ended)
                }
            } catch {
                logger.error("cannot record the failed turn \(stored.number) of '\(session.name)': \(error)")
            }
            var failure = error
            failure.detail["session"] = .string(session.name)
            failure.detail["turn"] = .int(Int64(stored.number))
            throw failure
        }
    }

    /// A turn that failed: the error as clients get it, and the reply text that had
    /// arrived, which the failed turn keeps.
    struct TurnFailure: Error {
        var error: ProtocolError
        var partialText: String?
    }

    /// What the memory became after a turn, and what to say of it.
    private struct TurnMemory {
        var memory: ConversationMemory
        /// The summarising calls' usage, for the reply.
        var summaries: [CallUsage] = []
        var usage: [PendingUsage] = []
        var summaryError: ProtocolError?
        /// `memory` of the reply, and of `memory_updated`.
        var report: MemoryReport
    }

    /// A turn that ran to its end: its call, the memory after it, and the commit's time
    /// when `--timings` asks for it.
    private struct FinishedTurn {
        var call: ModelCallOutcome
        var memory: TurnMemory
        var commitMicroseconds: Int64?
    }

    /// The turn's chain run: its start, the context window checked, the model call, the
    /// memory updated (and summarised), the commit, its end.
    private func runTurn(
        _ turn: TurnContext, chain: CallbackManager, input: String, turnID: Int64, account: CallAccount,
        options: GenerationOptions, stream: Bool, peer: PeerCredentials
    ) async throws(TurnFailure) -> FinishedTurn {
        do throws(ProtocolError) {
            try await startChain(turn, chain: chain, input: input, peer: peer)
            try checkContextWindow(turn, replyTokens: options.maximumTokens ?? 0)
        } catch {
            throw TurnFailure(error: await CallMethods.chainFailed(chain, error))
        }
        let call: ModelCallOutcome
        do throws(ModelCallError) {
            call = try await CallMethods.callModel(
                llm: chain.child(), model: turn.model, input: turn.modelInput, options: options, stream: stream,
                provider: turn.provider, upstream: upstream, billing: billing, account: account)
        } catch {
            throw TurnFailure(error: await CallMethods.chainFailed(chain, error.error), partialText: error.partialText)
        }
        let memory = await updateMemory(turn, input: input, output: call.result.text, chain: chain, account: account, options: options)
        let commitDuration: Duration
        do throws(ProtocolError) {
            commitDuration = try await commit(turn, turnID: turnID, input: input, call: call, memory: memory)
        } catch {
            throw TurnFailure(error: await CallMethods.chainFailed(chain, error), partialText: call.result.text)
        }
        do throws(CallbackError) {
            try await chain.emit(.chainEnd, ["outputs": ["response": .string(call.result.text)]])
        } catch {
            // The turn is committed; a raising handler still fails the request, as LangChain's would.
            throw TurnFailure(error: CallMethods.callbackFailure(error, chain: chain))
        }
        // The durable commit (one fsync'd transaction), for `make bench`.
        let commitMicroseconds = settings.current.reportsTimings ? commitDuration.wholeMicroseconds : nil
        return FinishedTurn(call: call, memory: memory, commitMicroseconds: commitMicroseconds)
    }

    /// `chain_start` with the input and the history as the memory gives it, then the
    /// prompt as formatted, as LangChain's `ConversationChain` reports them.
    private func startChain(_ turn: TurnContext, chain: CallbackManager, input: String, peer: PeerCredentials)
        async throws(ProtocolError)
    {
        let strategy = turn.settings.memory
        let history: JSONValue =
            turn.settings.promptStyle == .conversation
            ? .string(turn.memory.historyText(strategy)) : Self.messagesJSON(turn.memory.historyMessages(strategy))
        do throws(CallbackError) {
            try await chain.emit(
                .chainStart,
                [
                    "name": "ConversationChain", "inputs": ["input": .string(input), "history": history],
                    "memory": .string(strategy.name), "prompt_style": .string(turn.settings.promptStyle.rawValue),
                    "client": ["pid": .int(Int64(peer.pid)), "uid": .int(Int64(peer.uid))],
                ])
            if case .completion(let text) = turn.prompt {
                try await chain.emit(.text, ["text": .string(text), "title": "Prompt after formatting"])
            } else if turn.settings.promptStyle == .conversation, case .chat(let messages) = turn.prompt, let last = messages.last {
                try await chain.emit(.text, ["text": .string(last.content), "title": "Prompt after formatting"])
            }
        } catch {
            throw CallMethods.callbackFailure(error, chain: chain)
        }
    }

    /// `context.window_exceeded` when the prompt and the reply's limit do not fit the
    /// model's context window: nothing is sent then, nothing cut short.
    private func checkContextWindow(_ turn: TurnContext, replyTokens: Int) throws(ProtocolError) {
        guard let window = turn.contextWindow,
            let overflow = ContextWindow.overflow(prompt: turn.promptTokens, reply: replyTokens, window: window)
        else { return }
        throw ProtocolError(
            .contextWindowExceeded,
            "the prompt needs \(overflow.promptTokens) tokens\(replyTokens > 0 ? " plus \(replyTokens) for the reply" : ""), "
                + "\(overflow.excess) more than \(turn.model)'s context window of \(window); "
                + "choose a memory that keeps less (--memory window, token-buffer, summary-buffer)",
            detail: [
                "prompt_tokens": .int(Int64(overflow.promptTokens)), "reply_tokens": .int(Int64(replyTokens)),
                "context_window": .int(Int64(window)), "excess": .int(Int64(overflow.excess)),
                "model": .string(turn.model), "counted": .object(Self.counting(turn.counter).json),
            ])
    }

    /// The memory with the exchange recorded by the session's strategy, summarised when it
    /// folds messages into its summary, and `memory_updated` when anything changed. A
    /// failed summary leaves the messages unfolded; the turn goes on.
    private func updateMemory(
        _ turn: TurnContext, input: String, output: String, chain: CallbackManager, account: CallAccount,
        options: GenerationOptions
    ) async -> TurnMemory {
        let strategy = turn.settings.memory
        let update = turn.memory.recording(
            input: input, output: output, strategy: strategy, counter: turn.counter, endpoint: turn.endpoint)
        var memory = update.memory
        var summaries: [CallUsage] = []
        var usage: [PendingUsage] = []
        var summaryError: ProtocolError?
        if !update.toSummarize.isEmpty {
            switch await summarise(update, turn: turn, chain: chain, account: account, options: options) {
            case .success(let (summary, pending)):
                memory = update.folding(summary: summary)
                summaries.append(pending.reported)
                usage.append(pending)
            case .failure(let error):
                memory = update.unfolded
                summaryError = error
            }
        }
        let report = MemoryReport(
            strategy: strategy.name, keptMessages: Int64(memory.messages.count), dropped: Int64(update.dropped.count),
            leftWindow: Int64(update.leftWindow.count), summarized: Int64(summaryError == nil ? update.toSummarize.count : 0),
            historyTokens: Int64(turn.counter.count(memory.historyMessages(strategy), endpoint: turn.endpoint)),
            counted: Self.counting(turn.counter), k: strategy.k.map(Int64.init), maxTokens: strategy.maxTokens.map(Int64.init))
        let result = TurnMemory(memory: memory, summaries: summaries, usage: usage, summaryError: summaryError, report: report)
        if update.changed {
            var event = report.json
            event["dropped_messages"] = Self.messagesJSON(update.dropped)
            event["left_window_messages"] = Self.messagesJSON(update.leftWindow)
            event["summarized_messages"] = Self.messagesJSON(result.summaryError == nil ? update.toSummarize : [])
            event["summary"] = .string(memory.summary)
            if let summaryError = result.summaryError { event["summary_error"] = summaryError.json }
            chain.emitNow(.memoryUpdated, event)
        }
        return result
    }

    /// Commits the turn: its messages, its reply, its calls' usage and the new memory in
    /// one transaction, on disk before the turn ends.
    ///
    /// - Returns: how long the commit took.
    private func commit(
        _ turn: TurnContext, turnID: Int64, input: String, call: ModelCallOutcome, memory: TurnMemory
    ) async throws(ProtocolError) -> Duration {
        var outcome = call.reply.json
        outcome["summaries"] = .objects(memory.summaries)
        let usage = [call.usage] + memory.usage
        let completion = TurnCompletion(
            turnID: turnID, output: call.result.text, outcome: JSONValue.object(outcome).encodedString,
            tokens: usage.reduce(0) { $0 + Int64($1.usage.totalTokens) },
            messages: [NewMessage(role: "user", content: input), NewMessage(role: "assistant", content: call.result.text)],
            keepInMemory: memory.memory.messages.count,
            summary: memory.memory.summary == turn.memory.summary ? nil : memory.memory.summary,
            usage: usage.map(\.entry), now: Timestamp.nowMicroseconds())
        let started = ContinuousClock.now
        do throws(ProtocolError) {
            try await billing.recording(usage) { store throws(StoreError) in ((), try store.completeTurn(completion)) }
        } catch {
            var error = error
            // As a failed call's: the reply that arrived, though the turn could not keep it.
            error.detail["partial_text"] = .string(call.result.text)
            throw error
        }
        return ContinuousClock.now - started
    }

    /// The summarising call, as a child chain of the turn (LangChain's `predict_new_summary`,
    /// an `LLMChain` with the progressive-summary prompt).
    ///
    /// - Returns: the new summary and the call's usage, or the error that left memory unfolded.
    private func summarise(
        _ update: MemoryUpdate, turn: TurnContext, chain: CallbackManager, account: CallAccount, options: GenerationOptions
    ) async -> Result<(String, PendingUsage), ProtocolError> {
        let summaryChain = chain.child(tags: ["memory"], metadata: ["memory": .string(turn.settings.memory.name)])
        let text = SummaryPrompt.render(summary: update.memory.summary, messages: update.toSummarize)
        // The reply's length limit and stop sequences are the turn's; a summary has its own length.
        var options = options
        options.maximumTokens = nil
        options.stop = []
        do throws(ProtocolError) {
            do throws(CallbackError) {
                try await summaryChain.emit(
                    .chainStart,
                    [
                        "name": "LLMChain",
                        "inputs": [
                            "summary": .string(update.memory.summary),
                            "new_lines": .string(ConversationMessage.bufferString(update.toSummarize)),
                        ],
                    ])
            } catch {
                throw CallMethods.callbackFailure(error, chain: summaryChain)
            }
            let call: ModelCallOutcome
            do throws(ModelCallError) {
                call = try await CallMethods.callModel(
                    llm: summaryChain.child(), model: turn.model,
                    input: TurnContext.modelInput(TurnPrompt(text: text, endpoint: turn.endpoint)), options: options,
                    stream: true, provider: turn.provider, upstream: upstream, billing: billing, account: account)
            } catch {
                throw await CallMethods.chainFailed(summaryChain, error.error)
            }
            _ = try? await summaryChain.emit(.chainEnd, ["outputs": ["text": .string(call.result.text)]])
            return .success((call.result.text, call.usage))
        } catch {
            logger.warning("summarising session '\(turn.session.name)' failed: \(error); the messages stay in memory")
            return .failure(error)
        }
    }
}
