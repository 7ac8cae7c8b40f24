import LLMDCore
import LLMDMemory
import LLMDOpenAI
import LLMDProtocol
import LLMDUpstream
import LLMDUsage

/// `provider.list` and `model.list`: what a user may name in a call, from the live
/// configuration, so `llmctl providers`, `llmctl models` and completions need no llmd.conf
/// of their own (and no key: only whether there is one goes out).
public enum DiscoveryMethods {
    public static func register(in table: inout MethodTable, settings: LiveSettings, upstream: LazyUpstream) {
        table.register(ProviderListMethod.self) { _, _ throws(ProtocolError) in
            let current = settings.current
            return ProviderListMethod.Result(
                providers: current.providers.map { provider in
                    ProviderListMethod.Provider(
                        name: provider.name, type: provider.configuration.kind.rawValue,
                        baseURL: provider.server.isOffline ? nil : provider.configuration.baseURL,
                        defaultModel: provider.model(nil), hasAPIKey: provider.apiKey != nil,
                        isDefault: provider.name == current.defaultProvider)
                },
                defaultProvider: current.defaultProvider)
        }
        table.register(ModelListMethod.self) { params, _ throws(ProtocolError) in
            try await listModels(params, settings: settings.current, upstream: upstream)
        }
    }

    private static func listModels(
        _ params: ModelListMethod.Params, settings: ReloadableSettings, upstream: LazyUpstream
    ) async throws(ProtocolError) -> ModelListMethod.Result {
        let providers = try params.provider.map { name throws(ProtocolError) in [try settings.provider(named: name)] }
            ?? settings.providers
        let asking = params.upstream ?? true
        // The servers are asked at once, so one that does not answer costs its timeout once.
        let listed = await withTaskGroup(of: (Int, ModelListMethod.ProviderModels).self) { group in
            for (index, provider) in providers.enumerated() {
                group.addTask { (index, await serverModels(of: provider, asking: asking, upstream: upstream)) }
            }
            var listed = [ModelListMethod.ProviderModels?](repeating: nil, count: providers.count)
            for await (index, models) in group { listed[index] = models }
            return listed.compactMap { $0 }
        }
        let aliases = settings.aliases.compactMap { alias in
            alias.model.map { ModelListMethod.Alias(alias: alias.name, model: $0, provider: alias.provider) }
        }
        var names = Set(aliases.map(\.model))
        for entry in listed {
            names.formUnion(entry.models ?? [])
            if let model = entry.defaultModel { names.insert(model) }
        }
        if params.provider == nil {
            names.formUnion(settings.models.map(\.name))
            names.formUnion(PriceTable.builtIn.map(\.prefix))
            names.formUnion(ContextWindow.known.map(\.prefix))
        }
        let windows = settings.models.contextWindows
        let models = names.sorted().map { name in
            ModelListMethod.Model(
                model: name, contextWindow: ContextWindow.tokens(for: name, configured: windows).map(Int64.init),
                price: settings.prices.price(for: name).map {
                    ModelListMethod.Price(input: $0.input.dollars, cachedInput: $0.cachedInput?.dollars, output: $0.output.dollars)
                },
                configured: settings.models.contains { $0.name == name })
        }
        return ModelListMethod.Result(providers: listed, models: models, aliases: aliases)
    }

    /// What `provider`'s server lists: an offline provider's own model without asking,
    /// nothing when `asking` is false, or why the server listed nothing.
    private static func serverModels(
        of provider: ResolvedProvider, asking: Bool, upstream: LazyUpstream
    ) async -> ModelListMethod.ProviderModels {
        var entry = ModelListMethod.ProviderModels(provider: provider.name, defaultModel: provider.model(nil), models: nil)
        if provider.server.isOffline {
            entry.models = provider.model(nil).map { [$0] } ?? []
        } else if asking {
            do throws(UpstreamError) {
                entry.models = try await upstream.client.listModels(provider: provider)
            } catch {
                entry.error = error.protocolError
            }
        }
        return entry
    }
}
