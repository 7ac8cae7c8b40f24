import Logging
import Synchronization
import Testing

@testable import LLMDLifecycle

#if canImport(Glibc)
import Glibc
#endif

/// Records what services did, in order.
final class Journal: Sendable {
    private let entries = Mutex<[String]>([])
    func record(_ entry: String) { entries.withLock { $0.append(entry) } }
    var all: [String] { entries.withLock { $0 } }
}

/// Waits for shutdown, then takes `drain` to finish, recording both.
struct DrainingService: Service {
    let name: String
    let journal: Journal
    var drain: Duration = .milliseconds(20)

    func run(shutdown: GracefulShutdown) async throws {
        journal.record("\(name) started")
        await shutdown.wait()
        journal.record("\(name) stopping")
        try? await Task.sleep(for: drain)
        journal.record("\(name) stopped")
    }
}

struct FailingService: Service {
    struct Failure: Error {}
    func run(shutdown: GracefulShutdown) async throws {
        try await Task.sleep(for: .milliseconds(20))
        throw Failure()
    }
}

/// Ignores graceful shutdown; only cancellation ends it.
struct StubbornService: Service {
    let journal: Journal
    func run(shutdown: GracefulShutdown) async throws {
        while !Task.isCancelled { try? await Task.sleep(for: .milliseconds(5)) }
        journal.record("stubborn cancelled")
    }
}

/// These tests send signals to the test process itself, so they must not overlap.
@Suite("Service group", .serialized)
struct ServiceGroupTests {
    let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    private func waitFor(_ journal: Journal, _ entry: String) async {
        for _ in 0..<1000 where !journal.all.contains(entry) {
            try? await Task.sleep(for: .milliseconds(2))
        }
    }

    @Test("SIGTERM shuts services down one at a time, the last first")
    func orderedShutdown() async throws {
        let journal = Journal()
        let group = ServiceGroup(
            services: [DrainingService(name: "a", journal: journal), DrainingService(name: "b", journal: journal)],
            logger: logger)
        async let run: Void = group.run()
        await waitFor(journal, "a started")
        await waitFor(journal, "b started")
        kill(getpid(), SIGTERM)
        try await run
        #expect(journal.all.suffix(4) == ["b stopping", "b stopped", "a stopping", "a stopped"])
    }

    @Test("a failing service ends the group, and its error is rethrown")
    func failure() async {
        let journal = Journal()
        let group = ServiceGroup(
            services: [DrainingService(name: "a", journal: journal), FailingService()], logger: logger)
        await #expect(throws: FailingService.Failure.self) { try await group.run() }
        #expect(journal.all.last == "a stopped")
    }

    @Test("a second signal cancels a service that does not stop")
    func secondSignal() async throws {
        let journal = Journal()
        let group = ServiceGroup(services: [StubbornService(journal: journal)], logger: logger)
        async let run: Void = group.run()
        try await Task.sleep(for: .milliseconds(50))
        kill(getpid(), SIGINT)
        try await Task.sleep(for: .milliseconds(50))
        #expect(journal.all.isEmpty)
        kill(getpid(), SIGINT)
        try await run
        #expect(journal.all == ["stubborn cancelled"])
    }

    /// Only a signal's first subscription in a process registers a source, so each
    /// signal here is one no other test in this process catches.
    @Test("a signal sent the moment a subscription exists is delivered", arguments: [SIGUSR1, SIGUSR2, SIGWINCH, SIGURG])
    func signalRightAfterSubscribing(_ number: Int32) async {
        let signals = UnixSignals([number])
        defer { signals.stop() }
        kill(getpid(), number)
        let delivered = Task {
            var iterator = signals.stream.makeAsyncIterator()
            return await iterator.next()
        }
        let timeout = Task {
            try await Task.sleep(for: .seconds(10))
            signals.stop()
        }
        #expect(await delivered.value == number)
        timeout.cancel()
    }

    @Test("waiting for shutdown ends with the trigger, or with cancellation")
    func gracefulShutdown() async {
        let shutdown = GracefulShutdown()
        async let waited: Void = shutdown.wait()
        shutdown.trigger()
        await waited
        #expect(shutdown.isTriggered)
        await shutdown.wait()  // already triggered: returns at once

        let never = GracefulShutdown()
        let task = Task { await never.wait() }
        task.cancel()
        await task.value
        #expect(!never.isTriggered)
    }
}
