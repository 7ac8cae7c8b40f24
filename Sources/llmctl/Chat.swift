import LLMDClient
import LLMDCommandLine
import LLMDLineEditor
import LLMDProtocol

#if canImport(Glibc)
import Glibc
#endif

let chatCommand = Command(
    "chat", abstract: "Talk with a session interactively: line editing, history, streaming replies.",
    discussion: """
        Each line is the session's next turn; the reply streams as it comes. Ctrl-C cancels
        the turn in flight (at the prompt it clears the line); Ctrl-D leaves. Turns that
        other shells send to the same session appear as they happen. Lines starting with /
        are commands: /help lists them. History is kept in $XDG_STATE_HOME/llmd/chat_history.
        A paste of several lines is one message, and so is a block between lines of \"\"\".
        When the daemon restarts, the chat reconnects and goes on; if it does not come back
        within 30 seconds (--reconnect-timeout), llmctl exits with status 69.
        """,
    options: [clientOptions[0]] + modelOptions + [
        .value("-s", "--session", valueName: "name", help: "The session (default: chat).", liveValues: "sessions"),
        Reconnection.option,
    ] + sessionSettingOptions)

/// SIGINT's write end: the handler, which cannot capture, tells the poll loop through it.
nonisolated(unsafe) private var interruptPipe: (read: Int32, write: Int32) = (-1, -1)

/// The chat loop: one connection follows the session and runs turns, another answers
/// `/` commands, and the line editor owns the terminal.
private struct ChatLoop {
    var session: String
    var follower: LLMDClient
    var commands: LLMDClient
    let socket: String?
    let reconnectBound: Duration
    let editor: LineEditor
    var transcript: SessionTranscript
    /// Marks the turns this chat sends, to tell them from other shells' in the stream.
    let marker = "llmctl-chat-\(getpid())"
    var subscription: Int64?
    /// The last event of the session shown, where a new connection's subscription resumes.
    var lastSeq: UInt64?
    /// The lines of a `"""` block being typed, sent as one message when it closes.
    var block: [String]?
    var runningTurn: RequestID?
    var nextID: Int64 = 1
    var finished = false

    mutating func run() throws(ClientError) {
        try subscribe()
        editor.start()
        while !finished {
            while let message = try follower.connection.bufferedMessage() { handle(message) }
            var descriptors = [
                pollfd(fd: follower.connection.fileDescriptor, events: Int16(POLLIN), revents: 0),
                pollfd(fd: interruptPipe.read, events: Int16(POLLIN), revents: 0),
            ]
            // While a turn runs, typed-ahead lines wait in the terminal.
            if runningTurn == nil { descriptors.append(pollfd(fd: editor.inputDescriptor, events: Int16(POLLIN), revents: 0)) }
            if poll(&descriptors, nfds_t(descriptors.count), -1) < 0 {
                if errno == EINTR { continue }
                throw .system(operation: "poll", errno: errno)
            }
            if descriptors[1].revents != 0 { try interrupted() }
            if descriptors[0].revents != 0 {
                do {
                    try follower.connection.receiveAvailable()
                } catch {
                    guard case .connectionClosed = error else { throw error }
                    try reconnect()
                }
            }
            if descriptors.count > 2, descriptors[2].revents != 0, let event = editor.readAvailable() {
                switch event {
                case .line(let line): try entered(line)
                case .endOfInput: finished = true
                }
            }
        }
    }

    private mutating func interrupted() throws(ClientError) {
        var drained = [UInt8](repeating: 0, count: 64)
        _ = read(interruptPipe.read, &drained, drained.count)
        if let runningTurn {
            try follower.connection.send(
                Request(id: nextRequestID(), method: CancelMethod.method.rawValue, params: CancelMethod.Params(request: runningTurn).json))
        } else {
            editor.discardLine()
        }
    }

    private mutating func nextRequestID() -> RequestID {
        defer { nextID += 1 }
        return .int(nextID)
    }

    /// After the daemon went away: a one-line notice, new connections as soon as it is
    /// back (within ``Reconnection/bound``), and the session followed again from the last
    /// event shown, so no turn is missed or shown twice. A turn that was running is lost
    /// with the daemon that ran it.
    private mutating func reconnect() throws(ClientError) {
        editor.printAbove("\n-- the daemon went away; reconnecting --\n")
        if runningTurn != nil {
            editor.printAbove("(the turn in flight ended with the daemon)\n")
            endTurn()
        }
        let client = try Reconnection.client(socket: socket, bound: reconnectBound)
        (follower, commands, subscription) = (client, try LLMDClient(socketPath: socket), nil)
        try subscribe()
        editor.printAbove("-- reconnected --\n")
    }

    private mutating func subscribe() throws(ClientError) {
        if let subscription {
            try follower.connection.send(
                Request(
                    id: nextRequestID(), method: UnsubscribeMethod.method.rawValue,
                    params: UnsubscribeMethod.Params(subscription: subscription).json))
            self.subscription = nil
        }
        var params = SubscribeMethod.Params(sessions: [session])
        params.since = lastSeq
        try follower.connection.send(
            Request(id: .string("subscribe"), method: SubscribeMethod.method.rawValue, params: params.json))
    }

    private mutating func entered(_ line: String) throws(ClientError) {
        // `"""` opens a block of lines, as in Ollama; a line ending with `"""` closes it.
        let quotes = "\"\"\""
        if var lines = block {
            guard line.hasSuffix(quotes) else {
                lines.append(line)
                block = lines
                return
            }
            lines.append(String(line.dropLast(3)))
            block = nil
            editor.prompt = session + "> "
            return try sendTurn(lines.joined(separator: "\n").trimmingBlanks)
        }
        if line.hasPrefix(quotes) {
            let rest = String(line.dropFirst(3))
            guard rest.count >= 3, rest.hasSuffix(quotes) else {
                block = rest.isEmpty ? [] : [rest]
                editor.prompt = "... "
                return
            }
            return try sendTurn(String(rest.dropLast(3)).trimmingBlanks)
        }
        let text = line.trimmingBlanks
        if text.hasPrefix("/") { return try command(text) }
        try sendTurn(text)
    }

    /// Sends `text` as the session's next turn; nothing for an empty message.
    private mutating func sendTurn(_ text: String) throws(ClientError) {
        guard !text.isEmpty else { return }
        let id = nextRequestID()
        // The reply streams through the subscription, like other shells' turns.
        try follower.connection.send(
            Request(
                id: id, method: SendMethod.method.rawValue,
                params: SendMethod.Params(
                    session: session, text: text, metadata: ["llmctl_chat": .string(marker)], scopes: LLMCtl.environmentScopes,
                    events: false
                ).json))
        runningTurn = id
        editor.suspend()
    }

    private mutating func handle(_ message: ServerMessage) {
        switch message {
        case .event(let event) where event.subscription == subscription:
            lastSeq = event.seq
            if event.name == "chain_start", event.parentRunID == nil, event.metadata["llmctl_chat"]?.stringValue == marker {
                transcript.ownRuns.insert(event.runID)
            }
            if let text = transcript.render(event) { editor.printAbove(text) }
        case .reply(.string("subscribe"), let result):
            subscription = (try? SubscribeMethod.Result(json: result))?.subscription
            // Without a terminal there is no banner; say when other shells' turns will show,
            // as `llmctl events` says where it starts.
            if !editor.isTerminal { printError("-- following session '\(session)' --") }
        case .reply(let id, let result) where id == runningTurn:
            if let error = (try? SendMethod.Result(json: result))?.summaryError?["message"]?.stringValue {
                editor.printAbove("(the memory's summary failed: \(error); the exchange stays in memory verbatim)\n")
            }
            endTurn()
        case .error(let id, let error) where id == runningTurn:
            // A turn that failed before its run began has no chain_error to show; one that
            // did showed it, cancelled included.
            if error.detail["run_id"] == nil {
                editor.printAbove((error.code == .cancelled ? "(cancelled)" : "! " + error.message) + "\n")
            }
            endTurn()
        case .error(.string("subscribe"), let error), .error(nil, let error):
            editor.printAbove("! \(error.message)\n")
        case .notice(let notice) where notice.name == "queued":
            editor.printAbove("(\(notice.message))\n")
        case .notice(let notice) where notice.name == Notice.shuttingDown:
            editor.printAbove("-- \(notice.message) --\n")
        default:
            break
        }
    }

    private mutating func endTurn() {
        runningTurn = nil
        editor.resume()
    }

    private mutating func command(_ text: String) throws(ClientError) {
        let words = text.split(separator: " ").map(String.init)
        do throws(ClientError) {
            switch words[0] {
            case "/help":
                editor.printAbove(
                    """
                    /memory        what the session remembers
                    /session       the session's settings and recent turns
                    /prompt        what the next turn sends
                    /usage         the session's turns, tokens and cost
                    /switch NAME   go on in another session (created by its first turn)
                    /quit          leave (or Ctrl-D)
                    \"""            begin or end a message of several lines (pasted lines are one already)
                    Ctrl-L         clear the screen

                    """)
            case "/memory":
                editor.printAbove(LLMCtl.memoryText(try commands.call(MemoryShowMethod.self, SessionParams(session: session))))
            case "/session":
                let shown = try commands.call(SessionShowMethod.self, SessionShowMethod.Params(session: session, turns: 3))
                editor.printAbove(LLMCtl.sessionText(shown.session, busy: shown.busy, turns: shown.recentTurns))
            case "/prompt":
                let shown = try commands.call(SessionShowMethod.self, SessionShowMethod.Params(session: session, prompt: true))
                guard let prompt = shown.prompt else { throw .protocolViolation("session.show reply lacks 'prompt'") }
                let (header, body) = LLMCtl.promptText(prompt)
                editor.printAbove(header + "\n" + body)
            case "/usage":
                let result = try commands.call(SessionShowMethod.self, SessionShowMethod.Params(session: session, turns: 0)).session
                let totals = try commands.call(UsageMethod.self, UsageMethod.Params(session: session)).total
                editor.printAbove(
                    "session '\(session)': \(result.turns) turns completed; \(totals.requests) LLM calls, "
                        + "\(totals.promptTokens) prompt + \(totals.completionTokens) completion tokens, "
                        + "cost \(LLMCtl.costText(totals))\n")
            case "/switch" where words.count != 2:
                editor.printAbove("/switch needs the session to go on in: /switch NAME\n")
            case "/switch":
                session = words[1]
                lastSeq = nil
                transcript = SessionTranscript(color: transcript.color)
                try subscribe()
                editor.prompt = session + "> "
                editor.printAbove("(now in session '\(session)')\n")
            case "/quit", "/exit":
                finished = true
            default:
                editor.printAbove("unknown command \(words[0]); /help lists them\n")
            }
        } catch {
            // A turn not yet taken has no session: say so rather than leave.
            guard case .remote(let remote) = error else { throw error }
            editor.printAbove("! \(remote.message)\n")
        }
    }
}

extension LLMCtl {
    static func chat(_ parsed: ParsedCommandLine) throws(ClientError) {
        let session = parsed.value("--session") ?? "chat"
        let settings: JSONObject
        do {
            settings = try sessionSettings(parsed)
        } catch {
            usageFailure(error.message)
        }
        let commands = try LLMDClient(socketPath: parsed.value("--socket"))
        let follower = try LLMDClient(socketPath: parsed.value("--socket"))
        // Settings apply at once, to a new session or an existing one.
        if !settings.isEmpty {
            do {
                let result = try commands.call(SessionUpdateMethod.self, SessionUpdateMethod.Params(session: session, settings: settings))
                reportSessionChanges(session: session, created: false, changed: result.changed, settings: result.session.settings)
            } catch {
                guard case .remote(let remote) = error, remote.code == .sessionNotFound else { throw error }
                let created = try commands.call(SessionCreateMethod.self, SessionCreateMethod.Params(session: session, settings: settings))
                reportSessionChanges(session: session, created: true, changed: [], settings: created.settings)
            }
        }
        var pipeEnds: [Int32] = [0, 0]
        guard pipe(&pipeEnds) == 0 else { throw .system(operation: "pipe", errno: errno) }
        for end in pipeEnds {
            _ = fcntl(end, F_SETFD, FD_CLOEXEC)
            _ = fcntl(end, F_SETFL, O_NONBLOCK)
        }
        interruptPipe = (pipeEnds[0], pipeEnds[1])
        signal(SIGINT) { _ in
            var byte: UInt8 = 1
            _ = write(interruptPipe.write, &byte, 1)
        }
        // A parent may have left SIGINT blocked (masks are inherited); Ctrl-C must reach us.
        var interrupt = sigset_t()
        sigemptyset(&interrupt)
        sigaddset(&interrupt, SIGINT)
        pthread_sigmask(SIG_UNBLOCK, &interrupt, nil)
        let editor: LineEditor
        do {
            editor = try LineEditor(prompt: session + "> ", historyFile: chatHistoryPath())
        } catch {
            printError("llmctl: \(error); history is off for this chat")
            editor = try! LineEditor(prompt: session + "> ", historyFile: nil)
        }
        if editor.isTerminal {
            editor.printAbove("Chatting in session '\(session)'. /help for commands, Ctrl-D to leave.\n")
        }
        var loop = ChatLoop(
            session: session, follower: follower, commands: commands, socket: parsed.value("--socket"), reconnectBound: Reconnection.bound(parsed), editor: editor,
            transcript: SessionTranscript(color: Terminal.colorEnabled(isTerminal: editor.isTerminal)))
        defer {
            do {
                try editor.close()
            } catch {
                printError("llmctl: \(error)")
            }
        }
        try loop.run()
    }

    /// `$XDG_STATE_HOME/llmd/chat_history`, else `~/.local/state/llmd/chat_history`; a
    /// relative XDG_STATE_HOME is ignored, as the XDG spec asks.
    static func chatHistoryPath() -> String? {
        if let state = getenv("XDG_STATE_HOME").map({ String(cString: $0) }), state.hasPrefix("/") {
            return state + "/llmd/chat_history"
        }
        return getenv("HOME").map { String(cString: $0) + "/.local/state/llmd/chat_history" }
    }
}
