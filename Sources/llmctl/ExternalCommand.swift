import LLMDLineEditor

#if canImport(Glibc)
import Glibc
#endif

/// A program llmctl runs for its user, the command of `scope` or the hook of `on`: found
/// as a shell finds it, once, before anything is asked of the daemon, so that a slip in
/// its name costs nothing; then run, with posix_spawn, as often as needed.
struct ExternalCommand {
    /// The words given, the program's name first.
    let words: [String]
    /// Where the program was found.
    let path: String

    /// Why the program cannot be run, as llmctl reports it; its exit status is 127, as a
    /// shell's for a command it cannot run.
    struct CannotRun: Error, CustomStringConvertible {
        let description: String
    }

    /// How a run ended.
    enum Termination: Equatable {
        case exited(Int32)
        case signalled(Int32)

        /// As a shell gives it: the exit status, or 128 + the signal.
        var status: Int32 {
            switch self {
            case .exited(let status): status
            case .signalled(let signal): 128 + signal
            }
        }
    }

    /// Finds the program `words[0]` as execvp(3) does: a name with a slash is a path, any
    /// other is looked for in the directories of `PATH` (`/bin:/usr/bin` without it).
    ///
    /// - Throws: when it is nowhere, or not an executable file.
    init(_ words: [String]) throws(CannotRun) {
        self.words = words
        let name = words[0]
        if name.contains("/") {
            let error = Self.executableError(name)
            guard error == 0 else { throw CannotRun(description: "cannot run \(name): \(String(cString: strerror(error)))") }
            path = name
            return
        }
        let directories = getenv("PATH").map { String(cString: $0) } ?? "/bin:/usr/bin"
        for directory in directories.split(separator: ":", omittingEmptySubsequences: false) {
            let candidate = (directory.isEmpty ? "." : String(directory)) + "/" + name
            if !name.isEmpty, Self.executableError(candidate) == 0 {
                path = candidate
                return
            }
        }
        throw CannotRun(description: "cannot run \(name): command not found")
    }

    /// 0 when `path` is a file this user may execute, else why not, as an errno.
    private static func executableError(_ path: String) -> Int32 {
        var information = stat()
        guard stat(path, &information) == 0 else { return errno }
        guard information.st_mode & S_IFMT != S_IFDIR else { return EISDIR }
        return access(path, X_OK) == 0 ? 0 : errno
    }

    /// Runs the program and waits for it to end.
    ///
    /// SIGINT, SIGQUIT and SIGPIPE have their default actions in the program, whatever
    /// llmctl does with them.
    ///
    /// - Parameters:
    ///   - variables: set in its environment, or, when nil, left out of it.
    ///   - input: its standard input, through a pipe; without it, llmctl's.
    /// - Throws: when it cannot be started.
    func run(setting variables: [String: String?], input: String? = nil) throws(CannotRun) -> Termination {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        var pipeEnds: [Int32] = [-1, -1]
        if input != nil {
            guard pipe(&pipeEnds) == 0 else {
                throw CannotRun(description: "cannot run \(words[0]): pipe: \(String(cString: strerror(errno)))")
            }
            // Close-on-exec: later hooks must not inherit them (llmctl starts no other thread).
            for end in pipeEnds { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
            posix_spawn_file_actions_adddup2(&actions, pipeEnds[0], STDIN_FILENO)
        }
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGINT, SIGQUIT, SIGPIPE] { sigaddset(&defaults, signal) }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF))
        var arguments = words.map { strdup($0) } + [nil]
        var environment = Self.environment(setting: variables)
        defer { (arguments + environment).forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, path, &actions, &attributes, &arguments, &environment)
        if input != nil { close(pipeEnds[0]) }
        guard spawned == 0 else {
            if input != nil { close(pipeEnds[1]) }
            throw CannotRun(description: "cannot run \(words[0]): \(String(cString: strerror(spawned)))")
        }
        if let input {
            // A program that does not read it all is no error: writing stops at EPIPE, which
            // needs SIGPIPE ignored in llmctl.
            _ = writeAll(input, to: pipeEnds[1])
            close(pipeEnds[1])
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1, errno == EINTR {}
        // WIFEXITED / WEXITSTATUS / WTERMSIG, which Swift does not import as macros.
        let signalled = status & 0x7f
        return signalled == 0 ? .exited((status >> 8) & 0xff) : .signalled(signalled)
    }

    /// llmctl's environment with `variables` set or, when nil, left out.
    private static func environment(setting variables: [String: String?]) -> [UnsafeMutablePointer<CChar>?] {
        var entries: [UnsafeMutablePointer<CChar>?] = []
        var entry = environ
        while let pointer = entry.pointee {
            let text = String(cString: pointer)
            let name = String(text.prefix { $0 != "=" })
            if variables.index(forKey: name) == nil { entries.append(strdup(pointer)) }
            entry += 1
        }
        for case (let name, let value?) in variables { entries.append(strdup("\(name)=\(value)")) }
        return entries + [nil]
    }
}

extension LLMCtl {
    /// The program `words` name, found; when it cannot be run, llmctl says so and exits 127.
    static func externalCommand(_ words: [String]) -> ExternalCommand {
        do {
            return try ExternalCommand(words)
        } catch {
            Failure.cannotRun(error)
        }
    }
}
