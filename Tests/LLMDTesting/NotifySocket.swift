import Foundation
import LLMDProtocol

/// A stand-in for systemd's notification socket: a datagram socket that collects what
/// the daemon sends with sd_notify(3).
public final class NotifySocket: @unchecked Sendable {
    // The descriptor is set once; datagrams are read by one test thread.
    public let path: String
    private let descriptor: Int32
    /// Every datagram received so far, in order.
    public private(set) var messages: [String] = []
    /// Messages before this index were already matched or passed over by ``waitFor(timeout:_:)``.
    private var cursor = 0

    public init(path: String) throws {
        self.path = path
        descriptor = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        let bound = UnixSocketAddress.withAddress(path) { bind(descriptor, $0, $1) }
        guard descriptor >= 0, bound == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    }

    deinit {
        close(descriptor)
        unlink(path)
    }

    /// The next datagram, after the last one matched, that satisfies `predicate`; nil if
    /// none arrives within `timeout`. Successive calls so check the order of notifications.
    public func waitFor(timeout: Duration = .seconds(20), _ predicate: (String) -> Bool) -> String? {
        if let index = messages[cursor...].firstIndex(where: predicate) {
            cursor = index + 1
            return messages[index]
        }
        cursor = messages.count
        let deadline = ContinuousClock.now + timeout
        var buffer = [UInt8](repeating: 0, count: 4096)
        while ContinuousClock.now < deadline {
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, 50) > 0 else { continue }
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { continue }
            let message = String(decoding: buffer[0..<count], as: UTF8.self)
            messages.append(message)
            cursor = messages.count
            if predicate(message) { return message }
        }
        return nil
    }
}
