import Foundation
import LLMDClient
import LLMDProtocol
import LLMDTesting
import Testing

/// llmctl as people who live in journalctl, jq and shells expect it: failures in JSON,
/// slips named with what was meant, events printed as journalctl prints its lines.
@Suite("llmctl habits")
struct CommandLineHabitsTests {
    /// `result`'s standard output as the one JSON object it must be.
    private func json(_ result: ProcessResult) throws -> JSONObject {
        let value = try JSONParser.parse(result.standardOutput)
        return try #require(value.objectValue, "not an object: \(result.standardOutput)")
    }

    @Test(
        "with --json, every command that fails prints its error as a JSON object on stdout",
        arguments: [
            ["status"], ["ping"], ["send", "hi"], ["send", "-s", "s", "hi"], ["sessions"], ["session", "show", "s"],
            ["session", "create", "s"], ["session", "set", "s", "--k", "3"], ["session", "rename", "s", "t"],
            ["session", "rm", "s"], ["session", "export", "s"], ["memory", "show", "s"], ["compare-memory", "a"],
            ["attach", "s"], ["events"], ["usage"], ["budget", "show"], ["budget", "set", "--daily", "--max-tokens", "5"],
            ["tokens", "hi"],
        ])
    func failuresInJSON(arguments: [String]) throws {
        let directory = try TemporaryDirectory()
        let result = try llmctl(arguments + ["--json", "--socket", directory.file("none.sock")])
        #expect(result.status == 69, "\(arguments): \(result.standardError)")
        let error = try #require(try json(result)["error"]?.objectValue)
        #expect(error["code"] == "client.daemon_not_running")
        #expect(error["detail"]?.objectValue?["socket"] == .string(directory.file("none.sock")))
        #expect(result.standardError.contains("no llmd is listening"), "people still read stderr")
    }

    @Test("usage errors: JSON with --json, the nearest name for a slip, allowed values listed, exit 64, nothing sent")
    func usageErrors() throws {
        let daemon = try DaemonProcess()
        let slip = try llmctl(["sesions", "--json", "--socket", daemon.socketPath])
        #expect(slip.status == 64)
        let error = try #require(try json(slip)["error"]?.objectValue)
        #expect(error["code"] == "client.usage")
        #expect(error["message"]?.stringValue?.contains("did you mean 'sessions'?") == true, "\(error)")

        let option = try llmctl(["send", "--sesion", "x", "hi", "--socket", daemon.socketPath])
        #expect(option.status == 64 && option.standardError.contains("unknown option '--sesion' (did you mean '--session'?)"))

        let value = try llmctl(["send", "-s", "s", "--memory", "bufer", "hi", "--socket", daemon.socketPath])
        #expect(value.status == 64, "\(value.standardError)")
        #expect(
            value.standardError.contains(
                "--memory 'bufer' is not one of: buffer, window, token-buffer, summary, summary-buffer (did you mean 'buffer'?)"))
        let type = try llmctl(["events", "-t", "llm_ends", "--socket", daemon.socketPath])
        #expect(type.status == 64 && type.standardError.contains("(did you mean 'llm_end'?)"), "\(type.standardError)")
        #expect(try llmctl(["chat", "--json", "--socket", daemon.socketPath]).status == 64, "chat takes no --json")
        // Nothing reached the daemon: no session was made by the refused send.
        #expect(try LLMDClient(socketPath: daemon.socketPath).call(SessionListMethod.self, NoParams()).sessions.isEmpty)
    }

    @Test("a send that fails mid-stream: the error, what had streamed and its usage, as JSON")
    func failedSendInJSON() throws {
        let keys = try TemporaryDirectory()
        let fixture = try FixtureServer()
        let daemon = try DaemonProcess(config: try fixture.config(keys: keys))
        let result = try llmctl(["send", "--json", "-m", "fixture/cut", "a b c d e", "--socket", daemon.socketPath])
        #expect(result.status == 1)
        let object = try json(result)
        #expect(object["error"]?.objectValue?["code"] == "upstream.stream_cut")
        let partial = try #require(object["partial_text"]?.stringValue)
        #expect(!partial.isEmpty)
        #expect(object["usage"]?.objectValue?["source"] == "estimated")
    }

    @Test("scope --json=FILE: the totals and llmctl's own failure go to FILE; stdout is the command's")
    func scopeJSONFile() throws {
        let directory = try TemporaryDirectory()
        let daemon = try DaemonProcess()
        let totals = directory.file("totals.json")
        let ran = try llmctl(["scope", "--json=\(totals)", "--socket", daemon.socketPath, "--", "echo", "mine"])
        #expect(ran.status == 0 && ran.standardOutput == "mine\n" && ran.standardError.isEmpty, "\(ran.standardError)")
        let written = try String(contentsOfFile: totals, encoding: .utf8)
        #expect(try JSONParser.parse(written).objectValue?["exit_status"] == 0)

        let failed = try llmctl(["scope", "--json=\(totals)", "--socket", directory.file("none.sock"), "--", "echo", "x"])
        #expect(failed.status == 69 && failed.standardOutput.isEmpty)
        let error = try JSONParser.parse(try String(contentsOfFile: totals, encoding: .utf8))
        #expect(error.objectValue?["error"]?.objectValue?["code"] == "client.daemon_not_running")
    }

    /// A daemon with two finished turns of session `s` and one of `t`.
    private func daemonWithTurns() throws -> DaemonProcess {
        let daemon = try DaemonProcess()
        for (session, text) in [("s", "first words"), ("t", "other session"), ("s", "second words")] {
            let sent = try llmctl(["send", "-s", session, text, "--socket", daemon.socketPath])
            #expect(sent.status == 0, "\(sent.standardError)")
        }
        return daemon
    }

    @Test("events -o cat is the replies' text; -n the last events; --until stops; --grep matches text")
    func eventOutputs() throws {
        let daemon = try daemonWithTurns()
        let socket = ["--socket", daemon.socketPath]
        let cat = try llmctl(["events", "-o", "cat"] + socket)
        #expect(cat.status == 0)
        #expect(
            cat.standardOutput == "[fake] You said: first words\n[fake] You said: other session\n[fake] You said: second words\n",
            "\(cat.standardOutput)")
        let sessionOnly = try llmctl(["events", "-o", "cat", "-s", "t"] + socket)
        #expect(sessionOnly.standardOutput == "[fake] You said: other session\n")

        let all = try llmctl(["events", "-o", "json"] + socket).standardOutput.split(separator: "\n")
        let last = try llmctl(["events", "-n", "2"] + socket).standardOutput.split(separator: "\n")
        #expect(last == Array(all.suffix(2)), "-n 2 is the last two lines of the whole")
        let firstSeq = try #require(try JSONParser.parse(String(all[0])).objectValue?["seq"]?.intValue)
        let until = try llmctl(["events", "--until", String(firstSeq + 1)] + socket).standardOutput.split(separator: "\n")
        #expect(until == Array(all.prefix(2)))

        let pretty = try llmctl(["events", "-o", "json-pretty", "-n", "1"] + socket)
        #expect(pretty.standardOutput.hasPrefix("{\n  \"type\": \"event\""), "\(pretty.standardOutput)")
        #expect(try JSONParser.parse(pretty.standardOutput).objectValue?["seq"] == .int(try #require(
            try JSONParser.parse(String(all.last!)).objectValue?["seq"]?.intValue)))

        let grep = try llmctl(["events", "-o", "json", "--grep", "OTHER", "-t", "chain_start"] + socket)
        #expect(grep.standardOutput.isEmpty, "capitals match case")
        let found = try llmctl(["events", "-o", "json", "--grep", "other ses", "-t", "chain_start"] + socket)
        #expect(found.standardOutput.split(separator: "\n").count == 1, "\(found.standardOutput)")
    }

    @Test("events on a terminal: one short line per event; colour unless NO_COLOR is set or TERM is dumb")
    func eventsOnATerminal() throws {
        let daemon = try daemonWithTurns()
        // script(1) gives llmctl a terminal; its output comes back through the pty.
        func onTerminal(_ environment: [String: String]) throws -> String {
            var variables = ProcessInfo.processInfo.environment
            variables["TERM"] = "xterm"
            variables["NO_COLOR"] = nil
            for (name, value) in environment { variables[name] = value }
            let command = "\(binDirectory)/llmctl events --socket \(daemon.socketPath)"
            return try run("/usr/bin/script", ["-qec", command, "/dev/null"], environment: variables).standardOutput
        }
        let colored = try onTerminal([:])
        #expect(colored.contains("\u{1B}["), "\(colored)")
        for line in colored.split(whereSeparator: \.isNewline) { #expect(line.count < 300, "one short line: \(line)") }
        #expect(colored.contains("\"[fake] You said: second words\""), "chain_end shows the reply, not its JSON")
        #expect(!(try onTerminal(["NO_COLOR": "1"])).contains("\u{1B}["))
        #expect(try onTerminal(["NO_COLOR": ""]).contains("\u{1B}["), "an empty NO_COLOR does not count")
        #expect(!(try onTerminal(["TERM": "dumb"])).contains("\u{1B}["))
        #expect(!(try llmctl(["events", "-o", "short", "--socket", daemon.socketPath])).standardOutput.contains("\u{1B}["), "not a terminal")
    }
}
