import LLMDClient
import LLMDCommandLine
import LLMDProtocol

let providersCommand = Command(
    "providers", abstract: "List the providers calls may name, and which is the default.",
    discussion: "Whether a provider has an API key is shown; the key never is.",
    options: clientOptions)

let modelsCommand = Command(
    "models", abstract: "List the models each provider offers, what llmd knows of them, and the aliases.",
    discussion: """
        Asks each provider's server for its models (GET /models; an offline provider offers
        its default model). A provider that does not answer is listed with the error; the
        others still are. CONTEXT and PRICE (USD per million tokens in and out) are '?' where
        llmd knows none: a [Model NAME] section of llmd.conf can tell it.
        """,
    options: clientOptions + [
        .value("-p", "--provider", valueName: "name", help: "Only this provider's models.", liveValues: "providers")
    ])

extension LLMCtl {
    static func providers(_ parsed: ParsedCommandLine) throws(ClientError) {
        let result = try LLMDClient(socketPath: parsed.value("--socket")).call(ProviderListMethod.self, NoParams())
        if parsed.flag("--json") { return print(JSONValue.object(result.json).encodedString) }
        var rows = [["PROVIDER", "TYPE", "BASE URL", "DEFAULT MODEL", "API KEY", "DEFAULT"]]
        for provider in result.providers {
            rows.append([
                provider.name, provider.type == "fake" ? "fake (offline)" : "openai-compatible", provider.baseURL ?? "-",
                provider.defaultModel ?? "-", provider.hasAPIKey ? "yes" : "no", provider.isDefault ? "*" : "",
            ])
        }
        print(table(rows))
    }

    static func models(_ parsed: ParsedCommandLine) throws(ClientError) {
        let result = try LLMDClient(socketPath: parsed.value("--socket")).call(
            ModelListMethod.self, ModelListMethod.Params(provider: parsed.value("--provider")))
        if parsed.flag("--json") { return print(JSONValue.object(result.json).encodedString) }
        let known = Dictionary(result.models.map { ($0.model, $0) }) { first, _ in first }
        var rows = [["PROVIDER", "MODEL", "CONTEXT", "PRICE IN/OUT", "NOTE"]]
        var shown: Set<String> = []
        func row(_ provider: String, _ name: String, _ model: String, note: String) {
            let info = known[model]
            let price = info?.price.map { formatUSD($0.input) + "/" + formatUSD($0.output) }
            rows.append([provider, name, info?.contextWindow.map { String($0) } ?? "?", price ?? "?", note])
            if name == model { shown.insert(model) }
        }
        for entry in result.providers {
            if let error = entry.error {
                rows.append([entry.provider, "-", "", "", "not listed: \(error.code): \(oneLine(error.message, limit: 60))"])
            }
            for model in entry.models ?? [] { row(entry.provider, model, model, note: model == entry.defaultModel ? "default" : "") }
            if let model = entry.defaultModel, !(entry.models ?? []).contains(model) {
                row(entry.provider, model, model, note: entry.models == nil ? "default" : "default, not listed by the server")
            }
        }
        for alias in result.aliases {
            row(alias.provider ?? "-", alias.alias, alias.model, note: "alias of \(alias.model)")
        }
        for model in result.models where !shown.contains(model.model) {
            row("-", model.model, model.model, note: model.configured ? "llmd.conf" : "built-in")
        }
        print(table(rows))
    }

    /// The models `complete-values models` offers: the aliases, then what the daemon knows
    /// without asking any server (default, configured, built-in models), so a Tab press
    /// never waits on a network.
    static func modelNames(_ client: LLMDClient) throws(ClientError) -> [String] {
        let result = try client.call(ModelListMethod.self, ModelListMethod.Params(upstream: false))
        var seen: Set<String> = []
        return (result.aliases.map(\.alias) + result.models.map(\.model)).filter { seen.insert($0).inserted }
    }
}
