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

    public init(
        socket: ListeningSocket, group: EventLoopGroup, methods: MethodTable, state: DaemonState, settings: LiveSettings,
        maximumBodyBytes: Int, logger: Logger
    ) {
        self.socket = socket
        self.group = group
        self.environment = HTTPEnvironment(
            methods: methods, state: state, settings: settings, maximumBodyBytes: maximumBodyBytes, logger: logger)
        self.logger = logger
    }

    public func run(shutdown: GracefulShutdown) async throws {
        let environment = self.environment
        let serverChannel = try await ServerBootstrap(group: group)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(OpenAIHTTPHandler(environment: environment))
                }
            }
            .withBoundSocket(socket.descriptor)
            .get()
        logger.info("serving the OpenAI-compatible HTTP API", metadata: ["socket": "\(socket.path)"])
        await withTaskGroup(of: Void.self) { tasks in
            tasks.addTask { _ = try? await serverChannel.closeFuture.get() }
            tasks.addTask { await shutdown.wait() }
            await tasks.next()
            serverChannel.close(promise: nil)
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
    var maximumBodyBytes: Int
    var logger: Logger
}
