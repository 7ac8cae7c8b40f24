import LLMDClient
import LLMDCommandLine
import LLMDProtocol

#if canImport(Glibc)
import Glibc
#endif

let attachCommand = Command(
    "attach", abstract: "Follow a session live: every turn from any client, the reply as it streams.",
    discussion: """
        Like 'tmux attach' for a conversation: llmctl prints the session's last turns, then
        every new turn as it happens, whoever sends it, until interrupted (Ctrl-C).
        With --json, each event is one JSON line as the daemon sent it. When the daemon
        restarts, llmctl reconnects and goes on after the last event it showed; if it does
        not come back within 30 seconds (--reconnect-timeout), llmctl exits with status 69.
        """,
    options: clientOptions + [
        .value("--turns", valueName: "count", help: "How many earlier turns to show first (default 3)."),
        Reconnection.option,
    ],
    positionals: [Positional("name", help: "The session.", liveValues: "sessions")])

/// Renders a session's turns from its events as a conversation: who sent what, the reply
/// as it streams, what the memory did.
struct SessionTranscript {
    private var reply = ReplyTokens()
    private var root: String?
    /// Whether the last text written ended a line.
    private var atLineStart = true
    /// Whether the turn's reply streamed; one that did not is written whole at its end.
    private var streamed = false
    /// Turns whose root run is in here are the caller's own; their input is not echoed.
    var ownRuns: Set<String> = []
    let color: Bool

    init(color: Bool) {
        self.color = color
    }

    /// The text `event` adds to the transcript, or nil when it adds none.
    mutating func render(_ event: CallbackEvent) -> String? {
        let isRoot = event.parentRunID == nil
        switch event.name {
        case "chain_start" where isRoot:
            reply = ReplyTokens()
            reply.handle(event, onToken: { _ in })
            root = event.runID
            streamed = false
            let input = event.data["inputs"]?.objectValue?["input"]?.stringValue ?? ""
            let turn = event.metadata["turn"]?.intValue.map { "turn \($0)" } ?? "turn"
            let pid = event.data["client"]?.objectValue?["pid"]?.intValue.map { " · pid \($0)" } ?? ""
            if ownRuns.contains(event.runID) { return nil }
            return line(dim("[\(turn)\(pid)]") + " > " + input)
        case "chat_model_start", "llm_start":
            reply.handle(event, onToken: { _ in })
            return nil
        case "llm_new_token":
            var text = ""
            reply.handle(event) { text = $0 }
            guard !text.isEmpty else { return nil }
            streamed = true
            atLineStart = text.hasSuffix("\n")
            return text
        case "llm_end" where event.parentRunID == root && root != nil && !streamed:
            // The reply of a turn sent without streaming (`send --no-stream`, most HTTP clients).
            guard let text = event.data["text"]?.stringValue, !text.isEmpty else { return nil }
            return line(text)
        case "memory_updated":
            return line(dim("(memory: \(Self.memoryNote(event.data)))"))
        case "chain_end" where event.runID == root:
            root = nil
            guard !atLineStart else { return nil }
            atLineStart = true
            return "\n"
        case "chain_error" where event.runID == root:
            root = nil
            let error = event.data["error"]?.objectValue
            if error?["code"]?.stringValue == ErrorCode.cancelled.rawValue { return line(dim("(cancelled)")) }
            return line("! " + (error?["message"]?.stringValue ?? "failed"))
        case "session_renamed":
            return line(dim("(session renamed to '\(event.data["to"]?.stringValue ?? "")'; attach to that name to follow it)"))
        case "session_updated":
            let changed = event.data["changed"]?.arrayValue?.compactMap(\.stringValue) ?? []
            return line(dim("(session settings changed: \(changed.joined(separator: ", ")))"))
        case "session_deleted":
            return line(dim("(session deleted)"))
        default:
            return nil
        }
    }

    /// What a `memory_updated` event says, in words.
    static func memoryNote(_ data: JSONObject) -> String {
        var parts: [String] = []
        if let count = data["summarized"]?.intValue, count > 0 { parts.append("summarised \(count) messages") }
        if let count = data["dropped"]?.intValue, count > 0 { parts.append("dropped \(count) messages over the token limit") }
        if let count = data["left_window"]?.intValue, count > 0 { parts.append("\(count) messages left the window") }
        if let error = data["summary_error"]?.objectValue?["message"]?.stringValue {
            parts.append("summary failed (\(error)); messages kept verbatim")
        }
        let kept = data["kept_messages"]?.intValue ?? 0
        // A window keeps every message stored and shows the last k exchanges.
        if let k = data["k"]?.intValue {
            parts.append("\(min(kept, 2 * k)) messages in the window")
        } else {
            parts.append("\(kept) messages kept")
        }
        return parts.joined(separator: ", ")
    }

    /// A whole line, starting on a fresh one if a reply was mid-line.
    private mutating func line(_ text: String) -> String {
        let prefix = atLineStart ? "" : "\n"
        atLineStart = true
        return prefix + text + "\n"
    }

    private func dim(_ text: String) -> String { color ? "\u{1B}[2m" + text + "\u{1B}[0m" : text }
}

extension LLMCtl {
    static func attach(_ parsed: ParsedCommandLine) throws(ClientError) {
        let name = parsed.positionals[0]
        var turns: Int64 = 3
        if let value = parsed.value("--turns") {
            guard let count = Int64(value), count >= 0 else { usageFailure("--turns needs a whole number, got '\(value)'") }
            turns = count
        }
        let client = try LLMDClient(socketPath: parsed.value("--socket"))
        let json = parsed.flag("--json")
        // The session must exist; its recent turns set the scene.
        let session = try client.call(SessionShowMethod.self, SessionShowMethod.Params(session: name, turns: turns))
        if !json {
            for turn in session.recentTurns {
                // Written like the live turns, unbuffered, so the order holds in a pipe too.
                writeOut("[turn \(turn.turn)] > \(turn.input)\n")
                if let output = turn.output, !output.isEmpty { writeOut(output + "\n") }
                if turn.status != "completed" { writeOut("(\(turn.status))\n") }
            }
            printError("-- attached to session '\(name)'; Ctrl-C to detach --")
        }
        var transcript = SessionTranscript(color: Terminal.colorEnabled(isTerminal: isatty(STDOUT_FILENO) == 1))
        var params = SubscribeMethod.Params(sessions: [name])
        var connection = client
        while true {
            do {
                try connection.subscribe(params) { reply in
                    // Live from here; after a restart, from here too, whatever came meanwhile.
                    if params.since == nil { params.since = reply.cursor }
                } onMessage: { message throws(ClientError) in
                    guard case .event(let event) = message else { return true }
                    params.since = event.seq
                    if json {
                        writeOut(String(decoding: ServerMessage.event(event).encodedLine, as: UTF8.self))
                    } else if let text = transcript.render(event) {
                        writeOut(text)
                    }
                    return event.name != "session_deleted" && event.name != "session_renamed"
                }
                return
            } catch {
                guard case .connectionClosed = error else { throw error }
            }
            // The subscription resumes after the last event shown: no turn twice, none missed.
            printError("\n-- the daemon went away; reconnecting --")
            connection = try Reconnection.client(socket: parsed.value("--socket"), bound: Reconnection.bound(parsed))
            printError("-- reconnected --")
        }
    }
}
