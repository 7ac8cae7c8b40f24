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

    /// Other daemons' sockets a client may have meant when nothing listens on `tried`, most
    /// likely first: the system instance's, the user's own (for root too, where
    /// `$XDG_RUNTIME_DIR` says), then, for root, every user's own daemon. Only those that
    /// exist.
    ///
    /// - Parameter userRuntimeDirectories: the directories under `/run/user` (injectable
    ///   for tests).
    public static func alternatives(
        to tried: String,
        uid: UInt32 = geteuid(),
        environment: (String) -> String? = processEnvironment,
        socketExists: (String) -> Bool = { access($0, F_OK) == 0 },
        userRuntimeDirectories: () -> [String] = SocketLocation.userRuntimeDirectories
    ) -> [String] {
        var candidates = [systemPath, userPath(uid: uid, environment: environment)]
        if uid == 0 { candidates += userRuntimeDirectories().sorted().map { $0 + "/llmd/llmd.sock" } }
        var seen: Set<String> = [tried]
        return candidates.filter { seen.insert($0).inserted && socketExists($0) }
    }

    /// The users' runtime directories, `/run/user/UID`, as listed.
    public static func userRuntimeDirectories() -> [String] {
        guard let directory = opendir("/run/user") else { return [] }
        defer { closedir(directory) }
        var names: [String] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if !name.hasPrefix(".") { names.append("/run/user/" + name) }
        }
        return names
    }

    /// Reads this process's environment.
    public static func processEnvironment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }
}
