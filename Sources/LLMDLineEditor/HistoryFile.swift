import CEditLine
import Glibc

/// Why the history file could not be loaded or saved.
public enum LineEditorError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The file exists but libedit could not load it: unreadable, or not a libedit history
    /// file (GNU readline's have no `_HiStOrY_V2_` first line).
    case historyUnreadable(path: String, reason: String)
    /// The file or one of its directories could not be written.
    case historyUnwritable(path: String, reason: String)

    /// A dotted name users can grep and match, as llmd's other errors have.
    public var code: String {
        switch self {
        case .historyUnreadable: return "history.unreadable"
        case .historyUnwritable: return "history.unwritable"
        }
    }

    public var description: String {
        switch self {
        case .historyUnreadable(let path, let reason): return "\(code): cannot load \(path): \(reason)"
        case .historyUnwritable(let path, let reason): return "\(code): cannot save \(path): \(reason)"
        }
    }
}

/// The history file: libedit's own format (`_HiStOrY_V2_`, then one line per entry with
/// spaces and specials escaped), which other libedit programs such as sqlite3 also write.
enum HistoryFile {
    /// Loads `path` into libedit's history; nothing to do when there is no file yet.
    static func load(_ path: String) -> LineEditorError? {
        var status = stat()
        // Nothing saved yet: an empty history. libedit refuses an empty file.
        guard stat(path, &status) == 0, status.st_size > 0 else { return nil }
        let error = read_history(path)
        guard error != 0 else { return nil }
        return .historyUnreadable(path: path, reason: String(cString: strerror(error)))
    }

    /// Writes `lines` after the history `path` holds now, creating it 0600 and its
    /// directories 0700. Rereading first keeps what other editors saved meanwhile.
    static func save(_ path: String, appending lines: [String]) -> LineEditorError? {
        clear_history()
        _ = read_history(path)
        for line in lines { add_history(line) }
        if let slash = path.lastIndex(of: "/"), slash != path.startIndex,
            let failure = makeDirectories(String(path[..<slash]))
        {
            return .historyUnwritable(path: failure.path, reason: String(cString: strerror(failure.errno)))
        }
        // libedit writes with fopen, whose files anyone may read under the usual umask.
        let descriptor = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o600)
        guard descriptor >= 0 else {
            return .historyUnwritable(path: path, reason: String(cString: strerror(errno)))
        }
        Glibc.close(descriptor)
        let error = write_history(path)
        guard error != 0 else { return nil }
        return .historyUnwritable(path: path, reason: String(cString: strerror(error)))
    }

    /// `mkdir -p` with mode 0700: history is private.
    private static func makeDirectories(_ path: String) -> (path: String, errno: Int32)? {
        var prefix = path.hasPrefix("/") ? "" : "."
        for component in path.split(separator: "/") {
            prefix += "/" + component
            if mkdir(prefix, 0o700) != 0, errno != EEXIST { return (prefix, errno) }
        }
        return nil
    }
}
