import LLMDClient
import LLMDProtocol

#if canImport(Glibc)
import Glibc
#endif

/// How llmctl ends on a failure: a line on standard error for people, and with `--json`
/// one JSON object on standard output as well, `{"error": {code, message, detail}}`, so
/// a script that parses the output always has something to parse. The exit status is
/// the one llmctl(1) documents.
enum Failure {
    /// Whether the command line asks for JSON: `--json` (or `--json=FILE`) before `--`.
    /// Known before parsing, so a usage error is reported in JSON too.
    static let wantsJSON: Bool = CommandLine.arguments.dropFirst().prefix { $0 != "--" }.contains {
        $0 == "--json" || $0.hasPrefix("--json=")
    }

    /// Where the JSON report goes: standard output, or (for `scope`, whose standard output
    /// is the command's) the file `--json=FILE` names, or standard error.
    // Unsafe is sound: llmctl sets it on its main thread before any other thread exists.
    nonisolated(unsafe) static var jsonDestination: JSONDestination = .standardOutput

    enum JSONDestination {
        case standardOutput
        case file(String)
        /// Standard error only, in the JSON form.
        case standardError
    }

    /// Client-side failures have codes too, in the `client` family (llmctl(1), EXIT STATUS).
    static let usageCode: ErrorCode = "client.usage"

    /// Reports a usage error and exits 64 (EX_USAGE).
    static func usage(_ message: String, hint: Bool = false) -> Never {
        printError("llmctl: \(message)" + (hint ? "\nTry 'llmctl --help' for more information." : ""))
        report(ProtocolError(usageCode, message))
        exit(64)
    }

    /// Reports a command llmctl was to run but cannot, and exits 127, as a shell does.
    static func cannotRun(_ error: ExternalCommand.CannotRun) -> Never {
        printError("llmctl: \(error)")
        report(ProtocolError("client.cannot_run", error.description))
        exit(127)
    }

    /// Reports what `error` says and exits with its status.
    static func client(_ error: ClientError) -> Never {
        printError("llmctl: \(error)")
        if case .daemonNotRunning(let path) = error { LLMCtl.printDaemonHints(tried: path) }
        report(error.protocolError)
        exit(error.exitCode)
    }

    /// The JSON object of a failure: the error, and for a failed call what had streamed
    /// (`partial_text`) and its `usage`, which the daemon puts in the error's detail.
    static func json(_ error: ProtocolError) -> JSONObject {
        var object: JSONObject = ["error": error.json]
        if let partial = error.detail["partial_text"] { object["partial_text"] = partial }
        if let usage = error.detail["usage"] { object["usage"] = usage }
        return object
    }

    private static func report(_ error: ProtocolError) {
        guard wantsJSON else { return }
        let line = JSONValue.object(json(error)).encodedString + "\n"
        switch jsonDestination {
        case .standardOutput: writeOut(line)
        case .standardError: printError(String(line.dropLast()))
        case .file(let path):
            do {
                try LLMCtl.writeFile(path, line)
            } catch {
                printError("llmctl: \(error)")
            }
        }
    }
}

extension ClientError {
    /// The failure as a protocol error: the daemon's own, or one of the `client` family
    /// for what went wrong on this side.
    var protocolError: ProtocolError {
        switch self {
        case .remote(let error), .refused(let error), .busy(let error):
            error
        case .daemonNotRunning(let path):
            ProtocolError("client.daemon_not_running", description, detail: ["socket": .string(path)])
        case .permissionDenied(let path):
            ProtocolError("client.permission_denied", description, detail: ["socket": .string(path)])
        case .protocolViolation:
            ProtocolError("client.protocol_violation", description)
        case .connectionClosed:
            ProtocolError("client.connection_closed", description)
        case .system(let operation, let number):
            ProtocolError("client.system_error", description, detail: ["operation": .string(operation), "errno": .int(Int64(number))])
        }
    }
}
