import LLMDBus
import LLMDProtocol

#if canImport(Glibc)
import Glibc
#endif

/// The daemon's listening Unix socket: inherited from systemd, or bound by the daemon.
public struct ListeningSocket: Sendable {
    public let descriptor: Int32
    /// The socket's path.
    public let path: String
    /// Whether the daemon created the file and so removes it on exit. A socket that
    /// systemd passed in belongs to the `.socket` unit and stays.
    public let ownsPath: Bool

    /// Wraps a descriptor passed by socket activation.
    public static func inherited(descriptor: Int32, path: String) -> ListeningSocket {
        ListeningSocket(descriptor: descriptor, path: path, ownsPath: false)
    }

    /// The group of an inherited socket file that its group may write: the `.socket`
    /// unit's `SocketGroup=`, which llmd admits when llmd.conf names no group of its own,
    /// so the unit alone decides who may connect. Nil for a socket llmd bound itself.
    public var activationGroup: UInt32? {
        guard !ownsPath else { return nil }
        var info = stat()
        guard stat(path, &info) == 0, info.st_mode & S_IWGRP != 0 else { return nil }
        return info.st_gid
    }

    /// Where and how to bind.
    public struct Options: Sendable {
        public var path: String
        /// Permission bits of the socket file.
        public var mode: UInt32
        /// Group to own the socket file, if any.
        public var group: UInt32?
        /// Mode for directories the daemon has to create: 0700 for a user, 0755 for the
        /// system instance whose group members must reach the socket.
        public var directoryMode: UInt32

        public init(path: String, mode: UInt32, group: UInt32?, directoryMode: UInt32) {
            self.path = path
            self.mode = mode
            self.group = group
            self.directoryMode = directoryMode
        }
    }

    /// Creates the directory, replaces a stale socket left by a crash, binds and listens.
    ///
    /// - Throws: ``ListeningSocketError``; `.alreadyRunning` when a live daemon answers
    ///   on the path, which is then left alone.
    public static func bind(_ options: Options) throws(ListeningSocketError) -> ListeningSocket {
        let path = options.path
        guard path.utf8.count <= UnixSocketAddress.maximumPathLength else {
            throw .pathTooLong(path: path, limit: UnixSocketAddress.maximumPathLength)
        }
        try createParentDirectories(of: path, mode: options.directoryMode)
        try removeStaleSocket(at: path)

        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw .system(operation: "socket", path: path, errno: errno) }
        // The length was checked above, so the address always fits.
        guard UnixSocketAddress.withAddress(path, { Glibc.bind(descriptor, $0, $1) }) == 0 else {
            let error = errno
            close(descriptor)
            // Another daemon won a race to the same path between our check and bind.
            if error == EADDRINUSE { throw .alreadyRunning(path: path, pid: nil) }
            throw .system(operation: "bind", path: path, errno: error)
        }
        // Until chmod runs the file has the umask's mode; connect(2) needs write
        // permission, and the directory is ours, so nobody can slip in meanwhile.
        if chmod(path, mode_t(options.mode)) != 0 || (options.group.map { chown(path, uid_t.max, $0) != 0 } ?? false) {
            let error = errno
            close(descriptor)
            unlink(path)
            throw .system(operation: "chmod/chown", path: path, errno: error)
        }
        guard listen(descriptor, 512) == 0 else {
            let error = errno
            close(descriptor)
            unlink(path)
            throw .system(operation: "listen", path: path, errno: error)
        }
        return ListeningSocket(descriptor: descriptor, path: path, ownsPath: true)
    }

    /// Removes the socket file if the daemon created it.
    public func removeFile() {
        if ownsPath { unlink(path) }
    }

    private static func createParentDirectories(of path: String, mode: UInt32) throws(ListeningSocketError) {
        guard let slash = path.lastIndex(of: "/"), slash != path.startIndex else { return }
        if let failure = makeDirectories(String(path[..<slash]), mode: mode) {
            throw .system(operation: "mkdir", path: failure.path, errno: failure.errno)
        }
    }

    /// A socket file nobody answers on is left by a crash and can go; one that answers
    /// belongs to a live daemon and must not be clobbered.
    private static func removeStaleSocket(at path: String) throws(ListeningSocketError) {
        var info = stat()
        guard lstat(path, &info) == 0 else { return }
        guard info.st_mode & S_IFMT == S_IFSOCK else { throw .notASocket(path: path) }

        let probe = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard probe >= 0 else { throw .system(operation: "socket", path: path, errno: errno) }
        defer { close(probe) }
        if UnixSocketAddress.withAddress(path, { connect(probe, $0, $1) }) == 0 {
            throw .alreadyRunning(path: path, pid: readGreetingPID(probe))
        }
        guard errno == ECONNREFUSED else { throw .system(operation: "connect", path: path, errno: errno) }
        guard unlink(path) == 0 || errno == ENOENT else { throw .system(operation: "unlink", path: path, errno: errno) }
    }

    /// The pid from a live daemon's hello, waiting at most half a second.
    private static func readGreetingPID(_ descriptor: Int32) -> Int64? {
        var framer = LineFramer(maximumLineLength: 64 * 1024)
        var buffer = [UInt8](repeating: 0, count: 4096)
        var poller = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        while poll(&poller, 1, 500) > 0 {
            let count = buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            guard count > 0 else { return nil }
            framer.append(buffer[0..<count])
            if case .line(let line)? = framer.next() {
                if case .hello(let hello)? = try? ServerMessage.decode(line: line) { return hello.pid }
                return nil
            }
        }
        return nil
    }
}

/// Why the daemon could not listen.
public enum ListeningSocketError: Error, CustomStringConvertible {
    case alreadyRunning(path: String, pid: Int64?)
    case notASocket(path: String)
    case pathTooLong(path: String, limit: Int)
    case system(operation: String, path: String, errno: Int32)

    public var description: String {
        switch self {
        case .alreadyRunning(let path, let pid):
            "another llmd\(pid.map { " (pid \($0))" } ?? "") is already serving \(path)"
        case .notASocket(let path):
            "\(path) exists and is not a socket; remove it or choose another path with --socket"
        case .pathTooLong(let path, let limit):
            "socket path \(path) is \(path.utf8.count) bytes, longer than the limit of \(limit)"
        case .system(let operation, let path, let error):
            "\(operation) \(path): \(String(cString: strerror(error)))"
        }
    }
}
