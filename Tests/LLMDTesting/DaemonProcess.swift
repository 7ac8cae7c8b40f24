import Foundation
import LLMDClient

/// A real `llmd` process on a socket in its own temporary directory.
///
/// It is killed and its directory removed when the value goes away, even when the test
/// that started it fails.
public final class DaemonProcess: @unchecked Sendable {
    // Set once in init and only read afterwards, from the test's thread.
    public let directory: TemporaryDirectory
    public let socketPath: String
    public let configPath: String
    public let logPath: String
    /// Where the event journal lives: in the daemon's directory unless given.
    public let stateDirectory: String
    public let process: ChildProcess

    public struct StartError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Starts `llmd --socket … --config …` and waits until it answers.
    ///
    /// - Parameters:
    ///   - config: the text of llmd.conf.
    ///   - socketPath: where to listen; by default a fresh path in the daemon's directory.
    ///   - directoryMode: mode of the temporary directory (0755 lets other users reach the socket).
    ///   - launcher: a program and arguments to run llmd under (e.g. systemd-socket-activate);
    ///     the daemon's own arguments follow them.
    ///   - waitForSocket: false when the launcher, not llmd, creates the socket.
    ///   - stateDirectory: the journal's directory, to share it across daemons (a restart).
    public init(
        config: String = "",
        socketPath: String? = nil,
        stateDirectory: String? = nil,
        arguments: [String] = [],
        environment: [String: String] = [:],
        directoryMode: Int = 0o700,
        launcher: [String] = [],
        waitForSocket: Bool = true
    ) throws {
        directory = try TemporaryDirectory(mode: directoryMode)
        self.socketPath = socketPath ?? directory.file("llmd.sock")
        configPath = try directory.write("llmd.conf", config)
        logPath = directory.file("llmd.log")
        self.stateDirectory = stateDirectory ?? directory.file("state")

        var inherited = ProcessInfo.processInfo.environment
        // Nothing from the test's own environment may steer the daemon: systemd's variables,
        // a socket, API keys, or proxies that would route loopback calls elsewhere.
        let steering = [
            "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "JOURNAL_STREAM", "LLMD_SOCKET", "WATCHDOG_USEC",
            "STATE_DIRECTORY",
            "OPENAI_API_KEY", "OPENAI_BASE_URL", "http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY",
            "no_proxy", "NO_PROXY",
        ]
        for name in steering { inherited[name] = nil }
        let daemonArguments =
            [binDirectory + "/llmd", "--socket", self.socketPath, "--config", configPath, "--state-dir", self.stateDirectory]
            + arguments
        let command = launcher.isEmpty ? daemonArguments : launcher + daemonArguments
        process = try ChildProcess(
            command[0], Array(command.dropFirst()), environment: inherited.merging(environment) { _, new in new },
            outputPath: logPath)

        guard waitForSocket else { return }
        let socketPath = self.socketPath
        let process = self.process
        let answered = waitUntil(timeout: .seconds(20)) {
            if !process.isRunning { return true }
            return (try? DaemonConnection(socketPath: socketPath)).map { $0.close() } != nil
        }
        guard answered, process.isRunning else {
            throw StartError(description: "llmd did not start (running: \(process.isRunning)); log:\n\(log)")
        }
    }

    /// Everything the daemon wrote to stdout and stderr so far.
    public var log: String {
        (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
    }

    /// A connection whose reads give up after 30 seconds, so a message that never comes
    /// fails the test instead of hanging it; tests may set a shorter timeout.
    public func connect() throws -> DaemonConnection {
        let connection = try DaemonConnection(socketPath: socketPath)
        connection.setReadTimeout(.seconds(30))
        return connection
    }

    public var pid: Int32 { process.pid }

    public func send(signal: Int32) {
        process.send(signal: signal)
    }

    /// Waits for the process to end: how it ended, or nil if it is still running.
    public func waitForExit(timeout: Duration = .seconds(20)) -> ChildProcess.Termination? {
        process.wait(timeout: timeout)
    }
}
