/// Declarative command lines for llmd and llmctl: subcommands, options, flags, positionals,
/// and the help text generated from them.
///
/// Why not swift-argument-parser: its reflection-driven parsing made the Swift runtime scan
/// every protocol conformance in the binary, three quarters of llmctl's start-up
/// instructions, on a command people type many times a day. This parser does no
/// reflection; a command is a plain value.
public struct Command: Sendable {
    public var name: String
    public var abstract: String
    public var discussion: String
    public var options: [Option]
    public var positionals: [Positional]
    public var subcommands: [Command]
    /// Left out of help and completions: plumbing for the completion scripts themselves.
    public var hidden: Bool

    public init(
        _ name: String, abstract: String, discussion: String = "", options: [Option] = [],
        positionals: [Positional] = [], subcommands: [Command] = [], hidden: Bool = false
    ) {
        self.hidden = hidden
        self.name = name
        self.abstract = abstract
        self.discussion = discussion
        self.options = options
        self.positionals = positionals
        self.subcommands = subcommands
    }
}

/// A named option: a flag (`--json`) or one taking a value (`--socket PATH`).
public struct Option: Sendable {
    /// Every spelling, e.g. `["-s", "--session"]`; the last is the canonical one.
    public var names: [String]
    /// Shown in help for an option that takes a value; nil for a flag.
    public var valueName: String?
    public var help: String
    /// The values the option takes, when they are a fixed list: anything else is a usage
    /// error naming them, before anything is sent. Shell completions offer them.
    public var choices: [String]?
    /// What completions offer for the value when the daemon knows it (`sessions`,
    /// `providers`, `models`), asked for with `llmctl complete-values`.
    public var liveValues: String?

    /// For a flag that may also carry a value written `--flag=VALUE` (`--json=FILE`).
    public var inlineValueName: String?

    public static func flag(_ names: String..., help: String, inlineValueName: String? = nil) -> Option {
        Option(names: names, valueName: nil, help: help, inlineValueName: inlineValueName)
    }

    public static func value(
        _ names: String..., valueName: String, help: String, choices: [String]? = nil, liveValues: String? = nil
    ) -> Option {
        Option(names: names, valueName: valueName, help: help, choices: choices, liveValues: liveValues)
    }

    public var canonicalName: String { names.last! }
}

/// A positional argument; `repeating` takes all remaining words.
public struct Positional: Sendable {
    public var name: String
    public var help: String
    public var optional: Bool
    public var repeating: Bool
    /// What completions offer for it when the daemon knows (see ``Option/liveValues``).
    public var liveValues: String?

    public init(_ name: String, help: String, optional: Bool = false, repeating: Bool = false, liveValues: String? = nil) {
        self.name = name
        self.help = help
        self.optional = optional
        self.repeating = repeating
        self.liveValues = liveValues
    }
}

/// What was given on the command line.
public struct ParsedCommandLine: Sendable, Equatable {
    /// The subcommand names after the root, e.g. `["status"]`.
    public var path: [String]
    /// Values by canonical option name, in the order given (options may repeat).
    public var values: [String: [String]]
    public var flags: Set<String>
    public var positionals: [String]
    /// How many positionals came before `--`; nil when there was none. A command that runs
    /// another (`llmctl on TYPE… -- COMMAND…`) tells its own words from the command's by it.
    public var positionalsBeforeDoubleDash: Int?

    public func value(_ name: String) -> String? { values[name]?.last }
    public func allValues(_ name: String) -> [String] { values[name] ?? [] }
    public func flag(_ name: String) -> Bool { flags.contains(name) }
}

/// The outcome of parsing: run, or show help or the version.
public enum CommandLineAction: Sendable, Equatable {
    case run(ParsedCommandLine)
    /// Help for the command at this path.
    case help([String])
    case version
}

/// A mistake on the command line, worded for the user; the exit status is 64 (EX_USAGE).
public struct UsageError: Error, Equatable, CustomStringConvertible {
    public var message: String
    public var description: String { message }
    public init(_ message: String) { self.message = message }
}

extension Command {
    /// Parses the words after the program name.
    ///
    /// `--name value`, `--name=value`, `-n value`; `--` ends options; `-h`/`--help`
    /// anywhere and `help SUBCOMMAND` ask for help; `--version` for the version.
    public func parse(_ arguments: [String]) throws(UsageError) -> CommandLineAction {
        var command = self
        var parsed = ParsedCommandLine(path: [], values: [:], flags: [], positionals: [])
        var words = arguments[...]
        var optionsEnded = false
        if words.first == "help", !subcommands.isEmpty {
            let path = Array(words.dropFirst())
            guard subcommand(at: path) != nil else {
                throw UsageError(
                    "unknown command '\(path.joined(separator: " "))'\(Self.suggestion(for: path.last ?? "", among: subcommands.map(\.name))); "
                        + "commands: \(subcommandList)")
            }
            return .help(path)
        }
        while let word = words.popFirst() {
            if !optionsEnded, word == "--" {
                optionsEnded = true
                parsed.positionalsBeforeDoubleDash = parsed.positionals.count
            } else if !optionsEnded, word == "-h" || word == "--help" {
                return .help(parsed.path)
            } else if !optionsEnded, word == "--version", parsed.path.isEmpty {
                return .version
            } else if !optionsEnded, word.hasPrefix("-"), word.count > 1 {
                try command.parseOption(word, rest: &words, into: &parsed)
            } else if parsed.positionals.isEmpty, let subcommand = command.subcommands.first(where: { $0.name == word }) {
                command = subcommand
                parsed.path.append(word)
            } else if command.requiresSubcommand {
                throw UsageError(
                    "unknown command '\(word)'\(Self.suggestion(for: word, among: command.visibleSubcommands.map(\.name))); "
                        + "commands: \(command.subcommandList)")
            } else {
                parsed.positionals.append(word)
            }
        }
        if command.requiresSubcommand {
            throw UsageError("missing command; commands: \(command.subcommandList)")
        }
        try command.checkPositionals(parsed.positionals, beforeDoubleDash: parsed.positionalsBeforeDoubleDash)
        return .run(parsed)
    }

    private func parseOption(
        _ word: String, rest: inout ArraySlice<String>, into parsed: inout ParsedCommandLine
    ) throws(UsageError) {
        var name = word
        var inlineValue: String?
        if let equals = word.firstIndex(of: "="), word.hasPrefix("--") {
            name = String(word[..<equals])
            inlineValue = String(word[word.index(after: equals)...])
        }
        guard let option = options.first(where: { $0.names.contains(name) }) else {
            let names = options.flatMap(\.names) + ["--help"]
            throw UsageError("unknown option '\(name)'\(Self.suggestion(for: name, among: names))")
        }
        guard option.valueName != nil else {
            if let inlineValue {
                guard option.inlineValueName != nil else { throw UsageError("\(name) takes no value") }
                parsed.values[option.canonicalName, default: []].append(inlineValue)
            }
            parsed.flags.insert(option.canonicalName)
            return
        }
        guard let value = inlineValue ?? rest.popFirst() else {
            throw UsageError("\(name) needs a value (\(option.valueName!))")
        }
        if let choices = option.choices, !choices.contains(value) {
            throw UsageError(
                "\(name) '\(value)' is not one of: \(choices.joined(separator: ", "))\(Self.suggestion(for: value, among: choices))")
        }
        parsed.values[option.canonicalName, default: []].append(value)
    }

    /// ` (did you mean 'x'?)` for the candidate nearest `word`, when one is near enough to
    /// be a slip (at most a third of its letters off); empty otherwise.
    public static func suggestion(for word: String, among candidates: [String]) -> String {
        let limit = max(1, word.count / 3)
        let scored = candidates.map { ($0, editDistance(word, $0)) }.filter { $0.1 <= limit }
        guard let best = scored.min(by: { $0.1 < $1.1 }) else { return "" }
        return " (did you mean '\(best.0)'?)"
    }

    /// Levenshtein distance: insertions, deletions and substitutions of characters.
    static func editDistance(_ a: String, _ b: String) -> Int {
        let (a, b) = (Array(a), Array(b))
        guard !a.isEmpty else { return b.count }
        var previous = Array(0...b.count)
        for (i, x) in a.enumerated() {
            var current = [i + 1] + Array(repeating: 0, count: b.count)
            for (j, y) in b.enumerated() {
                current[j + 1] = min(previous[j + 1] + 1, current[j] + 1, previous[j] + (x == y ? 0 : 1))
            }
            previous = current
        }
        return previous[b.count]
    }

    /// A command with subcommands and no arguments of its own does nothing by itself.
    private var requiresSubcommand: Bool { !subcommands.isEmpty && positionals.isEmpty }

    private var subcommandList: String { visibleSubcommands.map(\.name).joined(separator: ", ") }

    var visibleSubcommands: [Command] { subcommands.filter { !$0.hidden } }

    private func checkPositionals(_ given: [String], beforeDoubleDash: Int?) throws(UsageError) {
        // `TYPE… -- COMMAND…`: a first positional that repeats, with one after it, ends at `--`.
        if positionals.count == 2, positionals[0].repeating {
            let before = beforeDoubleDash ?? given.count
            if before == 0, !positionals[0].optional { throw UsageError("missing \(positionals[0].name)") }
            if before == given.count, !positionals[1].optional { throw UsageError("missing \(positionals[1].name) after --") }
            return
        }
        let required = positionals.filter { !$0.optional }.count
        if given.count < required {
            throw UsageError("missing \(positionals[given.count].name)")
        }
        if positionals.last?.repeating != true, given.count > positionals.count {
            throw UsageError("unexpected argument '\(given[positionals.count])'")
        }
    }

    /// The command at `path` below this one, or nil when there is none.
    public func subcommand(at path: [String]) -> Command? {
        var command = self
        for name in path {
            guard let next = command.subcommands.first(where: { $0.name == name }) else { return nil }
            command = next
        }
        return command
    }

    /// Help text for the command at `path`, as `--help` prints it.
    public func help(for path: [String]) -> String {
        guard let command = subcommand(at: path) else {
            return "unknown command '\(path.joined(separator: " "))'\n\n" + help(for: [])
        }
        let fullName = ([name] + path).joined(separator: " ")
        var usage = "USAGE: \(fullName)"
        if !command.subcommands.isEmpty { usage += " <command>" }
        if !command.options.isEmpty { usage += " [options]" }
        for positional in command.positionals {
            let word = "<\(positional.name)>" + (positional.repeating ? "..." : "")
            usage += positional.optional ? " [\(word)]" : " \(word)"
        }
        var sections = [command.abstract, usage]
        if !command.subcommands.isEmpty {
            sections.append(
                "COMMANDS:\n" + table(command.visibleSubcommands.map { ($0.name, $0.abstract) })
                    + "\n\n  See '\(([name, "help"] + path).joined(separator: " ")) <command>' for details.")
        }
        if !command.positionals.isEmpty {
            sections.append("ARGUMENTS:\n" + table(command.positionals.map { ("<\($0.name)>", $0.help) }))
        }
        var optionRows = command.options.map { option in
            let value = option.valueName.map { " <\($0)>" } ?? option.inlineValueName.map { "[=<\($0)>]" } ?? ""
            return (option.names.joined(separator: ", ") + value, option.help)
        }
        optionRows.append(("-h, --help", "Show help."))
        if path.isEmpty { optionRows.append(("--version", "Show the version.")) }
        sections.append("OPTIONS:\n" + table(optionRows))
        if !command.discussion.isEmpty { sections.append(command.discussion) }
        return sections.joined(separator: "\n\n")
    }

    /// Two columns, the right one wrapped to fit 80 columns; a long left cell pushes its
    /// text to the next line.
    private func table(_ rows: [(String, String)]) -> String {
        let width = min(max(rows.map(\.0.count).max() ?? 0, 8), 28)
        let indent = String(repeating: " ", count: width + 4)
        return rows.map { left, right in
            let lines = wrap(right, width: 80 - indent.count)
            let first = left.count <= width
                ? "  " + left + String(repeating: " ", count: width - left.count) + "  " + lines[0]
                : "  " + left + "\n" + indent + lines[0]
            return ([first] + lines.dropFirst().map { indent + $0 }).joined(separator: "\n")
        }.joined(separator: "\n")
    }

    private func wrap(_ text: String, width: Int) -> [String] {
        var lines: [String] = []
        var line = ""
        for word in text.split(separator: " ") {
            if !line.isEmpty, line.count + 1 + word.count > width {
                lines.append(line)
                line = ""
            }
            line += (line.isEmpty ? "" : " ") + word
        }
        return lines + [line]
    }
}
