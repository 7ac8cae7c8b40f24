import Foundation

/// The project's source tree, for the documents the tests read.
let sourceRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().path

/// A fenced code block of a Markdown file, with the `readme-test` note just before it.
struct MarkdownBlock {
    /// The line of the opening fence, counting from 1.
    var line: Int
    /// The fence's info string: `sh`, `console`, `ini`, or empty.
    var language: String
    var lines: [String]
    /// What `<!-- readme-test: … -->` on the line before the fence says, if there is one.
    var note: String?

    /// The reason given with `skip:`, for a block that is illustrative only.
    var skipReason: String? {
        guard let note, note.hasPrefix("skip:") else { return nil }
        return note.dropFirst("skip:".count).trimmingCharacters(in: .whitespaces)
    }

    /// Every fenced block of `text`, in order.
    static func all(in text: String) -> [MarkdownBlock] {
        let lines = text.components(separatedBy: "\n")
        var blocks: [MarkdownBlock] = []
        var index = 0
        while index < lines.count {
            let line = lines[index]
            guard line.hasPrefix("```") else {
                index += 1
                continue
            }
            let note = index > 0 ? readmeNote(lines[index - 1]) : nil
            let start = index
            index += 1
            var body: [String] = []
            while index < lines.count, !lines[index].hasPrefix("```") {
                body.append(lines[index])
                index += 1
            }
            blocks.append(MarkdownBlock(line: start + 1, language: String(line.dropFirst(3)), lines: body, note: note))
            index += 1
        }
        return blocks
    }

    private static func readmeNote(_ line: String) -> String? {
        let prefix = "<!-- readme-test:"
        guard line.hasPrefix(prefix), line.hasSuffix("-->") else { return nil }
        return line.dropFirst(prefix.count).dropLast(3).trimmingCharacters(in: .whitespaces)
    }

    /// The commands of a `sh` block, a line each, continued lines joined.
    var shellCommands: [String] {
        var commands: [String] = []
        var pending = ""
        for line in lines where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            if line.hasSuffix("\\") {
                pending += line.dropLast() + " "
                continue
            }
            commands.append(pending + line)
            pending = ""
        }
        return commands
    }

    /// The commands of a `console` block (`$ command`) with the output shown under each.
    var consoleSteps: [(command: String, output: [String])] {
        var steps: [(command: String, output: [String])] = []
        for line in lines {
            if line.hasPrefix("$ ") {
                steps.append((String(line.dropFirst(2)), []))
            } else if !steps.isEmpty {
                steps[steps.count - 1].output.append(line)
            }
        }
        return steps
    }
}

/// A configuration example in a man page: a literal display (`.Bd -literal` … `.Ed`), cut
/// at the `# /path` lines that name the file each part is.
struct ManPageExample {
    var page: String
    /// The line of `.Bd`, counting from 1.
    var line: Int
    /// The file the part says it is, as the page writes it; nil when it names none.
    var file: String?
    var text: String

    /// llmd.conf(5)'s sections: a part holding any of them is llmd configuration.
    static let llmdSections = ["Daemon", "Provider", "Model", "Events", "Budget", "Handler"]

    /// Whether the part is llmd configuration rather than, say, a systemd drop-in.
    var isLLMDConfiguration: Bool {
        text.components(separatedBy: "\n").contains { line in
            Self.llmdSections.contains { line == "[\($0)]" || line.hasPrefix("[\($0) ") }
        }
    }

    /// A section header of some other program's INI file (`[Service]`).
    var otherSections: [String] {
        text.components(separatedBy: "\n").filter { $0.hasPrefix("[") && $0.hasSuffix("]") && !$0.contains(" ") }
            .filter { header in !Self.llmdSections.contains { header == "[\($0)]" } }
    }

    /// The parts of every literal display of `page` that hold INI sections.
    static func all(inPage path: String) throws -> [ManPageExample] {
        let lines = try String(contentsOfFile: path, encoding: .utf8).components(separatedBy: "\n")
        var examples: [ManPageExample] = []
        var index = 0
        while index < lines.count {
            guard lines[index].hasPrefix(".Bd -literal") else {
                index += 1
                continue
            }
            let start = index
            var parts: [(file: String?, lines: [String])] = [(nil, [])]
            index += 1
            while index < lines.count, !lines[index].hasPrefix(".Ed") {
                let line = unescape(lines[index])
                if line.hasPrefix("# /") || line.hasPrefix("# ~/") {
                    parts.append((String(line.dropFirst(2)), []))
                } else {
                    parts[parts.count - 1].lines.append(line)
                }
                index += 1
            }
            for part in parts where part.lines.contains(where: { $0.hasPrefix("[") && $0.hasSuffix("]") }) {
                examples.append(
                    ManPageExample(
                        page: (path as NSString).lastPathComponent, line: start + 1, file: part.file,
                        text: part.lines.joined(separator: "\n") + "\n"))
            }
        }
        return examples
    }

    /// mdoc's escapes in literal text.
    private static func unescape(_ line: String) -> String {
        line.replacingOccurrences(of: "\\&", with: "").replacingOccurrences(of: "\\e", with: "\\")
            .replacingOccurrences(of: "\\(aq", with: "'").replacingOccurrences(of: "\\(dq", with: "\"")
            .replacingOccurrences(of: "\\-", with: "-")
    }
}
