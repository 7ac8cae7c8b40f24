import LLMDCore
import LLMDOpenAI
import LLMDProtocol
import LLMDUpstream

/// How a call finds its provider and model. One rule and one set of messages for
/// `complete`, a session's turn and `memory.show`.
extension ReloadableSettings {
    /// The provider `name` names, or the default provider when nil.
    ///
    /// - Parameter session: the session whose setting names it, for the message.
    /// - Throws: `provider.not_found`, its detail listing the providers there are.
    func provider(named name: String?, session: String? = nil) throws(ProtocolError) -> ResolvedProvider {
        let name = name ?? defaultProvider
        if let provider = providers.first(where: { $0.name == name }) { return provider }
        let known = providers.map(\.name)
        let whose = session.map { "session '\($0)' uses provider '\(name)', which is not configured" } ?? "no provider named '\(name)'"
        throw ProtocolError(
            .providerNotFound, "\(whose); the providers are: \(known.joined(separator: ", "))",
            detail: ["provider": .string(name), "providers": .array(known.map(JSONValue.string))])
    }

    /// The provider and model a call uses. `model` may be an `[Alias]`: it stands for its
    /// model and, when it names one, its provider, which a provider named with it must be.
    ///
    /// - Parameters:
    ///   - provider: the provider the call or session names, if any.
    ///   - model: the model or alias it names, if any.
    /// - Returns: the provider, and the model when one applies (else the caller reports
    ///   `provider.no_model`).
    /// - Throws: `provider.not_found`, or `request.invalid_params` (field `provider`) for an
    ///   alias at another provider than the one named.
    func choose(
        provider named: String?, model requested: String?, session: String? = nil
    ) throws(ProtocolError) -> (provider: ResolvedProvider, model: String?) {
        guard let requested, let alias = aliases.alias(requested) else {
            let provider = try provider(named: named, session: session)
            return (provider, provider.model(requested))
        }
        if let named, let aliasProvider = alias.provider, named != aliasProvider {
            let whose = session.map { "session '\($0)' names" } ?? "the call names"
            throw ProtocolError(
                .invalidParams,
                "model '\(alias.name)' is an alias of \(alias.model!) at provider '\(aliasProvider)', but \(whose) "
                    + "provider '\(named)'; name that provider, or none",
                detail: [
                    "field": "provider", "alias": .string(alias.name), "model": .string(alias.model!),
                    "provider": .string(aliasProvider), "got": .string(named),
                ])
        }
        return (try provider(named: alias.provider ?? named, session: session), alias.model)
    }

    /// The model `name` stands for: an alias's model, else `name` itself.
    func modelName(_ name: String) -> String {
        aliases.alias(name)?.model ?? name
    }
}

extension ResolvedProvider {
    /// The model a call uses: the one asked for, else `DefaultModel=`, else its server's
    /// own (the offline provider's); nil when none applies.
    func model(_ requested: String?) -> String? {
        requested ?? configuration.defaultModel ?? server.builtInModel
    }

    /// `provider.no_model`, saying how to name one and, when the provider answers
    /// `GET /models` in time, which models it has (detail: `provider`, `models` or
    /// `models_error`).
    ///
    /// - Parameter session: the session that has no model, if the call is its turn.
    func noModelError(session: String?, upstream: LazyUpstream) async -> ProtocolError {
        var detail: JSONObject = ["provider": .string(name)]
        let how = session.map { "give the session one (llmctl send -s \($0) -m MODEL)" } ?? "pass one (llmctl send -m MODEL)"
        var message =
            "no model for provider '\(name)': \(how), or set DefaultModel= in [Provider \(name)] of llmd.conf"
        do throws(UpstreamError) {
            let models = try await upstream.client.listModels(provider: self)
            detail["models"] = .array(models.map(JSONValue.string))
            if !models.isEmpty {
                let shown = models.count > 20 ? models.prefix(20).joined(separator: ", ") + ", …" : models.joined(separator: ", ")
                message += "; it offers: \(shown)"
            }
        } catch {
            detail["models_error"] = .string(error.description)
        }
        return ProtocolError(.modelMissing, message, detail: detail)
    }
}
