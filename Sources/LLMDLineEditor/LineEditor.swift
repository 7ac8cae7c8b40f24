import CEditLine
import Glibc
import Synchronization

/// What the user did at the prompt.
public enum LineEditorEvent: Sendable, Equatable {
    /// A finished line, without its line end.
    case line(String)
    /// Ctrl-D on an empty line, the end of piped input, or a terminal that hung up.
    case endOfInput
}

/// Lines libedit hands to its line callback, a C function that cannot capture the editor.
private let finishedLines = Mutex<[LineEditorEvent]>([])

/// Whether a `LineEditor` is open: libedit's readline interface is one editor per process.
private let editorIsOpen = Atomic<Bool>(false)

/// A prompt with line editing and history over libedit, for a program with its own poll loop.
///
/// The program polls `inputDescriptor` beside its sockets and calls `readAvailable()` when
/// it is readable; libedit's callback interface then handles the keys without blocking.
/// Output that arrives meanwhile (another participant's turn, streamed tokens) goes
/// through `printAbove(_:)`, which lifts the prompt and the half-typed line out of the way
/// and puts them back below. Everything the program writes while the editor is open
/// should go that way, even while suspended: it keeps track of where the last row of
/// output stopped, and stdout's own buffer would reorder text.
///
/// When input or output is not a terminal (a pipe, a file, TERM=dumb, an echo-less
/// terminal), libedit is not used for reading: lines come from the descriptor as they
/// are, with no prompt and no echo. History works the same in both cases.
///
/// Not thread-safe: one thread owns the editor, and one editor may be open at a time,
/// because libedit's readline interface keeps one editor in C globals. Ctrl-C is the
/// program's: libedit's own signal handlers are off, and the program's SIGINT handler
/// should only note the signal for the loop to call `discardLine()`.
public final class LineEditor {
    /// What to poll for key presses or piped lines.
    public let inputDescriptor: Int32
    /// Where the prompt, the line being edited and `printAbove` text go.
    public let outputDescriptor: Int32
    /// Whether both descriptors are a terminal libedit edits on; false for plain lines.
    public let isTerminal: Bool
    /// Loaded at init and saved by `close()`; nil keeps history in memory only.
    public let historyFile: String?

    /// The prompt; changing it while shown redraws it.
    public var prompt: String {
        didSet { promptChanged(from: oldValue) }
    }

    private enum State {
        /// No prompt: before `start()`, or after the end of input.
        case idle
        /// The prompt is shown and keys are read.
        case prompting
        /// The prompt is hidden; keys wait in the terminal until `resume()`.
        case suspended
        case closed
    }

    private var state = State.idle
    /// Where the last row written above the prompt stopped.
    private var tail = OutputTail()
    /// `discardLine()` came while suspended: `resume()` starts an empty line.
    private var discardWhenResumed = false
    /// libedit's streams, on duplicates of the descriptors so that fclose leaves the
    /// caller's descriptors open.
    private let inputStream: UnsafeMutablePointer<FILE>
    private let outputStream: UnsafeMutablePointer<FILE>
    /// Plain input: the bytes of the unfinished line, and whether the descriptor ended.
    private var partialLine: [UInt8] = []
    /// Lines this editor added to history, which `close()` appends to the file as it is
    /// then, so shells that share a history file keep each other's lines.
    private var recorded: [String] = []
    /// The lines of a paste read so far, which `readAvailable()` returns as one entry.
    private var pastedLines: [String] = []
    private var reachedEnd = false

    /// Opens an editor and loads its history.
    ///
    /// Takes libedit's one editor: opening a second before closing the first is a
    /// programming error and stops the program. On a terminal it sets LC_CTYPE from the
    /// environment when the program left it at "C": libedit keeps the line in wide
    /// characters and turns them into UTF-8, and measures their width, by the locale.
    ///
    /// - Parameters:
    ///   - historyFile: a libedit history file; read if it exists, written by `close()`.
    ///   - historyLimit: how many entries history keeps, oldest dropped first.
    ///   - input: the descriptor keys or lines come from; the caller keeps it open.
    ///   - output: the descriptor the editor writes to; the caller keeps it open.
    /// - Throws: `LineEditorError.historyUnreadable` when the history file exists but
    ///   cannot be loaded; the editor is then not open.
    public init(
        prompt: String, historyFile: String?, historyLimit: Int = 1000, input: Int32 = STDIN_FILENO,
        output: Int32 = STDOUT_FILENO
    ) throws(LineEditorError) {
        precondition(historyLimit > 0, "historyLimit must be positive")
        let (claimed, _) = editorIsOpen.compareExchange(
            expected: false, desired: true, ordering: .acquiringAndReleasing)
        precondition(claimed, "one LineEditor at a time: libedit's readline interface is global")

        self.prompt = prompt
        self.historyFile = historyFile
        inputDescriptor = input
        outputDescriptor = output
        isTerminal = Self.isEditableTerminal(input: input, output: output)
        if isTerminal, String(cString: setlocale(LC_CTYPE, nil)) == "C" {
            setlocale(LC_CTYPE, "")
        }
        // Closed on exec: a pager or editor the program starts gets only its own descriptors.
        guard let inputStream = fdopen(fcntl(input, F_DUPFD_CLOEXEC, 0), "r"),
            let outputStream = fdopen(fcntl(output, F_DUPFD_CLOEXEC, 0), "w")
        else {
            fatalError("cannot open streams on descriptors \(input) and \(output): \(String(cString: strerror(errno)))")
        }
        self.inputStream = inputStream
        self.outputStream = outputStream

        llmd_rl_configure(inputStream, outputStream) { stream in KeyReader.readKey(stream) }
        // A new libedit editor with an empty history, whatever an earlier LineEditor left.
        rl_initialize()
        finishedLines.withLock { $0.removeAll() }
        stifle_history(Int32(clamping: historyLimit))
        if let historyFile, let failure = HistoryFile.load(historyFile) {
            release()
            throw failure
        }
    }

    deinit {
        try? close()
    }

    /// Everything in history, oldest first.
    public var history: [String] {
        guard let list = history_list() else { return [] }
        var entries: [String] = []
        var index = 0
        while let entry = list[index] {
            entries.append(String(cString: entry.pointee.line))
            index += 1
        }
        return entries
    }

    /// Shows the prompt and starts reading keys.
    ///
    /// Also what to call after `.endOfInput` to go on reading: Ctrl-D may mean "not now".
    /// Piped input that ended stays ended.
    public func start() {
        guard state == .idle else { return }
        state = .prompting
        guard isTerminal else { return }
        if tail.isOpen { emit("\r\n") }
        installHandler()
    }

    /// Reads what the input has: call it when `inputDescriptor` is readable.
    ///
    /// Returns at most one event and leaves later keys or lines in the descriptor, so a
    /// program that suspends after a line stops reading simply by not polling; typed-ahead
    /// lines then wait their turn. After `.line` the prompt is shown again at once, empty;
    /// after `.endOfInput` it is gone until `start()`.
    ///
    /// - Returns: nil while the line is unfinished, or when not prompting.
    public func readAvailable() -> LineEditorEvent? {
        guard state == .prompting else { return nil }
        return isTerminal ? readKeys() : readPlainLine()
    }

    /// Writes `text` above the prompt and the line being edited, which stay as they were.
    ///
    /// `text` need not end with a newline: the next call continues its last row, so
    /// streamed tokens can be printed as they come. Works whether the prompt is shown or
    /// not, and on plain output writes `text` as it is.
    public func printAbove(_ text: String) {
        guard state != .closed, !text.isEmpty else { return }
        guard isTerminal else { return emit(text) }
        if state == .prompting {
            followTerminalSize()
            moveToOutput()
        }
        emit(text)
        tail.add(text, columns: columns)
        if state == .prompting { redraw() }
    }

    /// Hides the prompt and the line being edited, which `resume()` brings back as they were.
    ///
    /// For the time a reply streams: keys typed meanwhile wait in the terminal, unechoed, and
    /// the program should not poll `inputDescriptor` until it resumes.
    public func suspend() {
        guard state == .prompting else { return }
        state = .suspended
        if isTerminal { moveToOutput() }
    }

    /// Shows the prompt again below whatever was printed while suspended.
    public func resume() {
        guard state == .suspended else { return }
        state = .prompting
        guard isTerminal else { return }
        followTerminalSize()
        if discardWhenResumed {
            discardWhenResumed = false
            if tail.isOpen { emit("\r\n") }
            tail = OutputTail()
            restartLine()
        } else {
            redraw()
        }
    }

    /// Abandons the line being edited for a fresh prompt, as shells do on Ctrl-C.
    ///
    /// The abandoned text stays on screen, followed by `^C`; while suspended, the line is
    /// dropped when `resume()` shows the prompt. Call it from the poll loop, never from
    /// the signal handler: it writes to the terminal and calls into libedit.
    public func discardLine() {
        partialLine.removeAll()
        guard isTerminal else { return }
        switch state {
        case .prompting:
            let line = editedLine()
            let cursor = layout(prompt: prompt, line: line.beforeCursor)
            let end = layout(prompt: prompt, line: line.text)
            var sequence = "\r"
            if end.row > cursor.row { sequence += "\u{1B}[\(end.row - cursor.row)B" }
            if end.column > 0 { sequence += "\u{1B}[\(end.column)C" }
            emit(sequence + "^C\r\n")
            // The prompt no longer sits right below the last row of output.
            tail = OutputTail()
            restartLine()
        case .suspended:
            discardWhenResumed = true
        case .idle, .closed:
            break
        }
    }

    /// Takes the prompt away, gives the terminal back as it was, and saves history.
    ///
    /// The editor is closed even when saving fails. Calling it again does nothing; the
    /// editor's deinit calls it, without a way to report that saving failed.
    ///
    /// - Throws: `LineEditorError.historyUnwritable` when the history file or its
    ///   directories could not be written.
    public func close() throws(LineEditorError) {
        guard state != .closed else { return }
        if isTerminal {
            if state == .prompting { moveToOutput() }
            if tail.isOpen { emit("\r\n") }
            // libedit's cooked mode: the terminal's modes from before the editor.
            rl_callback_handler_remove()
        }
        state = .closed
        let failure = historyFile.flatMap { HistoryFile.save($0, appending: recorded) }
        release()
        if let failure { throw failure }
    }

    // MARK: Terminal input

    private func readKeys() -> LineEditorEvent? {
        followTerminalSize()
        var available = bytesAvailable()
        if available == 0 {
            // Readable with nothing to read: the terminal hung up.
            return hungUp() ? endInput() : nil
        }
        while available > 0 {
            // One key, sometimes a few bytes of it (an escape sequence, a UTF-8 character).
            rl_callback_read_char()
            if KeyReader.takeClearScreen() {
                // libedit cleared the screen and drew the prompt at the top: no row is open.
                tail = OutputTail()
            }
            if let event = finishedLines.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) {
                switch event {
                case .line(let text):
                    // The finished line now sits between earlier output and the prompt.
                    tail = OutputTail()
                    // Keys already waiting behind a line's end came faster than anyone types:
                    // a paste. Its lines make one entry, finished by the line end after which
                    // nothing waits (the last pasted line, or Enter after it).
                    pastedLines.append(text)
                    let pasting = bytesAvailable() > 0
                    // libedit has moved below the line and left its callback mode, which the
                    // next read would spend blocked in a whole-line read: enter it again.
                    installHandler(prompt: pasting ? continuationPrompt : prompt)
                    guard !pasting else { break }
                    let entry = pastedLines.joined(separator: "\n")
                    pastedLines.removeAll()
                    record(entry)
                    return .line(entry)
                case .endOfInput:
                    pastedLines.removeAll()
                    return endInput()
                }
            }
            available = bytesAvailable()
        }
        return nil
    }

    private func endInput() -> LineEditorEvent {
        // Ctrl-D leaves the cursor after the prompt; take the prompt away, leaving the cursor
        // at the start of an empty row.
        let cursor = layout(prompt: prompt, line: "")
        emit("\r" + (cursor.row > 0 ? "\u{1B}[\(cursor.row)A" : "") + "\u{1B}[J")
        tail = OutputTail()
        rl_callback_handler_remove()
        state = .idle
        return .endOfInput
    }

    private func installHandler(prompt: String? = nil) {
        rl_callback_handler_install(prompt ?? self.prompt) { line in LineEditor.receive(line) }
    }

    /// The prompt under the first line of a paste, as shells show a continued command,
    /// ending where the prompt ends.
    private var continuationPrompt: String {
        String(repeating: " ", count: max(0, prompt.count - 4)) + "... "
    }

    /// libedit's line callback: a finished line, or NULL for Ctrl-D on an empty line.
    private static func receive(_ line: UnsafeMutablePointer<CChar>?) {
        let event: LineEditorEvent
        if let line {
            event = .line(String(cString: line))
            free(line)
        } else {
            event = .endOfInput
        }
        finishedLines.withLock { $0.append(event) }
    }

    /// An empty line under a fresh prompt: entering callback mode resets libedit's line,
    /// which its readline interface offers no other way to clear (`rl_replace_line` with
    /// an empty string does nothing).
    private func restartLine() {
        rl_callback_handler_remove()
        installHandler()
    }

    private func bytesAvailable() -> Int32 {
        var count: Int32 = 0
        return ioctl(inputDescriptor, UInt(FIONREAD), &count) == 0 ? count : 0
    }

    private func hungUp() -> Bool {
        var descriptor = pollfd(fd: inputDescriptor, events: Int16(POLLIN), revents: 0)
        guard poll(&descriptor, 1, 0) == 1 else { return false }
        return descriptor.revents & Int16(POLLHUP | POLLERR | POLLNVAL) != 0
    }

    // MARK: Plain input

    /// One line from a pipe or file, read a byte at a time: whatever follows the newline
    /// stays in the descriptor, where the caller's poll still sees it.
    private func readPlainLine() -> LineEditorEvent? {
        if reachedEnd { return endPlainInput() }
        while isReadable() {
            var byte: UInt8 = 0
            let count = read(inputDescriptor, &byte, 1)
            if count < 0, errno == EINTR || errno == EAGAIN { return nil }
            if count <= 0 {
                reachedEnd = true
                return partialLine.isEmpty ? endPlainInput() : finishPlainLine()
            }
            if byte == UInt8(ascii: "\n") { return finishPlainLine() }
            partialLine.append(byte)
        }
        return nil
    }

    private func endPlainInput() -> LineEditorEvent {
        state = .idle
        return .endOfInput
    }

    private func finishPlainLine() -> LineEditorEvent {
        if partialLine.last == UInt8(ascii: "\r") { partialLine.removeLast() }
        let line = String(decoding: partialLine, as: UTF8.self)
        partialLine.removeAll()
        record(line)
        return .line(line)
    }

    private func isReadable() -> Bool {
        var descriptor = pollfd(fd: inputDescriptor, events: Int16(POLLIN), revents: 0)
        return poll(&descriptor, 1, 0) == 1
    }

    // MARK: Drawing

    /// Erases the prompt and the line being edited, leaving the cursor where output goes
    /// next: after the unfinished last row of earlier output, or at the prompt's first row.
    private func moveToOutput() {
        var up = layout(prompt: prompt, line: editedLine().beforeCursor).row
        var column = 0
        if tail.isOpen, !tail.pendingWrap {
            up += 1
            column = tail.column
        }
        var sequence = "\r"
        if up > 0 { sequence += "\u{1B}[\(up)A" }
        if column > 0 { sequence += "\u{1B}[\(column)C" }
        emit(sequence + "\u{1B}[J")
    }

    /// Draws the prompt and the line being edited below the output, the cursor where it was.
    private func redraw() {
        if tail.isOpen { emit("\r\n") }
        // libedit forgets what the screen shows and draws the whole line from column 0.
        rl_forced_update_display()
    }

    private func promptChanged(from oldPrompt: String) {
        guard isTerminal, state == .prompting || state == .suspended else { return }
        if state == .prompting {
            let cursor = layout(prompt: oldPrompt, line: editedLine().beforeCursor)
            emit("\r" + (cursor.row > 0 ? "\u{1B}[\(cursor.row)A" : "") + "\u{1B}[J")
        }
        rl_set_prompt(prompt)
        if state == .prompting { rl_forced_update_display() }
    }

    /// Lets libedit and the layout know the terminal's width when it changed: libedit's
    /// own SIGWINCH handler is off with the others.
    private func followTerminalSize() {
        var size = winsize()
        guard ioctl(outputDescriptor, UInt(TIOCGWINSZ), &size) == 0, size.ws_col > 0,
            Int(size.ws_col) != columns
        else { return }
        // Erase what was drawn at the old width, then draw again at the new one. A terminal
        // that reflowed the rows already may keep a stale row above.
        let shown = state == .prompting
        if shown {
            let cursor = layout(prompt: prompt, line: editedLine().beforeCursor)
            emit("\r" + (cursor.row > 0 ? "\u{1B}[\(cursor.row)A" : "") + "\u{1B}[J")
        }
        rl_resize_terminal()
        if shown { rl_forced_update_display() }
    }

    /// The width libedit lays its line out in.
    private var columns: Int {
        var rows: Int32 = 0
        var columns: Int32 = 0
        rl_get_screen_size(&rows, &columns)
        return Int(max(columns, 1))
    }

    /// The line libedit is editing, whole and up to the cursor (rl_point counts bytes).
    private func editedLine() -> (text: String, beforeCursor: String) {
        guard let buffer = llmd_rl_line_buffer() else { return ("", "") }
        let end = max(Int(llmd_rl_end()), 0)
        let point = min(max(Int(llmd_rl_point()), 0), end)
        let bytes = UnsafeRawBufferPointer(start: buffer, count: end)
        return (String(decoding: bytes, as: UTF8.self), String(decoding: bytes.prefix(point), as: UTF8.self))
    }

    /// Where libedit's cursor is after drawing `prompt` and then `line`.
    private func layout(prompt: String, line: String) -> TerminalLayout {
        var layout = TerminalLayout(columns: columns)
        layout.addPrompt(prompt)
        layout.addEdited(line.unicodeScalars)
        return layout
    }

    /// Writes past libedit's buffered stream, after flushing it so the order holds.
    private func emit(_ text: String) {
        fflush(outputStream)
        // A terminal that hung up takes nothing more; the next read reports the end.
        writeAll(text, to: outputDescriptor)
    }

    // MARK: History and the process-wide editor

    /// Adds a line unless it is blank or repeats the one before, as shells' ignoredups does.
    private func record(_ line: String) {
        guard !line.allSatisfy(\.isWhitespace), line != history.last else { return }
        add_history(line)
        recorded.append(line)
    }

    /// Closes libedit's streams and lets the next editor open. libedit's editor stays
    /// until then; the next `rl_initialize` replaces it.
    private func release() {
        state = .closed
        fclose(inputStream)
        fclose(outputStream)
        editorIsOpen.store(false, ordering: .releasing)
    }

    private static func isEditableTerminal(input: Int32, output: Int32) -> Bool {
        guard isatty(input) == 1, isatty(output) == 1 else { return false }
        // libedit draws with the terminal's escape sequences, and so does printAbove.
        guard let term = getenv("TERM"), String(cString: term) != "dumb" else { return false }
        var modes = termios()
        guard tcgetattr(input, &modes) == 0 else { return false }
        // libedit's rl_initialize turns editing off without echo (e.g. an Emacs shell buffer).
        return modes.c_lflag & tcflag_t(ECHO) != 0
    }
}
