import LLMDClient
import LLMDCommandLine
import LLMDMemory
import LLMDProtocol

#if canImport(Glibc)
import Glibc
#endif

/// Settings a session keeps between turns: `send -s`, `session create` and `chat` take them.
let sessionSettingOptions: [Option] = [
    .value(
        "--memory", valueName: "strategy",
        help: "How the session remembers: buffer (default), window, token-buffer, summary, summary-buffer.",
        choices: MemoryStrategy.names),
    .value("--k", valueName: "count", help: "Exchanges a window memory keeps (default 5)."),
    .value(
        "--max-tokens", valueName: "count",
        help: "Token limit of a token-buffer or summary-buffer memory (default 2000)."),
    .value(
        "--prompt-style", valueName: "style",
        help: "messages (default: chat messages) or conversation (LangChain's ConversationChain prompt).",
        choices: PromptStyle.allCases.map(\.rawValue)),
    .value("--system", valueName: "text", help: "The session's system prompt; '' removes it."),
    .value("--endpoint", valueName: "api", help: "chat or completions (default: by model).", choices: Endpoint.allCases.map(\.rawValue)),
    .value("--session-tag", valueName: "tag", help: "A tag on every event of the session's turns (repeatable)."),
]

let sessionsCommand = Command(
    "sessions", abstract: "List sessions with their last activity, turns and tokens.", options: clientOptions)

let sessionCommand = Command(
    "session", abstract: "Show, create, rename, delete or export a session.",
    subcommands: [
        Command(
            "show", abstract: "Show a session's settings and recent turns.",
            options: clientOptions + [
                .flag("--prompt", help: "Print exactly what the next turn would send instead."),
                .value("--turns", valueName: "count", help: "How many recent turns to list (default 10)."),
            ],
            positionals: [
                Positional("name", help: "The session.", liveValues: "sessions"),
                Positional("text", help: "With --prompt: the next message (default: a {input} placeholder).", optional: true, repeating: true),
            ]),
        Command(
            "create", abstract: "Create a session with its settings.", options: clientOptions + sessionSettingOptions + modelOptions,
            positionals: [Positional("name", help: "The new session's name.")]),
        Command(
            "set", abstract: "Change a session's settings.", options: clientOptions + sessionSettingOptions + modelOptions,
            positionals: [Positional("name", help: "The session.", liveValues: "sessions")]),
        Command(
            "rename", abstract: "Rename a session.", options: clientOptions,
            positionals: [Positional("name", help: "The session.", liveValues: "sessions"), Positional("new-name", help: "Its new name.")]),
        Command(
            "rm", abstract: "Delete a session and its history.", options: clientOptions,
            positionals: [Positional("name", help: "The session.", liveValues: "sessions")]),
        Command(
            "export", abstract: "Print a session's whole history as Markdown, or JSON with --json.", options: clientOptions,
            positionals: [Positional("name", help: "The session.", liveValues: "sessions")]),
    ])

let memoryCommand = Command(
    "memory", abstract: "Inspect a session's memory.",
    subcommands: [
        Command(
            "show", abstract: "Show what the session remembers: buffer, summary, what the next prompt keeps.",
            options: clientOptions, positionals: [Positional("name", help: "The session.", liveValues: "sessions")])
    ])

/// `--provider` and `--model`: per call for `send`, stored for sessions.
let modelOptions: [Option] = [
    .value("-p", "--provider", valueName: "name", help: "Provider from llmd.conf (default: DefaultProvider=).", liveValues: "providers"),
    .value("-m", "--model", valueName: "model", help: "Model (default: the provider's DefaultModel=).", liveValues: "models"),
]

extension LLMCtl {
    /// The `settings` object the session options on the command line describe.
    static func sessionSettings(_ parsed: ParsedCommandLine) throws(UsageError) -> JSONObject {
        var settings: JSONObject = [:]
        if let memory = parsed.value("--memory") { settings["memory"] = .string(memory) }
        if let k = parsed.value("--k") {
            guard let count = Int64(k), count >= 0 else { throw UsageError("--k needs a whole number, 0 or more, got '\(k)'") }
            settings["k"] = .int(count)
        }
        if let limit = parsed.value("--max-tokens") {
            guard let count = Int64(limit), count > 0 else {
                throw UsageError("--max-tokens needs a positive whole number, got '\(limit)'")
            }
            settings["max_tokens"] = .int(count)
        }
        if let style = parsed.value("--prompt-style") { settings["prompt_style"] = .string(style) }
        if let system = parsed.value("--system") { settings["system"] = system.isEmpty ? .null : .string(system) }
        if let endpoint = parsed.value("--endpoint") { settings["endpoint"] = .string(endpoint) }
        let tags = parsed.allValues("--session-tag")
        if !tags.isEmpty { settings["tags"] = .array(tags.map(JSONValue.string)) }
        if let provider = parsed.value("--provider") { settings["provider"] = .string(provider) }
        if let model = parsed.value("--model") { settings["model"] = .string(model) }
        return settings
    }

    static func sessions(_ parsed: ParsedCommandLine) throws(ClientError) {
        let result = try LLMDClient(socketPath: parsed.value("--socket")).call(SessionListMethod.self, NoParams())
        if parsed.flag("--json") { return print(JSONValue.object(result.json).encodedString) }
        guard !result.sessions.isEmpty else { return print("No sessions yet. Start one with: llmctl send -s NAME TEXT") }
        let now = Timestamp.nowMilliseconds()
        var rows = [["SESSION", "LAST ACTIVITY", "TURNS", "TOKENS", "MEMORY", "MODEL"]]
        for session in result.sessions {
            rows.append([
                session.session, formatDuration(milliseconds: max(0, now - session.lastActivityMicroseconds / 1000)) + " ago",
                String(session.turns), String(session.tokens), memoryDescription(session.settings),
                session.settings["model"]?.stringValue ?? "(default)",
            ])
        }
        print(table(rows))
    }

    static func session(_ parsed: ParsedCommandLine) throws(ClientError) {
        // Connects only once the command line is known to be good: a usage error is 64
        // whether a daemon runs or not.
        func client() throws(ClientError) -> LLMDClient { try LLMDClient(socketPath: parsed.value("--socket")) }
        let name = parsed.positionals[0]
        let json = parsed.flag("--json")
        let result: any JSONObjectConvertible
        switch parsed.path[1] {
        case "show":
            var params = SessionShowMethod.Params(session: name)
            if let turns = parsed.value("--turns") {
                guard let count = Int64(turns), count >= 0 else { usageFailure("--turns needs a whole number, got '\(turns)'") }
                params.turns = count
            }
            if parsed.flag("--prompt") {
                params.prompt = true
                let words = Array(parsed.positionals.dropFirst())
                if !words.isEmpty { params.input = words.joined(separator: " ") }
            }
            let shown = try client().call(SessionShowMethod.self, params)
            if !json {
                guard let prompt = shown.prompt else { return writeOut(sessionText(shown.session, busy: shown.busy, turns: shown.recentTurns)) }
                let (header, body) = promptText(prompt)
                printError(header)
                return writeOut(body)
            }
            result = shown
        case "create", "set":
            let settings: JSONObject
            do {
                settings = try sessionSettings(parsed)
            } catch {
                usageFailure(error.message)
            }
            if parsed.path[1] == "create" {
                let created = try client().call(SessionCreateMethod.self, SessionCreateMethod.Params(session: name, settings: settings))
                if !json { return writeOut(sessionText(created)) }
                result = created
            } else {
                let updated = try client().call(SessionUpdateMethod.self, SessionUpdateMethod.Params(session: name, settings: settings))
                if !json {
                    if updated.changed.isEmpty { return print("session '\(name)': nothing changed") }
                    return writeOut(sessionText(updated.session))
                }
                result = updated
            }
        case "rename":
            result = try client().call(SessionRenameMethod.self, SessionRenameMethod.Params(session: name, to: parsed.positionals[1]))
            if !json { return print("renamed session '\(name)' to '\(parsed.positionals[1])'") }
        case "rm":
            result = try client().call(SessionDeleteMethod.self, SessionParams(session: name))
            if !json { return print("deleted session '\(name)'") }
        case "export":
            let exported = try client().call(
                SessionExportMethod.self, SessionExportMethod.Params(session: name, format: json ? .json : .markdown))
            if case .markdown(let text) = exported { return writeOut(text) }
            result = exported
        default:
            preconditionFailure("session \(parsed.path[1]) is declared but not handled")
        }
        print(JSONValue.object(result.json).encodedString)
    }

    static func memory(_ parsed: ParsedCommandLine) throws(ClientError) {
        let result = try LLMDClient(socketPath: parsed.value("--socket")).call(
            MemoryShowMethod.self, SessionParams(session: parsed.positionals[0]))
        if parsed.flag("--json") { return print(JSONValue.object(result.json).encodedString) }
        writeOut(memoryText(result))
    }

    /// `memory.show`'s result for people: the strategy, the summary, what the next prompt keeps.
    static func memoryText(_ result: MemoryShowMethod.Result) -> String {
        var strategy = result.strategy
        if let k = result.k { strategy += " (k=\(k))" }
        if let limit = result.maxTokens { strategy += " (max_tokens=\(limit))" }
        var text = "memory:   \(strategy)\n"
        text += "history:  \(result.historyTokens) tokens\(countNote(result.counted))\n"
        if !result.summary.isEmpty { text += "summary:\n" + indent(result.summary) + "\n" }
        let shown = result.history.filter { $0.role != "system" }.count
        text += "messages: \(result.messages.count) in memory, \(shown) in the next prompt\n"
        if !result.historyText.isEmpty { text += "buffer:\n" + indent(result.historyText) + "\n" }
        return text
    }

    /// `  (exact, o200k_base)` or `  (estimated)`.
    static func countNote(_ counted: TokenCounting) -> String {
        if counted.exact { return " (exact, \(counted.encoding ?? "?"))" }
        return counted.encoding.map { " (approximate: \($0) stands in for the model's unknown encoding)" } ?? " (estimated: no vocabulary)"
    }

    /// A session's description for people: settings, counters, recent turns.
    static func sessionText(_ session: SessionDescription, busy: Bool = false, turns: [TurnRecord] = []) -> String {
        let settings = session.settings
        var lines = [
            "session:       \(session.session)",
            "created:       \(session.created)",
            "last activity: \(session.lastActivity)",
            "turns:         \(session.turns) completed, \(session.tokens) tokens",
            "model:         \(settings["model"]?.stringValue ?? "(provider default)") via "
                + (settings["provider"]?.stringValue ?? "(default provider)"),
            "memory:        \(memoryDescription(settings))",
            "prompt style:  \(settings["prompt_style"]?.stringValue ?? "messages")",
        ]
        if let endpoint = settings["endpoint"]?.stringValue { lines.append("endpoint:      \(endpoint)") }
        if let system = settings["system"]?.stringValue { lines.append("system prompt: \(system)") }
        let tags = settings["tags"]?.arrayValue?.compactMap(\.stringValue) ?? []
        if !tags.isEmpty { lines.append("tags:          \(tags.joined(separator: ", "))") }
        if busy { lines.append("busy:          a turn is running") }
        for turn in turns {
            lines.append("\nturn \(turn.turn) · \(turn.started)" + (turn.status == "completed" ? "" : " · " + turn.status))
            lines.append("  > " + oneLine(turn.input))
            if let output = turn.output, !output.isEmpty { lines.append("  " + oneLine(output)) }
            if let message = turn.error?.objectValue?["message"]?.stringValue { lines.append("  ! " + message) }
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// What the next turn sends, and a header line with its size.
    static func promptText(_ prompt: NextPrompt) -> (header: String, body: String) {
        let window = prompt.contextWindow.map { " of \($0)" } ?? ""
        let header = "-- \(prompt.endpoint) endpoint, \(prompt.model): \(prompt.tokens) tokens\(window)\(countNote(prompt.counted)) --"
        if let text = prompt.prompt { return (header, text + "\n") }
        var body = ""
        for message in prompt.messages ?? [] { body += "[\(message.role)]\n\(message.content)\n" }
        return (header, body)
    }

    static func memoryDescription(_ settings: JSONObject) -> String {
        var text = settings["memory"]?.stringValue ?? "buffer"
        if let k = settings["k"]?.intValue { text += " (k=\(k))" }
        if let limit = settings["max_tokens"]?.intValue { text += " (max_tokens=\(limit))" }
        return text
    }

    static func oneLine(_ text: String, limit: Int = 100) -> String {
        let flat = String(text.map { $0 == "\n" ? " " : $0 })
        return flat.count > limit ? String(flat.prefix(limit - 1)) + "…" : flat
    }

    static func indent(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false).map { "  " + $0 }.joined(separator: "\n")
    }

    /// Columns padded to their widest cell.
    static func table(_ rows: [[String]]) -> String {
        let widths = rows[0].indices.map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            row.enumerated().map { column, cell in
                column == row.count - 1 ? cell : cell + String(repeating: " ", count: widths[column] - cell.count)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }

    static func usageFailure(_ message: String) -> Never {
        Failure.usage(message)
    }
}
