import Foundation
import LLMDProtocol
import LLMDTesting
import Testing

/// What a user can find out from llmctl alone: the providers, their models, the aliases,
/// and the names completion offers; never a key.
@Suite("Discovery")
struct DiscoveryTests {
    let keys: TemporaryDirectory
    let secret = "sk-test-discovery-secret"

    init() throws {
        keys = try TemporaryDirectory()
    }

    /// The fixture as `local` (the default, with a key), a provider that does not answer,
    /// an offline one, and two aliases.
    private func daemon(_ fixture: FixtureServer) throws -> DaemonProcess {
        try DaemonProcess(
            config: try fixture.config(
                keys: keys, secret: secret,
                extra: """

                    [Provider gone]
                    BaseURL=http://127.0.0.1:9/v1
                    ConnectTimeoutSec=1

                    [Provider canned]
                    Type=fake
                    DefaultModel=parrot

                    [Model fixture]
                    ContextWindow=4096

                    [Alias fast]
                    Model=gpt-4o-mini
                    Provider=local

                    [Alias big]
                    Model=gpt-4o
                    """))
    }

    private func run(_ daemon: DaemonProcess, _ arguments: [String]) throws -> ProcessResult {
        let result = try llmctl(arguments + ["--socket", daemon.socketPath])
        #expect(result.status == 0, "llmctl \(arguments): \(result.standardError)")
        #expect(!(result.standardOutput + result.standardError).contains(secret), "llmctl \(arguments) shows the key")
        return result
    }

    private func json(_ result: ProcessResult) throws -> JSONObject {
        try #require(try JSONParser.parse(Array(result.standardOutput.utf8)).objectValue, "\(result.standardOutput)")
    }

    @Test("llmctl providers lists each provider's type, URL, model, whether it has a key (never the key), and the default")
    func providers() throws {
        let fixture = try FixtureServer()
        let daemon = try daemon(fixture)
        let table = try run(daemon, ["providers"]).standardOutput.split(separator: "\n").map {
            $0.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ")
        }
        #expect(
            table == [
                "PROVIDER TYPE BASE URL DEFAULT MODEL API KEY DEFAULT",
                "local openai-compatible \(fixture.baseURL) fixture yes *",
                "gone openai-compatible http://127.0.0.1:9/v1 - no",
                "canned fake (offline) - parrot no",
                "fake fake (offline) - fake no",
            ])

        let result = try ProviderListMethod.Result(json: try json(try run(daemon, ["providers", "--json"])))
        #expect(result.defaultProvider == "local")
        #expect(result.providers.map(\.name) == ["local", "gone", "canned", "fake"])
        let local = try #require(result.providers.first)
        #expect(local.hasAPIKey && local.isDefault && local.type == "openai" && local.baseURL == fixture.baseURL)
        #expect(!daemon.log.contains(secret))
    }

    @Test("llmctl models: each server's list, the offline default, the aliases, what llmd knows; a dead server says so")
    func models() throws {
        let fixture = try FixtureServer()
        let daemon = try daemon(fixture)
        let result = try ModelListMethod.Result(json: try json(try run(daemon, ["models", "--json"])))
        #expect(result.providers.map(\.provider) == ["local", "gone", "canned", "fake"])
        #expect(result.providers[0].models == ["fixture", "gpt-4o-mini", "gpt-4o", "gpt-3.5-turbo-instruct"])
        #expect(result.providers[1].models == nil)
        #expect(result.providers[1].error?.code == .upstreamUnreachable)
        #expect(result.providers[2].models == ["parrot"])
        #expect(result.aliases == [
            ModelListMethod.Alias(alias: "fast", model: "gpt-4o-mini", provider: "local"),
            ModelListMethod.Alias(alias: "big", model: "gpt-4o", provider: nil),
        ])
        let known = Dictionary(uniqueKeysWithValues: result.models.map { ($0.model, $0) })
        #expect(known["fixture"]?.contextWindow == 4096 && known["fixture"]?.price == nil && known["fixture"]?.configured == true)
        #expect(known["gpt-4o-mini"]?.contextWindow == 128_000)
        #expect(known["gpt-4o-mini"]?.price == ModelListMethod.Price(input: 0.15, cachedInput: 0.075, output: 0.6))
        #expect(known["parrot"]?.contextWindow == nil)
        #expect(known["o3"] != nil, "the built-in tables' models are listed")

        let table = try run(daemon, ["models"]).standardOutput
        let rows = table.split(separator: "\n").map { $0.split(separator: " ", omittingEmptySubsequences: true).joined(separator: " ") }
        #expect(rows.contains("local fixture 4096 ? default"), "\(table)")
        #expect(rows.contains("local gpt-4o-mini 128000 $0.15/$0.60"))
        #expect(rows.contains { $0.hasPrefix("gone - not listed: upstream.unreachable: ") }, "\(table)")
        #expect(rows.contains("canned parrot ? ? default"))
        #expect(rows.contains("local fast 128000 $0.15/$0.60 alias of gpt-4o-mini"))
        #expect(rows.contains("- big 128000 $2.50/$10.00 alias of gpt-4o"))
        #expect(rows.contains("- o3 200000 $2.00/$8.00 built-in"))

        // One provider: its models and the aliases, not the built-in tables.
        let only = try ModelListMethod.Result(json: try json(try run(daemon, ["models", "-p", "canned", "--json"])))
        #expect(only.providers.map(\.provider) == ["canned"])
        #expect(only.models.map(\.model) == ["gpt-4o", "gpt-4o-mini", "parrot"])
        let unknown = try llmctl(["models", "--socket", daemon.socketPath, "-p", "nowhere"])
        #expect(unknown.status == 1)
        #expect(unknown.standardError.contains("[provider.not_found]"), "\(unknown.standardError)")
        #expect(!daemon.log.contains(secret))
    }

    /// Requests the fixture saw on `path`, in order.
    private func requests(_ fixture: FixtureServer, path: String) throws -> [JSONObject] {
        try fixture.requestLog().filter { $0["path"]?.stringValue == path }
    }

    @Test("send -m ALIAS calls the model it stands for, at its provider; another provider named with it is refused")
    func aliases() throws {
        let fixture = try FixtureServer()
        let daemon = try daemon(fixture)
        _ = try run(daemon, ["send", "-m", "fast", "hi"])
        _ = try run(daemon, ["send", "-p", "local", "-m", "big", "hi"])
        _ = try run(daemon, ["send", "-s", "trip", "-m", "fast", "hi"])
        #expect(try requests(fixture, path: "/v1/chat/completions").map { $0["model"] } == ["gpt-4o-mini", "gpt-4o", "gpt-4o-mini"])

        let refused = try llmctl(["send", "--socket", daemon.socketPath, "-p", "canned", "-m", "fast", "hi"])
        #expect(refused.status == 1)
        #expect(refused.standardError.contains("alias of gpt-4o-mini at provider 'local'"), "\(refused.standardError)")
        #expect(refused.standardError.contains("[request.invalid_params]"))

        // An alias without a provider goes where the call says: the offline provider here.
        let offline = try run(daemon, ["send", "-p", "canned", "-m", "big", "--json", "hi"])
        #expect(offline.standardOutput.contains(#""model":"gpt-4o""#), "\(offline.standardOutput)")

        let counted = try json(try run(daemon, ["tokens", "-m", "fast", "--json", "hi"]))
        #expect(counted["model"] == "gpt-4o-mini")

        // A reload changes what the alias stands for, for the session's next turn too.
        try daemon.directory.write(
            "llmd.conf", try fixture.config(keys: keys, secret: secret, extra: "\n[Alias fast]\nModel=gpt-3.5-turbo\n"))
        daemon.send(signal: SIGHUP)
        #expect(waitUntil { daemon.log.contains("configuration reloaded") }, "\(daemon.log)")
        _ = try run(daemon, ["send", "-s", "trip", "hi"])
        #expect(try requests(fixture, path: "/v1/chat/completions").last?["model"] == "gpt-3.5-turbo")
    }

    @Test("complete-values lists provider and model names, one a line, without asking any server")
    func completeValues() throws {
        let fixture = try FixtureServer()
        let daemon = try daemon(fixture)
        #expect(try run(daemon, ["complete-values", "providers"]).standardOutput == "local\ngone\ncanned\nfake\n")
        let models = try run(daemon, ["complete-values", "models"]).standardOutput.split(separator: "\n").map(String.init)
        #expect(Array(models.prefix(2)) == ["fast", "big"])
        for name in ["fixture", "parrot", "fake", "gpt-4o-mini", "o3"] { #expect(models.contains(name), "\(name) in \(models)") }
        #expect(try requests(fixture, path: "/v1/models").isEmpty)
        #expect(Set(models).count == models.count)
    }
}
