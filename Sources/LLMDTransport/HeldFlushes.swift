import LLMDApplication
import NIOCore
import NIOPosix

/// Something that writes to a client on its event loop what other threads queued for it:
/// a protocol connection's outbox, an HTTP stream's events.
package protocol LoopFlushable: AnyObject, Sendable {
    var flushLoop: any EventLoop { get }
    /// Writes what is queued; runs on ``flushLoop``.
    func flush()
}

/// Flushes a thread holds back until it says so.
///
/// For the HTTP engine's thread, which publishes the tokens of many reads in a burst
/// (``ReadBatching``): each flush would wake an event loop to write a token or two while
/// the engine is still publishing the rest. Held, they go as one wake-up per event loop for
/// all of its connections, not one per connection per event.
package enum HeldFlushes {
    /// Runs `target`'s flush on its loop: now, or when this thread releases what it holds.
    package static func schedule(_ target: any LoopFlushable) {
        if let held = current.currentValue {
            if held.targets.isEmpty { held.since = .now }
            held.targets.append(target)
        } else {
            target.flushLoop.execute { target.flush() }
        }
    }

    /// From now on, flushes scheduled on this thread wait for ``release()``.
    static func holdOnThisThread() {
        if current.currentValue == nil { current.currentValue = Held() }
    }

    /// Releases this thread's held flushes once the oldest has waited `limit`: for a
    /// producer that may never reach the end of its batch while a fast stream lasts.
    /// Costs a clock read when something is held, nothing otherwise.
    static func release(heldFor limit: Duration) {
        guard let held = current.currentValue, !held.targets.isEmpty, ContinuousClock.now - held.since >= limit else { return }
        release()
    }

    /// Schedules the flushes this thread held back, one task per event loop.
    static func release() {
        guard let held = current.currentValue, !held.targets.isEmpty else { return }
        var byLoop: [(loop: any EventLoop, targets: [any LoopFlushable])] = []
        for target in held.targets {
            let loop = target.flushLoop
            if let index = byLoop.firstIndex(where: { $0.loop === loop }) {
                byLoop[index].targets.append(target)
            } else {
                byLoop.append((loop, [target]))
            }
        }
        held.targets.removeAll(keepingCapacity: true)
        for (loop, targets) in byLoop {
            loop.execute { for target in targets { target.flush() } }
        }
    }

    private final class Held {
        var targets: [any LoopFlushable] = []
        /// When the first of `targets` was held.
        var since = ContinuousClock.now
    }

    // Unsafe only in name: each thread reads and writes its own value.
    private nonisolated(unsafe) static let current = ThreadSpecificVariable<Held>()
}

extension WriteBatching {
    /// Holding back the flushes of connections' outboxes and HTTP streams.
    public static let heldFlushes = WriteBatching(
        holdOnThisThread: { HeldFlushes.holdOnThisThread() },
        release: { HeldFlushes.release() },
        releaseIfHeldFor: { HeldFlushes.release(heldFor: $0) })
}
