import Synchronization

/// At most `limit` calls at once per provider (`MaxConcurrentCalls=`); the others wait
/// their turn, first come first served. A cancelled waiter leaves the queue.
final class CallLimiter: Sendable {
    private struct State {
        var limit: Int
        var active = 0
        var waiters: [(id: UInt64, continuation: CheckedContinuation<Bool, Never>)] = []
        var nextID: UInt64 = 0
    }

    private let state: Mutex<State>

    init(limit: Int) {
        state = Mutex(State(limit: limit))
    }

    /// Applies a new limit (after a reload); waiters it makes room for go ahead.
    func setLimit(_ limit: Int) {
        let released = state.withLock { state -> [CheckedContinuation<Bool, Never>] in
            state.limit = limit
            return Self.admit(&state)
        }
        released.forEach { $0.resume(returning: true) }
    }

    /// Waits for a slot; false when the task was cancelled while waiting.
    func acquire() async -> Bool {
        let id = state.withLock { state -> UInt64 in
            defer { state.nextID += 1 }
            return state.nextID
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let admitted = state.withLock { state -> Bool in
                    if Task.isCancelled { return false }
                    if state.waiters.isEmpty, state.limit <= 0 || state.active < state.limit {
                        state.active += 1
                        return true
                    }
                    state.waiters.append((id, continuation))
                    return false
                }
                if admitted { continuation.resume(returning: true) }
                else if Task.isCancelled, !state.withLock({ $0.waiters.contains { $0.id == id } }) {
                    continuation.resume(returning: false)
                }
            }
        } onCancel: {
            let cancelled = state.withLock { state -> CheckedContinuation<Bool, Never>? in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: index).continuation
            }
            cancelled?.resume(returning: false)
        }
    }

    func release() {
        let released = state.withLock { state -> [CheckedContinuation<Bool, Never>] in
            state.active -= 1
            return Self.admit(&state)
        }
        released.forEach { $0.resume(returning: true) }
    }

    var activeCount: Int { state.withLock { $0.active } }

    private static func admit(_ state: inout State) -> [CheckedContinuation<Bool, Never>] {
        var admitted: [CheckedContinuation<Bool, Never>] = []
        while !state.waiters.isEmpty, state.limit <= 0 || state.active < state.limit {
            state.active += 1
            admitted.append(state.waiters.removeFirst().continuation)
        }
        return admitted
    }
}
