import Foundation
import LLMDClient
import LLMDProtocol
import LLMDTesting
import Testing

/// How llmd behaves under systemd: socket activation, sd_notify, peer credentials.
@Suite("systemd integration")
struct SystemdTests {
    @Test("socket activation: llmd serves the socket systemd-socket-activate passes, and leaves it in place")
    func socketActivation() throws {
        let directory = try TemporaryDirectory()
        let socketPath = directory.file("activated.sock")
        let daemon = try DaemonProcess(
            launcher: ["/usr/bin/systemd-socket-activate", "--listen", socketPath],
            waitForSocket: false)
        #expect(waitUntil { FileManager.default.fileExists(atPath: socketPath) }, "\(daemon.log)")

        // The first connection starts llmd, which must report the inherited socket's path.
        let result = try llmctl(["status", "--json", "--socket", socketPath])
        #expect(result.status == 0, "\(result.standardError)\n\(daemon.log)")
        let status = try #require(try JSONParser.parse(result.standardOutput.trimmingCharacters(in: .newlines)).objectValue)
        #expect(status["socket"] == .string(socketPath))
        #expect(status["pid"]?.intValue == Int64(daemon.pid))
        // The --socket llmd was given is ignored in favour of the inherited one.
        #expect(!FileManager.default.fileExists(atPath: daemon.socketPath))

        daemon.send(signal: SIGTERM)
        #expect(daemon.waitForExit() == .exited(0), "\(daemon.log)")
        #expect(FileManager.default.fileExists(atPath: socketPath), "the .socket unit owns the file")
    }

    @Test("socket activation of both sockets, told apart by FileDescriptorName=: the protocol's and the HTTP API's")
    func namedSocketActivation() throws {
        let directory = try TemporaryDirectory()
        let (protocolPath, httpPath) = (directory.file("p.sock"), directory.file("h.sock"))
        // The HTTP API's first: the names, not the order, say which is which.
        let daemon = try DaemonProcess(
            launcher: ["/usr/bin/systemd-socket-activate", "--listen", httpPath, "--listen", protocolPath, "--fdname=http:protocol"],
            waitForSocket: false)
        #expect(waitUntil { FileManager.default.fileExists(atPath: protocolPath) }, "\(daemon.log)")
        let status = try llmctl(["status", "--json", "--socket", protocolPath])
        #expect(status.status == 0, "\(status.standardError)\n\(daemon.log)")
        #expect(try JSONParser.parse(status.standardOutput.trimmingCharacters(in: .newlines)).objectValue?["socket"] == .string(protocolPath))
        let models = try run("/usr/bin/curl", ["-sf", "--unix-socket", httpPath, "http://llmd/v1/models"])
        #expect(models.status == 0 && models.standardOutput.contains("\"object\":\"list\""), "\(models.standardError)\n\(daemon.log)")
        daemon.send(signal: SIGTERM)
        #expect(daemon.waitForExit() == .exited(0), "\(daemon.log)")
        #expect(FileManager.default.fileExists(atPath: httpPath), "the .socket unit owns the HTTP API's file too")
    }

    @Test("sd_notify: READY=1 with STATUS once serving, RELOADING=1 then READY=1 on SIGHUP, STOPPING=1 on SIGTERM")
    func notify() throws {
        let directory = try TemporaryDirectory()
        let notifications = try NotifySocket(path: directory.file("notify"))
        let daemon = try DaemonProcess(environment: ["NOTIFY_SOCKET": notifications.path])

        let ready = notifications.waitFor { $0.contains("READY=1") }
        #expect(ready?.contains("STATUS=Serving 0 sessions") == true, "\(notifications.messages)")

        daemon.send(signal: SIGHUP)
        let reloading = notifications.waitFor { $0.contains("RELOADING=1") }
        #expect(reloading?.contains("MONOTONIC_USEC=") == true, "\(notifications.messages)")
        let readyAgain = notifications.waitFor { $0.contains("READY=1") }
        #expect(readyAgain != nil, "\(notifications.messages)")

        daemon.send(signal: SIGTERM)
        let stopping = notifications.waitFor { $0.contains("STOPPING=1") }
        // ShutdownTimeoutSec= defaults to 10 s; llmd asks systemd for that plus 5 s.
        #expect(stopping?.contains("EXTEND_TIMEOUT_USEC=15000000") == true, "\(notifications.messages)")
        #expect(daemon.waitForExit() == .exited(0))
    }

    @Test("sd_notify: WATCHDOG=1 is sent when $WATCHDOG_USEC asks for it")
    func watchdog() throws {
        let directory = try TemporaryDirectory()
        let notifications = try NotifySocket(path: directory.file("notify"))
        // sd_watchdog_enabled only honours WATCHDOG_PID when it names this process, so
        // launch through a shell that exports its own pid before exec'ing llmd.
        let daemon = try DaemonProcess(
            environment: ["NOTIFY_SOCKET": notifications.path, "WATCHDOG_USEC": "400000"],
            launcher: ["/bin/sh", "-c", "WATCHDOG_PID=$$ exec \"$@\"", "sh"])
        #expect(notifications.waitFor { $0.contains("WATCHDOG=1") } != nil, "\(notifications.messages)\n\(daemon.log)")
    }

    @Test("a peer with another uid is refused with auth.peer_refused; SocketGroup= admits its members")
    func peerCredentials() throws {
        guard geteuid() == 0 else {
            print("skipped: running a client as another user needs root")
            return
        }
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/setpriv"),
            accessibleToNobody(binDirectory + "/llmctl")
        else {
            print("skipped: setpriv missing or \(binDirectory) not reachable by user nobody")
            return
        }
        let asNobody = ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", binDirectory + "/llmctl"]

        // SocketMode=0666 opens the file to everyone; peer credentials still stop strangers.
        let daemon = try DaemonProcess(config: "[Daemon]\nSocketMode=0666\n", directoryMode: 0o755)
        let refused = try run(asNobody[0], Array(asNobody.dropFirst()) + ["status", "--socket", daemon.socketPath])
        #expect(refused.status == 77, "\(refused.standardError)")
        #expect(refused.standardError.contains("[auth.peer_refused]"))
        #expect(try daemon.connect().call(.ping)["pong"] == true)

        let grouped = try DaemonProcess(config: "[Daemon]\nSocketMode=0660\nSocketGroup=nogroup\n", directoryMode: 0o755)
        let admitted = try run(asNobody[0], Array(asNobody.dropFirst()) + ["status", "--socket", grouped.socketPath])
        #expect(admitted.status == 0, "\(admitted.standardError)")
    }

    /// Whether every directory up to `path` lets others search it, and the file lets them run it.
    private func accessibleToNobody(_ path: String) -> Bool {
        var current = URL(fileURLWithPath: path)
        while current.path != "/" {
            guard let attributes = try? FileManager.default.attributesOfItem(atPath: current.path),
                let permissions = attributes[.posixPermissions] as? Int, permissions & 0o001 != 0
            else { return false }
            current.deleteLastPathComponent()
        }
        return true
    }
}
