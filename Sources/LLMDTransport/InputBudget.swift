import Synchronization

/// The bytes of unfinished request lines the daemon holds for all its clients together.
///
/// Each connection may hold a partial line up to `MaxLineBytes=`, but thousands of
/// connections each holding one add up to gigabytes. Past `MaxBufferedInput=`, the
/// connections holding the most are disconnected until the rest fit in three quarters of
/// it: those that hold little, which are nearly all clients, are never the ones to go.
/// The quarter left free spares the next reads a new choice: under 2,000 clients each
/// pushing a megabyte, choosing anew on every read held up everyone's replies.
final class InputBudget: Sendable {
    /// Evicted connections closed each millisecond. A close costs about 25 us when the
    /// client's socket still holds what it sent: 16 take under half of each turn.
    static let evictionsPerTurn = 16

    private struct State {
        var held: [UInt64: Int] = [:]
        var total = 0
    }

    private let state = Mutex(State())

    /// Bytes held by all connections.
    var total: Int { state.withLock { $0.total } }

    /// Records that connection `id` now holds `bytes` of unfinished lines.
    ///
    /// - Parameter limit: `MaxBufferedInput=`.
    /// - Returns: the connections to disconnect, the largest holders first, so that the
    ///   others fit in three quarters of `limit`; they no longer count.
    func hold(_ bytes: Int, by id: UInt64, limit: Int) -> [(id: UInt64, held: Int)] {
        state.withLock { state in
            state.total += bytes - (state.held[id] ?? 0)
            state.held[id] = bytes == 0 ? nil : bytes
            guard state.total > limit else { return [] }
            let target = limit / 4 * 3
            var evicted: [(id: UInt64, held: Int)] = []
            for (holder, held) in state.held.sorted(by: { $0.value > $1.value }) where state.total > target {
                evicted.append((holder, held))
                state.held[holder] = nil
                state.total -= held
            }
            return evicted
        }
    }

    /// The connection is gone: what it held no longer counts.
    func release(_ id: UInt64) {
        state.withLock { state in
            if let held = state.held.removeValue(forKey: id) { state.total -= held }
        }
    }
}
