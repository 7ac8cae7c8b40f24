import LLMDApplication
import LLMDBus
import LLMDCore
import LLMDProtocol
import LLMDSystemd
import Logging
import NIOCore
import NIOPosix
import LLMDLifecycle

/// Serves protocol v1 on the listening socket until graceful shutdown.
///
/// Shutdown: stop accepting, send every client a `shutting_down` notice, let in-flight
/// requests finish until the deadline, then close whatever remains and remove the
/// socket file (unless systemd owns it). `run()` returns when all of that is done.
public final class SocketServer: Service {
    private let socket: ListeningSocket
    private let group: EventLoopGroup
    private let environment: ConnectionEnvironment
    private let notifier: SystemdNotifier
    private let logger: Logger

    public init(
        socket: ListeningSocket,
        group: EventLoopGroup,
        methods: MethodTable,
        state: DaemonState,
        settings: LiveSettings,
        bus: EventBus,
        sessionNames: SessionNameEpochs,
        notifier: SystemdNotifier,
        logger: Logger
    ) {
        self.socket = socket
        self.group = group
        self.environment = ConnectionEnvironment(
            methods: methods, state: state, registry: ConnectionRegistry(), settings: settings, bus: bus,
            sessionNames: sessionNames, inputBudget: InputBudget(), readPacer: ReadPacer(eventLoop: group.next()),
            evictions: Turns(eventLoop: group.next()) { _ in (count: InputBudget.evictionsPerTurn, value: 0) },
            logger: logger)
        self.notifier = notifier
        self.logger = logger
    }

    public func run(shutdown: GracefulShutdown) async throws {
        let environment = self.environment
        let (listening, logger) = (socket.descriptor, logger)
        let serverChannel = try await ServerBootstrap(group: group)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(
                        OutOfDescriptorsHandler(listening: listening, registry: environment.registry, logger: logger))
                }
            }
            .childChannelOption(.allowRemoteHalfClosure, value: true)
            // One read of at most 16 KiB per connection per round of the event loop: with
            // thousands of busy clients a round stays short (ReadPacer), and requests are
            // small; replies, the bulk of the traffic, are not limited by this.
            .childChannelOption(.maxMessagesPerRead, value: 1)
            .childChannelOption(.recvAllocator, value: AdaptiveRecvByteBufferAllocator(minimum: 64, initial: 2048, maximum: 16384))
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let handler = ConnectionHandler(environment: environment, id: environment.registry.makeID())
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            .withBoundSocket(socket.descriptor)
            .get()
        logger.info("listening", metadata: ["socket": "\(socket.path)", "pid": "\(environment.state.pid)"])
        notifier.ready(status: environment.state.statusLine)

        // Serve until shutdown, or until the listening channel fails.
        await withTaskGroup(of: Void.self) { group in
            group.addTask { _ = try? await serverChannel.closeFuture.get() }
            group.addTask { await shutdown.wait() }
            await group.next()
            serverChannel.close(promise: nil)  // a future's get() ignores cancellation
            group.cancelAll()
        }
        await drain()
        socket.removeFile()
        logger.info("stopped")
    }

    private func drain() async {
        let timeout = environment.settings.current.shutdownTimeout
        // Ask systemd for the drain time plus a margin, in case TimeoutStopSec= is shorter.
        notifier.stopping(
            status: "Shutting down: finishing \(environment.state.snapshot.requestsInFlight) requests",
            extendTimeout: timeout + .seconds(5))
        environment.registry.beginDraining(
            Notice(
                name: Notice.shuttingDown, message: "llmd is shutting down",
                fields: ["deadline_ms": .int(timeout.wholeMilliseconds)]))
        let deadline = ContinuousClock.now + timeout
        // Shutdown is rare and short: polling keeps this free of wake-up bookkeeping.
        // A second SIGTERM cancels this task: stop waiting and close what remains.
        while environment.state.snapshot.requestsInFlight > 0 || environment.registry.count > 0,
            ContinuousClock.now < deadline, !Task.isCancelled
        {
            try? await Task.sleep(for: .milliseconds(5))
        }
        let remaining = environment.state.snapshot.requestsInFlight
        if remaining > 0 {
            logger.warning("shutdown deadline passed, cancelling \(remaining) requests")
        }
        await environment.registry.closeAll()
    }
}

/// Keeps systemd informed: `WATCHDOG=1` at half the watchdog interval, proven by a
/// round trip through the event loop so a wedged loop stops the pings, and `STATUS=`
/// whenever the summary changes.
///
/// Listed before the socket server in the service group, so it stops after the server
/// has drained and keeps the watchdog fed meanwhile.
public struct SystemdHeartbeat: Service {
    let notifier: SystemdNotifier
    let state: DaemonState
    let eventLoop: EventLoop

    public init(notifier: SystemdNotifier, state: DaemonState, eventLoop: EventLoop) {
        self.notifier = notifier
        self.state = state
        self.eventLoop = eventLoop
    }

    public func run(shutdown: GracefulShutdown) async throws {
        let watchdogInterval = notifier.watchdogInterval
        let period = min(watchdogInterval.map { $0 / 2 } ?? .seconds(2), .seconds(2))
        let (notifier, state, eventLoop) = (self.notifier, self.state, self.eventLoop)
        await shutdown.cancelling {
            // READY=1 carried the first status line.
            var lastStatus = state.statusLine
            while true {
                do {
                    try await Task.sleep(for: period)
                    if watchdogInterval != nil {
                        try await eventLoop.submit {}.get()
                        notifier.watchdog()
                    }
                } catch {
                    return  // cancelled: shutdown is complete
                }
                let status = state.statusLine
                if status != lastStatus {
                    notifier.status(status)
                    lastStatus = status
                }
            }
        }
    }
}
