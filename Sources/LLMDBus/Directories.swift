#if canImport(Glibc)
import Glibc
#endif

/// `mkdir -p`: creates `path` and whatever parents it lacks, each with `mode`.
///
/// - Returns: nil on success, else the directory that could not be made and why.
package func makeDirectories(_ path: String, mode: UInt32) -> (path: String, errno: Int32)? {
    // A relative path stays relative: its first component has no slash before it.
    var prefix = path.hasPrefix("/") ? "/" : ""
    for component in path.split(separator: "/") {
        prefix += (prefix.isEmpty || prefix == "/" ? "" : "/") + component
        if mkdir(prefix, mode_t(mode)) != 0, errno != EEXIST { return (prefix, errno) }
    }
    return nil
}

/// Creates the state directory when missing and `name` in it, readable by the daemon and
/// its group only: the files hold prompts and replies.
///
/// - Returns: the file's path, for SQLite to open.
package func privateStateFile(_ name: String, in stateDirectory: String) throws(EventSetupError) -> String {
    if let failure = makeDirectories(stateDirectory, mode: 0o750) {
        throw EventSetupError(
            message: "cannot create the state directory \(failure.path): \(String(cString: strerror(failure.errno)))")
    }
    let path = stateDirectory + "/" + name
    let descriptor = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0o640)
    if descriptor >= 0 { close(descriptor) }
    return path
}
