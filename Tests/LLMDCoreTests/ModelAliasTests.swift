import Testing

@testable import LLMDCore

@Suite("Model aliases")
struct ModelAliasTests {
    private func parse(_ files: (String, String)...) -> (DaemonConfiguration, [String]) {
        let (config, diagnostics) = DaemonConfiguration.parse(files: files.map { (path: $0.0, text: $0.1) })
        return (config, diagnostics.map(\.description))
    }

    @Test("[Alias NAME] gives a model, and optionally a provider; a drop-in may change or finish it")
    func parsed() {
        let (config, diagnostics) = parse(
            ("a.conf", "[Alias fast]\nModel=gpt-4o-mini\nProvider=openai\n\n[Alias local:small]\nProvider=ollama\n"),
            ("b.conf", "[Alias local:small]\nModel=llama3.2:3b\n[Alias fast]\nProvider=\n"))
        #expect(diagnostics.isEmpty)
        #expect(
            config.aliases == [
                ModelAlias(name: "fast", model: "gpt-4o-mini"),
                ModelAlias(name: "local:small", model: "llama3.2:3b", provider: "ollama"),
            ])
        #expect(config.aliases.alias("fast")?.model == "gpt-4o-mini")
        #expect(config.aliases.alias("gpt-4o-mini") == nil)
    }

    @Test("an alias without a model, of itself, of another alias or named like a [Model] section is an error at its line")
    func errors() {
        let (config, diagnostics) = parse(
            (
                "llmd.conf",
                """
                [Alias empty]
                Provider=openai

                [Alias loop]
                Model=loop

                [Alias fast]
                Model=gpt-4o-mini

                [Alias chain]
                Model=fast

                [Model llama3]
                ContextWindow=8192

                [Alias llama3]
                Model=llama3:8b
                Modle=typo
                Provider=not a name
                """
            ))
        #expect(
            diagnostics == [
                "llmd.conf:2: error: [Alias empty] needs Model=, the model it stands for",
                "llmd.conf:5: error: [Alias loop] Model=loop: an alias cannot stand for itself",
                "llmd.conf:11: error: [Alias chain] Model=fast is another alias; name the model itself",
                "llmd.conf:17: error: [Alias llama3] is named like a [Model llama3] section; rename one of them",
                "llmd.conf:18: warning: unknown key 'Modle' in section [Alias llama3], ignored",
                "llmd.conf:19: error: invalid Provider=not a name: expected a provider name: letters, digits, '-', '_' and '.'",
            ])
        // Unusable aliases stand for nothing.
        #expect(config.aliases.alias("empty") == nil)
    }
}
