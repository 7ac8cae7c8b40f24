import Synchronization

/// The acknowledgements one event awaits from blocking subscribers.
final class AcknowledgementGate: Sendable {
    private struct State {
        var waiting: Set<SubscriptionKey> = []
        var continuation: CheckedContinuation<Void, Never>?
        var finished = false
    }

    let seq: UInt64
    private let state = Mutex(State())

    init(seq: UInt64) {
        self.seq = seq
    }

    func expect(_ key: SubscriptionKey) {
        state.withLock { _ = $0.waiting.insert(key) }
    }

    /// - Returns: whether `key` was still owed.
    @discardableResult
    func acknowledge(_ key: SubscriptionKey) -> Bool {
        let (owed, continuation) = state.withLock { state -> (Bool, CheckedContinuation<Void, Never>?) in
            guard state.waiting.remove(key) != nil else { return (false, nil) }
            guard state.waiting.isEmpty, !state.finished else { return (true, nil) }
            state.finished = true
            defer { state.continuation = nil }
            return (true, state.continuation)
        }
        continuation?.resume()
        return owed
    }

    /// Waits for every acknowledgement or `timeout`; returns the subscriptions still owing.
    func wait(timeout: Duration) async -> Set<SubscriptionKey> {
        let timer = Task {
            try? await Task.sleep(for: timeout)
            self.finish()
        }
        await withCheckedContinuation { continuation in
            let now = state.withLock { state -> Bool in
                if state.finished || state.waiting.isEmpty { return true }
                state.continuation = continuation
                return false
            }
            if now { continuation.resume() }
        }
        timer.cancel()
        return state.withLock { $0.waiting }
    }

    private func finish() {
        let continuation = state.withLock { state -> CheckedContinuation<Void, Never>? in
            guard !state.finished else { return nil }
            state.finished = true
            defer { state.continuation = nil }
            return state.continuation
        }
        continuation?.resume()
    }
}
