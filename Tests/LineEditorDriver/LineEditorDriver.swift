import Glibc
import LLMDLineEditor
import Synchronization

/// The write end of the pipe through which the SIGINT handler wakes the poll loop.
let interruptPipe = Atomic<Int32>(-1)

/// A `LineEditor` on the terminal at stdin and stdout, for tests to drive through a pty.
///
/// Usage: `LineEditorDriver [HISTORY-FILE]`. Descriptor 3, when open, takes commands, one
/// a line: `print TEXT` (`\n` in TEXT is a newline), `suspend`, `resume`, `discard`,
/// `prompt TEXT`, `history`, `quit`. Descriptor 4 gets reports, one a line: `ready`,
/// `line TEXT`, `end`, `interrupted`, `history A|B|…`, `ack COMMAND`, `closed`, and
/// `error TEXT`. Without them, reports are printed above the prompt, for trying it by hand.
@main
struct LineEditorDriver {
    static let control: Int32 = 3
    static let reports: Int32 = 4

    static func main() {
        // Before the pipe below, which may take descriptors 3 and 4 when they are free.
        let controlled = fcntl(control, F_GETFD) != -1 && fcntl(reports, F_GETFD) != -1
        // The pty becomes the controlling terminal, so Ctrl-C typed into it is a SIGINT.
        _ = ioctl(STDIN_FILENO, UInt(TIOCSCTTY), 0)
        var interrupt: [Int32] = [0, 0]
        guard pipe(&interrupt) == 0 else { fatalError("pipe: \(errno)") }
        interruptPipe.store(interrupt[1], ordering: .relaxed)
        // A closed terminal is seen as the end of input, not as a reason to die.
        signal(SIGHUP, SIG_IGN)
        signal(SIGINT) { _ in
            var byte: UInt8 = 0
            _ = write(interruptPipe.load(ordering: .relaxed), &byte, 1)
        }

        let editor: LineEditor
        do {
            editor = try LineEditor(prompt: "> ", historyFile: CommandLine.arguments.dropFirst().first)
        } catch {
            writeAll("error \(error)\n", to: controlled ? reports : STDERR_FILENO)
            exit(1)
        }
        func report(_ text: String) {
            if controlled {
                writeAll(text + "\n", to: reports)
            } else {
                editor.printAbove("[\(text)]\n")
            }
        }

        report("ready terminal=\(editor.isTerminal)")
        editor.start()
        var suspended = false
        var commands: [UInt8] = []
        loop: while true {
            var descriptors = [
                pollfd(fd: interrupt[0], events: Int16(POLLIN), revents: 0),
                // A negative descriptor is skipped: keys wait while the prompt is suspended.
                pollfd(fd: suspended ? -1 : STDIN_FILENO, events: Int16(POLLIN), revents: 0),
                pollfd(fd: controlled ? control : -1, events: Int16(POLLIN), revents: 0),
            ]
            if poll(&descriptors, nfds_t(descriptors.count), -1) < 0 {
                if errno == EINTR { continue }
                fatalError("poll: \(errno)")
            }
            if descriptors[0].revents != 0 {
                var byte: UInt8 = 0
                _ = read(interrupt[0], &byte, 1)
                editor.discardLine()
                report("interrupted")
            }
            if descriptors[2].revents != 0 {
                var buffer = [UInt8](repeating: 0, count: 4096)
                let count = read(control, &buffer, buffer.count)
                if count <= 0 { break loop }
                commands += buffer[..<count]
                while let newline = commands.firstIndex(of: UInt8(ascii: "\n")) {
                    let command = String(decoding: commands[..<newline], as: UTF8.self)
                    commands.removeSubrange(...newline)
                    let (verb, argument) = split(command)
                    switch verb {
                    case "print": editor.printAbove(argument.replacingEscapedNewlines())
                    case "suspend":
                        editor.suspend()
                        suspended = true
                    case "resume":
                        editor.resume()
                        suspended = false
                    case "discard": editor.discardLine()
                    case "prompt": editor.prompt = argument
                    case "history": report("history " + editor.history.joined(separator: "|"))
                    case "quit": break loop
                    default: report("error unknown command \(command)")
                    }
                    report("ack \(verb)")
                }
            }
            if descriptors[1].revents != 0, let event = editor.readAvailable() {
                switch event {
                case .line(let text): report("line " + text.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\\n"))
                case .endOfInput:
                    report("end")
                    break loop
                }
            }
        }
        do {
            try editor.close()
            report("closed")
        } catch {
            report("error \(error)")
        }
    }

    static func split(_ command: String) -> (verb: String, argument: String) {
        guard let space = command.firstIndex(of: " ") else { return (command, "") }
        return (String(command[..<space]), String(command[command.index(after: space)...]))
    }
}

extension String {
    func replacingEscapedNewlines() -> String {
        split(separator: "\\n", omittingEmptySubsequences: false).joined(separator: "\n")
    }
}
