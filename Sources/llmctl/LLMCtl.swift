import ArgumentParser
import LLMDClient
import LLMDProtocol

#if canImport(Glibc)
import Glibc
#endif

@main
struct LLMCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "llmctl",
        abstract: "Talk to llmd: send prompts, follow events, inspect sessions and usage.",
        discussion: """
            Exit status: 0 success; 1 the daemon answered with an error; 64 bad usage; \
            69 no daemon is running or it went away; 71 a system error; 76 the daemon sent \
            something this llmctl cannot read; 77 the daemon refused this user. See llmctl(1).
            """,
        version: "llmctl \(LLMDVersion.string) (protocol \(ProtocolVersion.current))",
        subcommands: [Status.self, Ping.self]
    )
}

/// Options every subcommand takes.
struct ClientOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Daemon socket (default: $LLMD_SOCKET, then the per-user or system default).", valueName: "path"))
    var socket: String?

    @Flag(name: .long, help: "Print the daemon's reply as JSON.")
    var json = false

    /// Connects, runs `body`, and turns a client error into a message and an exit status.
    func withClient<Result>(_ body: (LLMDClient) throws(ClientError) -> Result) throws -> Result {
        do {
            return try body(try LLMDClient(socketPath: socket))
        } catch {
            printError("llmctl: \(error)")
            if case .daemonNotRunning = error {
                printError(
                    geteuid() == 0
                        ? "Start it with: systemctl start llmd.socket   (or run: llmd)"
                        : "Start it with: systemctl --user start llmd.socket   (or run: llmd &)")
            }
            throw ExitCode(error.exitCode)
        }
    }
}

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Show the daemon's version, pid, uptime, socket and load.")

    @OptionGroup var options: ClientOptions

    func run() throws {
        if options.json {
            print(JSONValue.object(try options.withClient { client throws(ClientError) in try client.statusObject() }).encodedString)
            return
        }
        let status = try options.withClient { client throws(ClientError) in try client.status() }
        print("llmd \(status.version) (protocol \(status.protocolVersion))")
        print("  pid:                \(status.pid)")
        print("  uptime:             \(formatDuration(milliseconds: status.uptimeMilliseconds)) (since \(status.startedAt))")
        print("  socket:             \(status.socket)")
        print("  clients:            \(status.clients)")
        print("  sessions:           \(status.sessions)")
        print("  requests in flight: \(status.requestsInFlight)")
        print("  requests served:    \(status.requestsServed)")
    }
}

struct Ping: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check that the daemon answers, and how fast.")

    @OptionGroup var options: ClientOptions

    func run() throws {
        let (reply, elapsed, version) = try options.withClient { client throws(ClientError) in
            let start = ContinuousClock.now
            let reply = try client.ping()
            return (reply, ContinuousClock.now - start, client.connection.hello.daemonVersion)
        }
        if options.json {
            var object = reply
            object["rtt_us"] = .int(elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000)
            print(JSONValue.object(object).encodedString)
        } else {
            let microseconds = elapsed.components.seconds * 1_000_000 + elapsed.components.attoseconds / 1_000_000_000_000
            print("pong from llmd \(version) in \(microseconds / 1000).\(formatFraction(microseconds % 1000)) ms")
        }
    }
}

private func formatFraction(_ value: Int64) -> String {
    let digits = String(value)
    return String(repeating: "0", count: 3 - digits.count) + digits
}

/// `3d 4h`, `2h 5m`, `4m 12s`, `12s`: the two largest units, as uptime(1) users expect.
func formatDuration(milliseconds: Int64) -> String {
    let seconds = milliseconds / 1000
    let units: [(String, Int64)] = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)]
    var parts: [String] = []
    var remaining = seconds
    for (name, size) in units where remaining >= size || (parts.isEmpty && size == 1) {
        parts.append("\(remaining / size)\(name)")
        remaining %= size
        if parts.count == 2 { break }
    }
    return parts.joined(separator: " ")
}

func printError(_ message: String) {
    var line = message + "\n"
    line.withUTF8 { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
}
