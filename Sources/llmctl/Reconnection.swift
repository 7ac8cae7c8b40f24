import LLMDClient
import LLMDCommandLine

#if canImport(Glibc)
import Glibc
#endif

/// How the long-lived commands (`chat`, `attach`, `events -f`) outlive a daemon restart:
/// they connect again, trying more slowly as time passes, and give up after `bound`.
enum Reconnection {
    /// How long `chat` and `attach` wait for the daemon to come back unless
    /// `--reconnect-timeout` says otherwise; llmctl(1) says so.
    static let bound: Duration = .seconds(30)

    /// `--reconnect-timeout SECONDS` of `chat` and `attach`.
    static let option = Option.value(
        "--reconnect-timeout", valueName: "seconds",
        help: "How long to wait for a restarted daemon before giving up (default 30; 0 gives up at once).")

    /// The bound `--reconnect-timeout` gives, or the default.
    static func bound(_ parsed: ParsedCommandLine) -> Duration {
        guard let text = parsed.value("--reconnect-timeout") else { return bound }
        guard let seconds = Double(text), seconds >= 0, seconds.isFinite else {
            LLMCtl.usageFailure("--reconnect-timeout needs a number of seconds, got '\(text)'")
        }
        return .milliseconds(Int64(seconds * 1000))
    }

    /// A new connection to the daemon at `socket`, once it answers again.
    ///
    /// - Parameter bound: how long to keep trying; nil tries until the process is stopped.
    /// - Throws: the last connection error once `bound` has passed.
    static func client(socket: String?, bound: Duration? = Reconnection.bound) throws(ClientError) -> LLMDClient {
        let deadline = bound.map { ContinuousClock.now + $0 }
        var delay = Duration.milliseconds(100)
        while true {
            do {
                return try LLMDClient(socketPath: socket)
            } catch {
                switch error {
                case .daemonNotRunning, .connectionClosed, .busy: break
                default: throw error
                }
                if let deadline, ContinuousClock.now >= deadline { throw error }
            }
            if let deadline { delay = min(delay, max(.milliseconds(1), deadline - ContinuousClock.now)) }
            usleep(UInt32(delay.wholeMilliseconds * 1000))
            delay = min(delay * 2, .seconds(2))
        }
    }
}
