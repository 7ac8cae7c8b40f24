import Glibc
import LLMDLineEditor
import LLMDTesting
import Testing

/// The editor when input is not a terminal: lines from a pipe as they come, no prompt,
/// history as on a terminal. In-process, so one test at a time: libedit's readline
/// interface is one editor per process.
@Suite("LineEditor on a pipe", .serialized)
struct PlainInputTests {
    /// A pipe with `text` in it, the writing end closed unless `keepOpen`.
    private func pipe(_ text: String, keepOpen: Bool = false) -> (read: Int32, write: Int32) {
        var descriptors: [Int32] = [0, 0]
        precondition(Glibc.pipe(&descriptors) == 0)
        let bytes = Array(text.utf8)
        precondition(bytes.withUnsafeBytes { write(descriptors[1], $0.baseAddress, $0.count) } == bytes.count)
        if !keepOpen { close(descriptors[1]) }
        return (descriptors[0], keepOpen ? descriptors[1] : -1)
    }

    private func isReadable(_ descriptor: Int32) -> Bool {
        var entry = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, 0) == 1
    }

    /// Every event until the end of input, reading whenever the descriptor is readable.
    private func events(from editor: LineEditor) -> [LineEditorEvent] {
        var events: [LineEditorEvent] = []
        while events.last != .endOfInput, events.count < 100 {
            var entry = pollfd(fd: editor.inputDescriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, 5_000) == 1 else { break }
            if let event = editor.readAvailable() { events.append(event) }
        }
        return events
    }

    private func openNull() -> Int32 {
        open("/dev/null", O_WRONLY | O_CLOEXEC)
    }

    @Test("lines come in order, one per read, then the end of input")
    func linesInOrder() throws {
        let input = pipe("one\ntwo\r\n\nlast, unterminated")
        let output = openNull()
        defer {
            close(input.read)
            close(output)
        }
        let editor = try LineEditor(prompt: "> ", historyFile: nil, input: input.read, output: output)
        #expect(!editor.isTerminal)
        editor.start()
        #expect(editor.readAvailable() == .line("one"))
        // The rest waits in the pipe, where poll still sees it.
        #expect(isReadable(input.read))
        #expect(
            events(from: editor) == [.line("two"), .line(""), .line("last, unterminated"), .endOfInput])
        // The prompt is gone until started again, and the pipe stays ended.
        #expect(editor.readAvailable() == nil)
        editor.start()
        #expect(editor.readAvailable() == .endOfInput)
        try editor.close()
    }

    @Test("an unfinished line waits for the rest")
    func unfinishedLine() throws {
        let input = pipe("hal", keepOpen: true)
        let output = openNull()
        defer {
            close(input.read)
            close(output)
        }
        let editor = try LineEditor(prompt: "> ", historyFile: nil, input: input.read, output: output)
        editor.start()
        #expect(editor.readAvailable() == nil)
        _ = "f\n".utf8CString.withUnsafeBytes { write(input.write, $0.baseAddress, 2) }
        close(input.write)
        #expect(events(from: editor) == [.line("half"), .endOfInput])
        try editor.close()
    }

    @Test("nothing is read before start or while suspended")
    func readsOnlyWhilePrompting() throws {
        let input = pipe("one\ntwo\n")
        let output = openNull()
        defer {
            close(input.read)
            close(output)
        }
        let editor = try LineEditor(prompt: "> ", historyFile: nil, input: input.read, output: output)
        #expect(editor.readAvailable() == nil)
        editor.start()
        #expect(editor.readAvailable() == .line("one"))
        editor.suspend()
        #expect(editor.readAvailable() == nil)
        editor.resume()
        #expect(editor.readAvailable() == .line("two"))
        try editor.close()
    }

    @Test("history skips blank and repeated lines, is saved 0600 in new directories, and loads again")
    func historyRoundTrip() throws {
        let directory = try TemporaryDirectory()
        let historyFile = directory.file("a/b/history")
        let lines = ["one", "two", "", "  ", "two", "with  spaces", #"back\slash"#, "tab\there", "émoji 🎉", "one"]
        let input = pipe(lines.joined(separator: "\n") + "\n")
        let output = openNull()
        defer {
            close(input.read)
            close(output)
        }
        let editor = try LineEditor(prompt: "> ", historyFile: historyFile, input: input.read, output: output)
        editor.start()
        #expect(events(from: editor) == lines.map(LineEditorEvent.line) + [.endOfInput])
        let expected = ["one", "two", "with  spaces", #"back\slash"#, "tab\there", "émoji 🎉", "one"]
        #expect(editor.history == expected)
        try editor.close()

        var status = stat()
        #expect(stat(historyFile, &status) == 0)
        #expect(status.st_mode & 0o777 == 0o600)
        #expect(stat(directory.file("a"), &status) == 0)
        #expect(status.st_mode & 0o777 == 0o700)

        let again = try LineEditor(prompt: "> ", historyFile: historyFile, input: input.read, output: output)
        #expect(again.history == expected)
        try again.close()

        let limited = try LineEditor(
            prompt: "> ", historyFile: historyFile, historyLimit: 2, input: input.read, output: output)
        #expect(limited.history == ["émoji 🎉", "one"])
        try limited.close()
    }

    @Test("a file that is not libedit history is refused, and the editor can be opened again")
    func foreignHistoryFile() throws {
        let directory = try TemporaryDirectory()
        let historyFile = try directory.write("bash_history", "ls\ncd /\n")
        let input = pipe("")
        let output = openNull()
        defer {
            close(input.read)
            close(output)
        }
        #expect(throws: LineEditorError.self) {
            try LineEditor(prompt: "> ", historyFile: historyFile, input: input.read, output: output)
        }
        do {
            _ = try LineEditor(prompt: "> ", historyFile: historyFile, input: input.read, output: output)
        } catch {
            #expect(error.code == "history.unreadable")
            #expect(error.description.hasPrefix("history.unreadable: cannot load \(historyFile): "))
        }
        let editor = try LineEditor(prompt: "> ", historyFile: nil, input: input.read, output: output)
        try editor.close()
    }

    @Test("a history file that cannot be written is reported, and the editor is closed anyway")
    func unwritableHistory() throws {
        let directory = try TemporaryDirectory()
        // A file where a directory should be.
        let blocker = try directory.write("file", "")
        let input = pipe("")
        let output = openNull()
        defer {
            close(input.read)
            close(output)
        }
        let editor = try LineEditor(prompt: "> ", historyFile: blocker + "/history", input: input.read, output: output)
        #expect(throws: LineEditorError.historyUnwritable(path: blocker + "/history", reason: "Not a directory")) {
            try editor.close()
        }
        // Closed: another editor may open.
        let next = try LineEditor(prompt: "> ", historyFile: nil, input: input.read, output: output)
        try next.close()
    }

    @Test("printAbove writes text as it is when output is not a terminal")
    func plainOutput() throws {
        let input = pipe("")
        var descriptors: [Int32] = [0, 0]
        precondition(Glibc.pipe(&descriptors) == 0)
        defer {
            close(input.read)
            close(descriptors[0])
        }
        let editor = try LineEditor(prompt: "> ", historyFile: nil, input: input.read, output: descriptors[1])
        editor.start()
        editor.printAbove("tok")
        editor.printAbove("en\n")
        try editor.close()
        close(descriptors[1])
        var buffer = [UInt8](repeating: 0, count: 100)
        let count = read(descriptors[0], &buffer, 100)
        #expect(String(decoding: buffer[..<max(count, 0)], as: UTF8.self) == "token\n")
    }
}
