import LLMDApplication
import LLMDCore
import LLMDLifecycle
import LLMDProtocol
import LLMDTransport
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

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

    /// - Parameter tokenBatch: `TokenBatchSec=` of `[Events]`: how long a token of a fast
    ///   stream may wait to go with those after it.
    public init(
        socket: ListeningSocket, configuration: HTTPConfiguration, tokenBatch: Duration, group: EventLoopGroup,
        methods: MethodTable, state: DaemonState, settings: LiveSettings, keys: APIKeys, logger: Logger
    ) {
        self.socket = socket
        self.tcp = configuration.listen
        self.idleTimeout = configuration.idleTimeout
        self.group = group
        self.environment = HTTPEnvironment(
            methods: methods, state: state, settings: settings, keys: keys, maximumBodyBytes: configuration.maximumBodyBytes,
            tokenBatch: tokenBatch, logger: logger)
        self.logger = logger
    }

    private func bootstrap(keyRequired: Bool) -> ServerBootstrap {
        let environment = self.environment
        let idleTimeout = TimeAmount.nanoseconds(Int64(self.idleTimeout.wholeMilliseconds) * 1_000_000)
        return ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(IdleStateHandler(readTimeout: idleTimeout))
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(OpenAIHTTPHandler(environment: environment, keyRequired: keyRequired))
                }
            }
    }

    public func run(shutdown: GracefulShutdown) async throws {
        var channels = [try await bootstrap(keyRequired: false).withBoundSocket(socket.descriptor).get()]
        logger.info("serving the OpenAI-compatible HTTP API", metadata: ["socket": "\(socket.path)"])
        if let tcp {
            do {
                channels.append(try await bootstrap(keyRequired: true).bind(host: tcp.host, port: tcp.port).get())
                logger.info("serving the OpenAI-compatible HTTP API over TCP, with keys", metadata: ["address": "\(tcp)"])
            } catch {
                logger.error("cannot listen on \(tcp): \(error); the HTTP API is served on its socket only")
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
    var tokenBatch: Duration
    var logger: Logger
}
