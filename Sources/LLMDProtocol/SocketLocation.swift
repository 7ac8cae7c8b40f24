#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Where daemon and clients meet: the rule both sides share to find the socket.
///
/// `--socket` wins, then `$LLMD_SOCKET`, then the daemon's `Socket=` setting (the daemon
/// only), then the default: `/run/llmd/llmd.sock` for root (the system instance) and
/// `$XDG_RUNTIME_DIR/llmd/llmd.sock` for anyone else.
public enum SocketLocation {
    public static let environmentVariable = "LLMD_SOCKET"
    public static let systemPath = "/run/llmd/llmd.sock"

    /// The default for a process with effective uid `uid`.
    ///
    /// - Parameter environment: looks up an environment variable (injectable for tests).
    public static func defaultPath(uid: UInt32, environment: (String) -> String?) -> String {
        if uid == 0 { return systemPath }
        let runtimeDirectory = environment("XDG_RUNTIME_DIR").flatMap { $0.isEmpty ? nil : $0 } ?? "/run/user/\(uid)"
        return runtimeDirectory + "/llmd/llmd.sock"
    }

    /// The socket a client should use: the explicit path, else `$LLMD_SOCKET`, else the default.
    public static func resolve(explicit: String?, environment: (String) -> String? = processEnvironment) -> String {
        if let explicit, !explicit.isEmpty { return explicit }
        if let fromEnvironment = environment(environmentVariable), !fromEnvironment.isEmpty { return fromEnvironment }
        return defaultPath(uid: geteuid(), environment: environment)
    }

    /// Reads this process's environment.
    public static func processEnvironment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }
}
