import LLMDMemory
import LLMDUsage

/// The label values a metric may carry, bounded whatever clients send: a provider or a
/// model is named as configuration and the built-in price list know it, or `other`.
///
/// Labels never name a session or a run: each label value is a time series Prometheus
/// keeps, and those would grow without end.
public struct MetricLabels: Sendable, Equatable {
    /// What an unknown provider or model is counted as.
    public static let other = "other"

    /// The providers configured (with `offline`).
    public var providers: Set<String>
    /// Models named in configuration: a `[Model]` section or a configured price.
    public var models: Set<String>

    public init(providers: Set<String>, models: Set<String>) {
        self.providers = providers
        self.models = models
    }

    /// `provider` when configured, else `other`: a reported run (`run.event`) names its own.
    public func provider(_ provider: String) -> String {
        providers.contains(provider) ? provider : Self.other
    }

    /// `model` when configuration names it; else its family in the built-in price list, as
    /// prices are found (a dated snapshot `gpt-4o-2024-08-06` is counted as `gpt-4o`);
    /// else `other`.
    public func model(_ model: String) -> String {
        if models.contains(model) { return model }
        return ModelFamilies.lookup(model, in: Self.builtInFamilies) ?? Self.other
    }

    private static let builtInFamilies = PriceTable.builtIn.map { (prefix: $0.prefix, value: $0.prefix) }
}
