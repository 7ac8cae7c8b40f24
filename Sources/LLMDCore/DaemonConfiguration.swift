import LLMDProtocol
import Logging

/// The daemon's settings, as documented in llmd.conf(5).
///
/// Built from `llmd.conf` and its `llmd.conf.d/*.conf` drop-ins: assignments apply in
/// file order, drop-ins sorted by name after the main file, so a later one wins. An
/// empty assignment (`Key=`) restores the default.
public struct DaemonConfiguration: Sendable, Equatable {
    /// `[Daemon] Socket=`: the socket path; nil means the per-instance default.
    public var socketPath: String?
    /// `[Daemon] SocketMode=`: permission bits of the socket file; nil means 0600 for
    /// a user instance, 0660 for the system instance.
    public var socketMode: UInt32?
    /// `[Daemon] SocketGroup=`: group owning the socket whose members may connect.
    public var socketGroup: String?
    /// `[Daemon] LogLevel=`.
    public var logLevel: Logger.Level = .info
    /// `[Daemon] MaxLineBytes=`: the longest protocol line accepted from a client.
    public var maximumLineLength: Int = ProtocolVersion.defaultMaximumLineLength
    /// `[Daemon] MaxBufferedInput=`: the bytes of unfinished request lines all clients
    /// together may have the daemon hold; past it the largest holders are disconnected.
    /// Never less than `MaxLineBytes=`.
    public var maximumBufferedInput: Int = 64 << 20
    /// `[Daemon] MaxConnections=`: clients connected at once; more are refused with
    /// `daemon.too_many_connections`. nil: no limit but the file descriptors'.
    public var maximumConnections: Int? = 4096
    /// `[Daemon] ShutdownTimeoutSec=`: how long in-flight work may take after SIGTERM.
    public var shutdownTimeout: Duration = .seconds(10)
    /// `[Daemon] DefaultProvider=`: the provider a call without one goes to; nil picks
    /// `openai` when configured or in the environment, else the offline `fake`.
    public var defaultProvider: String?
    /// `[Daemon] StateDirectory=`: where the event journal lives; nil means the
    /// per-instance default.
    public var stateDirectory: String?
    /// `[Provider NAME]` sections, in the order they first appear.
    public var providers: [ProviderConfiguration] = []
    /// `[Events]`.
    public var events = EventsConfiguration()
    /// `[Handler NAME]` sections, in the order they first appear.
    public var handlers: [HandlerConfiguration] = []
    /// `[Model NAME]` sections, in the order they first appear.
    public var models: [ModelConfiguration] = []
    /// `[Alias NAME]` sections, in the order they first appear.
    public var aliases: [ModelAlias] = []
    /// `[Budget]`.
    public var budget = BudgetConfiguration()
    /// `[HTTP]`: the OpenAI-compatible HTTP API.
    public var http = HTTPConfiguration()
    /// `[Daemon] VocabularyDirectory=`: where the tokenizer's `.tiktoken` files are; nil
    /// means `$LLMD_VOCAB_DIR`, then the installed data directory.
    public var vocabularyDirectory: String?

    /// Where each key was last set (`SocketGroup`, `Provider NAME.APIKeyFile`), for messages
    /// about values only the running system can judge, such as a group that does not exist.
    public var locations: [String: SourceLocation] = [:]

    public init() {}

    /// What a reload cannot fully apply, as warnings for the log.
    ///
    /// - Parameter ignoring: keys whose file value does not matter because something else
    ///   decides (`--log-level`, `--socket`, socket activation), so changing them changes nothing.
    public func reloadWarnings(comparedTo running: DaemonConfiguration, ignoring: Set<String> = []) -> [String] {
        var warnings: [String] = []
        if socketPath != running.socketPath, !ignoring.contains("Socket") {
            warnings.append("Socket= changed; llmd keeps listening on its current socket until restarted")
        }
        if socketMode != running.socketMode, !ignoring.contains("SocketMode") {
            warnings.append("SocketMode= changed; it applies when llmd next creates its socket, at restart")
        }
        if socketGroup != running.socketGroup {
            warnings.append(
                "SocketGroup= changed; new connections are checked against it now, "
                    + "the socket file keeps its group until restart")
        }
        if logLevel != running.logLevel, !ignoring.contains("LogLevel") {
            warnings.append("LogLevel= changed; it takes effect at the next restart")
        }
        if stateDirectory != running.stateDirectory, !ignoring.contains("StateDirectory") {
            warnings.append("StateDirectory= changed; llmd keeps its current journal until restarted")
        }
        if vocabularyDirectory != running.vocabularyDirectory {
            warnings.append("VocabularyDirectory= changed; tokenizers loaded from the old one stay until restart")
        }
        if events != running.events {
            warnings.append("[Events] changed; it takes effect at the next restart")
        }
        if handlers != running.handlers {
            warnings.append("[Handler] sections changed; they take effect at the next restart")
        }
        if http != running.http {
            warnings.append("[HTTP] changed; it takes effect at the next restart")
        }
        return warnings
    }
}

/// Why a value cannot be used; the caller adds file and line.
struct ConfigValueError: Error {
    var message: String
    init(_ message: String) { self.message = message }
}

extension DaemonConfiguration {
    /// One known key: where it lives and how its text becomes a setting.
    typealias Key = ConfigurationKey<DaemonConfiguration>

    static let keys: [Key] = [
        Key(name: "Socket") { config, value throws(ConfigValueError) in
            guard value.isEmpty || value.hasPrefix("/") else { throw ConfigValueError("socket path must be absolute") }
            config.socketPath = value.isEmpty ? nil : value
        },
        Key(name: "SocketMode") { config, value throws(ConfigValueError) in
            config.socketMode = value.isEmpty ? nil : try parseFileMode(value)
        },
        Key(name: "SocketGroup") { config, value throws(ConfigValueError) in
            config.socketGroup = value.isEmpty ? nil : value
        },
        Key(name: "LogLevel") { config, value throws(ConfigValueError) in
            config.logLevel = value.isEmpty ? .info : try parseLogLevel(value)
        },
        Key(name: "MaxLineBytes") { config, value throws(ConfigValueError) in
            if value.isEmpty {
                config.maximumLineLength = ProtocolVersion.defaultMaximumLineLength
                return
            }
            let size = try parseByteSize(value)
            guard (1024...(256 << 20)).contains(size) else {
                throw ConfigValueError("MaxLineBytes= must be between 1K and 256M, got \(value)")
            }
            config.maximumLineLength = size
        },
        Key(name: "MaxBufferedInput") { config, value throws(ConfigValueError) in
            if value.isEmpty {
                config.maximumBufferedInput = 64 << 20
                return
            }
            let size = try parseByteSize(value)
            guard (64 << 10...(16 << 30)).contains(size) else {
                throw ConfigValueError("MaxBufferedInput= must be between 64K and 16G, got \(value)")
            }
            config.maximumBufferedInput = size
        },
        Key(name: "MaxConnections") { config, value throws(ConfigValueError) in
            if value.isEmpty {
                config.maximumConnections = 4096
                return
            }
            guard let limit = try parseLimit(value, { text throws(ConfigValueError) in
                guard let count = Int(text), (1...1_000_000).contains(count) else {
                    throw ConfigValueError("expected a number from 1 to 1000000, or infinity")
                }
                return count
            }) else {
                config.maximumConnections = nil
                return
            }
            config.maximumConnections = limit
        },
        Key(name: "ShutdownTimeoutSec") { config, value throws(ConfigValueError) in
            config.shutdownTimeout = value.isEmpty ? .seconds(10) : try parseTimeSpan(value)
        },
        Key(name: "DefaultProvider") { config, value throws(ConfigValueError) in
            config.defaultProvider = value.isEmpty ? nil : value
        },
        Key(name: "StateDirectory") { config, value throws(ConfigValueError) in
            guard value.isEmpty || value.hasPrefix("/") else { throw ConfigValueError("the directory must be absolute") }
            config.stateDirectory = value.isEmpty ? nil : value
        },
        Key(name: "VocabularyDirectory") { config, value throws(ConfigValueError) in
            guard value.isEmpty || value.hasPrefix("/") else { throw ConfigValueError("the directory must be absolute") }
            config.vocabularyDirectory = value.isEmpty ? nil : value
        },
    ]

    /// Keys whose values are text for people or servers, where ` #` may be meant.
    static let freeTextKeys: Set<String> = ["Reply", "Header"]

    /// Keys whose values are secrets: messages name the key, never print the value.
    static let secretKeys: Set<String> = ["APIKey"]

    /// `Key=value` as messages show it: a secret's value is left out.
    static func shown(_ assignment: INIAssignment) -> String {
        secretKeys.contains(assignment.key) ? "\(assignment.key)=(value not shown)" : "\(assignment.key)=\(assignment.value)"
    }

    /// Applies assignments in order; unknown sections and keys are warnings, bad values errors.
    public static func build(from assignments: [INIAssignment]) -> (DaemonConfiguration, [ConfigDiagnostic]) {
        var config = DaemonConfiguration()
        var diagnostics: [ConfigDiagnostic] = []
        for assignment in assignments {
            // Refused rather than kept as text (systemd's reading), except in free text: a
            // model named 'gpt-4o-mini  # cheap' would fail only at the first call.
            if !freeTextKeys.contains(assignment.key), let comment = inlineComment(in: Substring(assignment.value)) {
                diagnostics.append(.init(.error, at: assignment.location, "\(shown(assignment)): \(commentRule(comment))"))
                continue
            }
            do {
                if assignment.section == "Daemon" {
                    guard let key = keys.first(where: { $0.name == assignment.key }) else {
                        diagnostics.append(unknownKey(assignment))
                        continue
                    }
                    try key.apply(&config, assignment.value)
                    config.locations[assignment.key] = assignment.location
                } else if let name = providerName(inSection: assignment.section) {
                    // A section named like the built-in offline provider configures that one.
                    let make = { (name: String) in name == "fake" ? ProviderConfiguration.builtInFake : ProviderConfiguration(name: name) }
                    guard try apply(assignment, to: &config.providers, named: name, keys: ProviderConfiguration.keys, make: make)
                    else {
                        diagnostics.append(unknownKey(assignment))
                        continue
                    }
                    config.locations["Provider \(name).\(assignment.key)"] = assignment.location
                } else if assignment.section == "Events" {
                    guard try apply(assignment, to: &config.events, keys: EventsConfiguration.keys) else {
                        diagnostics.append(unknownKey(assignment))
                        continue
                    }
                } else if assignment.section == "HTTP" {
                    guard try apply(assignment, to: &config.http, keys: HTTPConfiguration.keys) else {
                        diagnostics.append(unknownKey(assignment))
                        continue
                    }
                    config.locations["HTTP.\(assignment.key)"] = assignment.location
                } else if assignment.section == "Budget" {
                    guard try apply(assignment, to: &config.budget, keys: BudgetConfiguration.keys) else {
                        diagnostics.append(unknownKey(assignment))
                        continue
                    }
                } else if let name = sectionName(assignment.section, kind: "Handler") {
                    guard
                        try apply(
                            assignment, to: &config.handlers, named: name, keys: HandlerConfiguration.keys,
                            make: { HandlerConfiguration(name: $0) })
                    else {
                        diagnostics.append(unknownKey(assignment))
                        continue
                    }
                    config.locations["Handler \(name).\(assignment.key)"] = assignment.location
                } else if let name = sectionName(assignment.section, kind: "Model", alsoAllowing: ":/") {
                    guard
                        try apply(
                            assignment, to: &config.models, named: name, keys: ModelConfiguration.keys,
                            make: { ModelConfiguration(name: $0) })
                    else {
                        diagnostics.append(unknownKey(assignment))
                        continue
                    }
                    config.locations["Model \(name).\(assignment.key)"] = assignment.location
                } else if let name = sectionName(assignment.section, kind: "Alias", alsoAllowing: ":/") {
                    // Where the section first appears, for what is wrong with it as a whole.
                    if config.locations["Alias \(name)"] == nil { config.locations["Alias \(name)"] = assignment.location }
                    guard
                        try apply(
                            assignment, to: &config.aliases, named: name, keys: ModelAlias.keys,
                            make: { ModelAlias(name: $0) })
                    else {
                        diagnostics.append(unknownKey(assignment))
                        continue
                    }
                    config.locations["Alias \(name).\(assignment.key)"] = assignment.location
                } else {
                    diagnostics.append(
                        .init(.warning, at: assignment.location, "unknown section [\(assignment.section)], ignored"))
                }
            } catch {
                diagnostics.append(.init(.error, at: assignment.location, "invalid \(shown(assignment)): \(error.message)"))
            }
        }
        for model in config.models where (model.inputPrice == nil) != (model.outputPrice == nil) {
            let location = config.locations["Model \(model.name).InputPrice"] ?? config.locations["Model \(model.name).OutputPrice"]!
            diagnostics.append(
                .init(
                    .warning, at: location,
                    "[Model \(model.name)] needs both InputPrice= and OutputPrice=; its configured price is ignored"))
        }
        diagnostics += config.aliasDiagnostics()
        if let address = config.http.listen, !address.isLoopback, !config.http.allowsRemote {
            diagnostics.append(
                .init(
                    .error, at: config.locations["HTTP.Listen"]!,
                    "Listen=\(address) is not a loopback address: other hosts could reach it; "
                        + "set AllowRemote=yes to mean that (every request needs a key either way)"))
        }
        return (config, diagnostics)
    }

    /// Applies `assignment` to the section called `name` among `sections`, which gains it
    /// (made by `make`) the first time it appears.
    ///
    /// - Returns: false when the section kind has no such key.
    private static func apply<Section: NamedSection>(
        _ assignment: INIAssignment, to sections: inout [Section], named name: String,
        keys: [ConfigurationKey<Section>], make: (String) -> Section
    ) throws(ConfigValueError) -> Bool {
        guard keys.contains(where: { $0.name == assignment.key }) else { return false }
        let index = sections.firstIndex { $0.name == name } ?? {
            sections.append(make(name))
            return sections.count - 1
        }()
        return try apply(assignment, to: &sections[index], keys: keys)
    }

    /// Applies `assignment` to a section that appears once, such as `[Events]`.
    ///
    /// - Returns: false when the section has no such key.
    private static func apply<Section>(
        _ assignment: INIAssignment, to section: inout Section, keys: [ConfigurationKey<Section>]
    ) throws(ConfigValueError) -> Bool {
        guard let key = keys.first(where: { $0.name == assignment.key }) else { return false }
        try key.apply(&section, assignment.value)
        return true
    }

    /// `NAME` of a `[Provider NAME]` section; names are words of letters, digits, `-`, `_`, `.`.
    static func providerName(inSection section: String) -> String? {
        sectionName(section, kind: "Provider")
    }

    /// `NAME` of a `[KIND NAME]` section; model names may also hold `:` and `/` (`llama3:8b`).
    static func sectionName(_ section: String, kind: String, alsoAllowing extra: String = "") -> String? {
        guard section.hasPrefix(kind + " ") else { return nil }
        let name = section.dropFirst(kind.count + 1).trimmingBlanks
        let punctuation = "-_." + extra
        let allowed = name.unicodeScalars.allSatisfy {
            ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0)
                || punctuation.unicodeScalars.contains($0)
        }
        return !name.isEmpty && allowed ? name : nil
    }

    private static func unknownKey(_ assignment: INIAssignment) -> ConfigDiagnostic {
        .init(.warning, at: assignment.location, "unknown key '\(assignment.key)' in section [\(assignment.section)], ignored")
    }

    /// Parses the text of several files, in the order given.
    public static func parse(files: [(path: String, text: String)]) -> (DaemonConfiguration, [ConfigDiagnostic]) {
        var assignments: [INIAssignment] = []
        var diagnostics: [ConfigDiagnostic] = []
        for file in files {
            let parsed = INIFile.parse(file.text, file: file.path)
            assignments += parsed.assignments
            diagnostics += parsed.diagnostics
        }
        var config = build(from: assignments)
        config.1 = ConfigDiagnostic.inReadingOrder(diagnostics + config.1, files: files.map(\.path))
        return config
    }
}

// MARK: - Value syntax

/// An octal permission mode such as `0660`.
func parseFileMode(_ text: String) throws(ConfigValueError) -> UInt32 {
    guard let mode = UInt32(text, radix: 8), mode <= 0o777 else {
        throw ConfigValueError("expected an octal mode such as 0660")
    }
    return mode
}

/// A log level by its swift-log name, in any case: `debug`, `Info`, `WARNING`.
public func logLevel(named text: String) -> Logger.Level? {
    Logger.Level(rawValue: text.lowercased())
}

func parseLogLevel(_ text: String) throws(ConfigValueError) -> Logger.Level {
    guard let level = logLevel(named: text) else {
        let names = Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")
        throw ConfigValueError("expected one of \(names)")
    }
    return level
}

/// A byte count with an optional binary suffix: `65536`, `64K`, `1M`.
func parseByteSize(_ text: String) throws(ConfigValueError) -> Int {
    let multipliers: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
    var digits = Substring(text)
    var multiplier = 1
    if let last = digits.last?.uppercased().first, let factor = multipliers[last] {
        multiplier = factor
        digits = digits.dropLast()
    }
    guard let count = Int(digits), count >= 0, count.multipliedReportingOverflow(by: multiplier).overflow == false else {
        throw ConfigValueError("expected a size such as 65536, 64K, 1M or 1G")
    }
    return count * multiplier
}

/// A time span in systemd's units: a bare number is seconds; `us`, `ms`, `s`, `min`, `h`, `d` suffixes.
func parseTimeSpan(_ text: String) throws(ConfigValueError) -> Duration {
    // Checked in order, so that `us` and `ms` are not taken for `s`.
    let units: [(suffix: String, microseconds: Int64)] = [
        ("us", 1), ("ms", 1_000), ("min", 60_000_000), ("s", 1_000_000), ("h", 3_600_000_000), ("d", 86_400_000_000),
    ]
    var number = Substring(text)
    var unit: Int64 = 1_000_000
    for candidate in units where text.hasSuffix(candidate.suffix) {
        number = text.dropLast(candidate.suffix.count)
        unit = candidate.microseconds
        break
    }
    guard let value = Double(number.trimmingBlanks), value >= 0, value.isFinite, value * Double(unit) < 1e15 else {
        throw ConfigValueError("expected a time span such as 10, 10s, 500ms, 200us, 2min or 30d")
    }
    return .microseconds(Int64((value * Double(unit)).rounded()))
}
