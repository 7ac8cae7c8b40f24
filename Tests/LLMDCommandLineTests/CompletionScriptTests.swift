import Foundation
import Testing

@testable import LLMDCommandLine

/// The generated scripts, run by the shells themselves: bash's completion function is
/// called as bash calls it on Tab, with COMP_WORDS and COMP_CWORD set.
@Suite("Shell completion scripts")
struct CompletionScriptTests {
    let tool = Command(
        "tool", abstract: "A tool.", options: [.value("--socket", valueName: "path", help: "Socket.")],
        subcommands: [
            Command("status", abstract: "Status."),
            Command(
                "session", abstract: "Sessions.",
                subcommands: [
                    Command(
                        "show", abstract: "Show.", options: [.flag("--json", help: "JSON.")],
                        positionals: [Positional("name", help: "Name.", liveValues: "sessions")]),
                    Command("set", abstract: "Set.", options: [
                        .value("--memory", valueName: "strategy", help: "Memory.", choices: ["buffer", "window"]),
                        .value("-o", "--output", valueName: "file", help: "File."),
                    ]),
                ]),
            Command("plumbing", abstract: "Hidden.", hidden: true),
        ])

    /// What bash's completion offers for `words`, the last being the word under the cursor.
    /// `tool complete-values sessions` answers as the daemon would, from a `tool` on PATH.
    private func complete(_ words: [String]) throws -> [String] {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("completion-\(getpid())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let script = CompletionScript.script(.bash, for: self.tool)
        let quoted = words.map { "'\($0)'" }.joined(separator: " ")
        // The fake tool is written by bash, not by this process: a file this process holds
        // open for writing while another test spawns a child stays open in that child, and
        // running it then fails with "Text file busy".
        let program = """
            cat > \(directory.path)/tool <<'TOOL'
            #!/bin/sh
            [ "$1 $2" = "complete-values sessions" ] || [ "$3 $4" = "complete-values sessions" ] || exit 1
            printf '%s\\n' notes 'two words' n2
            TOOL
            chmod 755 \(directory.path)/tool
            PATH=\(directory.path):$PATH
            \(script)
            COMP_WORDS=(tool \(quoted)); COMP_CWORD=\(words.count)
            _tool
            printf '%s\\n' "${COMPREPLY[@]}"
            """
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = ["--norc", "-c", program]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
        return String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init).sorted()
    }

    @Test("bash completes subcommands, options, fixed values and the daemon's names")
    func bash() throws {
        #expect(try complete(["s"]) == ["session", "status"])
        #expect(try complete([""]) == ["session", "status"], "the hidden command stays hidden")
        #expect(try complete(["session", ""]) == ["set", "show"])
        #expect(try complete(["session", "set", "--"]) == ["--help", "--memory", "--output"])
        #expect(try complete(["session", "set", "--memory", "w"]) == ["window"])
        #expect(try complete(["session", "set", "--memory="]) == ["--memory=buffer", "--memory=window"])
        #expect(try complete(["session", "show", "n"]) == ["n2", "notes"])
        #expect(try complete(["session", "show", "t"]) == ["two words"])
        // Options given earlier, with their values, do not confuse where the command is.
        #expect(try complete(["--socket", "/x", "session", "show", "--json", "no"]) == ["notes"])
    }

    @Test("each script is valid for its shell", arguments: CompletionScript.Shell.allCases)
    func syntax(shell: CompletionScript.Shell) throws {
        // `make deps` installs zsh and fish for this.
        let path = "/usr/bin/\(shell.rawValue)"
        try #require(FileManager.default.isExecutableFile(atPath: path), "\(path) is needed: make deps installs it")
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("tool-completion-\(shell.rawValue)")
        try CompletionScript.script(shell, for: tool).write(to: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: file) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = ["-n", file.path]
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0)
    }
}
