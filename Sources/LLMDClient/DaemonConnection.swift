import LLMDProtocol

#if canImport(Glibc)
import Glibc
#endif

/// Why a call to the daemon failed, with the exit status llmctl uses for it.
public enum ClientError: Error, CustomStringConvertible, Equatable {
    /// Nothing listens on the socket (missing file or connection refused).
    case daemonNotRunning(path: String)
    /// The socket exists but this user may not open it.
    case permissionDenied(path: String)
    /// The daemon refused this peer (`auth.peer_refused`) before serving it.
    case refused(ProtocolError)
    /// The daemon could not take this client now, before serving it: it has
    /// `MaxConnections=` clients, or no file descriptor left.
    case busy(ProtocolError)
    /// The daemon answered the request with an error.
    case remote(ProtocolError)
    /// The daemon sent something this client cannot read.
    case protocolViolation(String)
    /// The connection ended before the reply arrived.
    case connectionClosed
    /// Any other system error, with the operation that failed.
    case system(operation: String, errno: Int32)

    public var description: String {
        switch self {
        case .daemonNotRunning(let path):
            "no llmd is listening on \(path)"
        case .permissionDenied(let path):
            "permission denied opening \(path)"
        case .refused(let error), .busy(let error), .remote(let error):
            "\(error.message) [\(error.code)]"
        case .protocolViolation(let what):
            "protocol error: \(what)"
        case .connectionClosed:
            "the daemon closed the connection"
        case .system(let operation, let error):
            "\(operation): \(String(cString: strerror(error)))"
        }
    }

    /// The exit status llmctl(1) documents for this failure (sysexits(3) where one fits).
    public var exitCode: Int32 {
        switch self {
        case .remote: 1
        case .daemonNotRunning, .connectionClosed, .busy: 69  // EX_UNAVAILABLE
        case .protocolViolation: 76  // EX_PROTOCOL
        case .refused, .permissionDenied: 77  // EX_NOPERM
        case .system: 71  // EX_OSERR
        }
    }
}

/// A blocking connection to the daemon: what a CLI or a test needs, without an event loop.
///
/// Not thread-safe: one thread uses a connection at a time.
public final class DaemonConnection {
    /// The greeting the daemon sent on connect.
    public let hello: Hello
    public let socketPath: String

    private let descriptor: Int32
    /// Daemon lines can be large (a session export), but not unbounded.
    private static let maximumLineLength = 256 << 20
    private var framer: LineFramer
    private var readBuffer: [UInt8]
    private var nextID: Int64 = 1
    private var isClosed = false

    /// Connects and reads the daemon's hello.
    public init(socketPath: String) throws(ClientError) {
        self.socketPath = socketPath
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw .system(operation: "socket", errno: errno) }
        guard let result = UnixSocketAddress.withAddress(socketPath, { connect(descriptor, $0, $1) }) else {
            Glibc.close(descriptor)
            throw .system(operation: "connect \(socketPath)", errno: ENAMETOOLONG)
        }
        if result != 0 {
            let error = errno
            Glibc.close(descriptor)
            switch error {
            case ENOENT, ECONNREFUSED, ENOTDIR: throw .daemonNotRunning(path: socketPath)
            case EACCES, EPERM: throw .permissionDenied(path: socketPath)
            default: throw .system(operation: "connect \(socketPath)", errno: error)
            }
        }
        var framer = LineFramer(maximumLineLength: Self.maximumLineLength)
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        do {
            self.hello = try Self.readHello(descriptor: descriptor, framer: &framer, buffer: &buffer)
        } catch {
            Glibc.close(descriptor)
            throw error
        }
        self.descriptor = descriptor
        self.framer = framer
        self.readBuffer = buffer
    }

    deinit {
        if !isClosed { Glibc.close(descriptor) }
    }

    public func close() {
        guard !isClosed else { return }
        isClosed = true
        Glibc.close(descriptor)
    }

    /// Makes reads give up after `timeout` with `.system(operation: "recv", errno: EAGAIN)`;
    /// nil waits for ever (the default).
    public func setReadTimeout(_ timeout: Duration?) {
        let microseconds = timeout?.wholeMicroseconds ?? 0
        var value = timeval(tv_sec: Int(microseconds / 1_000_000), tv_usec: Int(microseconds % 1_000_000))
        _ = setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Tells the daemon nothing more will be sent; it answers what it has and closes.
    public func shutdownWriting() {
        _ = shutdown(descriptor, Int32(SHUT_WR))
    }

    /// A fresh request id, unique on this connection.
    public func makeRequestID() -> RequestID {
        defer { nextID += 1 }
        return .int(nextID)
    }

    /// Writes a request line.
    public func send(_ request: Request) throws(ClientError) {
        try writeAll(request.encodedLine)
    }

    /// Writes raw bytes, as they are; for tests of the daemon's error handling.
    public func writeAll(_ bytes: [UInt8]) throws(ClientError) {
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            if written < 0 {
                if errno == EINTR { continue }
                if errno == EPIPE || errno == ECONNRESET { throw .connectionClosed }
                throw .system(operation: "send", errno: errno)
            }
            offset += written
        }
    }

    /// Blocks until the next message from the daemon.
    public func readMessage() throws(ClientError) -> ServerMessage {
        try Self.readMessage(descriptor: descriptor, framer: &framer, buffer: &readBuffer)
    }

    /// The socket, for a program that polls it beside other descriptors (`llmctl chat`).
    public var fileDescriptor: Int32 { descriptor }

    /// The next message already received, without waiting; nil when no whole line is here.
    ///
    /// A poll loop calls ``receiveAvailable()`` when the socket is readable, then this
    /// until it returns nil.
    public func bufferedMessage() throws(ClientError) -> ServerMessage? {
        try Self.decodeNext(&framer)
    }

    /// The next whole line in `framer`, decoded; nil when there is none yet.
    private static func decodeNext(_ framer: inout LineFramer) throws(ClientError) -> ServerMessage? {
        switch framer.next() {
        case .line(let line)?:
            do {
                return try ServerMessage.decode(line: line)
            } catch {
                throw .protocolViolation(error.message)
            }
        case .oversized(let length)?:
            throw .protocolViolation("daemon sent a line of \(length) bytes")
        case nil:
            return nil
        }
    }

    /// Takes in what the socket has, once, without blocking.
    ///
    /// - Throws: `.connectionClosed` when the daemon closed the connection.
    public func receiveAvailable() throws(ClientError) {
        let count = readBuffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, Int32(MSG_DONTWAIT)) }
        if count < 0 {
            if errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK { return }
            if errno == ECONNRESET { throw .connectionClosed }
            throw .system(operation: "recv", errno: errno)
        }
        if count == 0 { throw .connectionClosed }
        framer.append(readBuffer[0..<count])
    }

    /// Sends a request and waits for its reply, handing the request's events to `onEvent`
    /// as they arrive and skipping unrelated lines.
    ///
    /// - Throws: `.remote` with the daemon's error, or a transport error.
    ///
    /// - Parameter onNotice: notices about this request (`queued`) and the connection
    ///   (`shutting_down`).
    public func call(
        _ method: ProtocolMethod, params: JSONObject = [:], onEvent: (CallbackEvent) -> Void = { _ in },
        onNotice: (Notice) -> Void = { _ in }
    ) throws(ClientError) -> JSONObject {
        try call(method.rawValue, params: params, onEvent: onEvent, onNotice: onNotice)
    }

    /// ``call(_:params:onEvent:onNotice:)`` by name, for a method this client does not know.
    public func call(
        _ method: String, params: JSONObject = [:], onEvent: (CallbackEvent) -> Void = { _ in },
        onNotice: (Notice) -> Void = { _ in }
    ) throws(ClientError) -> JSONObject {
        let id = makeRequestID()
        try send(Request(id: id, method: method, params: params))
        while true {
            switch try readMessage() {
            case .reply(id, let result): return result
            case .error(id, let error): throw .remote(error)
            case .error(nil, let error): throw .remote(error)
            case .event(let event) where event.request == id: onEvent(event)
            case .notice(let notice) where notice.fields["request"].map({ RequestID(json: $0) == id }) ?? true:
                onNotice(notice)
            case .hello, .reply, .error, .notice, .event, .ready, .other: continue
            }
        }
    }

    private static func readHello(
        descriptor: Int32, framer: inout LineFramer, buffer: inout [UInt8]
    ) throws(ClientError) -> Hello {
        switch try readMessage(descriptor: descriptor, framer: &framer, buffer: &buffer) {
        case .hello(let hello):
            guard hello.protocolVersion == ProtocolVersion.current else {
                throw .protocolViolation(
                    "daemon speaks protocol \(hello.protocolVersion), this client \(ProtocolVersion.current)")
            }
            return hello
        case .error(_, let error) where error.code == .peerRefused:
            throw .refused(error)
        case .error(_, let error) where error.code == .tooManyConnections || error.code == .outOfDescriptors:
            throw .busy(error)
        case .error(_, let error):
            throw .remote(error)
        default:
            throw .protocolViolation("the daemon did not greet with hello")
        }
    }

    private static func readMessage(
        descriptor: Int32, framer: inout LineFramer, buffer: inout [UInt8]
    ) throws(ClientError) -> ServerMessage {
        while true {
            if let message = try decodeNext(&framer) { return message }
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count < 0 {
                if errno == EINTR { continue }
                if errno == ECONNRESET { throw .connectionClosed }
                throw .system(operation: "recv", errno: errno)
            }
            if count == 0 { throw .connectionClosed }
            framer.append(buffer[0..<count])
        }
    }
}
