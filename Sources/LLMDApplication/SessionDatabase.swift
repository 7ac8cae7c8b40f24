import Dispatch
import LLMDProtocol
import LLMDStore
import LLMDUsage
import Synchronization

/// The session store, used from one serial queue so SQLite's blocking calls (a commit
/// waits for fsync) never hold a thread of Swift's cooperative pool.
final class SessionDatabase: Sendable {
    private let store: Mutex<SessionStore>
    private let queue = DispatchQueue(label: "llmd.sessions")
    /// Budgets, only touched inside ``perform(_:)``: on the store's queue, so loading a
    /// budget's spending, reserving, and recording a call are ordered with the ledger's writes.
    let budgets = Mutex(BudgetBook())
    /// Turns a previous run left unfinished (killed mid-turn), now marked interrupted.
    let interruptedAtOpen: Int

    init(path: String) throws(StoreError) {
        let store = try SessionStore(path: path)
        interruptedAtOpen = store.interruptedAtOpen
        self.store = Mutex(store)
    }

    /// Runs `body` with the store on the store's queue.
    ///
    /// - Throws: `store.unavailable` when SQLite fails; the transaction that failed
    ///   changed nothing.
    func perform<Result: Sendable>(
        _ body: @escaping @Sendable (SessionStore) throws(StoreError) -> Result
    ) async throws(ProtocolError) -> Result {
        let outcome: Swift.Result<Result, StoreError> = await withCheckedContinuation { continuation in
            queue.async {
                continuation.resume(
                    returning: self.store.withLock { store in
                        Swift.Result { () throws(StoreError) in try body(store) }
                    })
            }
        }
        switch outcome {
        case .success(let value): return value
        case .failure(let error): throw Self.unavailable(error)
        }
    }

    static func unavailable(_ error: StoreError) -> ProtocolError {
        ProtocolError(
            .storeUnavailable,
            error.isDiskFull ? "the session database's disk is full: \(error)" : "the session database failed: \(error)",
            detail: ["disk_full": .bool(error.isDiskFull), "sqlite_code": .int(Int64(error.code))])
    }
}

/// One turn at a time per session, in arrival order; different sessions run side by side.
final class TurnLanes: Sendable {
    private struct Waiter {
        var id: UInt64
        var continuation: CheckedContinuation<Bool, Never>
    }

    /// A session is present while a turn runs on it, with the turns waiting behind it.
    private let lanes = Mutex<(nextWaiter: UInt64, bySession: [Int64: [Waiter]])>((0, [:]))

    /// Waits until the session is free, then holds it until ``leave(_:)``.
    ///
    /// - Parameter queued: called at once, before waiting, with the place in the queue
    ///   (1: next) when another turn holds the session.
    /// - Throws: `request.cancelled` when the task is cancelled while it waits.
    func enter(_ session: Int64, queued: (Int) -> Void) async throws(ProtocolError) {
        let place: (id: UInt64, position: Int)? = lanes.withLock { state in
            guard let waiting = state.bySession[session] else {
                state.bySession[session] = []
                return nil
            }
            state.nextWaiter += 1
            return (state.nextWaiter, waiting.count + 1)
        }
        guard let place else { return }
        queued(place.position)
        let admitted = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let resumeNow: Bool? = lanes.withLock { state in
                    // Cancelled before we queued: don't wait at all.
                    if Task.isCancelled { return false }
                    state.bySession[session, default: []].append(Waiter(id: place.id, continuation: continuation))
                    return nil
                }
                if let resumeNow { continuation.resume(returning: resumeNow) }
            }
        } onCancel: {
            let waiter: Waiter? = lanes.withLock { state in
                guard let index = state.bySession[session]?.firstIndex(where: { $0.id == place.id }) else { return nil }
                return state.bySession[session]!.remove(at: index)
            }
            waiter?.continuation.resume(returning: false)
        }
        if !admitted { throw ProtocolError(.cancelled, "request cancelled while queued") }
    }

    /// Ends the running turn: the next waiter, if any, gets the session.
    func leave(_ session: Int64) {
        let next: Waiter? = lanes.withLock { state in
            guard var waiting = state.bySession[session] else { return nil }
            guard !waiting.isEmpty else {
                state.bySession[session] = nil
                return nil
            }
            let next = waiting.removeFirst()
            state.bySession[session] = waiting
            return next
        }
        next?.continuation.resume(returning: true)
    }

    /// Sessions with a turn running, and the turns waiting behind them in all, for the metrics.
    func occupancy() -> (busy: Int, waiting: Int) {
        lanes.withLock { state in (state.bySession.count, state.bySession.values.reduce(0) { $0 + $1.count }) }
    }

    /// Whether a turn runs or waits on the session.
    func isBusy(_ session: Int64) -> Bool {
        lanes.withLock { $0.bySession[session] != nil }
    }
}
