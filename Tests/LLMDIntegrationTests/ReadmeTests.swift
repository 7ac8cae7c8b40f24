import Foundation
import LLMDProtocol
import LLMDTesting
import Testing

/// README.md is a contract: its command blocks run, in order, as a new user would run
/// them, against the binaries under test, and print what it shows.
///
/// - `sh` blocks run line by line; every command must succeed. A command ending in `&`
///   runs in the background, its output aside, until the block ends; after one that
///   starts llmd, the block waits for the daemon to answer, as a person would.
/// - `console` blocks are `$ command` lines with the output shown under them, which must
///   match: a number stands for any number, `…` for anything, and the test's runtime
///   directory is shown as `/run/user/1000`.
/// - A block that starts no daemon gets one: `llmd` as its user would start it.
/// - `<!-- readme-test: protocol -->` marks a transcript, `← ` from the daemon and `→ `
///   to it, played on the daemon's socket.
/// - `<!-- readme-test: skip: REASON -->` marks a block that needs what a test does not
///   have (a real API key, root); the test lists them.
///
/// Blocks share a home, runtime, configuration and state directory, as a user's shell
/// does, so sessions made in one are there in the next. OpenAI is the fixture server
/// (`OPENAI_BASE_URL`); `LLMD_VOCAB_DIR` is unset, so the binaries find their vocabularies
/// themselves. As root, the blocks run as uid 1000 in a user namespace of their own: the
/// README is a user's, and root's llmd would be the system instance, on `/run/llmd`.
@Suite("README")
struct ReadmeTests {
    /// A user's world in a temporary directory.
    private struct Sandbox {
        let root: TemporaryDirectory
        let environment: [String: String]
        /// What the README's programs run under: a user namespace where the test is root.
        let launcher: [String]
        var runtime: String { root.file("run") }
        var work: String { root.file("work") }
        var backgroundLog: String { root.file("background.log") }

        init(fixture: FixtureServer) throws {
            root = try TemporaryDirectory()
            for directory in ["home", "run", "config", "state", "data", "work/.build"] {
                try FileManager.default.createDirectory(atPath: root.file(directory), withIntermediateDirectories: true)
            }
            chmod(root.file("run"), 0o700)
            // `.build/release` as `make build` leaves it: a link into the build tree.
            try FileManager.default.createSymbolicLink(atPath: root.file("work/.build/release"), withDestinationPath: binDirectory)
            // The files the README's commands read, as a user would have them.
            _ = try root.write("work/notes.txt", "Roses for Anna's birthday, pink ones.\nA card: 'Happy birthday!'\n")
            _ = try root.write("work/prompt.txt", "Do you remember why I came to buy flowers yesterday?\n")
            let script = try root.write("work/my-script.sh", "#!/bin/sh\nllmctl send 'What is a good name for a flower shop?'\n")
            chmod(script, 0o755)
            environment = [
                "PATH": binDirectory + ":/usr/local/bin:/usr/bin:/bin", "HOME": root.file("home"),
                "XDG_RUNTIME_DIR": root.file("run"), "XDG_CONFIG_HOME": root.file("config"),
                "XDG_STATE_HOME": root.file("state"), "XDG_DATA_HOME": root.file("data"), "LANG": "C.UTF-8",
                "NO_COLOR": "1", "OPENAI_BASE_URL": fixture.baseURL,
            ]
            launcher = try Self.userLauncher(owning: root.path)
        }

        /// How to run as a user where the test is root: uid 1000 in a user namespace, or,
        /// where user namespaces are not allowed, user nobody, given the sandbox.
        ///
        /// - Throws: when neither can run the binaries under test.
        private static func userLauncher(owning sandbox: String) throws -> [String] {
            guard getuid() == 0 else { return [] }
            let namespace = ["/usr/bin/unshare", "--user", "--map-user=1000", "--map-group=1000"]
            if (try? LLMDTesting.run(namespace[0], Array(namespace.dropFirst()) + [binDirectory + "/llmctl", "--version"]))?.status == 0 {
                return namespace
            }
            let nobody = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
            guard (try? LLMDTesting.run(nobody[0], Array(nobody.dropFirst()) + [binDirectory + "/llmctl", "--version"]))?.status == 0,
                (try? LLMDTesting.run("/bin/chown", ["-R", "65534:65534", sandbox]))?.status == 0
            else {
                struct NoUser: Error, CustomStringConvertible {
                    var description: String {
                        "the README is a user's, but this test runs as root with neither user namespaces "
                            + "(unshare --user) nor \(binDirectory) open to user nobody: run it as a user"
                    }
                }
                throw NoUser()
            }
            return nobody
        }

        /// Starts `program` with `arguments` as the README's user.
        func spawn(_ program: String, _ arguments: [String], outputPath: String) throws -> ChildProcess {
            let command = launcher + [program] + arguments
            return try ChildProcess(command[0], Array(command.dropFirst()), environment: environment, outputPath: outputPath)
        }
    }

    /// What a foreground command printed and how it ended.
    private struct Outcome {
        var command: String
        var output: String
        var status: Int32
    }

    /// Runs `commands` as one bash script in the sandbox: the outcome of each foreground
    /// command, in order, and the script's own failure, if any.
    private func run(_ commands: [String], in sandbox: Sandbox, startingDaemon: Bool) throws -> ([Outcome], String) {
        var script = """
            exec 2>&1
            cd \(sandbox.work)
            readme_wait_for_daemon() {
                for _ in $(seq 400); do llmctl ping >/dev/null 2>&1 && return 0; sleep 0.05; done
                echo "readme-test: no daemon answered"; return 1
            }
            readme_stop_background() {
                local jobs alive; jobs=$(jobs -p)
                [ -n "$jobs" ] || return 0
                kill $jobs 2>/dev/null
                for _ in $(seq 300); do
                    alive=; for job in $jobs; do kill -0 $job 2>/dev/null && alive="$alive $job"; done
                    [ -z "$alive" ] && break; sleep 0.05
                done
                if [ -n "$alive" ]; then
                    echo "readme-test: still running 15 s after SIGTERM:"; ps -o pid=,args= -p "$(echo $alive | tr " " ,)"
                    kill -9 $alive 2>/dev/null; exit 1
                fi
                wait
            }
            trap readme_stop_background EXIT

            """
        if startingDaemon {
            script += "llmd >>\(sandbox.backgroundLog) 2>&1 &\nreadme_wait_for_daemon || exit 1\n"
        }
        for (index, command) in commands.enumerated() {
            if let background = Self.backgroundCommand(command) {
                // Redirected as it is, so that `$!` is the program itself, which the end stops.
                script += "\(background) >>\(sandbox.backgroundLog) 2>&1 &\n"
                if Self.startsDaemon(background) { script += "readme_wait_for_daemon || exit 1\n" }
                continue
            }
            script += "printf '@@readme-begin \(index)@@\\n'\n\(command)\n"
            script += "printf '\\n@@readme-end \(index) %d@@\\n' $?\n"
        }
        let scratch = try TemporaryDirectory()
        let output = scratch.file("output")
        let shell = try sandbox.spawn("/bin/bash", ["-c", script], outputPath: output)
        let ended = shell.wait(timeout: .seconds(90))
        if ended == nil { shell.send(signal: SIGKILL) }
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        var outcomes: [Outcome] = []
        for (index, command) in commands.enumerated() {
            guard let begin = text.range(of: "@@readme-begin \(index)@@\n"),
                let end = text.range(of: #"\n@@readme-end \#(index) (\d+)@@"#, options: .regularExpression, range: begin.upperBound..<text.endIndex)
            else { continue }
            let marker = text[end]
            let status = Int32(marker.split(separator: " ").last!.dropLast(2)) ?? -1
            outcomes.append(Outcome(command: command, output: String(text[begin.upperBound..<end.lowerBound]), status: status))
        }
        let failure = ended == .exited(0) ? "" : "the script ended \(ended.map { "\($0)" } ?? "only when killed"): \(text)"
        return (outcomes, failure)
    }

    /// The command of a line run in the background (`command &   # comment`), else nil.
    static func backgroundCommand(_ line: String) -> String? {
        guard let match = line.firstMatch(of: #/^(.*\S)\s+&(\s+#.*)?$/#) else { return nil }
        return String(match.1)
    }

    /// Whether `command` starts llmd itself: `llmd` or a path ending in `/llmd`.
    static func startsDaemon(_ command: String) -> Bool {
        let program = command.split(separator: " ").first.map(String.init) ?? ""
        return program == "llmd" || program.hasSuffix("/llmd")
    }

    /// Whether a line of output matches one the README shows.
    static func matches(_ actual: String, shown: String, runtime: String) -> Bool {
        func normalized(_ text: String) -> String {
            text.replacing(#/\d+/#, with: "0").trimmingCharacters(in: .whitespaces)
        }
        let actual = normalized(actual.replacingOccurrences(of: runtime, with: "/run/user/1000"))
        let pattern = normalized(shown).components(separatedBy: "…").map(NSRegularExpression.escapedPattern(for:))
            .joined(separator: ".*")
        return actual.range(of: "^" + pattern + "$", options: .regularExpression) != nil
    }

    @Test("every command block of README.md runs, and prints what the README shows")
    func readme() throws {
        let text = try String(contentsOfFile: sourceRoot + "/README.md", encoding: .utf8)
        let fixture = try FixtureServer()
        let sandbox = try Sandbox(fixture: fixture)
        var ran: [String] = []
        var skipped: [String] = []
        for block in MarkdownBlock.all(in: text) {
            let origin = "README.md:\(block.line)"
            if let reason = block.skipReason {
                skipped.append("\(origin) (\(reason))")
                continue
            }
            switch (block.language, block.note) {
            case ("ini", nil):
                continue  // loaded by ConfigurationExamplesTests
            case ("", "protocol"?):
                try playTranscript(block.lines, in: sandbox, origin: origin)
            case ("sh", nil), ("console", nil):
                let steps = block.language == "sh" ? block.shellCommands.map { ($0, [String]()) } : block.consoleSteps
                let commands = steps.map(\.0)
                let (outcomes, failure) = try run(
                    commands, in: sandbox, startingDaemon: !commands.contains { Self.backgroundCommand($0).map(Self.startsDaemon) ?? false })
                #expect(failure.isEmpty, "\(origin): \(failure)")
                for outcome in outcomes {
                    #expect(outcome.status == 0, "\(origin): `\(outcome.command)` exited \(outcome.status):\n\(outcome.output)")
                }
                let foreground = steps.filter { Self.backgroundCommand($0.0) == nil }
                #expect(outcomes.count == foreground.count, "\(origin): every command ran")
                for (step, outcome) in zip(foreground, outcomes) where !step.1.isEmpty {
                    var printed = outcome.output.components(separatedBy: "\n")
                    while printed.last?.isEmpty == true { printed.removeLast() }
                    let shown = step.1
                    let same =
                        printed.count == shown.count
                        && zip(printed, shown).allSatisfy { Self.matches($0, shown: $1, runtime: sandbox.runtime) }
                    #expect(same, "\(origin): `\(step.0)` printed\n\(printed.joined(separator: "\n"))\nwhere the README shows\n\(shown.joined(separator: "\n"))")
                }
            default:
                Issue.record("\(origin): a \(block.language.isEmpty ? "plain" : block.language) block that is neither run nor marked")
                continue
            }
            ran.append(origin)
        }
        print("README blocks run: \(ran.joined(separator: ", "))")
        print("README blocks not run: \(skipped.joined(separator: "; "))")
        #expect(ran.count >= 10 && skipped.count == 5, "ran \(ran), skipped \(skipped)")
        // The binaries found their vocabularies without LLMD_VOCAB_DIR.
        let log = (try? String(contentsOfFile: sandbox.backgroundLog, encoding: .utf8)) ?? ""
        #expect(!log.contains("token counts are estimates"), "\(log)")
    }

    /// Plays a `←`/`→` transcript on a fresh connection to a daemon started for it.
    private func playTranscript(_ lines: [String], in sandbox: Sandbox, origin: String) throws {
        let daemon = try sandbox.spawn(binDirectory + "/llmd", [], outputPath: sandbox.backgroundLog)
        defer {
            daemon.send(signal: SIGTERM)
            _ = daemon.wait(timeout: .seconds(10))
        }
        let socket = sandbox.runtime + "/llmd/llmd.sock"
        var connection: RawConnection?
        _ = waitUntil(timeout: .seconds(20)) {
            connection = try? RawConnection(path: socket)
            return connection != nil
        }
        let session = try #require(connection, "\(origin): no daemon on \(socket)")
        for line in lines where !line.isEmpty {
            if line.hasPrefix("→ ") {
                try session.send(String(line.dropFirst(2)))
            } else if line.hasPrefix("← ") {
                let received = try #require(session.readLine(), "\(origin): the daemon sent nothing for \(line)")
                #expect(
                    Self.matches(received, shown: String(line.dropFirst(2)), runtime: sandbox.runtime),
                    "\(origin): the daemon sent\n\(received)\nwhere the README shows\n\(line)")
            } else {
                Issue.record("\(origin): a transcript line is neither '→ ' nor '← ': \(line)")
            }
        }
    }
}
