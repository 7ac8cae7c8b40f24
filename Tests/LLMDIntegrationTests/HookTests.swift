import Foundation
import LLMDClient
import LLMDProtocol
import LLMDTesting
import Testing

/// `llmctl on`: a command run for each event, as an async callback handler is called,
/// against a real daemon whose offline `fake` provider makes the turns.
@Suite("llmctl on")
struct HookTests {
    /// `llmctl on` running as a child, its standard error kept in a file.
    private struct Hook {
        let process: ChildProcess
        let errorPath: String

        /// Starts `llmctl on ARGUMENTS` and waits until its subscription is live.
        init(_ arguments: [String], socket: String, in directory: TemporaryDirectory) throws {
            errorPath = directory.file("on.err")
            process = try ChildProcess(
                binDirectory + "/llmctl", ["on", "--socket", socket] + arguments,
                environment: ProcessInfo.processInfo.environment, outputPath: directory.file("on.out"), errorPath: errorPath)
            let errorPath = errorPath
            let process = process
            guard waitUntil(timeout: .seconds(20), { !process.isRunning || Self.read(errorPath).contains("-- live --") }),
                process.isRunning
            else {
                throw StartError(description: "llmctl on did not start: \(Self.read(errorPath))")
            }
        }

        var errors: String { Self.read(errorPath) }

        static func read(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }

        struct StartError: Error, CustomStringConvertible {
            var description: String
        }

        /// Sends `signal` and says how llmctl ended, which must be soon.
        func stop(_ signal: Int32) -> ChildProcess.Termination? {
            process.send(signal: signal)
            return process.wait(timeout: .seconds(3))
        }
    }

    private func send(_ session: String, _ text: String, socket: String) throws {
        let sent = try llmctl(["send", "-s", session, text, "--socket", socket])
        #expect(sent.status == 0, "\(sent.standardError)")
    }

    @Test("the hook runs once for each matching event, in order, with the event on stdin and LLMD_EVENT_* set; SIGTERM ends it")
    func eventsReachTheHook() throws {
        let daemon = try DaemonProcess()
        let directory = try TemporaryDirectory()
        let record = directory.file("record")
        // Two lines for each event: the variables, then the JSON line read from stdin.
        let script = """
            printf '%s|%s|%s|%s|%s\\n' "$LLMD_EVENT_TYPE" "$LLMD_EVENT_SEQ" "${LLMD_EVENT_SESSION-none}" \
                "$LLMD_EVENT_RUN_ID" "${LLMD_EVENT_PARENT_RUN_ID-none}" >> "$1"
            cat >> "$1"
            """
        let hook = try Hook(
            ["llm_end", "chain_end", "-s", "s", "--", "/bin/sh", "-c", script, "sh", record], socket: daemon.socketPath, in: directory)
        try send("other", "not this session", socket: daemon.socketPath)
        try send("s", "hello", socket: daemon.socketPath)
        let lines = { Hook.read(record).split(separator: "\n", omittingEmptySubsequences: false).dropLast() }
        #expect(waitUntil { lines().count >= 4 }, "\(hook.errors)")
        let expected = try llmctl(["events", "-o", "json", "-s", "s", "-t", "llm_end", "-t", "chain_end", "--socket", daemon.socketPath])
        let events = expected.standardOutput.split(separator: "\n").map(String.init)
        #expect(events.count == 2)
        #expect(Array(lines()).enumerated().filter { $0.offset % 2 == 1 }.map { String($0.element) } == events, "stdin is the JSON line")
        for (variables, line) in zip(lines().enumerated().filter { $0.offset % 2 == 0 }.map(\.element), events) {
            guard case .event(let event) = try ServerMessage.decode(line: Array(line.utf8)) else {
                Issue.record("not an event: \(line)")
                continue
            }
            let fields = variables.split(separator: "|", omittingEmptySubsequences: false).map(String.init)
            #expect(fields == [event.name, String(event.seq), "s", event.runID, event.parentRunID ?? "none"])
        }
        #expect(lines().first?.hasPrefix("llm_end|") == true && lines().first?.hasSuffix("|none") == false, "a model run has a parent")
        #expect(lines().dropFirst(2).first?.hasSuffix("|none") == true, "the chain is a root run")
        #expect(hook.stop(SIGTERM) == .signalled(SIGTERM))
        #expect(lines().count == 4, "once per event, nothing for the other session")
    }

    @Test("--block holds the run until the hook exits; without it the run goes on")
    func blockingHook() throws {
        // An ack timeout far beyond the hook's time: a run that goes on early was acked.
        let daemon = try DaemonProcess(config: "[Events]\nAckTimeoutSec=30")
        func timedSend(_ text: String) throws -> Duration {
            let start = ContinuousClock.now
            try send("s", text, socket: daemon.socketPath)
            return ContinuousClock.now - start
        }
        let loose = try Hook(["chain_end", "--", "sleep", "1.5"], socket: daemon.socketPath, in: try TemporaryDirectory())
        let unblocked = try timedSend("first")
        #expect(loose.stop(SIGINT) == .signalled(SIGINT))
        let holding = try Hook(["chain_end", "--block", "--", "sleep", "1.5"], socket: daemon.socketPath, in: try TemporaryDirectory())
        let blocked = try timedSend("second")
        #expect(unblocked < .milliseconds(1500), "\(unblocked)")
        #expect(blocked >= .milliseconds(1500), "\(blocked)")
        #expect(blocked < .seconds(10), "the ack let the run go, not the 30-second timeout: \(blocked)")
        #expect(holding.stop(SIGINT) == .signalled(SIGINT))
        #expect(!holding.errors.contains("ack timeout"), "\(holding.errors)")
    }

    @Test("a hook slower than the daemon's ack timeout: llmctl says so, and goes on")
    func ackTimeout() throws {
        let daemon = try DaemonProcess(config: "[Events]\nAckTimeoutSec=200ms")
        let directory = try TemporaryDirectory()
        let hook = try Hook(["chain_end", "--block", "--", "sleep", "0.6"], socket: daemon.socketPath, in: directory)
        try send("s", "hello", socket: daemon.socketPath)
        #expect(waitUntil { hook.errors.contains("it took longer than the daemon's ack timeout (200 ms)") }, "\(hook.errors)")
        #expect(hook.process.isRunning)
        #expect(hook.stop(SIGTERM) == .signalled(SIGTERM))
    }

    @Test("a hook that fails or is killed is reported, and the next event runs it again")
    func failingHook() throws {
        let daemon = try DaemonProcess()
        let directory = try TemporaryDirectory()
        let record = directory.file("record")
        // The first run exits 3, the second kills itself.
        let script = #"echo "$LLMD_EVENT_SEQ" >> "$1"; [ "$(wc -l < "$1")" -eq 1 ] && exit 3; kill -KILL $$"#
        let hook = try Hook(["chain_end", "--", "/bin/sh", "-c", script, "sh", record], socket: daemon.socketPath, in: directory)
        try send("s", "one", socket: daemon.socketPath)
        try send("s", "two", socket: daemon.socketPath)
        #expect(waitUntil { hook.errors.contains("hook killed by signal 9") }, "\(hook.errors)")
        let seqs = Hook.read(record).split(separator: "\n")
        #expect(seqs.count == 2)
        #expect(hook.errors.contains("llmctl: hook exited 3 for chain_end #\(seqs.first ?? "?")\n"), "\(hook.errors)")
        #expect(hook.errors.contains("llmctl: hook killed by signal 9 for chain_end #\(seqs.last ?? "?")\n"))
        #expect(hook.process.isRunning)
        #expect(hook.stop(SIGINT) == .signalled(SIGINT))
    }

    @Test("across a daemon restart the hook resumes after the last event it handled")
    func restart() throws {
        let shared = try TemporaryDirectory()
        let socket = shared.file("llmd.sock")
        var daemon: DaemonProcess? = try DaemonProcess(socketPath: socket, stateDirectory: shared.file("state"))
        let record = shared.file("record")
        let hook = try Hook(
            ["chain_end", "--", "/bin/sh", "-c", #"echo "$LLMD_EVENT_SEQ" >> "$1""#, "sh", record], socket: socket, in: shared)
        try send("s", "before", socket: socket)
        #expect(waitUntil { Hook.read(record).split(separator: "\n").count == 1 })
        daemon!.send(signal: SIGTERM)
        #expect(daemon!.waitForExit() == .exited(0))
        daemon = nil
        daemon = try DaemonProcess(socketPath: socket, stateDirectory: shared.file("state"))
        // Sent while llmctl may still be reconnecting: it resumes after its last seq anyway.
        try send("s", "after", socket: socket)
        #expect(waitUntil { Hook.read(record).split(separator: "\n").count == 2 }, "\(hook.errors)")
        #expect(hook.errors.contains("-- reconnected; resuming after seq"))
        #expect(hook.stop(SIGTERM) == .signalled(SIGTERM))
        #expect(Set(Hook.read(record).split(separator: "\n")).count == 2, "each event once")
    }

    @Test(
        "bad usage is refused before any daemon is asked: exit 64 with what is wrong, 127 for a command that cannot run",
        arguments: [
            (["llm_ends", "--", "true"], 64, "'llm_ends' is not an event type (did you mean 'llm_end'?); types: chain_start,"),
            (["llm_end"], 64, "missing command after --"),
            (["llm_end", "true"], 64, "missing command after --"),
            (["--", "true"], 64, "missing type"),
            (["llm_new_token", "--block", "--", "true"], 64, "--block cannot hold runs for llm_new_token"),
            (["ack_timeout", "--block", "--", "true"], 64, "--block cannot hold runs for ack_timeout"),
            (["llm_end", "--since", "yesterday", "--", "true"], 64, "--since needs a seq or a time"),
            (["llm_end", "--", "no-such-command-llmd"], 127, "llmctl: cannot run no-such-command-llmd: command not found"),
            (["llm_end", "--", "/"], 127, "llmctl: cannot run /: Is a directory"),
        ])
    func refused(arguments: [String], status: Int32, message: String) throws {
        // No daemon listens here: had llmctl tried to subscribe, it would exit 69.
        let directory = try TemporaryDirectory()
        let result = try llmctl(["on", "--socket", directory.file("none.sock")] + arguments)
        #expect(result.status == status, "\(result.standardError)")
        #expect(result.standardError.contains(message), "\(result.standardError)")
    }
}
