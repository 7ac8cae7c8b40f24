import LLMDApplication
import LLMDCore
import LLMDLifecycle
import LLMDProtocol
import LLMDTransport
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// The OpenAI-compatible HTTP API on its own Unix socket (`http.sock` beside the protocol
/// socket), over the same method table as the protocol: a call through it is an llmd run
/// like any other, with its events, ledger row, budgets and scopes.
public final class HTTPServer: Service {
    private let socket: ListeningSocket
    private let group: EventLoopGroup
    private let environment: HTTPEnvironment
    private let logger: Logger

    /// Where the TCP listener binds, when `[HTTP] Listen=` names one.
    private let tcp: HTTPConfiguration.TCPAddress?

    private let idleTimeout: Duration

    public init(
        socket: ListeningSocket, configuration: HTTPConfiguration, group: EventLoopGroup,
        methods: MethodTable, state: DaemonState, settings: LiveSettings, keys: APIKeys,
        metrics: (@Sendable () -> [UInt8])?, logger: Logger
    ) {
        self.socket = socket
        self.tcp = configuration.listen
        self.idleTimeout = configuration.idleTimeout
        self.group = group
        self.environment = HTTPEnvironment(
            methods: methods, state: state, settings: settings, keys: keys, maximumBodyBytes: configuration.maximumBodyBytes,
            servesAPI: configuration.servesAPI, metrics: configuration.servesMetrics ? metrics : nil, logger: logger)
        self.logger = logger
    }

    /// Connections on `listening`, a bound and listening socket.
    private func bootstrap(listening: Int32, keyRequired: Bool) -> ServerBootstrap {
        let environment = self.environment
        let idleTimeout = TimeAmount.nanoseconds(Int64(self.idleTimeout.wholeMilliseconds) * 1_000_000)
        let logger = self.logger
        return ServerBootstrap(group: group)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    // Out of descriptors, a waiting client gets a 503 at once, and nothing spins.
                    try channel.pipeline.syncOperations.addHandler(
                        OutOfDescriptorsHandler(
                            listening: listening, clients: { environment.state.snapshot.clients },
                            refusal: Self.outOfDescriptorsResponse, logger: logger))
                }
            }
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: idleTimeout))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(OpenAIHTTPHandler(environment: environment, keyRequired: keyRequired))
                }
            }
    }

    /// What a client waiting when llmd is out of descriptors gets: a 503 with the error.
    @Sendable private static func outOfDescriptorsResponse(_ error: ProtocolError) -> [UInt8] {
        let body = JSONValue.object(OpenAIError(status: 503, message: error.message, type: "api_error", code: error.code.rawValue).json)
            .encoded
        let head = "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: \(body.count)\r\n"
            + "connection: close\r\n\r\n"
        return Array(head.utf8) + body
    }

    /// A TCP socket bound to `address` and listening, for the bootstrap to take over.
    private static func listen(on address: HTTPConfiguration.TCPAddress) throws -> Int32 {
        let socketAddress = try SocketAddress(ipAddress: address.host, port: address.port)
        let descriptor = Glibc.socket(Int32(socketAddress.protocol.rawValue), Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw IOError(errnoCode: errno, reason: "socket") }
        var on: Int32 = 1
        setsockopt(descriptor, SOL_SOCKET, SO_REUSEADDR, &on, socklen_t(MemoryLayout<Int32>.size))
        let bound = socketAddress.withSockAddr { pointer, size in bind(descriptor, pointer, socklen_t(size)) == 0 }
        guard bound, Glibc.listen(descriptor, 128) == 0 else {
            let error = IOError(errnoCode: errno, reason: "bind \(address)")
            close(descriptor)
            throw error
        }
        return descriptor
    }

    /// What the listeners serve, for the log.
    private var servedName: String {
        switch (environment.servesAPI, environment.metrics != nil) {
        case (true, true): "the OpenAI-compatible HTTP API and /metrics"
        case (true, false): "the OpenAI-compatible HTTP API"
        case (false, _): "/metrics"
        }
    }

    public func run(shutdown: GracefulShutdown) async throws {
        var channels = [try await bootstrap(listening: socket.descriptor, keyRequired: false).withBoundSocket(socket.descriptor).get()]
        logger.info("serving \(servedName)", metadata: ["socket": "\(socket.path)"])
        if let tcp {
            do {
                let listening = try Self.listen(on: tcp)
                channels.append(try await bootstrap(listening: listening, keyRequired: true).withBoundSocket(listening).get())
                logger.info("serving \(servedName) over TCP, with keys", metadata: ["address": "\(tcp)"])
            } catch {
                logger.error("cannot listen on \(tcp): \(error); \(servedName) is served on its socket only")
            }
        }
        await withTaskGroup(of: Void.self) { tasks in
            for channel in channels { tasks.addTask { _ = try? await channel.closeFuture.get() } }
            tasks.addTask { await shutdown.wait() }
            await tasks.next()
            for channel in channels { channel.close(promise: nil) }
            tasks.cancelAll()
        }
        // Calls in flight finish as the protocol's do; the protocol server waits for them.
        socket.removeFile()
        logger.info("HTTP API stopped")
    }
}

/// What every HTTP connection shares.
struct HTTPEnvironment: Sendable {
    var methods: MethodTable
    var state: DaemonState
    var settings: LiveSettings
    var keys: APIKeys
    var maximumBodyBytes: Int
    /// `[HTTP] API=`: false when only `/metrics` is served.
    var servesAPI: Bool
    /// The metrics in Prometheus's text format, made at each scrape; nil with `Metrics=no`.
    var metrics: (@Sendable () -> [UInt8])?
    var logger: Logger
}
