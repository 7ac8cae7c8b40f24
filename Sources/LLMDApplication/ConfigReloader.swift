import LLMDCore
import LLMDSystemd
import Logging

#if canImport(Glibc)
import Glibc
#endif
import LLMDLifecycle

/// Reloads configuration on SIGHUP, telling systemd `RELOADING=1` then `READY=1`.
///
/// A configuration with errors is refused whole: the old one stays, and the errors
/// are logged with file and line.
public struct ConfigReloader: Service {
    let initial: DaemonConfiguration
    let overridden: Set<String>
    let load: @Sendable () -> LoadedConfiguration
    let apply: @Sendable (LoadedConfiguration) -> Void
    let notifier: SystemdNotifier
    let statusLine: @Sendable () -> String
    let logger: Logger
    /// Caught from construction, before any service runs: a SIGHUP that came after
    /// `READY=1` but before this service started would otherwise end the daemon.
    let signals = UnixSignals([SIGHUP])

    /// - Parameters:
    ///   - initial: the configuration as read from the files at startup (before command-line
    ///     overrides), which the first reload is compared with.
    ///   - overridden: keys whose file value is overridden (`LogLevel` by `--log-level`…),
    ///     so that changing them in the file warrants no warning.
    ///   - load: reads the configuration again.
    ///   - apply: puts an accepted configuration into effect.
    public init(
        initial: DaemonConfiguration,
        overridden: Set<String>,
        load: @escaping @Sendable () -> LoadedConfiguration,
        apply: @escaping @Sendable (LoadedConfiguration) -> Void,
        notifier: SystemdNotifier,
        statusLine: @escaping @Sendable () -> String,
        logger: Logger
    ) {
        self.initial = initial
        self.overridden = overridden
        self.load = load
        self.apply = apply
        self.notifier = notifier
        self.statusLine = statusLine
        self.logger = logger
    }

    public func run(shutdown: GracefulShutdown) async throws {
        defer { signals.stop() }
        await shutdown.cancelling { await self.reload(on: signals.stream) }
    }

    private func reload(on signals: AsyncStream<Int32>) async {
        var running = initial
        for await _ in signals {
            notifier.reloading()
            let candidate = load()
            for diagnostic in candidate.diagnostics {
                logger.log(level: diagnostic.severity == .error ? .error : .warning, "\(diagnostic)")
            }
            if candidate.hasErrors {
                logger.error("configuration reload failed; keeping the previous configuration")
                notifier.ready(status: "Reload failed, previous configuration kept. \(statusLine())")
                continue
            }
            for warning in candidate.configuration.reloadWarnings(comparedTo: running, ignoring: overridden) {
                logger.warning("\(warning)")
            }
            apply(candidate)
            running = candidate.configuration
            logger.notice("configuration reloaded")
            notifier.ready(status: statusLine())
        }
    }
}
