import LLMDProtocol

/// Where a configuration line came from, for messages like `llmd.conf:12: …`.
public struct SourceLocation: Sendable, Equatable, CustomStringConvertible {
    public var file: String
    public var line: Int

    public init(file: String, line: Int) {
        self.file = file
        self.line = line
    }

    /// `file:line`, or just `file` for problems with the file as a whole.
    public var description: String { line > 0 ? "\(file):\(line)" : file }
}

/// One problem found in configuration, with its location.
public struct ConfigDiagnostic: Sendable, Equatable, CustomStringConvertible {
    public enum Severity: String, Sendable {
        /// The value is ignored and the daemon (or a reload) refuses the configuration.
        case error
        /// Reported and skipped, like systemd does for unknown keys, so that a newer
        /// config file still loads on an older daemon.
        case warning
    }

    public var location: SourceLocation
    public var severity: Severity
    public var message: String

    public init(_ severity: Severity, at location: SourceLocation, _ message: String) {
        self.location = location
        self.severity = severity
        self.message = message
    }

    public var description: String { "\(location): \(severity.rawValue): \(message)" }

    /// Sorted as a person reads the files: by file in the order given, then by line.
    public static func inReadingOrder(_ diagnostics: [ConfigDiagnostic], files: [String]) -> [ConfigDiagnostic] {
        let fileOrder = Dictionary(files.enumerated().map { ($1, $0) }, uniquingKeysWith: { first, _ in first })
        return diagnostics.enumerated().sorted { lhs, rhs in
            let left = (fileOrder[lhs.element.location.file] ?? 0, lhs.element.location.line, lhs.offset)
            let right = (fileOrder[rhs.element.location.file] ?? 0, rhs.element.location.line, rhs.offset)
            return left < right
        }.map(\.element)
    }
}

/// A `Key=Value` assignment read from a systemd-style INI file.
public struct INIAssignment: Sendable, Equatable {
    public var section: String
    public var key: String
    public var value: String
    public var location: SourceLocation
}

/// The syntax of systemd's configuration files (as in resolved.conf(5)): `[Section]`
/// headers, `Key=Value` lines, `#` and `;` comments, a trailing backslash continuing
/// a line. Meaning is given by ``DaemonConfiguration``, not here.
public enum INIFile {
    public static func parse(_ text: String, file: String) -> (assignments: [INIAssignment], diagnostics: [ConfigDiagnostic]) {
        var assignments: [INIAssignment] = []
        var diagnostics: [ConfigDiagnostic] = []
        var section: String?
        var pending: (text: String, line: Int)?

        var lineNumber = 0
        // By scalars: "\r\n" is one Character, so splitting Characters at "\n" would read a
        // file with CRLF line ends as a single line.
        for rawLine in text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            var line = String(rawLine.last == "\r" ? rawLine.dropLast() : rawLine)
            let startLine = pending?.line ?? lineNumber
            if let continued = pending {
                // A comment inside a continued value is skipped, as systemd does.
                if let first = line.trimmingBlanks.first, first == "#" || first == ";" { continue }
                line = continued.text + " " + line
                pending = nil
            } else if let first = line.trimmingBlanks.first, first == "#" || first == ";" {
                // A comment ends at its line even when it ends in a backslash, as in systemd.
                continue
            }
            if line.hasSuffix("\\") {
                pending = (String(line.dropLast()), startLine)
                continue
            }
            let trimmed = line.trimmingBlanks
            if trimmed.isEmpty { continue }
            let location = SourceLocation(file: file, line: startLine)
            if trimmed.first == "[" {
                if let close = trimmed.firstIndex(of: "]"), let comment = inlineComment(in: trimmed[trimmed.index(after: close)...]) {
                    // Taken as the section it names, so the lines under it are not reported too.
                    diagnostics.append(
                        .init(.error, at: location, "malformed section header '\(trimmed)': \(commentRule(comment))"))
                    section = String(trimmed[trimmed.index(after: trimmed.startIndex)..<close])
                    continue
                }
                guard trimmed.last == "]", trimmed.count > 2 else {
                    diagnostics.append(.init(.error, at: location, "malformed section header '\(trimmed)'"))
                    section = nil
                    continue
                }
                section = String(trimmed.dropFirst().dropLast())
                continue
            }
            guard let equals = trimmed.firstIndex(of: "=") else {
                diagnostics.append(.init(.error, at: location, "expected Key=Value, got '\(trimmed)'"))
                continue
            }
            let key = trimmed[..<equals].trimmingBlanks
            guard !key.isEmpty else {
                diagnostics.append(.init(.error, at: location, "assignment without a key"))
                continue
            }
            guard let section else {
                diagnostics.append(.init(.error, at: location, "assignment to '\(key)' outside of any section"))
                continue
            }
            let value = trimmed[trimmed.index(after: equals)...].trimmingBlanks
            assignments.append(INIAssignment(section: section, key: key, value: value, location: location))
        }
        if let pending {
            diagnostics.append(
                .init(.error, at: SourceLocation(file: file, line: pending.line), "file ends inside a continued line"))
        }
        return (assignments, diagnostics)
    }
}

/// The comment-like tail of a value or header, `# …` after a blank, that systemd's syntax
/// keeps as text: `#` begins a comment only at the start of a line.
func inlineComment(in text: Substring) -> Substring? {
    var previous: Character = " "
    for index in text.indices {
        if text[index] == "#", previous == " " || previous == "\t" { return text[index...] }
        previous = text[index]
    }
    return nil
}

/// What to say about an inline comment: the rule, and what to do.
func commentRule(_ comment: Substring) -> String {
    let shown = comment.count > 24 ? comment.prefix(24) + "…" : comment
    return "'#' begins a comment only at the start of a line; move '\(shown)' to a line of its own"
}
