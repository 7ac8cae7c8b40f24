import Foundation

/// A child process started with posix_spawn and reaped with waitpid. It gets only
/// standard input, output and error from the test process.
///
/// Foundation's `Process` learns of a child's exit through a descriptor the child
/// inherits; a launcher such as systemd-socket-activate closes it before exec, and
/// `Process` then blocks its one monitor thread in wait4 on a child that is still
/// running, stalling every other child it watches. Polling waitpid has no such coupling.
public final class ChildProcess: @unchecked Sendable {
    // `pid` is immutable; `termination` is only touched by the test thread that owns the value.
    public let pid: pid_t
    private var termination: Termination?

    public enum Termination: Equatable, Sendable {
        case exited(Int32)
        case signalled(Int32)
    }

    /// - Parameters:
    ///   - outputPath: file receiving both stdout and stderr, or separate files when
    ///     `errorPath` is given.
    public init(
        _ executable: String, _ arguments: [String], environment: [String: String], outputPath: String,
        errorPath: String? = nil
    ) throws {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        if let errorPath {
            posix_spawn_file_actions_addopen(&actions, 2, errorPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        } else {
            posix_spawn_file_actions_adddup2(&actions, 1, 2)
        }
        // Pipes the tests make (a chat's input, say) are not close-on-exec; a daemon that
        // inherited a pipe's write end would keep its reader from ever seeing end of file.
        precondition(addCloseFrom(&actions, 3) == 0, "posix_spawn_file_actions_addclosefrom_np failed")
        // The child starts with no signal blocked and every signal at its default, whatever
        // the spawning thread had: a test runner's worker threads may block SIGTERM, and a
        // child inheriting that would never end on `kill`.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        var defaults = sigset_t()
        sigfillset(&defaults)
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv + envp { free(pointer) }
        }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard status == 0 else { throw POSIXError(POSIXErrorCode(rawValue: status) ?? .EIO) }
        self.pid = pid
    }

    /// Whether the child still runs; reaps it if it has ended.
    public var isRunning: Bool {
        if termination != nil { return false }
        var status: Int32 = 0
        let result = waitpid(pid, &status, WNOHANG)
        guard result == pid else { return result == 0 }
        // WIFEXITED / WEXITSTATUS / WTERMSIG, which Swift does not import as macros.
        termination = status & 0x7F == 0 ? .exited((status >> 8) & 0xFF) : .signalled(status & 0x7F)
        return false
    }

    /// Waits for the child to end; nil when it still runs after `timeout`.
    public func wait(timeout: Duration) -> Termination? {
        _ = waitUntil(timeout: timeout) { !isRunning }
        return termination
    }

    public func send(signal: Int32) {
        if termination == nil { kill(pid, signal) }
    }

    deinit {
        if isRunning {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
    }
}

/// glibc's `posix_spawn_file_actions_addclosefrom_np` (2.34 and later), which its header
/// declares only under _GNU_SOURCE, so Swift's Glibc module does not import it.
private typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
private let addCloseFrom: AddCloseFrom = {
    guard let symbol = dlsym(nil, "posix_spawn_file_actions_addclosefrom_np") else {
        fatalError("glibc 2.34 or later is needed: posix_spawn_file_actions_addclosefrom_np is missing")
    }
    return unsafeBitCast(symbol, to: AddCloseFrom.self)
}()
