/// Another name for a model, and optionally its provider, from an `[Alias NAME]` section:
/// `send -m fast` instead of a long model name, changed in one place.
public struct ModelAlias: NamedSection, Sendable, Equatable {
    /// The name calls give instead of the model's.
    public var name: String
    /// `Model=`: the model it stands for; nil until set, which the configuration reports.
    public var model: String?
    /// `Provider=`: the provider the model is called at; nil for the one the call names,
    /// else the default.
    public var provider: String?

    public init(name: String, model: String? = nil, provider: String? = nil) {
        (self.name, self.model, self.provider) = (name, model, provider)
    }

    static let keys: [ConfigurationKey<ModelAlias>] = [
        .init(name: "Model") { alias, value throws(ConfigValueError) in
            alias.model = value.isEmpty ? nil : value
        },
        .init(name: "Provider") { alias, value throws(ConfigValueError) in
            guard value.isEmpty || DaemonConfiguration.providerName(inSection: "Provider " + value) == value else {
                throw ConfigValueError("expected a provider name: letters, digits, '-', '_' and '.'")
            }
            alias.provider = value.isEmpty ? nil : value
        },
    ]
}

extension DaemonConfiguration {
    /// What makes the aliases unusable, once every file is read (a later file may set
    /// `Model=`): an alias without a model, one named like a `[Model]` section (which would
    /// the name mean?), one standing for itself or another alias (a chain, which may loop).
    func aliasDiagnostics() -> [ConfigDiagnostic] {
        var diagnostics: [ConfigDiagnostic] = []
        let modelSections = Set(models.map(\.name))
        let aliasNames = Set(aliases.map(\.name))
        for alias in aliases {
            let location = locations["Alias \(alias.name)"]!
            guard let model = alias.model else {
                diagnostics.append(.init(.error, at: location, "[Alias \(alias.name)] needs Model=, the model it stands for"))
                continue
            }
            if modelSections.contains(alias.name) {
                diagnostics.append(
                    .init(
                        .error, at: location,
                        "[Alias \(alias.name)] is named like a [Model \(alias.name)] section; rename one of them"))
            }
            let modelLocation = locations["Alias \(alias.name).Model"] ?? location
            if model == alias.name {
                diagnostics.append(.init(.error, at: modelLocation, "[Alias \(alias.name)] Model=\(model): an alias cannot stand for itself"))
            } else if aliasNames.contains(model) {
                diagnostics.append(
                    .init(.error, at: modelLocation, "[Alias \(alias.name)] Model=\(model) is another alias; name the model itself"))
            }
        }
        return diagnostics
    }
}

extension [ModelAlias] {
    /// The alias called `name`, when it is one and usable.
    public func alias(_ name: String) -> ModelAlias? {
        first { $0.name == name && $0.model != nil }
    }
}
