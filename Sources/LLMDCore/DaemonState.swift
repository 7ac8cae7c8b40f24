import LLMDProtocol
import Synchronization

/// Live counters and identity of the running daemon, read by `status` and sd_notify.
///
/// Connections on any event loop thread update the counters, so they sit behind a mutex;
/// each update is a few instructions and never waits on I/O.
public final class DaemonState: Sendable {
    public struct Counters: Sendable, Equatable {
        public var clients = 0
        public var requestsInFlight = 0
        public var requestsServed: UInt64 = 0
        public var sessions = 0
        /// Connections disconnected as `subscriber.stalled`.
        public var stalledSubscribers = 0
    }

    public let pid: Int32
    public let socketPath: String
    public let startedAtMilliseconds: Int64
    private let startedAt: ContinuousClock.Instant
    private let counters = Mutex(Counters())

    public init(pid: Int32, socketPath: String) {
        self.pid = pid
        self.socketPath = socketPath
        self.startedAtMilliseconds = Timestamp.nowMilliseconds()
        self.startedAt = .now
    }

    public var snapshot: Counters { counters.withLock { $0 } }

    public func clientConnected() { counters.withLock { $0.clients += 1 } }
    public func clientDisconnected() { counters.withLock { $0.clients -= 1 } }
    public func requestStarted() { counters.withLock { $0.requestsInFlight += 1 } }
    public func requestFinished() {
        counters.withLock {
            $0.requestsInFlight -= 1
            $0.requestsServed += 1
        }
    }

    public func subscriberStalled() { counters.withLock { $0.stalledSubscribers += 1 } }

    /// The number of stored sessions, after one is created or deleted.
    public func setSessions(_ count: Int) { counters.withLock { $0.sessions = count } }

    public var uptime: Duration { ContinuousClock.now - startedAt }

    /// The one-line summary systemd shows in `systemctl status` (sd_notify `STATUS=`).
    public var statusLine: String {
        let counters = snapshot
        return "Serving \(counters.sessions) sessions, \(counters.clients) clients, "
            + "\(counters.requestsInFlight) requests in flight"
    }

    /// The `status` method's result.
    public func status() -> StatusMethod.Result {
        let counters = snapshot
        return StatusMethod.Result(
            version: LLMDVersion.string, protocolVersion: ProtocolVersion.current, pid: Int64(pid), socket: socketPath,
            startedAt: Timestamp.rfc3339(milliseconds: startedAtMilliseconds), uptimeMilliseconds: uptime.wholeMilliseconds,
            clients: Int64(counters.clients), sessions: Int64(counters.sessions),
            requestsInFlight: Int64(counters.requestsInFlight), requestsServed: Int64(counters.requestsServed))
    }
}
