import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// A named thread of its own, for a loop that must neither wait behind a shared pool nor
/// hold one up: libcurl's transfers, the event journal's commits.
public final class DedicatedThread: Sendable {
    /// How the kernel schedules the thread against the daemon's others.
    public enum Scheduling: Sendable {
        case normal
        /// `SCHED_BATCH`: the thread's wake-ups never preempt a running thread, so work
        /// that can wait a little (a commit) does not delay a token on its way out.
        case batch
    }

    private let handle: Mutex<pthread_t?>

    /// Starts `body` on a new thread named `name` (at most 15 bytes, as the kernel keeps it).
    public init(name: String, scheduling: Scheduling = .normal, body: @escaping @Sendable () -> Void) {
        let start = Unmanaged.passRetained(Start(name: name, scheduling: scheduling, body: body)).toOpaque()
        var thread = pthread_t()
        let created = pthread_create(&thread, nil, { argument in
            let start = Unmanaged<Start>.fromOpaque(argument!).takeRetainedValue()
            start.run()
            return nil
        }, start)
        precondition(created == 0, "cannot start the \(name) thread")
        handle = Mutex(thread)
    }

    /// Whether this is the calling thread, which cannot join itself.
    public var isCurrent: Bool {
        handle.withLock { thread in thread.map { pthread_equal($0, pthread_self()) != 0 } ?? false }
    }

    /// Waits for the body to return; later calls return at once.
    public func join() {
        guard let thread = handle.withLock({ state -> pthread_t? in
            defer { state = nil }
            return state
        }) else { return }
        pthread_join(thread, nil)
    }

    /// A thread never joined frees its resources when its body returns.
    deinit {
        if let thread = handle.withLock({ $0 }) { pthread_detach(thread) }
    }

    private final class Start {
        let name: String
        let scheduling: Scheduling
        let body: @Sendable () -> Void

        init(name: String, scheduling: Scheduling, body: @escaping @Sendable () -> Void) {
            (self.name, self.scheduling, self.body) = (name, scheduling, body)
        }

        func run() {
            nameThisThread(name)
            if scheduling == .batch {
                // Glibc's headers hide SCHED_BATCH behind _GNU_SOURCE; Linux's value is 3.
                var parameter = sched_param(sched_priority: 0)
                _ = sched_setscheduler(0, 3, &parameter)
            }
            body()
        }
    }
}

/// Names the calling thread as `top -H`, `ps -L` and /proc show it; otherwise it keeps the
/// name of the thread that made it. Writes the file that pthread_setname_np writes, which
/// Swift's Glibc module does not import (it is a GNU extension); a name over 15 bytes is
/// refused by the kernel.
private func nameThisThread(_ name: String) {
    let descriptor = open("/proc/thread-self/comm", O_WRONLY)
    guard descriptor >= 0 else { return }
    _ = Array(name.utf8).withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    close(descriptor)
}
