import LLMDCore
import LLMDSystemd
import Logging
import ServiceLifecycle
import UnixSignals

/// Reloads configuration on SIGHUP, telling systemd `RELOADING=1` then `READY=1`.
///
/// A configuration with errors is refused whole: the old one stays, and the errors
/// are logged with file and line.
public struct ConfigReloader: Service {
    /// Reads the configuration again; returns it with its diagnostics.
    public typealias Load = @Sendable () -> (DaemonConfiguration, [ConfigDiagnostic])
    /// Applies an accepted configuration.
    public typealias Apply = @Sendable (DaemonConfiguration) -> Void

    let load: Load
    let apply: Apply
    let initial: DaemonConfiguration
    let notifier: SystemdNotifier
    let statusLine: @Sendable () -> String
    let logger: Logger

    public init(
        initial: DaemonConfiguration, load: @escaping Load, apply: @escaping Apply, notifier: SystemdNotifier,
        statusLine: @escaping @Sendable () -> String, logger: Logger
    ) {
        self.initial = initial
        self.load = load
        self.apply = apply
        self.notifier = notifier
        self.statusLine = statusLine
        self.logger = logger
    }

    public func run() async throws {
        var current = initial
        for await _ in await UnixSignalsSequence(trapping: .sighup).cancelOnGracefulShutdown() {
            notifier.reloading()
            let (candidate, diagnostics) = load()
            for diagnostic in diagnostics {
                logger.log(level: diagnostic.severity == .error ? .error : .warning, "\(diagnostic)")
            }
            if diagnostics.contains(where: { $0.severity == .error }) {
                logger.error("configuration reload failed; keeping the previous configuration")
                notifier.notify("READY=1\nSTATUS=Reload failed, previous configuration kept. \(statusLine())")
                continue
            }
            for setting in candidate.restartOnlyChanges(comparedTo: current) {
                logger.warning("\(setting) changed; it takes effect at the next restart")
            }
            apply(candidate)
            current = candidate
            logger.notice("configuration reloaded")
            notifier.ready(status: statusLine())
        }
    }
}
