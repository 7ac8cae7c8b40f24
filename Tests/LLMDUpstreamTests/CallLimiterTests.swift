import Synchronization
import Testing

@testable import LLMDUpstream

@Suite("Call limiter")
struct CallLimiterTests {
    @Test("admits up to the limit; the next waits until a slot is released")
    func limit() async throws {
        let limiter = CallLimiter(limit: 2)
        #expect(await limiter.acquire())
        #expect(await limiter.acquire())
        let admitted = Mutex(false)
        let waiter = Task {
            let got = await limiter.acquire()
            admitted.withLock { $0 = got }
        }
        try await Task.sleep(for: .milliseconds(50))
        #expect(!admitted.withLock { $0 }, "a third call must wait")
        limiter.release()
        await waiter.value
        #expect(admitted.withLock { $0 })
        #expect(limiter.activeCount == 2)
    }

    @Test("a cancelled waiter leaves the queue and takes no slot")
    func cancelledWaiter() async throws {
        let limiter = CallLimiter(limit: 1)
        #expect(await limiter.acquire())
        let waiter = Task { await limiter.acquire() }
        try await Task.sleep(for: .milliseconds(20))
        waiter.cancel()
        #expect(await waiter.value == false)
        limiter.release()
        #expect(limiter.activeCount == 0)
        #expect(await limiter.acquire())
    }

    @Test("zero means no limit; raising the limit lets waiters in")
    func unlimitedAndRaised() async {
        let unlimited = CallLimiter(limit: 0)
        for _ in 0..<100 { #expect(await unlimited.acquire()) }
        let limiter = CallLimiter(limit: 1)
        #expect(await limiter.acquire())
        let waiter = Task { await limiter.acquire() }
        try? await Task.sleep(for: .milliseconds(20))  // let it queue
        limiter.setLimit(2)
        #expect(await waiter.value)
        #expect(limiter.activeCount == 2)
    }
}
