import LLMDCore
import LLMDProtocol
import LLMDTesting
import Testing

@testable import LLMDApplication

@Suite("Model choice")
struct ModelChoiceTests {
    private func settings(_ text: String) throws -> (ReloadableSettings, LoadedConfiguration, path: String) {
        let directory = try TemporaryDirectory()
        let path = try directory.write("llmd.conf", text)
        let loaded = LoadedConfiguration.load(mainPath: path, mainFileRequired: true, environment: { _ in nil })
        return (ReloadableSettings(loaded, uid: 0, group: nil), loaded, path)
    }

    private let configuration = """
        [Provider local]
        BaseURL=http://127.0.0.1:9/v1
        DefaultModel=llama3

        [Provider other]
        Type=fake

        [Alias fast]
        Model=gpt-4o-mini
        Provider=local

        [Alias any]
        Model=qwen
        """

    @Test("an alias stands for its model at its provider, or at the provider named, else the default")
    func resolved() throws {
        let (current, loaded, _) = try settings(configuration)
        #expect(!loaded.hasErrors)
        func choice(_ provider: String?, _ model: String?) throws -> String {
            let (provider, model) = try current.choose(provider: provider, model: model)
            return "\(provider.name) \(model ?? "-")"
        }
        #expect(try choice(nil, "fast") == "local gpt-4o-mini")
        #expect(try choice("local", "fast") == "local gpt-4o-mini")
        #expect(try choice(nil, "any") == "fake qwen")
        #expect(try choice("other", "any") == "other qwen")
        #expect(try choice("local", nil) == "local llama3")
        #expect(try choice("local", "gpt-4o") == "local gpt-4o")
        #expect(current.modelName("fast") == "gpt-4o-mini")
        #expect(current.modelName("gpt-4o") == "gpt-4o")
    }

    @Test("an alias named with another provider than its own is refused, saying both")
    func conflict() throws {
        let (current, _, _) = try settings(configuration)
        #expect {
            _ = try current.choose(provider: "other", model: "fast", session: "trip")
        } throws: { error in
            let error = try #require(error as? ProtocolError)
            return error.code == .invalidParams && error.detail["field"] == "provider" && error.detail["got"] == "other"
                && error.message.contains("session 'trip' names provider 'other'")
                && error.message.contains("alias of gpt-4o-mini at provider 'local'")
        }
    }

    @Test("an alias's provider must exist: an error at its line")
    func unknownProvider() throws {
        let (_, loaded, path) = try settings("[Alias fast]\nModel=gpt-4o-mini\nProvider=nowhere\n")
        #expect(
            loaded.diagnostics.map(\.description) == [
                "\(path):3: error: [Alias fast] Provider=nowhere: no such provider; known: fake"
            ])
    }
}
