import LLMDClient
import LLMDCommandLine
import LLMDLineEditor
import LLMDProtocol

#if canImport(Glibc)
import Glibc
#endif

/// Options every subcommand that talks to the daemon takes.
let clientOptions: [Option] = [
    .value(
        "--socket", valueName: "path",
        help: "Daemon socket (default: $LLMD_SOCKET, then your own llmd, then the system one)."),
    .flag("--json", help: "Print the daemon's reply as JSON."),
]

let llmctl = Command(
    "llmctl",
    abstract: "Talk to llmd: send prompts, follow events, inspect sessions and usage.",
    discussion: """
        Exit status: 0 success; 1 the daemon answered with an error; 64 bad usage;
        69 no daemon is running or it went away; 71 a system error; 76 the daemon sent
        something this llmctl cannot read; 77 the daemon refused this user; 127 the command
        'scope' or 'on' is to run cannot be run. See llmctl(1).
        """,
    options: clientOptions,
    subcommands: [
        Command("status", abstract: "Show the daemon's version, pid, uptime, socket and load.", options: clientOptions),
        Command("ping", abstract: "Check that the daemon answers, and how fast.", options: clientOptions),
        Command(
            "send", abstract: "Send a message to a model, or a session's next turn, and print the reply as it streams.",
            discussion: """
                The text is the arguments joined by spaces; with none, or '-', it is read from
                standard input when that is not a terminal. Interrupting llmctl (Ctrl-C) aborts
                the call upstream. With -s, the message is the session's next turn: the session
                is created on first use, and session options given for an existing session
                change it (llmctl says so).
                """,
            options: clientOptions + modelOptions + [
                .value("-s", "--session", valueName: "name", help: "Send as the next turn of this session.", liveValues: "sessions"),
                .flag("--no-stream", help: "Wait for the whole reply instead of streaming it."),
                .value("--temperature", valueName: "number", help: "Sampling temperature."),
                .value("--max-reply-tokens", valueName: "count", help: "Longest reply, in tokens."),
            ] + sessionSettingOptions,
            positionals: [Positional("text", help: "The message.", optional: true, repeating: true)]),
        sessionsCommand,
        sessionCommand,
        memoryCommand,
        compareMemoryCommand,
        attachCommand,
        chatCommand,
        eventsCommand,
        onCommand,
        usageCommand,
        scopeCommand,
        budgetCommand,
        tokensCommand,
        keyCommand,
        providersCommand,
        modelsCommand,
        Command(
            "completion", abstract: "Print the shell completion script for bash, zsh or fish.",
            discussion: """
                Try it with: source <(llmctl completion bash). 'make install' puts the scripts where
                each shell looks for them. Session, provider and model names are completed from
                the running daemon.
                """,
            positionals: [Positional("shell", help: "bash, zsh or fish.")]),
        Command(
            "complete-values", abstract: "Names the daemon knows, one a line, for the completion scripts.",
            options: [clientOptions[0]], positionals: [Positional("kind", help: "sessions, providers, models or event-types.")],
            hidden: true),
    ])

@main
enum LLMCtl {
    static func main() {
        let parsed: ParsedCommandLine
        do {
            switch try llmctl.parse(Array(CommandLine.arguments.dropFirst())) {
            case .help(let path):
                print(llmctl.help(for: path))
                return
            case .version:
                print("llmctl \(LLMDVersion.string) (protocol \(ProtocolVersion.current))")
                return
            case .run(let result):
                parsed = result
            }
        } catch {
            Failure.usage(error.message, hint: true)
        }
        do {
            switch parsed.path.first {
            case "status": try status(parsed)
            case "ping": try ping(parsed)
            case "send": try send(parsed)
            case "events": try events(parsed)
            case "on": try on(parsed)
            case "sessions": try sessions(parsed)
            case "session": try session(parsed)
            case "memory": try memory(parsed)
            case "compare-memory": try compareMemory(parsed)
            case "attach": try attach(parsed)
            case "chat": try chat(parsed)
            case "usage": try usage(parsed)
            case "scope": try scope(parsed)
            case "budget": try budget(parsed)
            case "tokens": try tokens(parsed)
            case "key": try key(parsed)
            case "providers": try providers(parsed)
            case "models": try models(parsed)
            case "completion": completion(parsed)
            case "complete-values": try completeValues(parsed)
            default: preconditionFailure("command \(parsed.path) is declared but not handled")
            }
        } catch {
            Failure.client(error)
        }
    }

    static func completion(_ parsed: ParsedCommandLine) {
        guard let shell = CompletionScript.Shell(rawValue: parsed.positionals[0]) else {
            usageFailure("completion scripts are for bash, zsh or fish, not '\(parsed.positionals[0])'")
        }
        writeOut(CompletionScript.script(shell, for: llmctl))
    }

    /// What a completion script offers for a value the daemon knows; nothing when no daemon
    /// answers, so a Tab press never prints an error into the command line.
    static func completeValues(_ parsed: ParsedCommandLine) throws(ClientError) {
        // Event types are this llmctl's own list: no daemon needed.
        if parsed.positionals[0] == "event-types" { return EventType.allCases.forEach { print($0.rawValue) } }
        let client = try LLMDClient(socketPath: parsed.value("--socket"))
        let names: [String]
        switch parsed.positionals[0] {
        case "sessions": names = try client.call(SessionListMethod.self, NoParams()).sessions.map(\.session)
        case "providers": names = try client.call(ProviderListMethod.self, NoParams()).providers.map(\.name)
        case "models": names = try modelNames(client)
        default: usageFailure("complete-values knows sessions, providers, models and event-types, not '\(parsed.positionals[0])'")
        }
        for name in names { print(name) }
    }

    /// After nothing answered on `tried`: the daemons that do answer elsewhere, and how to
    /// reach them, then how to start the one that was meant.
    static func printDaemonHints(tried: String) {
        for path in SocketLocation.alternatives(to: tried) {
            guard let connection = try? DaemonConnection(socketPath: path) else { continue }
            connection.close()
            let whose = path == SocketLocation.systemPath ? "the system llmd" : "an llmd"
            printError(
                "llmctl: \(whose) is listening on \(path); to use it, add --socket \(path)"
                    + " or set \(SocketLocation.environmentVariable)=\(path)")
        }
        printError(
            tried == SocketLocation.systemPath
                ? "Start the system llmd with: systemctl start llmd.socket"
                : "Start it with: systemctl --user start llmd.socket   (or run: llmd &)")
    }

    static func status(_ parsed: ParsedCommandLine) throws(ClientError) {
        let client = try LLMDClient(socketPath: parsed.value("--socket"))
        if parsed.flag("--json") {
            print(JSONValue.object(try client.status().json).encodedString)
            return
        }
        let status = try client.status()
        print("llmd \(status.version) (protocol \(status.protocolVersion))")
        print("  pid:                \(status.pid)")
        print("  uptime:             \(formatDuration(milliseconds: status.uptimeMilliseconds)) (since \(status.startedAt))")
        print("  socket:             \(status.socket)")
        print("  clients:            \(status.clients)")
        print("  sessions:           \(status.sessions)")
        print("  requests in flight: \(status.requestsInFlight)")
        print("  requests served:    \(status.requestsServed)")
    }

    static func ping(_ parsed: ParsedCommandLine) throws(ClientError) {
        let client = try LLMDClient(socketPath: parsed.value("--socket"))
        let start = ContinuousClock.now
        var reply = try client.ping().json
        let elapsed = ContinuousClock.now - start
        let microseconds = elapsed.wholeMicroseconds
        if parsed.flag("--json") {
            reply["rtt_us"] = .int(microseconds)
            print(JSONValue.object(reply).encodedString)
        } else {
            let fraction = String(microseconds % 1000)
            let padded = String(repeating: "0", count: 3 - fraction.count) + fraction
            print("pong from llmd \(client.connection.hello.daemonVersion) in \(microseconds / 1000).\(padded) ms")
        }
    }
}

extension LLMCtl {
    static func send(_ parsed: ParsedCommandLine) throws(ClientError) {
        let text: String
        var settings: JSONObject = [:]
        var generation = GenerationParams()
        let session = parsed.value("--session")
        do throws(UsageError) {
            text = try messageText(parsed.positionals)
            settings = try sessionSettings(parsed)
            if session == nil {
                let oneOff: Set<String> = ["provider", "model", "endpoint"]
                let sessionOnly = settings.keys.filter { !oneOff.contains($0) }.sorted()
                guard sessionOnly.isEmpty else {
                    throw UsageError(
                        "session settings (\(sessionOnly.joined(separator: ", "))) need a session: add -s NAME"
                            + (sessionOnly.contains("max_tokens") ? "; the reply's length is --max-reply-tokens" : ""))
                }
            }
            if let value = parsed.value("--temperature") {
                guard let temperature = Double(value), temperature.isFinite else {
                    throw UsageError("--temperature needs a number, got '\(value)'")
                }
                generation.temperature = temperature
            }
            if let value = parsed.value("--max-reply-tokens") {
                guard let maximum = Int64(value), maximum > 0 else {
                    throw UsageError("--max-reply-tokens needs a positive whole number, got '\(value)'")
                }
                generation.maxTokens = maximum
            }
        } catch {
            usageFailure(error.message)
        }
        let stream = !parsed.flag("--no-stream")
        let json = parsed.flag("--json")
        let client = try LLMDClient(socketPath: parsed.value("--socket"))
        var streamed = false
        let onToken: (String) -> Void = { token in
            // With --json the output is the result alone, for scripts to parse.
            guard !json else { return }
            streamed = true
            writeOut(token)
        }
        let onRetry: (JSONObject) -> Void = { retry in
            let delay = Double(retry["delay_ms"]?.intValue ?? 0) / 1000
            let reason = retry["error"]?.objectValue?["code"]?.stringValue ?? "error"
            printError("llmctl: retrying in \(delay) s after \(reason)")
        }
        do {
            let reply: CallReply
            var summaryError: JSONObject?
            if let session {
                let params = SendMethod.Params(
                    session: session, text: text, settings: settings, stream: stream, generation: generation,
                    scopes: environmentScopes)
                let result = try client.send(params, onToken: onToken, onRetry: onRetry) { position in
                    printError("llmctl: session '\(session)' is busy; waiting for \(position) turn(s) ahead")
                }
                if json { return print(JSONValue.object(result.json).encodedString) }
                reportSessionChanges(result)
                (reply, summaryError) = (result.reply, result.summaryError)
            } else {
                // The daemon sends the text as the model's endpoint takes it, or as --endpoint says.
                let params = CompleteMethod.Params(
                    provider: settings["provider"]?.stringValue, model: settings["model"]?.stringValue,
                    input: PromptInput(text: text), endpoint: settings["endpoint"]?.stringValue, stream: stream,
                    generation: generation, scopes: environmentScopes)
                let result = try client.complete(params, onToken: onToken, onRetry: onRetry)
                if json { return print(JSONValue.object(result.json).encodedString) }
                reply = result.reply
            }
            if !streamed { writeOut(reply.text) }
            writeOut("\n")
            if reply.offline {
                printError("(reply from the offline '\(reply.provider)' provider: no LLM was called)")
            }
            if let error = summaryError?["message"]?.stringValue {
                printError("llmctl: the memory's summarising call failed (\(error)); the exchange stays in memory verbatim")
            }
        } catch {
            if streamed { writeOut("\n") }
            throw error
        }
    }

    /// Tells the user on standard error that a session was created or its settings changed.
    static func reportSessionChanges(_ result: SendMethod.Result) {
        reportSessionChanges(session: result.session, created: result.created, changed: result.changed, settings: result.settings)
    }

    static func reportSessionChanges(session name: String, created: Bool, changed: [String], settings: JSONObject) {
        if created {
            printError("llmctl: created session '\(name)' (memory \(memoryDescription(settings)))")
        }
        guard !changed.isEmpty else { return }
        let described = changed.map { key -> String in
            switch key {
            case "memory": return "memory \(memoryDescription(settings))"
            case "system": return settings["system"]?.stringValue.map { "system prompt '\(oneLine($0, limit: 40))'" } ?? "no system prompt"
            default:
                let value = settings[key].map { $0.stringValue ?? $0.encodedString } ?? "default"
                return "\(key.replacingUnderscores) \(value)"
            }
        }
        printError("llmctl: session '\(name)' now uses \(described.joined(separator: ", "))")
    }

    /// The arguments joined, or standard input when there are none (or just `-`).
    static func messageText(_ words: [String]) throws(UsageError) -> String {
        if !words.isEmpty, words != ["-"] { return words.joined(separator: " ") }
        guard words == ["-"] || isatty(STDIN_FILENO) == 0 else {
            throw UsageError("no message: give it as arguments, or pipe it in")
        }
        var input: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress, $0.count) }
            if count <= 0 { break }
            input += buffer[0..<count]
        }
        var text = String(decoding: input, as: UTF8.self)
        while text.last == "\n" { text.removeLast() }
        guard !text.isEmpty else { throw UsageError("no message: standard input was empty") }
        return text
    }
}

/// Writes to standard output at once, so streamed tokens appear as they arrive.
func writeOut(_ text: String) {
    _ = writeAll(text, to: STDOUT_FILENO)
}

/// `3d 4h`, `2h 5m`, `4m 12s`, `12s`: the two largest units, as uptime(1) users expect.
func formatDuration(milliseconds: Int64) -> String {
    let units: [(String, Int64)] = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)]
    var parts: [String] = []
    var remaining = milliseconds / 1000
    for (name, size) in units where remaining >= size || (parts.isEmpty && size == 1) {
        parts.append("\(remaining / size)\(name)")
        remaining %= size
        if parts.count == 2 { break }
    }
    return parts.joined(separator: " ")
}

func printError(_ message: String) {
    var line = message + "\n"
    line.withUTF8 { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
}

extension String {
    /// `prompt_style` as `prompt style`, for messages.
    var replacingUnderscores: String { String(map { $0 == "_" ? " " : $0 }) }
}
