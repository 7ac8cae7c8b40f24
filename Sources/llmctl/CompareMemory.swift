import LLMDClient
import LLMDCommandLine
import LLMDLineEditor
import LLMDProtocol

#if canImport(Glibc)
import Glibc
#endif

let compareMemoryCommand = Command(
    "compare-memory", abstract: "Run one conversation under each memory strategy and compare the tokens it costs.",
    discussion: """
        Each strategy gets a new session, compare-memory-PID-STRATEGY, which is sent the turns one
        after another and deleted at the end (unless --keep). The table shows what each turn cost,
        the reply and the memory's summarising calls together. Without turns, the flower-shop
        conversation of LangChain's memory tutorial.
        """,
    options: clientOptions + modelOptions + [
        .value(
            "--strategies", valueName: "list",
            help: "Comma-separated memory strategies (default: buffer,window,token-buffer,summary,summary-buffer)."),
        .value("--k", valueName: "count", help: "Exchanges the window memory keeps (default 1)."),
        .value(
            "--max-tokens", valueName: "count",
            help: "Token limit of the token-buffer and summary-buffer memories (default 300)."),
        .value("--svg", valueName: "file", help: "Also write the tokens per turn as an SVG line chart to this file."),
        .flag("--keep", help: "Keep the sessions, to look at their memory afterwards."),
    ],
    positionals: [Positional("turn", help: "A user message; each argument is one turn.", optional: true, repeating: true)])

/// The memory strategies in llmctl(1)'s order, with the setting that limits each.
private let memoryStrategies: [(name: String, limit: String?)] = [
    ("buffer", nil), ("window", "k"), ("token-buffer", "max_tokens"), ("summary", nil), ("summary-buffer", "max_tokens"),
]

/// The conversation of LangChain's memory tutorial: a customer at a flower shop, back the next day.
private let flowerShopTurns = [
    "My sister's birthday is tomorrow and I need a birthday bouquet.",
    "She likes pink roses, the colour pink.",
    "I'm back again. Do you remember why I came to buy flowers yesterday?",
]

extension LLMCtl {
    static func compareMemory(_ parsed: ParsedCommandLine) throws(ClientError) {
        let turns = parsed.positionals.isEmpty ? flowerShopTurns : parsed.positionals
        // Provider and model, the settings every strategy's session shares.
        var shared: JSONObject = [:]
        let strategies: [MemoryComparison.Strategy]
        do throws(UsageError) {
            guard !turns.contains(where: \.isEmpty) else { throw UsageError("a turn is empty") }
            let given = try sessionSettings(parsed)
            shared["provider"] = given["provider"]
            shared["model"] = given["model"]
            // The tutorial's ConversationBufferWindowMemory(k=1) and max_token_limit=300.
            let k = Int(given["k"]?.intValue ?? 1)
            let maxTokens = Int(given["max_tokens"]?.intValue ?? 300)
            strategies = try strategyNames(parsed.value("--strategies")).map { name in
                let limit = memoryStrategies.first { $0.name == name }?.limit
                return MemoryComparison.Strategy(
                    name: name, parameter: limit.map { .init(name: $0, value: $0 == "k" ? k : maxTokens) })
            }
        } catch {
            usageFailure(error.message)
        }

        let client = try LLMDClient(socketPath: parsed.value("--socket"))
        let keep = parsed.flag("--keep")
        var comparison = MemoryComparison(messages: turns)
        var sessions: [String] = []
        // The turn being sent, 0 while its session is created: for the message if it fails.
        var turnNumber = 0
        do {
            for var strategy in strategies {
                turnNumber = 0
                let session = "compare-memory-\(getpid())-\(strategy.name)"
                printError("llmctl: \(strategy.label): \(turns.count) turn(s) in session '\(session)'")
                var settings = shared
                settings["memory"] = .string(strategy.name)
                if let parameter = strategy.parameter { settings[parameter.name] = JSONValue(parameter.value) }
                // Created apart from its first turn, so a session of that name from before is refused, not reused.
                _ = try client.call(SessionCreateMethod.self, SessionCreateMethod.Params(session: session, settings: settings))
                sessions.append(session)
                for (index, text) in turns.enumerated() {
                    turnNumber = index + 1
                    let result = try client.send(
                        SendMethod.Params(session: session, text: text, stream: false, scopes: environmentScopes, events: false),
                        onToken: { _ in })
                    strategy.turns.append(MemoryComparison.Tokens(turnResult: result))
                }
                comparison.strategies.append(strategy)
            }
        } catch {
            let failed = strategies[comparison.strategies.count].label
            printError(
                "llmctl: \(failed) failed " + (turnNumber == 0 ? "creating its session" : "at turn \(turnNumber)")
                    + (keep ? "" : "; deleting the comparison's sessions"))
            if !keep { _ = deleteSessions(sessions, client: client) }
            throw error
        }

        let cleanupFailure = keep ? nil : deleteSessions(sessions, client: client)
        if parsed.flag("--json") {
            var output = comparison.json
            if keep { output["kept_sessions"] = .array(sessions.map(JSONValue.string)) }
            print(JSONValue.object(output).encodedString)
        } else {
            writeOut(comparison.table())
            if keep { print("\nKept the sessions: \(sessions.joined(separator: ", "))") }
        }
        if let path = parsed.value("--svg") {
            try writeFile(path, comparison.svgChart())
            printError("llmctl: wrote the chart to \(path)")
        }
        if let cleanupFailure { exit(cleanupFailure.exitCode) }
    }

    /// The strategies `--strategies` names, in its order; all of them without it.
    static func strategyNames(_ list: String?) throws(UsageError) -> [String] {
        guard let list else { return memoryStrategies.map(\.name) }
        let names = list.split(separator: ",").map(\.trimmingBlanks).filter { !$0.isEmpty }
        let known = memoryStrategies.map(\.name)
        guard !names.isEmpty else { throw UsageError("--strategies needs at least one of \(known.joined(separator: ", "))") }
        if let unknown = names.first(where: { !known.contains($0) }) {
            throw UsageError("unknown memory strategy '\(unknown)'; strategies: \(known.joined(separator: ", "))")
        }
        if let repeated = names.indices.first(where: { names[..<$0].contains(names[$0]) }) {
            throw UsageError("--strategies names '\(names[repeated])' twice")
        }
        return names
    }

    /// Deletes the sessions, telling which could not be.
    ///
    /// - Returns: the first failure, nil when all went.
    static func deleteSessions(_ sessions: [String], client: LLMDClient) -> ClientError? {
        var firstFailure: ClientError?
        for session in sessions {
            do {
                _ = try client.call(SessionDeleteMethod.self, SessionParams(session: session))
            } catch {
                printError("llmctl: could not delete session '\(session)': \(error)")
                firstFailure = firstFailure ?? error
            }
        }
        return firstFailure
    }

    /// Writes `text` to the file at `path`, replacing it.
    static func writeFile(_ path: String, _ text: String) throws(ClientError) {
        let file = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard file >= 0 else { throw .system(operation: "open \(path)", errno: errno) }
        defer { close(file) }
        if let failure = writeAll(text, to: file) { throw .system(operation: "write \(path)", errno: failure) }
    }
}
