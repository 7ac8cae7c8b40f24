import LLMDClient
import LLMDCommandLine
import LLMDProtocol

#if canImport(Glibc)
import Glibc
#endif

/// Options every subcommand that talks to the daemon takes.
let clientOptions: [Option] = [
    .value(
        "--socket", valueName: "path",
        help: "Daemon socket (default: $LLMD_SOCKET, then your own llmd, then the system one)."),
    .flag("--json", help: "Print the daemon's reply as JSON."),
]

let llmctl = Command(
    "llmctl",
    abstract: "Talk to llmd: send prompts, follow events, inspect sessions and usage.",
    discussion: """
        Exit status: 0 success; 1 the daemon answered with an error; 64 bad usage;
        69 no daemon is running or it went away; 71 a system error; 76 the daemon sent
        something this llmctl cannot read; 77 the daemon refused this user. See llmctl(1).
        """,
    options: clientOptions,
    subcommands: [
        Command("status", abstract: "Show the daemon's version, pid, uptime, socket and load.", options: clientOptions),
        Command("ping", abstract: "Check that the daemon answers, and how fast.", options: clientOptions),
    ])

@main
enum LLMCtl {
    static func main() {
        let parsed: ParsedCommandLine
        do {
            switch try llmctl.parse(Array(CommandLine.arguments.dropFirst())) {
            case .help(let path):
                print(llmctl.help(for: path))
                return
            case .version:
                print("llmctl \(LLMDVersion.string) (protocol \(ProtocolVersion.current))")
                return
            case .run(let result):
                parsed = result
            }
        } catch {
            printError("llmctl: \(error)\nTry 'llmctl --help' for more information.")
            exit(64)
        }
        do {
            switch parsed.path.first {
            case "status": try status(parsed)
            case "ping": try ping(parsed)
            default: preconditionFailure("command \(parsed.path) is declared but not handled")
            }
        } catch {
            printError("llmctl: \(error)")
            if case .daemonNotRunning(let path) = error {
                printError(
                    path == SocketLocation.systemPath
                        ? "Start it with: systemctl start llmd.socket"
                        : "Start it with: systemctl --user start llmd.socket   (or run: llmd &)")
            }
            exit(error.exitCode)
        }
    }

    static func status(_ parsed: ParsedCommandLine) throws(ClientError) {
        let client = try LLMDClient(socketPath: parsed.value("--socket"))
        if parsed.flag("--json") {
            print(JSONValue.object(try client.statusObject()).encodedString)
            return
        }
        let status = try client.status()
        print("llmd \(status.version) (protocol \(status.protocolVersion))")
        print("  pid:                \(status.pid)")
        print("  uptime:             \(formatDuration(milliseconds: status.uptimeMilliseconds)) (since \(status.startedAt))")
        print("  socket:             \(status.socket)")
        print("  clients:            \(status.clients)")
        print("  sessions:           \(status.sessions)")
        print("  requests in flight: \(status.requestsInFlight)")
        print("  requests served:    \(status.requestsServed)")
    }

    static func ping(_ parsed: ParsedCommandLine) throws(ClientError) {
        let client = try LLMDClient(socketPath: parsed.value("--socket"))
        let start = ContinuousClock.now
        var reply = try client.ping()
        let elapsed = ContinuousClock.now - start
        let microseconds = elapsed.wholeMicroseconds
        if parsed.flag("--json") {
            reply["rtt_us"] = .int(microseconds)
            print(JSONValue.object(reply).encodedString)
        } else {
            let fraction = String(microseconds % 1000)
            let padded = String(repeating: "0", count: 3 - fraction.count) + fraction
            print("pong from llmd \(client.connection.hello.daemonVersion) in \(microseconds / 1000).\(padded) ms")
        }
    }
}

/// `3d 4h`, `2h 5m`, `4m 12s`, `12s`: the two largest units, as uptime(1) users expect.
func formatDuration(milliseconds: Int64) -> String {
    let units: [(String, Int64)] = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)]
    var parts: [String] = []
    var remaining = milliseconds / 1000
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
