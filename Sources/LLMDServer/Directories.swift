#if canImport(Glibc)
import Glibc
#endif

/// `mkdir -p`: creates `path` and whatever parents it lacks, each with `mode`.
///
/// - Returns: nil on success, else the directory that could not be made and why.
func makeDirectories(_ path: String, mode: UInt32) -> (path: String, errno: Int32)? {
    var prefix = ""
    for component in path.split(separator: "/") {
        prefix += "/" + component
        if mkdir(prefix, mode_t(mode)) != 0, errno != EEXIST { return (prefix, errno) }
    }
    return nil
}
