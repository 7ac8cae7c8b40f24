import Dispatch
import Synchronization
import Testing

@testable import LLMDLifecycle

#if canImport(Glibc)
import Glibc
#endif

@Suite("Dedicated threads")
struct DedicatedThreadTests {
    /// What the body saw of its own thread.
    private struct Seen {
        var name = ""
        var policy: Int32 = -1
        var isCurrent = false
    }

    private func run(_ scheduling: DedicatedThread.Scheduling) -> Seen {
        let seen = Mutex(Seen())
        let handle = Mutex<DedicatedThread?>(nil)
        let (stored, asked) = (DispatchSemaphore(value: 0), DispatchSemaphore(value: 0))
        let thread = DedicatedThread(name: "llmd-test", scheduling: scheduling) {
            stored.wait()
            let isCurrent = handle.withLock { $0?.isCurrent ?? false }
            // Once joining, a thread is no longer anyone's to ask about.
            asked.signal()
            usleep(20_000)
            seen.withLock { $0 = Seen(name: threadName(), policy: sched_getscheduler(0), isCurrent: isCurrent) }
        }
        handle.withLock { $0 = thread }
        #expect(!thread.isCurrent)
        stored.signal()
        asked.wait()
        thread.join()
        return seen.withLock { $0 }
    }

    @Test("the thread has its name and scheduling, knows itself, and join waits for the body")
    func namedAndScheduled() {
        let normal = run(.normal)
        #expect(normal.name == "llmd-test")
        #expect(normal.policy == 0)  // SCHED_OTHER
        #expect(normal.isCurrent)
        let batch = run(.batch)
        #expect(batch.name == "llmd-test")
        #expect(batch.policy == 3)  // SCHED_BATCH
    }
}

/// The calling thread's name, as the kernel keeps it.
private func threadName() -> String {
    let descriptor = open("/proc/thread-self/comm", O_RDONLY)
    guard descriptor >= 0 else { return "" }
    defer { close(descriptor) }
    var bytes = [UInt8](repeating: 0, count: 32)
    let count = max(0, read(descriptor, &bytes, bytes.count))
    return String(decoding: bytes[..<count], as: UTF8.self).trimmingSuffix("\n")
}

extension String {
    fileprivate func trimmingSuffix(_ suffix: String) -> String {
        hasSuffix(suffix) ? String(dropLast(suffix.count)) : self
    }
}
