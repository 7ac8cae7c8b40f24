import LLMDCommandLine

/// The daemon's command line, parsed.
public struct DaemonOptions: Sendable, Equatable {
    public var socketPath: String?
    public var configPath: String?
    public var logLevel: String?
    public var instance: Instance?
    public var checkConfig = false
    /// With `checkConfig`: the files alone, not this machine's groups, files and variables.
    public var offline = false
    public var stateDirectory: String?
    /// Print the run tree as LangChain's `StdOutCallbackHandler` does.
    public var verbose = false
    /// Replies carry the daemon's own timings, for benchmarks.
    public var timings = false

    /// What the command line asks for.
    public enum Action: Sendable, Equatable {
        case run(DaemonOptions)
        case help
        case version
    }

    public init() {}

    public static let command = Command(
        "llmd",
        abstract: "Serve LLM conversations, calls and their callback events on a Unix socket.",
        discussion: """
            Exit status: 0 after a clean shutdown, 1 when the daemon cannot start or fails
            (for example another llmd already serves the socket), 64 for bad usage, 78 for
            a configuration error. See llmd(8).
            """,
        options: [
            .value("--socket", valueName: "path", help: "Listen on this socket path."),
            .value("--config", valueName: "path", help: "Read this configuration file instead of the default."),
            .value(
                "--log-level", valueName: "level",
                help: "Log at this level and above (overrides LogLevel=): trace, debug, info, notice, warning, error, critical."),
            .value(
                "--state-dir", valueName: "path",
                help: "Keep the event journal in this directory (overrides $STATE_DIRECTORY and StateDirectory=)."),
            .flag(
                "--verbose",
                help: "Print each run on standard output as LangChain's StdOutCallbackHandler does (> Entering new chain...)."),
            .flag(
                "--timings",
                help: "Add the daemon's own timings to replies, for benchmarks: commit_us to a session turn's, record_us to a call's."),
            .flag("--system", help: "Run as the system instance (the default for root)."),
            .flag("--user", help: "Run as a user's own instance (the default for others)."),
            .flag("--check-config", help: "Check the configuration, print what is wrong with file and line, and exit."),
            .flag(
                "--offline",
                help: "With --check-config: check the files alone (syntax and values), not this machine's groups, key files and variables."),
        ])

    /// Parses the arguments after the program name.
    ///
    /// - Throws: ``UsageError`` naming the offending argument.
    public static func parse(_ arguments: [String]) throws(UsageError) -> Action {
        let parsed: ParsedCommandLine
        switch try command.parse(arguments) {
        case .help: return .help
        case .version: return .version
        case .run(let result): parsed = result
        }
        var options = DaemonOptions()
        for name in ["--socket", "--config", "--state-dir"] where parsed.value(name)?.isEmpty == true {
            throw UsageError("\(name) needs a path, not an empty string")
        }
        options.socketPath = parsed.value("--socket")
        options.configPath = parsed.value("--config")
        if let level = parsed.value("--log-level") {
            guard LLMDCore.logLevel(named: level) != nil else {
                throw UsageError("unknown log level '\(level)'; use trace, debug, info, notice, warning, error or critical")
            }
            options.logLevel = level
        }
        switch (parsed.flag("--system"), parsed.flag("--user")) {
        case (true, true): throw UsageError("--system and --user exclude each other")
        case (true, false): options.instance = .system
        case (false, true): options.instance = .user
        case (false, false): options.instance = nil
        }
        options.checkConfig = parsed.flag("--check-config")
        options.offline = parsed.flag("--offline")
        if options.offline, !options.checkConfig {
            throw UsageError("--offline goes with --check-config: a running daemon needs its keys")
        }
        options.stateDirectory = parsed.value("--state-dir")
        options.verbose = parsed.flag("--verbose")
        options.timings = parsed.flag("--timings")
        return .run(options)
    }
}
