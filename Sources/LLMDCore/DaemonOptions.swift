/// The daemon's command line, parsed.
///
/// llmd parses its few options itself: argument-parser would bring FoundationEssentials
/// into the daemon, and with it some 3 MB of resident text in every idle llmd.
public struct DaemonOptions: Sendable, Equatable {
    public var socketPath: String?
    public var configPath: String?
    public var logLevel: String?
    public var instance: Instance?
    public var checkConfig = false

    /// What the command line asks for.
    public enum Action: Sendable, Equatable {
        case run(DaemonOptions)
        case help
        case version
    }

    public init() {}

    public struct UsageError: Error, Equatable, CustomStringConvertible {
        public var description: String
    }

    public static let usage = """
        USAGE: llmd [--socket <path>] [--config <path>] [--log-level <level>] [--system | --user] [--check-config]

        Serve LLM conversations, calls and their callback events on a Unix socket.

        OPTIONS:
          --socket <path>      Listen on this socket path.
          --config <path>      Read this configuration file instead of the default.
          --log-level <level>  Log at this level and above (overrides LogLevel=):
                               trace, debug, info, notice, warning, error, critical.
          --system, --user     Run as the system instance (default for root) or a
                               user's own instance (default for others).
          --check-config       Check the configuration, print what is wrong with file
                               and line, and exit.
          --version            Show the version.
          -h, --help           Show this help.

        Exit status: 0 after a clean shutdown, 1 when the daemon cannot start or fails
        (for example another llmd already serves the socket), 64 for bad usage, 78 for
        a configuration error. See llmd(8).
        """

    /// Parses the arguments after the program name; `--name=value` and `--name value` both work.
    ///
    /// - Throws: ``UsageError`` naming the offending argument.
    public static func parse(_ arguments: [String]) throws(UsageError) -> Action {
        var options = DaemonOptions()
        var remaining = arguments[...]
        while let argument = remaining.popFirst() {
            var name = argument
            var inlineValue: String?
            if argument.hasPrefix("--"), let equals = argument.firstIndex(of: "=") {
                name = String(argument[..<equals])
                inlineValue = String(argument[argument.index(after: equals)...])
            }
            func value() throws(UsageError) -> String {
                if let inlineValue { return inlineValue }
                guard let next = remaining.popFirst() else { throw UsageError(description: "\(name) needs a value") }
                return next
            }
            switch name {
            case "-h", "--help": return .help
            case "--version": return .version
            case "--socket": options.socketPath = try value()
            case "--config": options.configPath = try value()
            case "--log-level":
                let level = try value()
                guard LLMDCore.logLevel(named: level) != nil else {
                    throw UsageError(
                        description: "unknown log level '\(level)'; use trace, debug, info, notice, warning, error or critical")
                }
                options.logLevel = level
            case "--system", "--user":
                let requested: Instance = name == "--system" ? .system : .user
                if let chosen = options.instance, chosen != requested {
                    throw UsageError(description: "--system and --user exclude each other")
                }
                options.instance = requested
            case "--check-config": options.checkConfig = true
            default:
                throw UsageError(description: "unknown argument '\(argument)'")
            }
            if inlineValue != nil, !["--socket", "--config", "--log-level"].contains(name) {
                throw UsageError(description: "\(name) takes no value")
            }
        }
        return .run(options)
    }
}
