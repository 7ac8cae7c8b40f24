#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// Where daemon and clients meet: the rule both sides share to find the socket.
///
/// `--socket` wins, then `$LLMD_SOCKET`, then (daemon only) the `Socket=` setting, then
/// the instance's default: `/run/llmd/llmd.sock` for the system instance,
/// `$XDG_RUNTIME_DIR/llmd/llmd.sock` for a user's.
public enum SocketLocation {
    public static let environmentVariable = "LLMD_SOCKET"
    public static let systemPath = "/run/llmd/llmd.sock"

    /// The socket of user `uid`'s own daemon.
    ///
    /// - Parameter environment: looks up an environment variable (injectable for tests).
    public static func userPath(uid: UInt32, environment: (String) -> String?) -> String {
        let runtimeDirectory = environment("XDG_RUNTIME_DIR").flatMap { $0.isEmpty ? nil : $0 } ?? "/run/user/\(uid)"
        return runtimeDirectory + "/llmd/llmd.sock"
    }

    /// The socket a client should use: the explicit path, else `$LLMD_SOCKET`; else, for
    /// root, the system socket; else the user's own daemon when its socket exists, the
    /// system instance when only that one exists, and the user's path when neither does
    /// (so the error names the daemon the user most likely meant to start).
    public static func resolve(
        explicit: String?,
        uid: UInt32 = geteuid(),
        environment: (String) -> String? = processEnvironment,
        socketExists: (String) -> Bool = { access($0, F_OK) == 0 }
    ) -> String {
        if let explicit, !explicit.isEmpty { return explicit }
        if let fromEnvironment = environment(environmentVariable), !fromEnvironment.isEmpty { return fromEnvironment }
        if uid == 0 { return systemPath }
        let user = userPath(uid: uid, environment: environment)
        if !socketExists(user), socketExists(systemPath) { return systemPath }
        return user
    }

    /// Reads this process's environment.
    public static func processEnvironment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }
}
