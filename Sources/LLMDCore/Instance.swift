import LLMDProtocol

/// Which daemon this is: the machine's shared one, or one user's own.
///
/// The defaults follow: paths, and the permissions that let a group reach the system
/// socket. Root runs the system instance unless told otherwise; the system unit passes
/// `--system` because it runs llmd as its own unprivileged user.
public enum Instance: String, Sendable, CaseIterable {
    case system
    case user

    /// `/etc/llmd/llmd.conf`, or `$XDG_CONFIG_HOME/llmd/llmd.conf` (default `~/.config`).
    public func configPath(environment: (String) -> String?) -> String {
        switch self {
        case .system:
            return "/etc/llmd/llmd.conf"
        case .user:
            return Self.baseDirectory("XDG_CONFIG_HOME", default: "/.config", environment: environment) + "/llmd/llmd.conf"
        }
    }

    /// The socket path when neither `--socket`, `$LLMD_SOCKET` nor `Socket=` names one.
    public func socketPath(uid: UInt32, environment: (String) -> String?) -> String {
        switch self {
        case .system: SocketLocation.systemPath
        case .user: SocketLocation.userPath(uid: uid, environment: environment)
        }
    }

    /// Where the event journal lives when neither `--state-dir`, `$STATE_DIRECTORY` (set by
    /// systemd's `StateDirectory=`) nor `StateDirectory=` names a place:
    /// `/var/lib/llmd`, or `$XDG_STATE_HOME/llmd` (default `~/.local/state`).
    public func stateDirectory(environment: (String) -> String?) -> String {
        switch self {
        case .system:
            return "/var/lib/llmd"
        case .user:
            return Self.baseDirectory("XDG_STATE_HOME", default: "/.local/state", environment: environment) + "/llmd"
        }
    }

    /// An XDG base directory: `$variable` when absolute, else `$HOME` + `homeRelative`.
    private static func baseDirectory(
        _ variable: String, default homeRelative: String, environment: (String) -> String?
    ) -> String {
        if let value = environment(variable), value.hasPrefix("/") { return value }
        return (environment("HOME") ?? "") + homeRelative
    }

    /// 0660 so `SocketGroup=` members can connect to the system socket; 0600 for a user.
    public var defaultSocketMode: UInt32 {
        self == .system ? 0o660 : 0o600
    }

    /// Mode for directories the daemon creates on the way to its socket.
    public var directoryMode: UInt32 {
        self == .system ? 0o755 : 0o700
    }
}
