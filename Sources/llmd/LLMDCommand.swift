import LLMDCore
import LLMDCurl
import LLMDProtocol
import LLMDApplication
import LLMDBus
import LLMDHTTP
import LLMDMetrics
import LLMDTransport
import LLMDSystemd
import Logging
import NIOPosix
import LLMDLifecycle
import CoreMetrics
import Prometheus

/// Ends the daemon with a documented exit status (llmd(8)).
struct DaemonExit: Error {
    var status: Int32
}

#if canImport(Glibc)
import Glibc
#endif

@main
struct LLMDCommand {
    let options: DaemonOptions

    static func main() async {
        let action: DaemonOptions.Action
        do {
            action = try DaemonOptions.parse(Array(CommandLine.arguments.dropFirst()))
        } catch {
            printError("llmd: \(error)\nTry 'llmd --help' for more information.")
            exit(64)
        }
        switch action {
        case .help:
            print(DaemonOptions.command.help(for: []))
        case .version:
            print(versionText)
        case .run(let options):
            do {
                try await LLMDCommand(options: options).run()
            } catch let exit as DaemonExit {
                Glibc.exit(exit.status)
            } catch {
                printError("llmd: \(error)")
                exit(1)
            }
        }
    }

    static var versionText: String {
        let curl = CurlLibrary.info
        return "llmd \(LLMDVersion.string) (protocol \(ProtocolVersion.current); libcurl \(curl.version), "
            + "\(curl.tlsBackend)\(curl.supportsHTTP2 ? ", HTTP/2" : ""))"
    }

    func run() async throws {
        signal(SIGPIPE, SIG_IGN)

        let uid = geteuid()
        let instance = options.instance ?? (uid == 0 ? .system : .user)
        let configPath = options.configPath ?? instance.configPath(environment: SocketLocation.processEnvironment)
        let load: @Sendable () -> LoadedConfiguration = { [required = options.configPath != nil, offline = options.offline] in
            LoadedConfiguration.load(mainPath: configPath, mainFileRequired: required, checkingSystem: !offline)
        }
        let loaded = load()
        for diagnostic in loaded.diagnostics { printError(diagnostic.description) }
        if loaded.hasErrors { throw DaemonExit(status: 78) }
        if options.checkConfig {
            print("\(configPath): configuration OK")
            return
        }

        let level = options.logLevel.flatMap(LLMDCore.logLevel(named:)) ?? loaded.configuration.logLevel
        let useJournal = JournalLogHandler.stderrIsJournal()
        LoggingSystem.bootstrap { label -> any LogHandler in
            if useJournal { return JournalLogHandler(label: label, logLevel: level) }
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "llmd")
        let files = OpenFileLimit.raiseToHardLimit()
        if files.after > files.before { logger.debug("open file limit \(files.after), raised from \(files.before)") }

        let listeningSocket: ListeningSocket
        let inherited: SocketActivation.Inherited?
        do {
            inherited = try SocketActivation.takeListeningSockets()
            listeningSocket = try openListeningSocket(loaded: loaded, instance: instance, uid: uid, inherited: inherited)
        } catch {
            printError("llmd: \(error)")
            throw DaemonExit(status: 1)
        }
        let settingsFor: @Sendable (LoadedConfiguration) -> ReloadableSettings = { loaded in
            var settings = ReloadableSettings(loaded, uid: uid, group: loaded.socketGroupID ?? listeningSocket.activationGroup)
            settings.reportsTimings = options.timings
            return settings
        }

        // Metrics go to Prometheus's registry, which `/metrics` reads; libraries are given
        // the factory, and the global one is bootstrapped here alone.
        let registry = PrometheusCollectorRegistry()
        var metricsFactory = PrometheusMetricsFactory(registry: registry)
        metricsFactory.durationHistogramBuckets = DaemonMetrics.durationBuckets
        MetricsSystem.bootstrap(metricsFactory)
        let metrics = DaemonMetrics(factory: metricsFactory)

        let state = DaemonState(pid: getpid(), socketPath: listeningSocket.path)
        let settings = LiveSettings(settingsFor(loaded))
        var methods = MethodTable()
        CoreMethods.register(in: &methods, state: state)
        let stateDirectory = stateDirectory(loaded: loaded, instance: instance)
        let bus: EventBus
        let upstream = LazyUpstream(
            tokenBatch: loaded.configuration.events.tokenBatch, writeBatching: .heldFlushes, logger: logger)
        let sessions: Sessions
        do {
            bus = try EventBus.make(
                configuration: loaded.configuration, stateDirectory: stateDirectory, verbose: options.verbose, logger: logger)
            sessions = try Sessions(
                stateDirectory: stateDirectory, configuration: loaded.configuration, settings: settings, bus: bus,
                upstream: upstream, state: state, metrics: metrics, logger: logger)
            try await sessions.start()
        } catch {
            printError("llmd: \(error)")
            throw DaemonExit(status: 1)
        }
        EventMethods.register(in: &methods, bus: bus, billing: sessions.billing, logger: logger)
        CallMethods.register(
            in: &methods, upstream: upstream, settings: settings, bus: bus, billing: sessions.billing, logger: logger)
        sessions.register(in: &methods)
        sessions.billing.register(in: &methods)
        DiscoveryMethods.register(in: &methods, settings: settings, upstream: upstream)
        let keys = APIKeys(sessions: sessions)
        do {
            try await keys.start()
        } catch {
            printError("llmd: \(error)")
            throw DaemonExit(status: 1)
        }
        keys.register(in: &methods)

        let eventLoopGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let notifier = SystemdNotifier()
        let server = SocketServer(
            socket: listeningSocket, group: eventLoopGroup, methods: methods, state: state, settings: settings,
            bus: bus, sessionNames: sessions.nameEpochs, notifier: notifier, logger: logger)
        var overridden: Set<String> = []
        if options.logLevel != nil { overridden.insert("LogLevel") }
        if options.socketPath != nil || socketFromEnvironment != nil { overridden.insert("Socket") }
        // Under socket activation the .socket unit decides the path and the mode.
        if !listeningSocket.ownsPath { overridden.formUnion(["Socket", "SocketMode"]) }
        let reloader = ConfigReloader(
            initial: loaded.configuration, overridden: overridden, load: load, apply: { settings.replace(with: settingsFor($0)) },
            notifier: notifier, statusLine: { state.statusLine }, logger: logger)
        let heartbeat = SystemdHeartbeat(notifier: notifier, state: state, eventLoop: eventLoopGroup.next())

        let http = openHTTPServer(
            loaded: loaded, protocolSocket: listeningSocket, inherited: inherited?.httpSocket, instance: instance,
            group: eventLoopGroup, methods: methods, state: state, settings: settings, keys: keys,
            metrics: { [sessions] in
                metrics.sample(sessions.health())
                return registry.emitToBuffer()
            }, logger: logger)

        // Services stop in reverse order: the servers drain first, while the reloader
        // still owns SIGHUP and the heartbeat still feeds the watchdog; the bus commits
        // the journal's last events at the very end.
        let serviceGroup = ServiceGroup(services: [bus, heartbeat, reloader, server] + (http.map { [$0] } ?? []), logger: logger)
        try await serviceGroup.run()
        upstream.shutdown()
        try await eventLoopGroup.shutdownGracefully()
    }

    /// The HTTP API's server (and `/metrics`) on `[HTTP] Socket=`, or `http.sock` beside the
    /// protocol socket; nil when `[HTTP] Enabled=no` (or it serves neither), or when the socket cannot be made, which is
    /// logged: the protocol socket is served either way.
    private func openHTTPServer(
        loaded: LoadedConfiguration, protocolSocket: ListeningSocket, inherited: Int32?, instance: Instance,
        group: MultiThreadedEventLoopGroup,
        methods: MethodTable, state: DaemonState, settings: LiveSettings, keys: APIKeys,
        metrics: @escaping @Sendable () -> [UInt8], logger: Logger
    ) -> HTTPServer? {
        let configuration = loaded.configuration.http
        guard configuration.servesAnything else {
            if let inherited { close(inherited) }
            return nil
        }
        if let inherited {
            // Under socket activation the .socket unit decides the path and the mode.
            let socket = ListeningSocket.inherited(
                descriptor: inherited, path: UnixSocketAddress.boundPath(of: inherited) ?? "(inherited HTTP socket)")
            return HTTPServer(
                socket: socket, configuration: configuration, group: group,
                methods: methods, state: state, settings: settings, keys: keys, metrics: metrics, logger: logger)
        }
        let directory = protocolSocket.path.split(separator: "/", omittingEmptySubsequences: false).dropLast()
            .joined(separator: "/")
        let path = configuration.socketPath ?? (directory.isEmpty ? "" : directory) + "/http.sock"
        do {
            let socket = try ListeningSocket.bind(
                .init(
                    path: path, mode: loaded.configuration.socketMode ?? instance.defaultSocketMode,
                    group: loaded.socketGroupID, directoryMode: instance.directoryMode))
            return HTTPServer(
                socket: socket, configuration: configuration, group: group,
                methods: methods, state: state, settings: settings, keys: keys, metrics: metrics, logger: logger)
        } catch {
            logger.error("cannot serve the HTTP API on \(path): \(error)")
            return nil
        }
    }

    /// The inherited socket under socket activation, else one bound at the configured path.
    private func openListeningSocket(
        loaded: LoadedConfiguration, instance: Instance, uid: UInt32, inherited: SocketActivation.Inherited?
    ) throws -> ListeningSocket {
        if let descriptor = inherited?.protocolSocket {
            return .inherited(
                descriptor: descriptor, path: UnixSocketAddress.boundPath(of: descriptor) ?? "(inherited socket)")
        }
        let configuration = loaded.configuration
        let path =
            options.socketPath ?? socketFromEnvironment ?? configuration.socketPath
            ?? instance.socketPath(uid: uid, environment: SocketLocation.processEnvironment)
        return try ListeningSocket.bind(
            .init(
                path: path,
                mode: configuration.socketMode ?? instance.defaultSocketMode,
                group: loaded.socketGroupID,
                directoryMode: instance.directoryMode))
    }

    /// `--state-dir` > `$STATE_DIRECTORY` (systemd's `StateDirectory=`) > `StateDirectory=` >
    /// the instance's default.
    private func stateDirectory(loaded: LoadedConfiguration, instance: Instance) -> String {
        let fromSystemd = SocketLocation.processEnvironment("STATE_DIRECTORY").flatMap {
            // systemd lists one path per StateDirectory= entry, separated by colons.
            $0.isEmpty ? nil : String($0.split(separator: ":")[0])
        }
        return options.stateDirectory ?? fromSystemd ?? loaded.configuration.stateDirectory
            ?? instance.stateDirectory(environment: SocketLocation.processEnvironment)
    }

    /// `$LLMD_SOCKET`, when set and not empty.
    private var socketFromEnvironment: String? {
        SocketLocation.processEnvironment(SocketLocation.environmentVariable).flatMap { $0.isEmpty ? nil : $0 }
    }
}

private func printError(_ message: String) {
    var line = message + "\n"
    line.withUTF8 { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
}
