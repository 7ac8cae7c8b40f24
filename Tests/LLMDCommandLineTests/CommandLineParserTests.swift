import Testing

@testable import LLMDCommandLine

@Suite("Command-line parsing")
struct CommandLineParserTests {
    let shared: [Option] = [
        .value("--socket", valueName: "path", help: "Socket."),
        .flag("--json", help: "JSON."),
    ]

    var tool: Command {
        Command(
            "tool", abstract: "A tool.", options: shared,
            subcommands: [
                Command("status", abstract: "Status.", options: shared),
                Command(
                    "send", abstract: "Send text.",
                    options: shared + [
                        .value("-s", "--session", valueName: "name", help: "Session."),
                        .value("--tag", valueName: "tag", help: "Tag, repeatable."),
                        .value("--style", valueName: "style", help: "Style.", choices: ["plain", "loud"]),
                        .flag("--out", help: "Write it out.", inlineValueName: "file"),
                    ],
                    positionals: [Positional("text", help: "Words.", optional: true, repeating: true)]),
            ])
    }

    private func run(_ arguments: [String]) throws -> ParsedCommandLine {
        guard case .run(let parsed) = try tool.parse(arguments) else { throw UsageError("not a run") }
        return parsed
    }

    @Test("subcommands, flags and values in any order, options before or after the subcommand")
    func basics() throws {
        let parsed = try run(["--socket", "/a", "status", "--json"])
        #expect(parsed.path == ["status"])
        #expect(parsed.value("--socket") == "/a")
        #expect(parsed.flag("--json"))
        #expect(try run(["status", "--socket=/b"]).value("--socket") == "/b")
    }

    @Test("short and long spellings, repeated options, positionals and --")
    func values() throws {
        let parsed = try run(["send", "-s", "work", "--tag", "a", "hello", "--tag=b", "--", "--not-an-option", "-x"])
        #expect(parsed.value("--session") == "work")
        #expect(parsed.allValues("--tag") == ["a", "b"])
        #expect(parsed.positionals == ["hello", "--not-an-option", "-x"])
        #expect(parsed.positionalsBeforeDoubleDash == 1)
        #expect(try run(["send", "hello"]).positionalsBeforeDoubleDash == nil)
    }

    @Test("a subcommand name after positionals is text, not a command")
    func subcommandNameAsText() throws {
        #expect(try run(["send", "hello", "status"]).positionals == ["hello", "status"])
    }

    @Test("help and version")
    func helpAndVersion() throws {
        #expect(try tool.parse(["--help"]) == .help([]))
        #expect(try tool.parse(["send", "-h"]) == .help(["send"]))
        #expect(try tool.parse(["help", "send"]) == .help(["send"]))
        #expect(try tool.parse(["--version"]) == .version)
    }

    @Test(
        "usage errors say what is wrong",
        arguments: [
            ([], "missing command; commands: status, send"),
            (["stats"], "unknown command 'stats' (did you mean 'status'?); commands: status, send"),
            (["bogus"], "unknown command 'bogus'; commands: status, send"),
            (["status", "--bogus"], "unknown option '--bogus'"),
            (["send", "--sesion", "x"], "unknown option '--sesion' (did you mean '--session'?)"),
            (["send", "--style", "lod"], "--style 'lod' is not one of: plain, loud (did you mean 'loud'?)"),
            (["send", "--style", "x"], "--style 'x' is not one of: plain, loud"),
            (["status", "--socket"], "--socket needs a value (path)"),
            (["status", "--json=yes"], "--json takes no value"),
            (["status", "extra"], "unexpected argument 'extra'"),
            (["help", "bogus"], "unknown command 'bogus'; commands: status, send"),
        ])
    func errors(arguments: [String], message: String) {
        #expect(throws: UsageError(message)) { try tool.parse(arguments) }
    }

    @Test("a flag that takes an inline value is set either way, with the value when given")
    func inlineValue() throws {
        #expect(try run(["send", "--out"]).flag("--out"))
        let written = try run(["send", "--out=/tmp/x"])
        #expect(written.flag("--out") && written.value("--out") == "/tmp/x")
    }

    @Test("edit distance counts insertions, deletions and substitutions")
    func editDistance() {
        #expect(Command.editDistance("sesion", "session") == 1)
        #expect(Command.editDistance("stats", "status") == 1)
        #expect(Command.editDistance("", "abc") == 3)
        #expect(Command.editDistance("kitten", "sitting") == 3)
    }

    @Test("a required positional must be given")
    func requiredPositional() {
        let command = Command("get", abstract: "Get.", positionals: [Positional("name", help: "Name.")])
        #expect(throws: UsageError("missing name")) { try command.parse([]) }
        #expect(throws: UsageError("unexpected argument 'b'")) { try command.parse(["a", "b"]) }
    }

    @Test("words before -- and a command after it: each must be given")
    func wordsThenCommand() throws {
        let command = Command(
            "on", abstract: "On.",
            positionals: [Positional("type", help: "Types.", repeating: true), Positional("command", help: "Command.", repeating: true)])
        guard case .run(let parsed) = try command.parse(["a", "b", "--", "ls", "-l"]) else { throw UsageError("not a run") }
        #expect(parsed.positionals == ["a", "b", "ls", "-l"] && parsed.positionalsBeforeDoubleDash == 2)
        #expect(throws: UsageError("missing type")) { try command.parse(["--", "ls"]) }
        #expect(throws: UsageError("missing command after --")) { try command.parse(["a", "ls"]) }
        #expect(throws: UsageError("missing command after --")) { try command.parse(["a", "--"]) }
    }

    @Test("help text lists usage, commands, arguments and options")
    func helpText() {
        let text = tool.help(for: ["send"])
        #expect(text.hasPrefix("Send text.\n\nUSAGE: tool send [options] [<text>...]"))
        #expect(text.contains("  -s, --session <name>"))
        #expect(text.contains("  -h, --help"))
        #expect(!text.contains("--version"))
        let root = tool.help(for: [])
        #expect(root.contains("COMMANDS:\n  status    Status.\n  send      Send text."))
        #expect(root.contains("See 'tool help <command>' for details."))
    }
}
