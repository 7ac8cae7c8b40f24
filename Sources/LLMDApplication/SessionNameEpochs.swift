import Synchronization

/// Since when each live session's name has named it.
///
/// Events name their session by name. A name outlives its session (deleted, or renamed
/// away) and may be given to a new one; replay for a subscription that follows the name
/// starts at the current session's epoch, so the new session's history starts empty.
/// Read on the event loop when a subscription is made, hence in memory, not in SQLite.
public final class SessionNameEpochs: Sendable {
    private let starts = Mutex<[String: Int64]>([:])

    public init() {}

    /// Starts from the stored sessions: each name since its session's creation.
    func load(_ sessions: [(name: String, since: Int64)]) {
        starts.withLock { starts in
            for session in sessions { starts[session.name] = session.since }
        }
    }

    /// A session took `name`, created or renamed to it, at `time` (microseconds).
    func began(_ name: String, at time: Int64) {
        starts.withLock { $0[name] = time }
    }

    /// `name` no longer names a session: deleted, or renamed away.
    func ended(_ name: String) {
        _ = starts.withLock { $0.removeValue(forKey: name) }
    }

    /// The epochs of those of `names` that name a live session.
    package func epochs(of names: Set<String>) -> [String: Int64] {
        starts.withLock { starts in
            var found: [String: Int64] = [:]
            for name in names { found[name] = starts[name] }
            return found
        }
    }
}
