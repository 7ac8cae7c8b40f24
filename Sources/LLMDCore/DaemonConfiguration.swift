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
    /// `[Daemon] ShutdownTimeoutSec=`: how long in-flight work may take after SIGTERM.
    public var shutdownTimeout: Duration = .seconds(10)

    public init() {}

    /// Settings that need a restart to change: a reload reports them instead of applying them.
    public func restartOnlyChanges(comparedTo other: DaemonConfiguration) -> [String] {
        var changed: [String] = []
        if socketPath != other.socketPath { changed.append("Socket=") }
        if socketMode != other.socketMode { changed.append("SocketMode=") }
        if socketGroup != other.socketGroup { changed.append("SocketGroup=") }
        if logLevel != other.logLevel { changed.append("LogLevel=") }
        return changed
    }
}

/// Why a value cannot be used; the caller adds file and line.
struct ConfigValueError: Error {
    var message: String
    init(_ message: String) { self.message = message }
}

extension DaemonConfiguration {
    /// One known key: where it lives and how its text becomes a setting.
    struct Key: Sendable {
        var section: String
        var name: String
        var apply: @Sendable (inout DaemonConfiguration, String) throws(ConfigValueError) -> Void
    }

    static let keys: [Key] = [
        Key(section: "Daemon", name: "Socket") { config, value throws(ConfigValueError) in
            guard value.isEmpty || value.hasPrefix("/") else { throw ConfigValueError("socket path must be absolute") }
            config.socketPath = value.isEmpty ? nil : value
        },
        Key(section: "Daemon", name: "SocketMode") { config, value throws(ConfigValueError) in
            config.socketMode = value.isEmpty ? nil : try parseFileMode(value)
        },
        Key(section: "Daemon", name: "SocketGroup") { config, value throws(ConfigValueError) in
            config.socketGroup = value.isEmpty ? nil : value
        },
        Key(section: "Daemon", name: "LogLevel") { config, value throws(ConfigValueError) in
            config.logLevel = value.isEmpty ? .info : try parseLogLevel(value)
        },
        Key(section: "Daemon", name: "MaxLineBytes") { config, value throws(ConfigValueError) in
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
        Key(section: "Daemon", name: "ShutdownTimeoutSec") { config, value throws(ConfigValueError) in
            config.shutdownTimeout = value.isEmpty ? .seconds(10) : try parseTimeSpan(value)
        },
    ]

    /// Applies assignments in order; unknown sections and keys are warnings, bad values errors.
    public static func build(from assignments: [INIAssignment]) -> (DaemonConfiguration, [ConfigDiagnostic]) {
        var config = DaemonConfiguration()
        var diagnostics: [ConfigDiagnostic] = []
        let knownSections = Set(keys.map(\.section))
        for assignment in assignments {
            guard knownSections.contains(assignment.section) else {
                diagnostics.append(
                    .init(.warning, at: assignment.location, "unknown section [\(assignment.section)], ignored"))
                continue
            }
            guard let key = keys.first(where: { $0.section == assignment.section && $0.name == assignment.key }) else {
                diagnostics.append(
                    .init(
                        .warning, at: assignment.location,
                        "unknown key '\(assignment.key)' in section [\(assignment.section)], ignored"))
                continue
            }
            do {
                try key.apply(&config, assignment.value)
            } catch {
                diagnostics.append(
                    .init(.error, at: assignment.location, "invalid \(assignment.key)=\(assignment.value): \(error.message)"))
            }
        }
        return (config, diagnostics)
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
        let (config, valueDiagnostics) = build(from: assignments)
        // Report in reading order, as a person goes through the files.
        let fileOrder = Dictionary(files.enumerated().map { ($1.path, $0) }, uniquingKeysWith: { first, _ in first })
        let ordered = (diagnostics + valueDiagnostics).enumerated().sorted { lhs, rhs in
            let left = (fileOrder[lhs.element.location.file] ?? 0, lhs.element.location.line, lhs.offset)
            let right = (fileOrder[rhs.element.location.file] ?? 0, rhs.element.location.line, rhs.offset)
            return left < right
        }
        return (config, ordered.map(\.element))
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

/// A log level name, as swift-log spells them.
func parseLogLevel(_ text: String) throws(ConfigValueError) -> Logger.Level {
    guard let level = Logger.Level(rawValue: text.lowercased()) else {
        let names = Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")
        throw ConfigValueError("expected one of \(names)")
    }
    return level
}

/// A byte count with an optional binary suffix: `65536`, `64K`, `1M`, `1G`.
func parseByteSize(_ text: String) throws(ConfigValueError) -> Int {
    let multipliers: [Character: Int] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
    var digits = Substring(text)
    var multiplier = 1
    if let last = digits.last?.uppercased().first, let factor = multipliers[last] {
        multiplier = factor
        digits = digits.dropLast()
    }
    guard let count = Int(digits), count >= 0, count.multipliedReportingOverflow(by: multiplier).overflow == false else {
        throw ConfigValueError("expected a size such as 65536, 64K or 1M")
    }
    return count * multiplier
}

/// A time span in systemd's units: a bare number is seconds; `ms`, `s`, `min`, `h` suffixes.
func parseTimeSpan(_ text: String) throws(ConfigValueError) -> Duration {
    let units: [(suffix: String, milliseconds: Int64)] = [
        ("ms", 1), ("min", 60_000), ("s", 1_000), ("h", 3_600_000),
    ]
    var number = Substring(text)
    var unit: Int64 = 1_000
    for candidate in units where text.hasSuffix(candidate.suffix) {
        number = text.dropLast(candidate.suffix.count)
        unit = candidate.milliseconds
        break
    }
    guard let value = Double(number.trimmed), value >= 0, value.isFinite, value * Double(unit) < 1e12 else {
        throw ConfigValueError("expected a time span such as 10, 10s, 500ms or 2min")
    }
    return .milliseconds(Int64((value * Double(unit)).rounded()))
}
