import Dispatch
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A long-running part of the daemon.
///
/// The contract of swift-service-lifecycle, kept without its dependencies (they added
/// 1.2 MB of code and about 1 MiB to every idle llmd for what these 150 lines do):
/// `run` works until `shutdown` is triggered, then finishes what it must and returns.
public protocol Service: Sendable {
    func run(shutdown: GracefulShutdown) async throws
}

/// A one-way switch a service watches to learn that it should wind down.
public final class GracefulShutdown: Sendable {
    private struct State {
        var triggered = false
        var waiters: [UInt64: CheckedContinuation<Void, Never>] = [:]
        var nextWaiter: UInt64 = 0
    }

    private let state = Mutex(State())

    public init() {}

    public var isTriggered: Bool { state.withLock { $0.triggered } }

    /// Flips the switch and wakes every waiter; later calls do nothing.
    public func trigger() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard !state.triggered else { return [] }
            state.triggered = true
            defer { state.waiters = [:] }
            return Array(state.waiters.values)
        }
        for waiter in waiters { waiter.resume() }
    }

    /// Returns once shutdown is triggered, or when the calling task is cancelled.
    public func wait() async {
        let id = state.withLock { state -> UInt64 in
            defer { state.nextWaiter += 1 }
            return state.nextWaiter
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let resumeNow = state.withLock { state -> Bool in
                    if state.triggered || Task.isCancelled { return true }
                    state.waiters[id] = continuation
                    return false
                }
                if resumeNow { continuation.resume() }
            }
        } onCancel: {
            state.withLock { $0.waiters.removeValue(forKey: id) }?.resume()
        }
    }

    /// Runs `operation`, cancelling it when shutdown is triggered; for loops that have
    /// nothing to finish, such as a timer or a signal handler.
    public func cancelling(_ operation: @escaping @Sendable () async -> Void) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await operation() }
            group.addTask { await self.wait() }
            await group.next()
            group.cancelAll()
        }
    }
}

/// Runs services together and shuts them down in reverse order on a signal.
///
/// The first SIGTERM or SIGINT triggers graceful shutdown of the last service, waits for
/// it to return, then the one before, and so on: list what others rely on first. A second
/// signal cancels whatever still runs. A service that returns or throws on its own ends
/// the group the same way, and its error is rethrown.
public struct ServiceGroup: Sendable {
    let services: [any Service]
    let logger: Logger

    public init(services: [any Service], logger: Logger) {
        self.services = services
        self.logger = logger
    }

    private enum Event: Sendable {
        case finished(index: Int, error: (any Error)?)
        case secondSignal
        case helperDone
    }

    public func run() async throws {
        let shutdowns = services.map { _ in GracefulShutdown() }
        let shutdownBegun = GracefulShutdown()
        let signals = UnixSignals([SIGTERM, SIGINT])
        let (finished, finishedInput) = AsyncStream.makeStream(of: Int.self)
        defer { signals.stop() }

        let firstError = await withTaskGroup(of: Event.self) { group -> (any Error)? in
            for (index, service) in services.enumerated() {
                group.addTask {
                    do {
                        try await service.run(shutdown: shutdowns[index])
                        return .finished(index: index, error: nil)
                    } catch {
                        return .finished(index: index, error: error)
                    }
                }
            }
            group.addTask {
                var received = 0
                for await signal in signals.stream {
                    received += 1
                    if received > 1 {
                        logger.warning("received signal \(signal) again, cancelling")
                        return .secondSignal
                    }
                    logger.info("received signal \(signal), shutting down")
                    shutdownBegun.trigger()
                }
                return .helperDone
            }
            // Shuts services down one at a time, the last first.
            group.addTask {
                await shutdownBegun.wait()
                var done = Set<Int>()
                var updates = finished.makeAsyncIterator()
                for index in shutdowns.indices.reversed() {
                    shutdowns[index].trigger()
                    while !done.contains(index), let next = await updates.next() { done.insert(next) }
                }
                return .helperDone
            }

            var running = services.count
            var firstError: (any Error)?
            while running > 0, let event = await group.next() {
                switch event {
                case .finished(let index, let error):
                    running -= 1
                    finishedInput.yield(index)
                    if let error {
                        logger.error("service \(type(of: services[index])) failed: \(error)")
                        firstError = firstError ?? error
                    } else if !shutdownBegun.isTriggered {
                        logger.error("service \(type(of: services[index])) returned before shutdown")
                    }
                    shutdownBegun.trigger()
                case .secondSignal:
                    group.cancelAll()
                case .helperDone:
                    break
                }
            }
            finishedInput.finish()
            signals.stop()
            group.cancelAll()
            return firstError
        }
        if let firstError { throw firstError }
    }
}

/// Signals delivered as an async sequence, through libdispatch instead of a handler, so
/// no async-signal-safety rules apply to what follows.
public final class UnixSignals: Sendable {
    public let stream: AsyncStream<Int32>
    private let subscription: UInt64

    /// Starts catching `signals` for this subscriber. Once a signal has been caught it stays
    /// caught for the life of the process: with no subscriber it is ignored, so a late
    /// SIGTERM in the last moments of shutdown cannot end the process with a failure status.
    public init(_ signals: [Int32]) {
        let (stream, continuation) = AsyncStream.makeStream(of: Int32.self)
        self.stream = stream
        self.subscription = SignalHub.shared.subscribe(signals, continuation)
    }

    /// Stops delivery to this subscriber and ends its stream.
    public func stop() {
        SignalHub.shared.unsubscribe(subscription)
    }
}

/// One dispatch source per signal for the whole process, never cancelled: libdispatch on
/// Linux stops delivering a signal to new sources once a source for it was cancelled.
///
/// libdispatch registers a source later, on its manager thread, and only then installs the
/// handler that feeds it; a subscription waits for that. Until then the signal keeps the
/// disposition it had, so one that comes before the daemon is ready ends it as it would
/// any process. Setting SIG_IGN first, as on Darwin, loses it instead: a SIGTERM sent just
/// after a busy daemon answered its first client used to be dropped.
private final class SignalHub: Sendable {
    static let shared = SignalHub()

    private struct State {
        var sources: [Int32: DispatchSourceSignal] = [:]
        var subscribers: [UInt64: (signals: [Int32], continuation: AsyncStream<Int32>.Continuation)] = [:]
        var nextID: UInt64 = 0
    }

    private let state = Mutex(State())

    func subscribe(_ signals: [Int32], _ continuation: AsyncStream<Int32>.Continuation) -> UInt64 {
        state.withLock { state in
            for number in signals where state.sources[number] == nil {
                let registered = DispatchSemaphore(value: 0)
                let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
                source.setEventHandler { SignalHub.shared.deliver(number) }
                source.setRegistrationHandler { registered.signal() }
                source.resume()
                registered.wait()
                state.sources[number] = source
            }
            defer { state.nextID += 1 }
            state.subscribers[state.nextID] = (signals, continuation)
            return state.nextID
        }
    }

    func unsubscribe(_ id: UInt64) {
        state.withLock { $0.subscribers.removeValue(forKey: id) }?.continuation.finish()
    }

    private func deliver(_ number: Int32) {
        let receivers = state.withLock { state in
            state.subscribers.values.filter { $0.signals.contains(number) }.map(\.continuation)
        }
        for receiver in receivers { receiver.yield(number) }
    }
}
