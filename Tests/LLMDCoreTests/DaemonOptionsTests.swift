import LLMDCommandLine
import Testing

@testable import LLMDCore

@Suite("Daemon command line")
struct DaemonOptionsTests {
    @Test("options with separate or inline values")
    func values() throws {
        var expected = DaemonOptions()
        expected.socketPath = "/s.sock"
        expected.configPath = "/c.conf"
        expected.logLevel = "DEBUG"
        expected.instance = .system
        expected.checkConfig = true
        #expect(
            try DaemonOptions.parse(["--socket", "/s.sock", "--config=/c.conf", "--log-level", "DEBUG", "--system", "--check-config"])
                == .run(expected))
        #expect(try DaemonOptions.parse([]) == .run(DaemonOptions()))
    }

    @Test("help and version are answered as soon as they are read")
    func helpAndVersion() throws {
        #expect(try DaemonOptions.parse(["--socket", "/x", "-h"]) == .help)
        #expect(try DaemonOptions.parse(["--version", "--bogus"]) == .version)
    }

    @Test(
        "usage errors name the argument",
        arguments: [
            (["--socket"], "--socket needs a value (path)"),
            (["--frobnicate"], "unknown option '--frobnicate'"),
            (["--socket="], "--socket needs a path, not an empty string"),
            (["extra"], "unexpected argument 'extra'"),
            (["--log-level", "loud"], "unknown log level 'loud'; use trace, debug, info, notice, warning, error or critical"),
            (["--system", "--user"], "--system and --user exclude each other"),
            (["--check-config=yes"], "--check-config takes no value"),
        ])
    func usageErrors(arguments: [String], message: String) {
        #expect(throws: UsageError(message)) { try DaemonOptions.parse(arguments) }
    }
}
