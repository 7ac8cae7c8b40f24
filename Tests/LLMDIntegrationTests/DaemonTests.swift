import Foundation
import LLMDClient
import LLMDProtocol
import LLMDTesting
import Testing

/// The daemon and llmctl as real processes on temporary sockets.
@Suite("Daemon and client")
struct DaemonTests {
    @Test("llmctl status reports version, pid, uptime, socket and load")
    func status() throws {
        let daemon = try DaemonProcess()
        let result = try llmctl(["status", "--socket", daemon.socketPath])
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardOutput.contains("llmd \(LLMDVersion.string) (protocol 1)"))
        #expect(result.standardOutput.contains("pid:                \(daemon.pid)"))
        #expect(result.standardOutput.contains("socket:             \(daemon.socketPath)"))

        let json = try llmctl(["status", "--json", "--socket", daemon.socketPath])
        let object = try #require(try JSONParser.parse(json.standardOutput.trimmingCharacters(in: .newlines)).objectValue)
        #expect(object["pid"]?.intValue == Int64(daemon.pid))
        #expect(object["clients"] == 1)
        #expect(object["uptime_ms"]?.intValue ?? -1 >= 0)
    }

    @Test("llmctl ping answers, and $LLMD_SOCKET selects the socket")
    func ping() throws {
        let daemon = try DaemonProcess()
        var environment = ProcessInfo.processInfo.environment
        environment["LLMD_SOCKET"] = daemon.socketPath
        let result = try llmctl(["ping"], environment: environment)
        #expect(result.status == 0, "\(result.standardError)")
        #expect(result.standardOutput.hasPrefix("pong from llmd \(LLMDVersion.string) in "))
    }

    @Test("without a daemon llmctl says so, with the command to start one, and exits 69")
    func noDaemon() throws {
        let directory = try TemporaryDirectory()
        let result = try llmctl(["status", "--socket", directory.file("absent.sock")])
        #expect(result.status == 69)
        #expect(result.standardError.contains("no llmd is listening on \(directory.file("absent.sock"))"))
        #expect(result.standardError.contains("Start it with:"))
    }

    @Test("two clients at once are both served and counted")
    func twoClients() throws {
        let daemon = try DaemonProcess()
        let first = try daemon.connect()
        let second = try daemon.connect()
        #expect(first.hello.pid == Int64(daemon.pid))
        for _ in 0..<20 {
            _ = try first.call(.ping)
            _ = try second.call(.ping)
        }
        let status = try first.call(.status)
        #expect(status["clients"] == 2)
        second.close()
        #expect(waitUntil { (try? first.call(.status)["clients"]) == 1 })
    }

    @Test("malformed, oversized and unknown input on one connection leaves it and others working")
    func malformedInput() throws {
        let daemon = try DaemonProcess(config: "[Daemon]\nMaxLineBytes=4K\n")
        let bad = try daemon.connect()
        let good = try daemon.connect()
        #expect(bad.hello.maximumLineLength == 4096)

        try bad.writeAll(Array("this is not json\n".utf8))
        #expect(try errorCode(bad.readMessage()) == .malformedJSON)
        try bad.writeAll(Array(String(repeating: "x", count: 100_000).utf8) + [0x0A])
        #expect(try errorCode(bad.readMessage()) == .lineTooLong)
        try bad.writeAll([0x7B, 0xFF, 0xFE, 0x7D, 0x0A])  // invalid UTF-8
        #expect(try errorCode(bad.readMessage()) == .malformedJSON)
        try bad.writeAll(Array(#"{"id":1,"method":"status","params":[1]}"#.utf8) + [0x0A])
        #expect(try bad.readMessage() == .error(id: .int(1), expectedParamsError))
        #expect(throws: ClientError.remote(unknownMethodError)) { try bad.call("no_such_method") }

        // The other connection never noticed, and the bad one still works.
        #expect(try good.call(.ping)["pong"] == true)
        #expect(try bad.call(.ping)["pong"] == true)
    }

    private var expectedParamsError: ProtocolError {
        ProtocolError(
            .invalidRequest, "request member 'params' must be an object, got array",
            detail: ["field": "params", "expected": "an object", "got": "array"])
    }

    private var unknownMethodError: ProtocolError {
        ProtocolError(
            .unknownMethod, "unknown method 'no_such_method'",
            detail: ["method": "no_such_method", "methods": [
                "ack", "budget.set", "budget.show", "cancel", "complete", "hello", "key.create", "key.list", "key.revoke",
                "memory.show", "model.list", "ping", "provider.list", "publish", "run.event",
                "scope.begin", "scope.end", "scope.show", "send", "session.create", "session.delete", "session.export",
                "session.list", "session.rename", "session.show", "session.update", "status", "subscribe",
                "tokens.count", "unsubscribe", "usage",
            ]])
    }

    @Test("requests written before the client half-closes are all answered, then the daemon closes")
    func halfClose() throws {
        let daemon = try DaemonProcess()
        let connection = try daemon.connect()
        try connection.writeAll(Array("{\"id\":1,\"method\":\"ping\"}\n{\"id\":2,\"method\":\"status\"}".utf8))
        connection.shutdownWriting()
        var answered: Set<RequestID> = []
        while true {
            do {
                if case .reply(let id, _) = try connection.readMessage() { answered.insert(id) }
            } catch ClientError.connectionClosed {
                break
            }
        }
        #expect(answered == [.int(1), .int(2)])
    }

    @Test("SIGTERM: clients get a shutting_down notice, the daemon exits 0 and removes its socket")
    func gracefulShutdown() throws {
        let daemon = try DaemonProcess(config: "[Daemon]\nShutdownTimeoutSec=3\n")
        let connection = try daemon.connect()
        daemon.send(signal: SIGTERM)
        let notice = try connection.readMessage()
        guard case .notice(let body) = notice else {
            Issue.record("expected a notice, got \(notice)")
            return
        }
        #expect(body.name == Notice.shuttingDown)
        #expect(body.fields["deadline_ms"] == 3000)
        #expect(throws: ClientError.connectionClosed) { try connection.readMessage() }
        #expect(daemon.waitForExit() == .exited(0), "\(daemon.log)")
        #expect(!FileManager.default.fileExists(atPath: daemon.socketPath))
    }

    @Test("a stale socket left by a crash is replaced")
    func staleSocket() throws {
        let first = try DaemonProcess()
        first.send(signal: SIGKILL)
        #expect(first.waitForExit() != nil)
        #expect(FileManager.default.fileExists(atPath: first.socketPath))
        let second = try DaemonProcess(socketPath: first.socketPath)
        #expect(try second.connect().hello.pid == Int64(second.pid))
    }

    @Test("a live daemon on the socket is reported, not clobbered")
    func alreadyRunning() throws {
        let daemon = try DaemonProcess()
        let result = try run(
            binDirectory + "/llmd", ["--socket", daemon.socketPath, "--config", daemon.configPath])
        #expect(result.status == 1)
        #expect(
            result.standardError.contains(
                "another llmd (pid \(daemon.pid)) is already serving \(daemon.socketPath)"))
        #expect(try daemon.connect().call(.ping)["pong"] == true)
    }

    @Test("configuration errors name file and line and exit 78; --check-config validates")
    func configurationErrors() throws {
        let directory = try TemporaryDirectory()
        let config = try directory.write("llmd.conf", "[Daemon]\nLogLevel=loud\nTypo=1\n")
        let result = try run(binDirectory + "/llmd", ["--check-config", "--config", config])
        #expect(result.status == 78)
        #expect(result.standardError.contains("\(config):2: error: invalid LogLevel=loud"))
        #expect(result.standardError.contains("\(config):3: warning: unknown key 'Typo'"))

        try directory.write("llmd.conf", "[Daemon]\nLogLevel=debug\n")
        try directory.write("llmd.conf.d/50-bad.conf", "[Daemon]\nMaxLineBytes=huge\n")
        let dropIn = try run(binDirectory + "/llmd", ["--check-config", "--config", config])
        #expect(dropIn.status == 78)
        #expect(dropIn.standardError.contains("llmd.conf.d/50-bad.conf:2: error: invalid MaxLineBytes=huge"))

        try directory.write("llmd.conf.d/50-bad.conf", "[Daemon]\n\nSocketGroup=no-such-group-llmd\n")
        let group = try run(binDirectory + "/llmd", ["--check-config", "--config", config])
        #expect(group.status == 78)
        #expect(group.standardError.contains("llmd.conf.d/50-bad.conf:3: error: SocketGroup=no-such-group-llmd: no such group"))

        try FileManager.default.removeItem(atPath: directory.file("llmd.conf.d"))
        let good = try run(binDirectory + "/llmd", ["--check-config", "--config", config])
        #expect(good.status == 0, "\(good.standardError)")
        #expect(good.standardOutput.contains("configuration OK"))
    }

    @Test("SIGHUP applies a good configuration and keeps the old one when the new one is bad")
    func reload() throws {
        let daemon = try DaemonProcess(config: "[Daemon]\nMaxLineBytes=4K\n")
        try daemon.directory.write("llmd.conf", "[Daemon]\nMaxLineBytes=nonsense\n")
        daemon.send(signal: SIGHUP)
        #expect(waitUntil { daemon.log.contains("keeping the previous configuration") }, "\(daemon.log)")
        #expect(try daemon.connect().hello.maximumLineLength == 4096)

        try daemon.directory.write("llmd.conf", "[Daemon]\nMaxLineBytes=8K\n")
        daemon.send(signal: SIGHUP)
        #expect(waitUntil { daemon.log.contains("configuration reloaded") }, "\(daemon.log)")
        #expect(try daemon.connect().hello.maximumLineLength == 8192)
    }

    private func errorCode(_ message: ServerMessage) -> ErrorCode? {
        if case .error(_, let error) = message { return error.code }
        return nil
    }
}
