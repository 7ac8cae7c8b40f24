import LLMDCore
import LLMDMetrics
import LLMDUsage
import Synchronization

/// The settings a SIGHUP reload may change while the daemon runs.
public struct ReloadableSettings: Sendable, Equatable {
    public var peerPolicy: PeerPolicy
    public var maximumLineLength: Int
    /// `MaxBufferedInput=`, at least `MaxLineBytes=`.
    public var maximumBufferedInput: Int
    /// `MaxConnections=`; nil for no limit.
    public var maximumConnections: Int?
    public var shutdownTimeout: Duration
    public var providers: [ResolvedProvider]
    public var defaultProvider: String
    /// `[Model NAME]` sections: context windows and encodings.
    public var models: [ModelConfiguration]
    /// `[Alias NAME]` sections.
    public var aliases: [ModelAlias]
    /// Built-in prices with the `[Model NAME]` ones over them.
    public var prices: PriceTable
    /// `[Budget]`.
    public var budget: BudgetConfiguration
    /// The providers and models metrics name; others are `other`.
    public var metricLabels: MetricLabels
    /// `llmd --timings`: replies carry the daemon's own timings (`commit_us`, `record_us`).
    public var reportsTimings = false

    /// - Parameters:
    ///   - uid: the daemon's effective uid, always admitted.
    ///   - group: the group admitted besides: `SocketGroup=`'s, or the activation socket's.
    public init(_ loaded: LoadedConfiguration, uid: UInt32, group: UInt32?) {
        self.peerPolicy = PeerPolicy(daemonUID: uid, allowedGroup: group)
        self.maximumLineLength = loaded.configuration.maximumLineLength
        self.maximumConnections = loaded.configuration.maximumConnections
        self.maximumBufferedInput = max(loaded.configuration.maximumBufferedInput, loaded.configuration.maximumLineLength)
        self.shutdownTimeout = loaded.configuration.shutdownTimeout
        self.providers = loaded.providers
        self.defaultProvider = loaded.defaultProvider
        self.models = loaded.configuration.models
        self.aliases = loaded.configuration.aliases
        self.prices = loaded.configuration.models.prices
        self.budget = loaded.configuration.budget
        self.metricLabels = MetricLabels(
            providers: Set(loaded.providers.map(\.name)),
            models: Set(loaded.configuration.models.map(\.name)).union(prices.configured.keys))
    }
}

/// The current reloadable settings; new connections read them, a reload replaces them.
public final class LiveSettings: Sendable {
    private let settings: Mutex<ReloadableSettings>

    public init(_ initial: ReloadableSettings) {
        self.settings = Mutex(initial)
    }

    public var current: ReloadableSettings { settings.withLock { $0 } }

    public func replace(with new: ReloadableSettings) {
        settings.withLock { $0 = new }
    }
}
