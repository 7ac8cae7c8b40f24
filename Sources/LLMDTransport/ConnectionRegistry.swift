import LLMDProtocol
import NIOCore
import Synchronization

/// The live connections, so shutdown can reach each one.
final class ConnectionRegistry: Sendable {
    private struct Entry {
        var channel: Channel
        var beginDraining: @Sendable (Notice) -> Void
        var disconnect: @Sendable (ProtocolError) -> Void
    }

    private struct State {
        var entries: [UInt64: Entry] = [:]
        var nextID: UInt64 = 1
        var shutdownNotice: Notice?
        /// Connections refused for the limit since the last one admitted.
        var refusedInARow = 0
    }

    private let state = Mutex(State())

    func makeID() -> UInt64 {
        state.withLock { state in
            defer { state.nextID += 1 }
            return state.nextID
        }
    }

    /// What ``admit(id:channel:limit:beginDraining:)`` decided.
    enum Admission {
        case admitted
        /// Refused for the limit; `first` when the one before was admitted, so the
        /// refusals of one crowded spell are logged once.
        case refused(first: Bool)
    }

    /// Adds the connection unless `limit` connections are there already.
    ///
    /// - Parameters:
    ///   - beginDraining: called on the connection's event loop when the daemon starts
    ///     shutting down.
    ///   - disconnect: called on the connection's event loop to end it with an error.
    func admit(
        id: UInt64, channel: Channel, limit: Int?, beginDraining: @escaping @Sendable (Notice) -> Void,
        disconnect: @escaping @Sendable (ProtocolError) -> Void
    ) -> Admission {
        state.withLock { state in
            if let limit, state.entries.count >= limit {
                state.refusedInARow += 1
                return .refused(first: state.refusedInARow == 1)
            }
            state.refusedInARow = 0
            state.entries[id] = Entry(channel: channel, beginDraining: beginDraining, disconnect: disconnect)
            return .admitted
        }
    }

    /// Ends connection `id`, if it is still there, with `error`.
    func disconnect(id: UInt64, with error: ProtocolError) {
        guard let entry = state.withLock({ $0.entries[id] }) else { return }
        entry.channel.eventLoop.execute { entry.disconnect(error) }
    }

    func remove(id: UInt64) {
        _ = state.withLock { $0.entries.removeValue(forKey: id) }
    }

    var count: Int { state.withLock { $0.entries.count } }

    /// Whether shutdown has begun; a connection admitted after that drains at once.
    var isDraining: Bool { state.withLock { $0.shutdownNotice != nil } }

    var shutdownNotice: Notice {
        state.withLock { $0.shutdownNotice } ?? Notice(name: Notice.shuttingDown, message: "llmd is shutting down")
    }

    /// Tells every connection the daemon is going away.
    func beginDraining(_ notice: Notice) {
        let entries = state.withLock { state in
            state.shutdownNotice = notice
            return Array(state.entries.values)
        }
        for entry in entries {
            entry.channel.eventLoop.execute { entry.beginDraining(notice) }
        }
    }

    /// Closes every connection, cancelling whatever they still run.
    func closeAll() async {
        let channels = state.withLock { $0.entries.values.map(\.channel) }
        for channel in channels {
            try? await channel.close()
        }
    }
}
