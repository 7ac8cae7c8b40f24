import Foundation
import LLMDProtocol
import LLMDTesting
import Synchronization
import Testing

/// `llmctl chat` with its input piped: the REPL without a terminal, driven line by line.
@Suite("llmctl chat")
struct ChatTests {
    /// A chat process whose input the test writes and whose output it collects.
    final class Chat: Sendable {
        let process: Process
        let input = Pipe()
        private let output = Mutex("")

        init(socket: String, session: String, home: String) throws {
            process = Process()
            process.executableURL = URL(fileURLWithPath: binDirectory + "/llmctl")
            process.arguments = ["chat", "--socket", socket, "-s", session]
            process.environment = ["HOME": home, "PATH": "/usr/bin:/bin"]
            process.standardInput = input
            let pipe = Pipe()
            process.standardOutput = pipe
            process.standardError = pipe
            try process.run()
            // Weak: the handler may run once more, at end of file, after the test is done
            // with the chat.
            pipe.fileHandleForReading.readabilityHandler = { [weak self] handle in
                let data = handle.availableData
                self?.output.withLock { $0 += String(decoding: data, as: UTF8.self) }
            }
        }

        var text: String { output.withLock { $0 } }

        func type(_ line: String) {
            input.fileHandleForWriting.write(Data((line + "\n").utf8))
        }

        /// Ends its input and waits for it to leave: its exit status, or -1 when it did not
        /// leave within 20 seconds and was killed.
        func finish() -> Int32 {
            try? input.fileHandleForWriting.close()
            guard waitUntil(timeout: .seconds(20), { !process.isRunning }) else {
                process.terminate()
                return -1
            }
            return process.terminationStatus
        }
    }

    @Test("two chats on one session see each other's turns; / commands answer; history is saved")
    func twoShells() throws {
        let daemon = try DaemonProcess()
        let home = try TemporaryDirectory()
        let alice = try Chat(socket: daemon.socketPath, session: "duo", home: home.path)
        let bob = try Chat(socket: daemon.socketPath, session: "duo", home: home.path)
        defer {
            if alice.process.isRunning { alice.process.terminate() }
            if bob.process.isRunning { bob.process.terminate() }
        }
        // Both follow the session before either speaks.
        for chat in [alice, bob] { #expect(waitUntil { chat.text.contains("-- following session 'duo' --\n") }) }
        bob.type("hello from bob")
        #expect(waitUntil { alice.text.contains("> hello from bob\n[fake] You said: hello from bob\n") }, "\(alice.text)")
        #expect(waitUntil { bob.text.contains("[fake] You said: hello from bob\n") })
        #expect(!bob.text.contains("> hello from bob"), "a chat does not echo its own input")
        alice.type("and alice")
        #expect(waitUntil { bob.text.contains("> and alice\n[fake] You said: and alice\n") }, "\(bob.text)")
        alice.type("/usage")
        #expect(waitUntil { alice.text.contains("session 'duo': 2 turns completed; 2 LLM calls, ") }, "\(alice.text)")
        alice.type("/memory")
        #expect(waitUntil { alice.text.contains("messages: 4 in memory, 4 in the next prompt") })
        alice.type("/nonsense")
        #expect(waitUntil { alice.text.contains("unknown command /nonsense") })
        #expect(alice.finish() == 0)
        #expect(bob.finish() == 0)
        // libedit's history format escapes blanks as \040.
        let history = try String(contentsOfFile: home.file(".local/state/llmd/chat_history"), encoding: .utf8)
            .replacingOccurrences(of: "\\040", with: " ")
        #expect(history.contains("and alice") && history.contains("hello from bob"))
    }

    @Test("a chat sees the end of its input though a child process started after it")
    func inputEndsDespiteLaterChildren() throws {
        let daemon = try DaemonProcess()
        let home = try TemporaryDirectory()
        let chat = try Chat(socket: daemon.socketPath, session: "eof", home: home.path)
        defer { if chat.process.isRunning { chat.process.terminate() } }
        // Started while the chat's input pipe is open in this process: it must not keep a
        // copy of the pipe's write end, or the chat would wait for more input forever.
        let laterDaemon = try DaemonProcess()
        #expect(waitUntil { chat.text.contains("-- following session 'eof' --\n") })
        #expect(chat.finish() == 0)
        withExtendedLifetime(laterDaemon) {}
    }

    @Test("Ctrl-C cancels the turn in flight, not the chat; the cancelled turn is recorded and stays out of memory")
    func interrupt() throws {
        let daemon = try DaemonProcess(config: "[Provider fake]\nTokenDelayMSec=200\n")
        let home = try TemporaryDirectory()
        let chat = try Chat(socket: daemon.socketPath, session: "ctrl-c", home: home.path)
        defer { if chat.process.isRunning { chat.process.terminate() } }
        chat.type("one two three four five six seven eight nine ten")
        #expect(waitUntil { chat.text.contains("[fake] You said:") })
        kill(chat.process.processIdentifier, SIGINT)
        #expect(waitUntil { chat.text.contains("(cancelled)") }, "\(chat.text)")
        #expect(chat.text.components(separatedBy: "cancelled").count == 2, "one line says so: \(chat.text)")
        chat.type("/session")
        #expect(waitUntil { chat.text.contains("cancelled\n  > one two three") }, "\(chat.text)")
        chat.type("/memory")
        #expect(waitUntil { chat.text.contains("messages: 0 in memory") })
        #expect(chat.finish() == 0)
    }

    @Test("a \"\"\" block is one message; /switch without a name says what it needs")
    func blocksAndSwitch() throws {
        let daemon = try DaemonProcess()
        let home = try TemporaryDirectory()
        let chat = try Chat(socket: daemon.socketPath, session: "block", home: home.path)
        defer { if chat.process.isRunning { chat.process.terminate() } }
        #expect(waitUntil { chat.text.contains("-- following session 'block' --\n") })
        chat.type("\"\"\"first line")
        chat.type("second line")
        chat.type("third\"\"\"")
        #expect(waitUntil { chat.text.contains("[fake] You said: first line\nsecond line\nthird") }, "\(chat.text)")
        chat.type("/switch")
        #expect(waitUntil { chat.text.contains("/switch needs the session to go on in: /switch NAME") }, "\(chat.text)")
        chat.type("/session")
        #expect(waitUntil { chat.text.contains("turns:         1 completed") }, "one turn: \(chat.text)")
        #expect(chat.finish() == 0)
    }

    @Test("chat and attach outlive a daemon restart: a notice, then the session from where they were, no turn twice")
    func acrossRestart() throws {
        let shared = try TemporaryDirectory()
        let socket = shared.file("llmd.sock")
        var daemon: DaemonProcess? = try DaemonProcess(socketPath: socket, stateDirectory: shared.file("state"))
        let home = try TemporaryDirectory()
        let chat = try Chat(socket: socket, session: "kept", home: home.path)
        defer { if chat.process.isRunning { chat.process.terminate() } }
        #expect(waitUntil { chat.text.contains("-- following session 'kept' --\n") })
        chat.type("before")
        #expect(waitUntil { chat.text.contains("[fake] You said: before\n") }, "\(chat.text)")
        // Attached once the session exists: it shows the turn so far, then follows.
        let attachOutput = shared.file("attach.out")
        let attach = try ChildProcess(
            binDirectory + "/llmctl", ["attach", "kept", "--socket", socket, "--reconnect-timeout", "2"],
            environment: ProcessInfo.processInfo.environment, outputPath: attachOutput, errorPath: shared.file("attach.err"))
        defer { attach.send(signal: SIGKILL) }
        func attached() -> String { (try? String(contentsOfFile: attachOutput, encoding: .utf8)) ?? "" }
        #expect(waitUntil { attached().contains("[fake] You said: before\n") }, "\(attached())")
        #expect(waitUntil { (try? String(contentsOfFile: shared.file("attach.err"), encoding: .utf8))?.contains("attached") == true })

        daemon!.send(signal: SIGTERM)
        #expect(daemon!.waitForExit() == .exited(0))
        daemon = nil
        #expect(waitUntil { chat.text.contains("-- the daemon went away; reconnecting --") }, "\(chat.text)")
        daemon = try DaemonProcess(socketPath: socket, stateDirectory: shared.file("state"))
        // Sent by another client while the chat may still be reconnecting: it is shown anyway.
        #expect(try llmctl(["send", "-s", "kept", "meanwhile", "--socket", socket]).status == 0)
        #expect(waitUntil { chat.text.contains("[fake] You said: meanwhile\n") }, "\(chat.text)")
        chat.type("after")
        #expect(waitUntil { chat.text.contains("[fake] You said: after\n") }, "\(chat.text)")
        #expect(waitUntil { attached().contains("[fake] You said: after\n") }, "\(attached())")
        for text in [chat.text, attached()] {
            #expect(text.components(separatedBy: "You said: before").count == 2, "shown once: \(text)")
            #expect(text.components(separatedBy: "You said: meanwhile").count == 2, "shown once: \(text)")
        }
        #expect(chat.finish() == 0)

        // A daemon that does not come back: attach gives up, and not with status 0.
        daemon!.send(signal: SIGKILL)
        #expect(daemon!.waitForExit() != nil)
        daemon = nil
        #expect(attach.wait(timeout: .seconds(20)) == .exited(69))
        let errors = try String(contentsOfFile: shared.file("attach.err"), encoding: .utf8)
        #expect(errors.contains("-- the daemon went away; reconnecting --") && errors.contains("-- reconnected --"), "\(errors)")
    }
}
