import ArgumentParser
import LLMDCore
import LLMDCurl
import LLMDProtocol
import LLMDServer
import LLMDSystemd
import Logging
import NIOPosix
import ServiceLifecycle

#if canImport(Glibc)
import Glibc
#endif

@main
struct LLMDCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "llmd",
        abstract: "Serve LLM conversations, calls and their callback events on a Unix socket.",
        discussion: """
            Exit status: 0 after a clean shutdown, 1 when the daemon cannot start or fails \
            (for example another llmd already serves the socket), 64 for bad usage, \
            78 for a configuration error. See llmd(8).
            """,
        version: LLMDCommand.versionText
    )

    @Option(name: .long, help: ArgumentHelp("Listen on this socket path.", valueName: "path"))
    var socket: String?

    @Option(name: .long, help: ArgumentHelp("Read this configuration file instead of the default.", valueName: "path"))
    var config: String?

    @Option(name: .long, help: ArgumentHelp("Log at this level and above (overrides LogLevel=).", valueName: "level"))
    var logLevel: String?

    @Flag(name: .long, help: "Check the configuration, print what is wrong with file and line, and exit.")
    var checkConfig = false

    static var versionText: String {
        let curl = CurlLibrary.info
        return "llmd \(LLMDVersion.string) (protocol \(ProtocolVersion.current); libcurl \(curl.version), "
            + "\(curl.tlsBackend)\(curl.supportsHTTP2 ? ", HTTP/2" : ""))"
    }

    func run() async throws {
        // Before any thread exists: curl_global_init is not thread-safe.
        CurlLibrary.initialize()
        signal(SIGPIPE, SIG_IGN)

        let uid = geteuid()
        let isSystemInstance = uid == 0
        let configPath = config ?? ConfigurationFiles.defaultPath(uid: uid, environment: SocketLocation.processEnvironment)
        let loadConfiguration: ConfigReloader.Load = { [config] in
            ConfigurationFiles.load(mainPath: configPath, mainFileRequired: config != nil)
        }
        var (configuration, diagnostics) = loadConfiguration()
        for diagnostic in diagnostics { printError(diagnostic.description) }
        if diagnostics.contains(where: { $0.severity == .error }) { throw ExitCode(78) }
        if let logLevel {
            guard let level = Logger.Level(rawValue: logLevel) else {
                throw ValidationError("unknown log level '\(logLevel)'")
            }
            configuration.logLevel = level
        }
        if checkConfig {
            print("\(configPath): configuration OK")
            return
        }

        let level = configuration.logLevel
        let useJournal = JournalLogHandler.stderrIsJournal()
        LoggingSystem.bootstrap { label -> any LogHandler in
            if useJournal { return JournalLogHandler(label: label, logLevel: level) }
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "llmd")

        var group: UInt32?
        if let groupName = configuration.socketGroup {
            guard let gid = SystemUsers.groupID(named: groupName) else {
                printError("\(configPath): SocketGroup=\(groupName): no such group")
                throw ExitCode(78)
            }
            group = gid
        }

        let listeningSocket: ListeningSocket
        do {
            listeningSocket = try openListeningSocket(
                configuration: configuration, group: group, isSystemInstance: isSystemInstance)
        } catch {
            printError("llmd: \(error)")
            throw ExitCode.failure
        }

        let state = DaemonState(pid: getpid(), socketPath: listeningSocket.path)
        let settings = LiveSettings(ReloadableSettings(configuration, uid: uid, group: group))
        var methods = MethodTable()
        CoreMethods.register(in: &methods, state: state)

        let eventLoopGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let notifier = SystemdNotifier()
        let server = SocketServer(
            socket: listeningSocket, group: eventLoopGroup, methods: methods, state: state, settings: settings,
            notifier: notifier, logger: logger)
        let reloader = ConfigReloader(
            initial: configuration,
            load: loadConfiguration,
            apply: { new in
                let group = new.socketGroup.flatMap(SystemUsers.groupID(named:))
                settings.replace(with: ReloadableSettings(new, uid: uid, group: group))
            },
            notifier: notifier, statusLine: { state.statusLine }, logger: logger)
        let heartbeat = SystemdHeartbeat(notifier: notifier, state: state, eventLoop: eventLoopGroup.next())

        let serviceGroup = ServiceGroup(
            configuration: .init(
                services: [
                    .init(service: server),
                    .init(service: heartbeat),
                    .init(service: reloader),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger))
        try await serviceGroup.run()
        try await eventLoopGroup.shutdownGracefully()
    }

    /// The inherited socket under socket activation, else one bound at the configured path.
    private func openListeningSocket(
        configuration: DaemonConfiguration, group: UInt32?, isSystemInstance: Bool
    ) throws -> ListeningSocket {
        if let descriptor = try SocketActivation.takeListeningSocket() {
            return .inherited(descriptor: descriptor, path: socketPath(of: descriptor))
        }
        let path =
            socket ?? SocketLocation.processEnvironment(SocketLocation.environmentVariable).flatMap { $0.isEmpty ? nil : $0 }
            ?? configuration.socketPath
            ?? SocketLocation.defaultPath(uid: geteuid(), environment: SocketLocation.processEnvironment)
        return try ListeningSocket.bind(
            .init(
                path: path,
                mode: configuration.socketMode ?? (isSystemInstance ? 0o660 : 0o600),
                group: group,
                directoryMode: isSystemInstance ? 0o755 : 0o700))
    }

    /// The path an inherited socket is bound to, for `status` and logs.
    private func socketPath(of descriptor: Int32) -> String {
        var address = sockaddr_un()
        var length = socklen_t(MemoryLayout<sockaddr_un>.size)
        let result = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(descriptor, $0, &length) }
        }
        guard result == 0 else { return "(inherited socket)" }
        return withUnsafeBytes(of: address.sun_path) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }
}

private func printError(_ message: String) {
    var line = message + "\n"
    line.withUTF8 { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
}
