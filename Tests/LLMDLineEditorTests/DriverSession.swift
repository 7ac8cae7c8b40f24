import Glibc
import LLMDLineEditor
import LLMDTesting

/// LineEditorDriver on a pseudo-terminal of its own: keys go in through the pty's master
/// side, what it draws comes back there and is replayed on a `ScreenEmulator`, and
/// commands and reports travel on two pipes (its descriptors 3 and 4).
///
/// Every wait polls for a condition up to a deadline, so a test never relies on timing.
/// The driver is killed when the session goes away.
final class DriverSession {
    struct StartError: Error, CustomStringConvertible {
        var description: String
    }

    private(set) var screen: ScreenEmulator
    /// Everything the driver wrote to the terminal.
    private(set) var output: [UInt8] = []
    private(set) var reports: [String] = []
    private var seenReports = 0
    private var reportBytes: [UInt8] = []
    private var exitStatus: Int32?

    /// The pty's master side; -1 once `hangUp()` closed it.
    private var master: Int32
    private let commandPipe: Int32
    private let reportPipe: Int32
    private let pid: pid_t

    /// Starts the driver on a terminal `width` columns wide.
    ///
    /// - Parameter arguments: the driver's: a history file, or nothing.
    init(arguments: [String] = [], home: String, width: Int = 80, height: Int = 24) throws {
        screen = ScreenEmulator(width: width, height: height)
        master = open("/dev/ptmx", O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard master >= 0 else { throw StartError(description: "cannot open /dev/ptmx: errno \(errno)") }
        // TIOCSPTLCK and TIOCGPTN, which Swift does not import (function-like macros): the
        // values of Linux's generic ioctl encoding, as on x86_64 and aarch64.
        var unlock: Int32 = 0
        var number: UInt32 = 0
        guard ioctl(master, 0x4004_5431, &unlock) == 0, ioctl(master, 0x8004_5430, &number) == 0 else {
            Glibc.close(master)
            throw StartError(description: "cannot unlock the pty: errno \(errno)")
        }
        var size = winsize(ws_row: UInt16(height), ws_col: UInt16(width), ws_xpixel: 0, ws_ypixel: 0)
        _ = ioctl(master, UInt(TIOCSWINSZ), &size)

        // High descriptors, closed on exec: the dup2s below cannot overwrite one another,
        // and other tests' children inherit none of them.
        let (commandRead, commandWrite) = Self.makePipe()
        let (reportRead, reportWrite) = Self.makePipe()
        commandPipe = commandWrite
        reportPipe = reportRead

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // Opened after setsid, the pty becomes the driver's controlling terminal: Ctrl-C typed
        // into it is a SIGINT.
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/pts/\(number)", O_RDWR, 0)
        posix_spawn_file_actions_adddup2(&actions, 0, 1)
        posix_spawn_file_actions_adddup2(&actions, 0, 2)
        posix_spawn_file_actions_adddup2(&actions, commandRead, 3)
        posix_spawn_file_actions_adddup2(&actions, reportWrite, 4)
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // The test runs on a thread that blocks signals, which a child inherits: start it with
        // none blocked and SIGINT at its default, as a shell would. 0x80 is POSIX_SPAWN_SETSID,
        // a glibc extension Swift does not see.
        var signals = sigset_t()
        sigemptyset(&signals)
        posix_spawnattr_setsigmask(&attributes, &signals)
        sigaddset(&signals, SIGINT)
        posix_spawnattr_setsigdefault(&attributes, &signals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | 0x80))

        let executable = binDirectory + "/LineEditorDriver"
        // HOME keeps the user's ~/.editrc out.
        let environment = ["TERM=xterm", "LC_ALL=C.UTF-8", "HOME=\(home)", "PATH=/usr/bin:/bin"]
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = environment.map { strdup($0) } + [nil]
        defer {
            for pointer in argv + envp { free(pointer) }
        }
        var pid: pid_t = 0
        let status = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        Glibc.close(commandRead)
        Glibc.close(reportWrite)
        guard status == 0 else {
            for descriptor in [master, commandWrite, reportRead] { Glibc.close(descriptor) }
            throw StartError(description: "cannot start \(executable): errno \(status)")
        }
        self.pid = pid
    }

    deinit {
        if exitStatus == nil {
            kill(pid, SIGKILL)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
        for descriptor in [master, commandPipe, reportPipe] where descriptor >= 0 { Glibc.close(descriptor) }
    }

    /// Closes the terminal, as a user closing the window does.
    func hangUp() {
        Glibc.close(master)
        master = -1
    }

    /// Types `keys` as a user would: the terminal turns them into the driver's input.
    func type(_ keys: String) {
        writeAll(keys, to: master)
    }

    /// Changes the terminal's size, as a user resizing the window does.
    func resize(width: Int, height: Int = 24) {
        var size = winsize(ws_row: UInt16(height), ws_col: UInt16(width), ws_xpixel: 0, ws_ypixel: 0)
        _ = ioctl(master, UInt(TIOCSWINSZ), &size)
        screen.resize(width: width, height: height)
    }

    /// Sends a command and waits for the driver to acknowledge it.
    @discardableResult
    func command(_ command: String) -> Bool {
        writeAll(command + "\n", to: commandPipe)
        let verb = command.split(separator: " ").first.map(String.init) ?? command
        return waitForReport("ack \(verb)")
    }

    /// Waits for a report after the ones waited for already.
    func waitForReport(_ expected: String, timeout: Duration = .seconds(10)) -> Bool {
        waitFor(timeout: timeout) {
            guard let index = reports[seenReports...].firstIndex(of: expected) else { return false }
            seenReports = index + 1
            return true
        }
    }

    /// Waits for the screen to satisfy `condition`.
    func waitForScreen(timeout: Duration = .seconds(10), _ condition: (ScreenEmulator) -> Bool) -> Bool {
        waitFor(timeout: timeout) { condition(screen) }
    }

    /// Waits for the driver to exit; its exit status, or nil on a signal or the deadline.
    func waitForExit(timeout: Duration = .seconds(10)) -> Int32? {
        _ = waitFor(timeout: timeout) {
            var status: Int32 = 0
            guard waitpid(pid, &status, WNOHANG) == pid else { return false }
            // WIFEXITED and WEXITSTATUS, which Swift does not import as macros.
            exitStatus = status & 0x7F == 0 ? (status >> 8) & 0xFF : -1
            return true
        }
        // What it wrote last, before the pty went away.
        pump(for: .milliseconds(0))
        return exitStatus.flatMap { $0 >= 0 ? $0 : nil }
    }

    /// What the driver wrote, as text, for failure messages.
    var transcript: String {
        String(decoding: output, as: UTF8.self).debugDescription
    }

    private func waitFor(timeout: Duration, _ condition: () -> Bool) -> Bool {
        let deadline = ContinuousClock.now + timeout
        while true {
            if condition() { return true }
            guard ContinuousClock.now < deadline else { return false }
            pump(for: .milliseconds(50))
        }
    }

    /// Reads what the terminal and the report pipe have, waiting up to `duration` for some.
    private func pump(for duration: Duration) {
        // poll skips a negative descriptor.
        var descriptors = [
            pollfd(fd: master, events: Int16(POLLIN), revents: 0),
            pollfd(fd: reportPipe, events: Int16(POLLIN), revents: 0),
        ]
        let (seconds, attoseconds) = duration.components
        guard poll(&descriptors, 2, Int32(seconds * 1000 + attoseconds / 1_000_000_000_000_000)) > 0 else { return }
        var buffer = [UInt8](repeating: 0, count: 65536)
        if descriptors[0].revents != 0 {
            // EIO once the driver has exited and closed its side.
            let count = read(master, &buffer, buffer.count)
            if count > 0 {
                output += buffer[..<count]
                screen.feed(buffer[..<count])
            }
        }
        if descriptors[1].revents != 0 {
            let count = read(reportPipe, &buffer, buffer.count)
            if count > 0 {
                reportBytes += buffer[..<count]
                while let newline = reportBytes.firstIndex(of: UInt8(ascii: "\n")) {
                    reports.append(String(decoding: reportBytes[..<newline], as: UTF8.self))
                    reportBytes.removeSubrange(...newline)
                }
            }
        }
    }

    private static func makePipe() -> (read: Int32, write: Int32) {
        var descriptors: [Int32] = [0, 0]
        precondition(pipe(&descriptors) == 0, "pipe: errno \(errno)")
        let read = fcntl(descriptors[0], F_DUPFD_CLOEXEC, 10)
        let write = fcntl(descriptors[1], F_DUPFD_CLOEXEC, 10)
        Glibc.close(descriptors[0])
        Glibc.close(descriptors[1])
        return (read, write)
    }
}
