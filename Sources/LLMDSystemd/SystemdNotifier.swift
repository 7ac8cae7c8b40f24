import CSystemd
import LLMDProtocol

#if canImport(Glibc)
import Glibc
#endif

/// Tells the service manager how the daemon is doing (sd_notify(3)).
///
/// Every call is a no-op when `$NOTIFY_SOCKET` is unset, so the daemon behaves the
/// same in a terminal and under systemd.
public struct SystemdNotifier: Sendable {
    public init() {}

    /// Sends newline-separated `KEY=value` assignments.
    public func notify(_ assignments: String) {
        _ = sd_notify(0, assignments)
    }

    public func ready(status: String) { notify("READY=1\nSTATUS=\(status)") }
    public func status(_ text: String) { notify("STATUS=\(text)") }
    public func watchdog() { notify("WATCHDOG=1") }
    /// Announces shutdown and asks for `extendTimeout` from now to finish it.
    public func stopping(status: String, extendTimeout: Duration) {
        notify("STOPPING=1\nEXTEND_TIMEOUT_USEC=\(extendTimeout.wholeMicroseconds)\nSTATUS=\(status)")
    }

    /// Announces a configuration reload; systemd requires the monotonic timestamp with
    /// `RELOADING=1` for `Type=notify-reload` and uses it for `ExecReload=` bookkeeping.
    public func reloading() {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        let microseconds = UInt64(now.tv_sec) * 1_000_000 + UInt64(now.tv_nsec) / 1000
        notify("RELOADING=1\nMONOTONIC_USEC=\(microseconds)")
    }

    /// How often systemd expects `WATCHDOG=1`, or nil when the watchdog is off.
    /// Callers ping at half this interval, as sd_watchdog_enabled(3) advises.
    public var watchdogInterval: Duration? {
        var microseconds: UInt64 = 0
        guard sd_watchdog_enabled(0, &microseconds) > 0, microseconds > 0 else { return nil }
        return .microseconds(Int64(microseconds))
    }
}

/// Listening sockets handed over by socket activation (sd_listen_fds_with_names(3)).
public enum SocketActivation {
    /// The inherited sockets: the protocol's, and the HTTP API's when one is named `http`
    /// (`FileDescriptorName=http` in its `.socket` unit). Others are closed. Clears
    /// `LISTEN_*` so child processes do not inherit them.
    public struct Inherited: Sendable {
        public var protocolSocket: Int32
        public var httpSocket: Int32?
    }

    /// The sockets systemd passed, or nil when the daemon was not socket-activated.
    ///
    /// - Throws: ``SocketActivationError`` when descriptors were passed but none is the
    ///   protocol's, or one of those used is not a listening Unix stream socket.
    public static func takeListeningSockets() throws(SocketActivationError) -> Inherited? {
        var names: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
        let count = sd_listen_fds_with_names(1, &names)
        defer {
            if let names {
                for index in 0..<Int(max(count, 0)) { free(names[index]) }
                free(names)
            }
        }
        guard count > 0 else {
            if count < 0 { throw SocketActivationError(message: "sd_listen_fds failed: \(String(cString: strerror(-count)))") }
            return nil
        }
        let named = (0..<Int(count)).map { index in names?[index].map { String(cString: $0) } ?? "" }
        let descriptors = (0..<count).map { SD_LISTEN_FDS_START + $0 }
        // The HTTP API's is named so; the protocol's is the first other one.
        let http = named.firstIndex(of: "http").map { descriptors[$0] }
        guard let protocolSocket = descriptors.first(where: { $0 != http }) else {
            throw SocketActivationError(message: "systemd passed only the HTTP API's socket, no protocol socket")
        }
        for descriptor in [protocolSocket] + (http.map { [$0] } ?? []) {
            guard sd_is_socket_unix(descriptor, Int32(SOCK_STREAM.rawValue), 1, nil, 0) > 0 else {
                throw SocketActivationError(message: "inherited descriptor \(descriptor) is not a listening Unix stream socket")
            }
        }
        for descriptor in descriptors where descriptor != protocolSocket && descriptor != http { close(descriptor) }
        return Inherited(protocolSocket: protocolSocket, httpSocket: http)
    }
}

public struct SocketActivationError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
