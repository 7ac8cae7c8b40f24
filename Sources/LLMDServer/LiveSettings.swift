import LLMDCore
import Synchronization

/// The settings a SIGHUP reload may change while the daemon runs.
public struct ReloadableSettings: Sendable, Equatable {
    public var peerPolicy: PeerPolicy
    public var maximumLineLength: Int
    public var shutdownTimeout: Duration

    /// - Parameters:
    ///   - uid: the daemon's effective uid, always admitted.
    ///   - group: the gid `SocketGroup=` names, if any.
    public init(_ configuration: DaemonConfiguration, uid: UInt32, group: UInt32?) {
        self.peerPolicy = PeerPolicy(daemonUID: uid, allowedGroup: group)
        self.maximumLineLength = configuration.maximumLineLength
        self.shutdownTimeout = configuration.shutdownTimeout
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
