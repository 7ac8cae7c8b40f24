import Foundation
import LLMDProtocol

/// A connection to a Unix socket that reads and writes lines as they are, with no
/// protocol of its own: for tests that must see the daemon's bytes, or that hold
/// connections the daemon has not accepted yet.
public final class RawConnection: @unchecked Sendable {
    // Used from one test thread at a time.
    private let descriptor: Int32
    private var buffer: [UInt8] = []

    /// Connects; the daemon need not have accepted the connection yet.
    public init(path: String) throws {
        descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        let connected = UnixSocketAddress.withAddress(path) { [descriptor] in connect(descriptor, $0, $1) } ?? -1
        guard connected == 0 else {
            let error = errno
            Glibc.close(descriptor)
            throw POSIXError(POSIXErrorCode(rawValue: error) ?? .EIO)
        }
    }

    deinit {
        Glibc.close(descriptor)
    }

    public func send(_ line: String) throws {
        try sendRaw(line + "\n")
    }

    /// Sends `text` as it is: part of a line, or several.
    public func sendRaw(_ text: String) throws {
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard written == bytes.count else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
    }

    /// The next line, without its line feed; nil when none came within `timeout` or the
    /// daemon closed the connection.
    public func readLine(timeout: Duration = .seconds(20)) -> String? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if let end = buffer.firstIndex(of: UInt8(ascii: "\n")) {
                defer { buffer.removeSubrange(...end) }
                return String(decoding: buffer[..<end], as: UTF8.self)
            }
            let left = deadline - .now
            guard left > .zero else { return nil }
            var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, Int32(max(1, left.wholeMilliseconds))) > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let count = chunk.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            guard count > 0 else { return nil }
            buffer += chunk[..<count]
        }
    }
}
