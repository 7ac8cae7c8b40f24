import Glibc
import LLMDTesting
import Testing

/// The editor on a real pseudo-terminal, through LineEditorDriver: what the user types,
/// what the program gets, and what the screen shows (rows with trailing blanks removed,
/// so an empty prompt reads ">").
@Suite("LineEditor on a terminal")
struct TerminalTests {
    /// A started driver showing its empty prompt.
    private func startedSession(arguments: [String] = [], home: TemporaryDirectory, width: Int = 80) throws
        -> DriverSession
    {
        let session = try DriverSession(arguments: arguments, home: home.path, width: width)
        #expect(session.waitForReport("ready terminal=true"), "\(session.reports) \(session.transcript)")
        #expect(session.waitForScreen { $0.lines.last == ">" }, "\(session.transcript)")
        return session
    }

    @Test("a typed line is reported, and the prompt comes back for the next")
    func typedLine() throws {
        let home = try TemporaryDirectory()
        let session = try startedSession(home: home)
        session.type("hello\r")
        #expect(session.waitForReport("line hello"), "\(session.reports)")
        #expect(session.waitForScreen { $0.lines.suffix(2) == ["> hello", ">"] }, "\(session.screen.lines)")
        #expect(session.screen.column == 2)
    }

    @Test("printAbove puts output above the half-typed line, which is then finished where it was")
    func printAboveKeepsTheLine() throws {
        let home = try TemporaryDirectory()
        let session = try startedSession(home: home)
        session.type("hello\r")
        #expect(session.waitForReport("line hello"))
        session.type("par")
        #expect(session.waitForScreen { $0.lines.last == "> par" }, "\(session.screen.lines)")

        #expect(session.command(#"print EVENT\n"#))
        #expect(
            session.waitForScreen { $0.lines.suffix(3) == ["> hello", "EVENT", "> par"] },
            "\(session.screen.lines) \(session.transcript)")
        #expect(session.screen.column == 5)

        session.type("tial\r")
        #expect(session.waitForReport("line partial"), "\(session.reports)")
        #expect(
            session.waitForScreen { $0.lines.suffix(4) == ["> hello", "EVENT", "> partial", ">"] },
            "\(session.screen.lines) \(session.transcript)")
        // Drawn once: lifting the prompt did not write it twice.
        #expect(session.screen.lines.filter { $0.contains("EVENT") }.count == 1)
    }

    @Test("streamed pieces continue their row above the prompt")
    func streamedPieces() throws {
        let home = try TemporaryDirectory()
        let session = try startedSession(home: home)
        session.type("abc")
        #expect(session.waitForScreen { $0.lines.last == "> abc" })

        #expect(session.command("print Hel"))
        #expect(session.waitForScreen { $0.lines.suffix(2) == ["Hel", "> abc"] }, "\(session.screen.lines)")
        #expect(session.command("print lo"))
        #expect(session.command(#"print , world\nnext "#))
        #expect(session.command(#"print row\n"#))
        #expect(
            session.waitForScreen { $0.lines.suffix(3) == ["Hello, world", "next row", "> abc"] },
            "\(session.screen.lines) \(session.transcript)")
        #expect(session.screen.column == 5)

        // A line finished below an unfinished row: what follows goes below the line.
        #expect(session.command("print to be"))
        session.type("\r")
        #expect(session.waitForReport("line abc"))
        #expect(session.command(#"print  continued\n"#))
        #expect(
            session.waitForScreen { $0.lines.suffix(4) == ["to be", "> abc", " continued", ">"] },
            "\(session.screen.lines) \(session.transcript)")
    }

    @Test("a line wrapped over two rows is lifted whole, with the cursor inside it")
    func wrappedLine() throws {
        let home = try TemporaryDirectory()
        let session = try startedSession(home: home)
        let text = String(repeating: "x", count: 90) + String(repeating: "y", count: 10)
        session.type(text)
        #expect(session.waitForScreen { $0.lines.suffix(2) == ["> " + text.prefix(78), String(text.dropFirst(78))] })
        // Thirty to the left: back on the first row, at column 72.
        session.type(String(repeating: "\u{1B}[D", count: 30))
        #expect(session.waitForScreen { $0.column == 72 && $0.row == $0.rows.count - 2 }, "\(session.screen.column)")

        #expect(session.command(#"print EVENT\n"#))
        #expect(
            session.waitForScreen { $0.lines.suffix(3) == ["EVENT", "> " + text.prefix(78), String(text.dropFirst(78))] },
            "\(session.screen.lines) \(session.transcript)")
        #expect(session.screen.column == 72)

        session.type("Z\r")
        var expected = text
        expected.insert("Z", at: expected.index(expected.startIndex, offsetBy: 70))
        #expect(session.waitForReport("line \(expected)"), "\(session.reports)")
    }

    @Test("keys typed while suspended wait, unechoed, and the line comes back on resume")
    func suspendAndResume() throws {
        let home = try TemporaryDirectory()
        let session = try startedSession(home: home)
        session.type("draft")
        #expect(session.waitForScreen { $0.lines.last == "> draft" })

        #expect(session.command("suspend"))
        #expect(session.waitForScreen { !$0.lines.contains("> draft") }, "\(session.screen.lines)")
        session.type("X")
        #expect(session.command(#"print reply, line 1\nreply, "#))
        #expect(session.command(#"print end\n"#))
        #expect(
            session.waitForScreen { $0.lines.suffix(3) == ["reply, line 1", "reply, end", ""] }, "\(session.screen.lines)")
        #expect(!session.screen.lines.joined().contains("X"))

        #expect(session.command("resume"))
        #expect(
            session.waitForScreen { $0.lines.suffix(3) == ["reply, line 1", "reply, end", "> draftX"] },
            "\(session.screen.lines) \(session.transcript)")
        session.type("\r")
        #expect(session.waitForReport("line draftX"), "\(session.reports)")
    }

    @Test("Ctrl-C leaves the abandoned line marked and starts an empty one")
    func interrupt() throws {
        let home = try TemporaryDirectory()
        let session = try startedSession(home: home)
        session.type("junk")
        #expect(session.waitForScreen { $0.lines.last == "> junk" })
        session.type("\u{03}")
        #expect(session.waitForReport("interrupted"), "\(session.reports)")
        #expect(session.waitForScreen { $0.lines.suffix(2) == ["> junk^C", ">"] }, "\(session.screen.lines)")
        session.type("ok\r")
        #expect(session.waitForReport("line ok"), "\(session.reports)")
    }

    @Test("a new prompt is drawn in place of the old one, the line kept")
    func promptChange() throws {
        let home = try TemporaryDirectory()
        let session = try startedSession(home: home)
        session.type("abc")
        #expect(session.waitForScreen { $0.lines.last == "> abc" })
        #expect(session.command("prompt chat> "))
        #expect(session.waitForScreen { $0.lines.last == "chat> abc" }, "\(session.screen.lines)")
        #expect(session.screen.column == 9)
    }

    @Test("a lone ESC holds the loop for half a second at most, and is then dropped")
    func loneEscape() throws {
        let home = try TemporaryDirectory()
        let session = try startedSession(home: home)
        // One write: when "b" shows, ESC is already waiting, and the driver reads it before
        // it polls again, so the command below is seen only after ESC's timeout.
        session.type("ab\u{1B}")
        #expect(session.waitForScreen { $0.lines.last == "> ab" })
        // Without the key reader's timeout, libedit would wait here for the key after ESC,
        // and the driver would not see the command until then.
        #expect(session.command(#"print EVENT\n"#))
        #expect(session.waitForScreen { $0.lines.suffix(2) == ["EVENT", "> ab"] }, "\(session.screen.lines)")
        // "b" comes too late to make ESC b (word left): it is typed as it is.
        session.type("bc\r")
        #expect(session.waitForReport("line abbc"), "\(session.reports)")
        // Together, ESC b is Meta-b, one word left.
        session.type("one two\u{1B}bX\r")
        #expect(session.waitForReport("line one Xtwo"), "\(session.reports)")
    }

    @Test("Ctrl-C on a wrapped line with the cursor on its first row leaves the line whole")
    func interruptWrappedLine() throws {
        let home = try TemporaryDirectory()
        let session = try startedSession(home: home)
        let text = String(repeating: "w", count: 100)
        session.type(text + String(repeating: "\u{1B}[D", count: 50))
        // Ctrl-C is a signal, which overtakes keys still queued: wait for them all.
        #expect(
            session.waitForScreen {
                $0.lines.suffix(2) == ["> " + text.prefix(78), String(text.dropFirst(78))] && $0.column == 52
                    && $0.row == $0.rows.count - 2
            },
            "\(session.screen.lines) \(session.screen.column)")
        session.type("\u{03}")
        #expect(session.waitForReport("interrupted"), "\(session.reports)")
        #expect(
            session.waitForScreen { $0.lines.suffix(3) == ["> " + text.prefix(78), text.dropFirst(78) + "^C", ">"] },
            "\(session.screen.lines) \(session.transcript)")
    }

    @Test("after the terminal is narrowed, the line is drawn again at the new width")
    func resize() throws {
        let home = try TemporaryDirectory()
        let session = try startedSession(home: home)
        let text = String(repeating: "r", count: 50)
        session.type(text)
        #expect(session.waitForScreen { $0.lines.last == "> " + text })
        session.resize(width: 40)
        #expect(session.command(#"print EVENT\n"#))
        #expect(
            session.waitForScreen { $0.lines.suffix(3) == ["EVENT", "> " + text.prefix(38), String(text.dropFirst(38))] },
            "\(session.screen.lines) \(session.transcript)")
        session.type("!\r")
        #expect(session.waitForReport("line \(text)!"), "\(session.reports)")
    }

    @Test("a terminal that hangs up ends input, and the editor closes")
    func hangUp() throws {
        let home = try TemporaryDirectory()
        let session = try startedSession(home: home)
        session.type("half a li")
        #expect(session.waitForScreen { $0.lines.last == "> half a li" })
        session.hangUp()
        #expect(session.waitForReport("end"), "\(session.reports)")
        #expect(session.waitForReport("closed"), "\(session.reports)")
        #expect(session.waitForExit() == 0)
    }

    @Test("non-ASCII text is edited and reported intact")
    func utf8() throws {
        let home = try TemporaryDirectory()
        let session = try startedSession(home: home)
        // Left over "ö" and "é" and back: the editor moves by characters, not bytes.
        session.type("héllo wörld\u{1B}[D\u{1B}[D\u{1B}[D!\r")
        #expect(session.waitForReport("line héllo wö!rld"), "\(session.reports) \(session.transcript)")
    }

    @Test("Ctrl-D on an empty line ends input; history is saved and recalled by the next run")
    func endOfInputAndHistory() throws {
        let home = try TemporaryDirectory()
        let historyFile = home.file("state/llmctl/history")
        let first = try startedSession(arguments: [historyFile], home: home)
        first.type("first\r")
        #expect(first.waitForReport("line first"))
        first.type("second\r")
        #expect(first.waitForReport("line second"))
        first.type("\u{04}")
        #expect(first.waitForReport("end"), "\(first.reports)")
        #expect(first.waitForReport("closed"), "\(first.reports)")
        #expect(first.waitForExit() == 0)
        // The last prompt is taken away, leaving the terminal's next line clean.
        #expect(first.screen.lines.last == "", "\(first.screen.lines) \(first.transcript)")

        var status = stat()
        #expect(stat(historyFile, &status) == 0)
        #expect(status.st_mode & 0o777 == 0o600)

        let second = try startedSession(arguments: [historyFile], home: home)
        #expect(second.command("history"))
        #expect(second.reports.contains("history first|second"), "\(second.reports)")
        // Up twice: the older line.
        second.type("\u{1B}[A\u{1B}[A")
        #expect(second.waitForScreen { $0.lines.last == "> first" }, "\(second.screen.lines)")
        second.type("\r")
        #expect(second.waitForReport("line first"))
    }

    @Test("a paste of several lines is one entry, shown with continuation prompts; typed lines stay apart")
    func pastedLines() throws {
        let home = try TemporaryDirectory()
        let session = try startedSession(home: home)
        // Written at once, as a terminal writes a paste; the last line still unfinished.
        session.type("one\rtwo\rthree")
        #expect(session.waitForScreen { $0.lines.suffix(3) == ["> one", "... two", "... three"] }, "\(session.screen.lines) \(session.reports) \(session.transcript)")
        #expect(session.reports.allSatisfy { !$0.hasPrefix("line") }, "nothing entered before Enter: \(session.reports)")
        session.type("\r")
        #expect(session.waitForReport("line one\\ntwo\\nthree"), "\(session.reports)")
        #expect(session.waitForScreen { $0.lines.last == ">" }, "\(session.screen.lines)")
        session.type("typed\r")
        #expect(session.waitForReport("line typed"), "\(session.reports)")
    }

    @Test("Ctrl-L clears the screen and keeps the half-typed line; output then goes above it")
    func clearScreen() throws {
        let home = try TemporaryDirectory()
        let session = try startedSession(home: home)
        session.type("hello\r")
        #expect(session.waitForReport("line hello"))
        session.type("half")
        session.type("\u{0C}")
        #expect(session.waitForScreen { $0.lines == ["> half"] }, "\(session.screen.lines)")
        #expect(session.command(#"print EVENT\n"#))
        #expect(session.waitForScreen { $0.lines == ["EVENT", "> half"] }, "\(session.screen.lines) \(session.transcript)")
    }
}
