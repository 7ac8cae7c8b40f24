import LLMDClient
import LLMDCommandLine
import LLMDProtocol

let keyCommand = Command(
    "key", abstract: "Make, list or revoke keys for the HTTP API's TCP listener.",
    subcommands: [
        Command(
            "create", abstract: "Make a key and print it, once: llmd keeps only its digest.",
            options: clientOptions + [
                .value("--scope", valueName: "id", help: "Count the key's calls to this scope, and to its budget."),
                .value("--max-tokens", valueName: "count", help: "A token budget of the key's own (a scope made for it)."),
                .value("--max-cost", valueName: "usd", help: "A cost budget of the key's own, in USD."),
            ],
            positionals: [Positional("name", help: "The key's name: letters, digits, '-', '_' or '.'.")]),
        Command("list", abstract: "List the keys, revoked ones too, never the keys themselves.", options: clientOptions),
        Command(
            "revoke", abstract: "Revoke a key: requests with it are refused from now on.", options: clientOptions,
            positionals: [Positional("name", help: "The key's name.")]),
    ])

extension LLMCtl {
    static func key(_ parsed: ParsedCommandLine) throws(ClientError) {
        let client = try LLMDClient(socketPath: parsed.value("--socket"))
        let json = parsed.flag("--json")
        switch parsed.path[1] {
        case "create":
            var limits = BudgetLimitChange()
            if let tokens = parsed.value("--max-tokens") {
                guard let count = Int64(tokens), count > 0 else { usageFailure("--max-tokens needs a positive whole number") }
                limits.maxTokens = count
            }
            if let cost = parsed.value("--max-cost") {
                guard let dollars = Double(cost), dollars > 0 else { usageFailure("--max-cost needs an amount of USD such as 0.50") }
                limits.maxCost = dollars
            }
            let made = try client.call(
                KeyCreateMethod.self,
                KeyCreateMethod.Params(name: parsed.positionals[0], scope: parsed.value("--scope"), limits: limits))
            if json { return print(JSONValue.object(made.json).encodedString) }
            print(made.secret)
            printError("llmctl: key '\(made.key.name)' made; it is shown this once: llmd keeps only its SHA-256")
        case "list":
            let list = try client.call(KeyListMethod.self, NoParams())
            if json { return print(JSONValue.object(list.json).encodedString) }
            guard !list.keys.isEmpty else { return print("No keys. Make one with: llmctl key create NAME") }
            var rows = [["NAME", "SCOPE", "CREATED", "REVOKED"]]
            for key in list.keys { rows.append([key.name, key.scope ?? "-", key.created, key.revoked ?? "-"]) }
            print(table(rows))
        case "revoke":
            let revoked = try client.call(KeyRevokeMethod.self, KeyRevokeMethod.Params(name: parsed.positionals[0]))
            if json { return print(JSONValue.object(revoked.json).encodedString) }
            print("revoked key '\(revoked.name)'")
        default:
            preconditionFailure("key \(parsed.path[1]) is declared but not handled")
        }
    }
}
