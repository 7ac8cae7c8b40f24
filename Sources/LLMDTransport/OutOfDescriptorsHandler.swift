import LLMDProtocol
import Logging
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// Clients that arrive when the process is out of file descriptors.
///
/// `accept` then fails at once, and the listening socket stays readable with the client
/// still waiting: retrying spins a core, and NIO's server channel, which keeps its read
/// pending after such an error, retries at once. So the daemon keeps one descriptor in
/// reserve: out of descriptors, it lets the reserve go, accepts the waiting client with
/// it, tells it `daemon.out_of_descriptors`, closes it, and takes the reserve back. Each
/// waiting client gets a named error at once instead of hanging, nothing spins, and the
/// clients already connected are served as before. The first refusal of a spell is
/// logged, with the counts, and so is its end.
public final class OutOfDescriptorsHandler: ChannelInboundHandler {
    public typealias InboundIn = Channel
    public typealias InboundOut = Channel

    private let listening: Int32
    private let clients: @Sendable () -> Int
    /// What a refused client is sent: the protocol's error line, or an HTTP response.
    private let refusal: @Sendable (ProtocolError) -> [UInt8]
    private let logger: Logger
    /// `/dev/null`, held only to be given up for a refusal; -1 when it could not be had.
    private var reserve: Int32
    /// Clients refused since the last one accepted.
    private var refused = 0

    convenience init(listening: Int32, registry: ConnectionRegistry, logger: Logger) {
        self.init(
            listening: listening, clients: { registry.count }, refusal: { ServerMessage.error(id: nil, $0).encodedLine },
            logger: logger)
    }

    /// - Parameters:
    ///   - clients: how many clients are connected, for the refusal and the log.
    ///   - refusal: the bytes a refused client gets for the error.
    public init(
        listening: Int32, clients: @escaping @Sendable () -> Int, refusal: @escaping @Sendable (ProtocolError) -> [UInt8],
        logger: Logger
    ) {
        self.listening = listening
        self.clients = clients
        self.refusal = refusal
        self.logger = logger
        reserve = open("/dev/null", O_RDONLY | O_CLOEXEC)
    }

    deinit {
        if reserve >= 0 { close(reserve) }
    }

    public func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if refused > 0 {
            logger.notice("accepting clients again; \(refused) were refused while llmd was out of file descriptors")
            refused = 0
        }
        context.fireChannelRead(data)
    }

    public func errorCaught(context: ChannelHandlerContext, error: Error) {
        guard let error = error as? IOError, [EMFILE, ENFILE].contains(error.errnoCode) else {
            context.fireErrorCaught(error)
            return
        }
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        let clients = self.clients()
        if reserve >= 0 {
            close(reserve)
            reserve = -1
        }
        // The listening socket is non-blocking (NIO made it so): no client, no wait.
        let client = accept(listening, nil, nil)
        if client >= 0 {
            let refusal = ProtocolError(
                .outOfDescriptors,
                "llmd is out of file descriptors (\(clients) clients connected, limit \(limit.rlim_cur)); try again later",
                detail: ["clients": .int(Int64(clients)), "limit": .int(Int64(limit.rlim_cur))])
            let line = self.refusal(refusal)
            _ = line.withUnsafeBytes { send(client, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL | MSG_DONTWAIT)) }
            close(client)
            refused += 1
        }
        reserve = open("/dev/null", O_RDONLY | O_CLOEXEC)
        if refused == 1 {
            let whose = error.errnoCode == ENFILE ? "the system is" : "llmd is"
            logger.warning(
                "\(whose) out of file descriptors (\(clients) clients connected, limit \(limit.rlim_cur)): refusing new clients with daemon.out_of_descriptors until some close; those connected are served")
        }
        if client < 0, reserve < 0 {
            logger.error("out of file descriptors with none in reserve: a waiting client cannot be refused")
        }
    }
}

/// The process's limit on open files.
public enum OpenFileLimit {
    /// Raises the soft limit to the hard one, as daemons that serve many clients do (and
    /// systemd's own services): systemd starts services at 1024, while a daemon that
    /// uses no `select` can hold far more.
    ///
    /// - Returns: the soft limit before and after; equal when it was already the hard
    ///   limit, or when raising it was not allowed (a system call filter).
    public static func raiseToHardLimit() -> (before: UInt64, after: UInt64) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return (0, 0) }
        let before = UInt64(limit.rlim_cur)
        guard limit.rlim_cur < limit.rlim_max else { return (before, before) }
        limit.rlim_cur = limit.rlim_max
        guard setrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return (before, before) }
        return (before, UInt64(limit.rlim_max))
    }
}
