import LLMDClient
import LLMDCommandLine
import LLMDProtocol
import LLMDUsage

#if canImport(Glibc)
import Glibc
#endif

let usageCommand = Command(
    "usage", abstract: "Sum the usage ledger: tokens, requests and cost, in total or by group.",
    discussion: """
        Every LLM call llmd makes is in the ledger, with its tokens (from the provider, or
        counted by llmd when the provider sent none) and its cost. The total is the sum of the
        matching rows; with --by scope a call in nested scopes is listed under each.
        Times are as for 'llmctl events --since': 2026-11-21T10:00:00Z, '2026-11-21 10:00'
        (local time) or -2h; days are UTC days.
        """,
    options: clientOptions + [
        .value("-s", "--session", valueName: "name", help: "Only this session's calls (a deleted one's too)."),
        .value("--scope", valueName: "id", help: "Only calls counted to this scope (its nested scopes included)."),
        .value("-m", "--model", valueName: "model", help: "Only calls to this model."),
        .value("--since", valueName: "time", help: "Only calls at or after this time."),
        .value("--until", valueName: "time", help: "Only calls before this time."),
        .value("--by", valueName: "group", help: "Group by session, model, provider, day or scope."),
    ])

let scopeCommand = Command(
    "scope", abstract: "Run a command in a fresh usage scope and print what its LLM calls used.",
    discussion: """
        Like LangChain's get_openai_callback for whole programs: every llmctl call made by
        the command, or by anything it starts, counts to the scope ($LLMD_SCOPE in its
        environment), and so does every call of a program that passes that id in 'scopes'.
        Scopes nest: a scope inside another counts to both. When the command exits, the
        totals go to standard error (or -o FILE), and llmctl exits with the command's status.
        Put -- before the command.
        """,
    options: [
        clientOptions[0],
        .flag("--json", help: "Print the totals as JSON."),
        .value("--name", valueName: "name", help: "A name for the scope, shown in 'usage --by scope'."),
        .value("--max-tokens", valueName: "count", help: "A token budget for the scope."),
        .value("--max-cost", valueName: "usd", help: "A cost budget for the scope, in USD."),
        .value("-o", "--output", valueName: "file", help: "Write the totals to this file instead of standard error."),
    ],
    positionals: [Positional("command", help: "The command and its arguments.", repeating: true)])

let budgetCommand = Command(
    "budget", abstract: "Show or set token and cost budgets.",
    subcommands: [
        Command("show", abstract: "Show today's budget and every budget set at runtime, with what is spent.", options: clientOptions),
        Command(
            "set", abstract: "Set a session's, a scope's or the daily budget ('none' gives a limit back to [Budget]).",
            options: clientOptions + [
                .value("-s", "--session", valueName: "name", help: "The session's budget."),
                .value("--scope", valueName: "id", help: "The scope's budget."),
                .flag("--daily", help: "The daemon-wide budget of each UTC day."),
                .value("--max-tokens", valueName: "count|none", help: "The token limit."),
                .value("--max-cost", valueName: "usd|none", help: "The cost limit, in USD."),
            ]),
    ])

let tokensCommand = Command(
    "tokens", abstract: "Count tokens as a model's tokenizer does (tiktoken's encodings).",
    discussion: "The text is the arguments joined by spaces; with none, or '-', standard input.",
    options: clientOptions + [
        .value("-m", "--model", valueName: "model", help: "Count with this model's encoding (default gpt-4o)."),
        .value("--encoding", valueName: "name", help: "Count with this encoding: cl100k_base or o200k_base."),
        .flag("--ids", help: "Print the token ids too."),
    ],
    positionals: [Positional("text", help: "The text.", optional: true, repeating: true)])

extension LLMCtl {
    /// The scopes a call counts to: `$LLMD_SCOPE` (comma-separated), set by `llmctl scope`.
    static var environmentScopes: [String] {
        guard let value = getenv("LLMD_SCOPE") else { return [] }
        return String(cString: value).split(separator: ",").map(String.init).filter { !$0.isEmpty }
    }

    /// `params` with the calls' scopes added, if any.
    static func scoped(_ params: JSONObject) -> JSONObject {
        var params = params
        let scopes = environmentScopes
        if !scopes.isEmpty { params["scopes"] = .array(scopes.map(JSONValue.string)) }
        return params
    }

    static func usage(_ parsed: ParsedCommandLine) throws(ClientError) {
        var params: JSONObject = [:]
        if let session = parsed.value("--session") { params["session"] = .string(session) }
        if let scope = parsed.value("--scope") { params["scope"] = .string(scope) }
        if let model = parsed.value("--model") { params["model"] = .string(model) }
        for (option, key) in [("--since", "since"), ("--until", "until")] {
            guard let text = parsed.value(option) else { continue }
            guard case .time(let microseconds)? = EventCursor.parse(text) else {
                usageFailure("\(option) needs a time such as 2026-11-21T10:00:00Z, '2026-11-21 10:00' or -2h")
            }
            params[key] = .int(microseconds)
        }
        let by = parsed.value("--by")
        if let by {
            guard ["session", "model", "provider", "day", "scope"].contains(by) else {
                usageFailure("--by takes session, model, provider, day or scope, not '\(by)'")
            }
            params["by"] = .string(by)
        }
        let result = try LLMDClient(socketPath: parsed.value("--socket")).call(.usage, params)
        if parsed.flag("--json") { return print(JSONValue.object(result).encodedString) }
        let total = result["total"]?.objectValue ?? [:]
        var rows = [[by?.uppercased() ?? "", "REQUESTS", "PROMPT", "CACHED", "COMPLETION", "REASONING", "TOTAL", "COST"]]
        func row(_ label: String, _ totals: JSONObject) -> [String] {
            [label]
                + ["requests", "prompt_tokens", "cached_prompt_tokens", "completion_tokens", "reasoning_tokens", "total_tokens"]
                .map { String(totals[$0]?.intValue ?? 0) } + [costText(totals)]
        }
        for group in result["groups"]?.arrayValue?.compactMap(\.objectValue) ?? [] {
            let key = group["key"]?.stringValue ?? ""
            var label = by == "session" && key.isEmpty ? "(no session)" : group["name"]?.stringValue.map { "\($0) \(key)" } ?? key
            if group["deleted"] == true {
                // A deleted session's calls stay its own, apart from any later session of that name.
                label += group["deleted_at"]?.stringValue.map { " (deleted \($0))" } ?? " (deleted)"
            }
            rows.append(row(label, group))
        }
        rows.append(row("total", total))
        print(table(rows))
        printCostNotes(total, print: { print($0) })
    }

    /// A cost, marked when some calls' prices were unknown.
    static func costText(_ totals: JSONObject) -> String {
        let cost = formatUSD(totals["cost"]?.doubleValue ?? 0)
        return (totals["unpriced_requests"]?.intValue ?? 0) > 0 ? cost + "+?" : cost
    }

    /// What the totals leave out or estimate, said plainly.
    static func printCostNotes(_ totals: JSONObject, print: (String) -> Void) {
        if let unpriced = totals["unpriced_requests"]?.intValue, unpriced > 0 {
            print("\(unpriced) request(s) to models without a known price are not in the cost (set their price in llmd.conf).")
        }
        if let estimated = totals["estimated_requests"]?.intValue, estimated > 0 {
            print("\(estimated) request(s) were counted by llmd's tokenizer: the provider sent no usage for them.")
        }
    }

    /// `$0.0001275`: every significant digit, as the daemon's integer sums have them.
    static func formatUSD(_ dollars: Double) -> String {
        (USD(dollars: dollars) ?? .zero).description
    }

    // MARK: scope

    static func scope(_ parsed: ParsedCommandLine) throws(ClientError) {
        guard !parsed.positionals.isEmpty else { usageFailure("give the command to run: llmctl scope -- COMMAND…") }
        var params: JSONObject = [:]
        // A scope inside a scope: the new one nests in the first, and the calls keep the others.
        let outer = environmentScopes
        if let parent = outer.first { params["parent"] = .string(parent) }
        if let name = parsed.value("--name") { params["name"] = .string(name) }
        if let tokens = parsed.value("--max-tokens") {
            guard let count = Int64(tokens), count > 0 else { usageFailure("--max-tokens needs a positive whole number") }
            params["max_tokens"] = .int(count)
        }
        if let cost = parsed.value("--max-cost") {
            guard let dollars = Double(cost), dollars > 0 else { usageFailure("--max-cost needs an amount of USD such as 0.50") }
            params["max_cost"] = .double(dollars)
        }
        let socket = parsed.value("--socket")
        let begun = try LLMDClient(socketPath: socket).call(.scopeBegin, params)
        guard let id = begun["scope"]?.stringValue else { throw .protocolViolation("scope.begin answered without a scope id") }
        let status = run(parsed.positionals, scopes: ([id] + outer.dropFirst()).joined(separator: ","))
        let ended = try LLMDClient(socketPath: socket).call(.scopeEnd, ["scope": .string(id)])
        let totals = ended["totals"]?.objectValue ?? [:]
        var report: String
        if parsed.flag("--json") {
            var object = totals
            object["scope"] = .string(id)
            object["exit_status"] = .int(Int64(status))
            report = JSONValue.object(object).encodedString + "\n"
        } else {
            let number = { (key: String) in String(totals[key]?.intValue ?? 0) }
            // LangChain's OpenAICallbackHandler, line for line.
            report = """
                Tokens Used: \(number("total_tokens"))
                \tPrompt Tokens: \(number("prompt_tokens"))
                \t\tPrompt Tokens Cached: \(number("cached_prompt_tokens"))
                \tCompletion Tokens: \(number("completion_tokens"))
                \t\tReasoning Tokens: \(number("reasoning_tokens"))
                Requests: \(number("requests"))
                Total Cost (USD): \(costText(totals))

                """
            printCostNotes(totals) { report += $0 + "\n" }
        }
        if let path = parsed.value("--output") {
            try writeFile(path, report)
        } else {
            printError(String(report.dropLast()))
        }
        exit(status)
    }

    /// Runs `command` with `LLMD_SCOPE` set and waits for it, as a shell would: Ctrl-C and
    /// Ctrl-\ go to the command, and llmctl stays to end the scope.
    ///
    /// - Returns: the command's exit status, or 128 + the signal that killed it; 127 when
    ///   it cannot be started.
    static func run(_ command: [String], scopes: String) -> Int32 {
        setenv("LLMD_SCOPE", scopes, 1)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        sigaddset(&defaults, SIGINT)
        sigaddset(&defaults, SIGQUIT)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF))
        signal(SIGINT, SIG_IGN)
        signal(SIGQUIT, SIG_IGN)
        var arguments = command.map { strdup($0) } + [nil]
        defer { arguments.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawnp(&pid, command[0], nil, &attributes, &arguments, environ)
        guard spawned == 0 else {
            printError("llmctl: cannot run \(command[0]): \(String(cString: strerror(spawned)))")
            return 127
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1, errno == EINTR {}
        let signalled = status & 0x7f
        return signalled == 0 ? (status >> 8) & 0xff : 128 + signalled
    }

    // MARK: budget

    static func budget(_ parsed: ParsedCommandLine) throws(ClientError) {
        var params: JSONObject = [:]
        if parsed.path[1] == "set" {
            let targets = [parsed.value("--session") != nil, parsed.value("--scope") != nil, parsed.flag("--daily")]
            guard targets.filter({ $0 }).count == 1 else { usageFailure("name one budget: -s SESSION, --scope ID or --daily") }
            if let session = parsed.value("--session") { params["session"] = .string(session) }
            if let scope = parsed.value("--scope") { params["scope"] = .string(scope) }
            if parsed.flag("--daily") { params["daily"] = true }
            if let tokens = parsed.value("--max-tokens") {
                guard tokens == "none" || (Int64(tokens) ?? 0) > 0 else { usageFailure("--max-tokens needs a positive whole number or 'none'") }
                params["max_tokens"] = Int64(tokens).map(JSONValue.int) ?? .null
            }
            if let cost = parsed.value("--max-cost") {
                guard cost == "none" || (Double(cost) ?? 0) > 0 else { usageFailure("--max-cost needs an amount of USD or 'none'") }
                params["max_cost"] = Double(cost).map(JSONValue.double) ?? .null
            }
            guard params["max_tokens"] != nil || params["max_cost"] != nil else { usageFailure("give --max-tokens or --max-cost") }
        }
        let result = try LLMDClient(socketPath: parsed.value("--socket")).call(parsed.path[1] == "set" ? .budgetSet : .budgetShow, params)
        if parsed.flag("--json") { return print(JSONValue.object(result).encodedString) }
        var rows = [["BUDGET", "TOKENS", "COST"]]
        for budget in result["budgets"]?.arrayValue?.compactMap(\.objectValue) ?? [] {
            let name: String
            switch budget["kind"]?.stringValue {
            case "session": name = "session " + (budget["session"]?.stringValue ?? "")
            case "scope": name = "scope " + (budget["scope"]?.stringValue ?? "")
            default: name = "daily " + (budget["day"]?.stringValue ?? "")
            }
            let spent = budget["spent"]?.objectValue ?? [:]
            let reserved = budget["reserved"]?.objectValue ?? [:]
            func limited(_ used: String, _ limit: String?, _ held: String) -> String {
                used + " of " + (limit ?? "unlimited") + (held.hasPrefix("0") || held == "$0.00" ? "" : " (+\(held) reserved)")
            }
            rows.append([
                name,
                limited(
                    String(spent["tokens"]?.intValue ?? 0), budget["max_tokens"]?.intValue.map { String($0) },
                    String(reserved["tokens"]?.intValue ?? 0)),
                limited(
                    formatUSD(spent["cost"]?.doubleValue ?? 0), budget["max_cost"]?.doubleValue.map(formatUSD),
                    formatUSD(reserved["cost"]?.doubleValue ?? 0)),
            ])
        }
        print(table(rows))
    }

    // MARK: tokens

    static func tokens(_ parsed: ParsedCommandLine) throws(ClientError) {
        let text: String
        do throws(UsageError) {
            text = try messageText(parsed.positionals)
        } catch {
            usageFailure(error.message)
        }
        var params: JSONObject = ["text": .string(text)]
        if let model = parsed.value("--model") { params["model"] = .string(model) }
        if let encoding = parsed.value("--encoding") { params["encoding"] = .string(encoding) }
        if parsed.flag("--ids") { params["ids"] = true }
        let result = try LLMDClient(socketPath: parsed.value("--socket")).call(.tokensCount, params)
        if parsed.flag("--json") { return print(JSONValue.object(result).encodedString) }
        print(result["tokens"]?.intValue ?? 0)
        if let ids = result["ids"]?.arrayValue { print(ids.compactMap(\.intValue).map(String.init).joined(separator: " ")) }
        if result["estimated"] == true {
            let vocabulary = result["vocabulary"]?.objectValue ?? [:]
            let searched = vocabulary["searched"]?.arrayValue?.compactMap(\.stringValue) ?? []
            printError(
                "llmctl: an estimate of four bytes a token: llmd has no tokenizer vocabulary (it looked in "
                    + "\(searched.joined(separator: ", "))); \(vocabulary["hint"]?.stringValue ?? "see llmd(8), Token counts")")
            return
        }
        let encoding = result["encoding"]?.stringValue ?? "?"
        if result["exact"] == false {
            printError("llmctl: '\(result["model"]?.stringValue ?? "")' has no known encoding; counted with \(encoding), so approximately")
        }
    }
}
