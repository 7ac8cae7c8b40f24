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
        counted by llmd when the provider sent none) and its cost, and so is every call that
        another program made itself and reported with its run's events (source 'reported').
        The total is the sum of the matching rows; with --by scope a call in nested scopes is
        listed under each.
        Times are as for 'llmctl events --since': 2026-11-21T10:00:00Z, '2026-11-21 10:00'
        (local time) or -2h; days are UTC days.
        """,
    options: clientOptions + [
        .value("-s", "--session", valueName: "name", help: "Only this session's calls (a deleted one's too).", liveValues: "sessions"),
        .value("--scope", valueName: "id", help: "Only calls counted to this scope (its nested scopes included)."),
        .value("-m", "--model", valueName: "model", help: "Only calls to this model.", liveValues: "models"),
        .value("--since", valueName: "time", help: "Only calls at or after this time."),
        .value("--until", valueName: "time", help: "Only calls before this time."),
        .value(
            "--by", valueName: "group", help: "Group by session, model, provider, day, scope or source.",
            choices: UsageGrouping.allCases.map(\.rawValue)),
    ])

let scopeCommand = Command(
    "scope", abstract: "Run a command in a fresh usage scope and print what its LLM calls used.",
    discussion: """
        Like LangChain's get_openai_callback for whole programs: every llmctl call made by
        the command, or by anything it starts, counts to the scope ($LLMD_SCOPE in its
        environment), and so does every call of a program that passes that id in 'scopes'.
        Scopes nest: a scope inside another counts to both. When the command exits, the
        totals go to standard error (or -o FILE), and llmctl exits with the command's status;
        standard output is the command's alone, with --json too: --json=FILE writes the
        totals as JSON to FILE, and a failure of llmctl itself is reported there as well.
        Put -- before the command.
        """,
    options: [
        clientOptions[0],
        .flag("--json", help: "Write the totals as JSON (to FILE with --json=FILE).", inlineValueName: "file"),
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
                .value("-s", "--session", valueName: "name", help: "The session's budget.", liveValues: "sessions"),
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
        .value("-m", "--model", valueName: "model", help: "Count with this model's encoding (default gpt-4o).", liveValues: "models"),
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

    static func usage(_ parsed: ParsedCommandLine) throws(ClientError) {
        var params = UsageMethod.Params(
            session: parsed.value("--session"), scope: parsed.value("--scope"), model: parsed.value("--model"))
        for (option, key) in [("--since", \UsageMethod.Params.since), ("--until", \.until)] {
            guard let text = parsed.value(option) else { continue }
            guard case .time(let microseconds)? = EventCursor.parse(text) else {
                usageFailure("\(option) needs a time such as 2026-11-21T10:00:00Z, '2026-11-21 10:00' or -2h")
            }
            params[keyPath: key] = microseconds
        }
        let by = parsed.value("--by")
        params.by = by
        let result = try LLMDClient(socketPath: parsed.value("--socket")).call(UsageMethod.self, params)
        if parsed.flag("--json") { return print(JSONValue.object(result.json).encodedString) }
        var rows = [[by?.uppercased() ?? "", "REQUESTS", "PROMPT", "CACHED", "COMPLETION", "REASONING", "TOTAL", "COST"]]
        func row(_ label: String, _ totals: UsageMethod.Totals) -> [String] {
            [label]
                + [
                    totals.requests, totals.promptTokens, totals.cachedPromptTokens, totals.completionTokens, totals.reasoningTokens,
                    totals.totalTokens,
                ].map { String($0) } + [costText(totals)]
        }
        for group in result.groups ?? [] {
            let key = group.key ?? ""
            var label = by == "session" && key.isEmpty ? "(no session)" : group.name.map { "\($0) \(key)" } ?? key
            if group.deleted {
                // A deleted session's calls stay its own, apart from any later session of that name.
                label += group.deletedAt.map { " (deleted \($0))" } ?? " (deleted)"
            }
            rows.append(row(label, group))
        }
        rows.append(row("total", result.total))
        print(table(rows))
        printCostNotes(result.total, print: { print($0) })
    }

    /// A cost, marked when some calls' prices were unknown.
    static func costText(_ totals: UsageMethod.Totals) -> String {
        let cost = formatUSD(totals.cost)
        return totals.unpricedRequests > 0 ? cost + "+?" : cost
    }

    /// What the totals leave out or estimate, said plainly.
    static func printCostNotes(_ totals: UsageMethod.Totals, print: (String) -> Void) {
        let (unpriced, estimated) = (totals.unpricedRequests, totals.estimatedRequests)
        if unpriced > 0 {
            print("\(unpriced) request(s) to models without a known price are not in the cost (set their price in llmd.conf).")
        }
        if estimated > 0 {
            print("\(estimated) request(s) were counted by llmd's tokenizer: the provider sent no usage for them.")
        }
    }

    /// `$0.0001275`: every significant digit, as the daemon's integer sums have them.
    static func formatUSD(_ dollars: Double) -> String {
        (USD(dollars: dollars) ?? .zero).description
    }

    // MARK: scope

    static func scope(_ parsed: ParsedCommandLine) throws(ClientError) {
        // The command owns standard output; the totals, and any failure, go elsewhere.
        let output = parsed.value("--json") ?? parsed.value("--output")
        Failure.jsonDestination = output.map(Failure.JSONDestination.file) ?? .standardError
        guard !parsed.positionals.isEmpty else { usageFailure("give the command to run: llmctl scope -- COMMAND…") }
        let command = externalCommand(parsed.positionals)
        // A scope inside a scope: the new one nests in the first, and the calls keep the others.
        let outer = environmentScopes
        var params = ScopeBeginMethod.Params(name: parsed.value("--name"), parent: outer.first)
        if let tokens = parsed.value("--max-tokens") {
            guard let count = Int64(tokens), count > 0 else { usageFailure("--max-tokens needs a positive whole number") }
            params.limits.maxTokens = count
        }
        if let cost = parsed.value("--max-cost") {
            guard let dollars = Double(cost), dollars > 0 else { usageFailure("--max-cost needs an amount of USD such as 0.50") }
            params.limits.maxCost = dollars
        }
        let socket = parsed.value("--socket")
        let id = try LLMDClient(socketPath: socket).call(ScopeBeginMethod.self, params).scope
        let status = run(command, scopes: ([id] + outer.dropFirst()).joined(separator: ","))
        let totals = try LLMDClient(socketPath: socket).call(ScopeEndMethod.self, ScopeEndMethod.Params(scope: id)).totals
        var report: String
        if parsed.flag("--json") {
            var object = totals.json
            object["scope"] = .string(id)
            object["exit_status"] = .int(Int64(status))
            report = JSONValue.object(object).encodedString + "\n"
        } else {
            // LangChain's OpenAICallbackHandler, line for line.
            report = """
                Tokens Used: \(totals.totalTokens)
                \tPrompt Tokens: \(totals.promptTokens)
                \t\tPrompt Tokens Cached: \(totals.cachedPromptTokens)
                \tCompletion Tokens: \(totals.completionTokens)
                \t\tReasoning Tokens: \(totals.reasoningTokens)
                Requests: \(totals.requests)
                Total Cost (USD): \(costText(totals))

                """
            printCostNotes(totals) { report += $0 + "\n" }
        }
        if let path = output {
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
    static func run(_ command: ExternalCommand, scopes: String) -> Int32 {
        signal(SIGINT, SIG_IGN)
        signal(SIGQUIT, SIG_IGN)
        do {
            return try command.run(setting: ["LLMD_SCOPE": scopes]).status
        } catch {
            printError("llmctl: \(error)")
            return 127
        }
    }

    // MARK: budget

    static func budget(_ parsed: ParsedCommandLine) throws(ClientError) {
        let result: BudgetShowMethod.Result
        if parsed.path[1] == "set" {
            let budget: BudgetName
            switch (parsed.value("--session"), parsed.value("--scope"), parsed.flag("--daily")) {
            case (let session?, nil, false): budget = .session(session)
            case (nil, let scope?, false): budget = .scope(scope)
            case (nil, nil, true): budget = .daily
            default: usageFailure("name one budget: -s SESSION, --scope ID or --daily")
            }
            var limits = BudgetLimitChange()
            if let tokens = parsed.value("--max-tokens") {
                guard tokens == "none" || (Int64(tokens) ?? 0) > 0 else { usageFailure("--max-tokens needs a positive whole number or 'none'") }
                limits.maxTokens = .some(Int64(tokens))
            }
            if let cost = parsed.value("--max-cost") {
                guard cost == "none" || (Double(cost) ?? 0) > 0 else { usageFailure("--max-cost needs an amount of USD or 'none'") }
                limits.maxCost = .some(Double(cost))
            }
            guard !limits.isEmpty else { usageFailure("give --max-tokens or --max-cost") }
            let params = BudgetSetMethod.Params(budget: budget, limits: limits)
            result = try LLMDClient(socketPath: parsed.value("--socket")).call(BudgetSetMethod.self, params)
        } else {
            result = try LLMDClient(socketPath: parsed.value("--socket")).call(BudgetShowMethod.self, BudgetShowMethod.Params())
        }
        if parsed.flag("--json") { return print(JSONValue.object(result.json).encodedString) }
        var rows = [["BUDGET", "TOKENS", "COST"]]
        for budget in result.budgets {
            let name: String
            switch budget.kind {
            case .session(let session): name = "session " + session
            case .scope(let scope): name = "scope " + scope
            case .daily(let day): name = "daily " + day
            }
            func limited(_ used: String, _ limit: String?, _ held: String) -> String {
                used + " of " + (limit ?? "unlimited") + (held.hasPrefix("0") || held == "$0.00" ? "" : " (+\(held) reserved)")
            }
            rows.append([
                name,
                limited(String(budget.spent.tokens), budget.limits.maxTokens.map { String($0) }, String(budget.reserved.tokens)),
                limited(formatUSD(budget.spent.cost), budget.limits.maxCost.map(formatUSD), formatUSD(budget.reserved.cost)),
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
        let params = TokensCountMethod.Params(
            input: PromptInput(text: text), model: parsed.value("--model"), encoding: parsed.value("--encoding"),
            ids: parsed.flag("--ids") ? true : nil)
        let result = try LLMDClient(socketPath: parsed.value("--socket")).call(TokensCountMethod.self, params)
        if parsed.flag("--json") { return print(JSONValue.object(result.json).encodedString) }
        print(result.tokens)
        if let ids = result.ids { print(ids.map(String.init).joined(separator: " ")) }
        if let vocabulary = result.vocabulary {
            printError(
                "llmctl: an estimate of four bytes a token: llmd has no tokenizer vocabulary (it looked in "
                    + "\(vocabulary.searched.joined(separator: ", "))); \(vocabulary.hint)")
            return
        }
        if !result.exact {
            printError("llmctl: '\(result.model)' has no known encoding; counted with \(result.encoding ?? "?"), so approximately")
        }
    }
}
