import Testing

@testable import LLMDLineEditor

@Suite("Terminal layout")
struct TerminalLayoutTests {
    /// The cursor's row and column after `prompt` and `line`.
    private func layout(_ prompt: String, _ line: String, columns: Int = 10) -> [Int] {
        var layout = TerminalLayout(columns: columns)
        layout.addPrompt(prompt)
        layout.addEdited(line.unicodeScalars)
        return [layout.row, layout.column]
    }

    @Test("text wraps at the right edge; a full row puts the cursor at the next row's start")
    func wrapping() {
        #expect(layout("> ", "abc") == [0, 5])
        #expect(layout("> ", "abcdefgh") == [1, 0])
        #expect(layout("> ", "abcdefghijk") == [1, 3])
        #expect(layout("> ", String(repeating: "x", count: 28)) == [3, 0])
    }

    @Test("escape sequences between readline's markers take no room in the prompt")
    func promptMarkers() {
        #expect(layout("\u{1}\u{1B}[1;32m\u{2}> \u{1}\u{1B}[0m\u{2}", "ab") == [0, 4])
    }

    @Test("control characters show as ^X, tabs pad to a multiple of 8")
    func controlsAndTabs() {
        #expect(layout("> ", "\u{7}a") == [0, 5])
        #expect(layout("> ", "a\tb") == [0, 9])
    }

    @Test("a wide character that does not fit starts the next row")
    func wideCharacters() {
        // Widths as wcwidth gives them under a UTF-8 locale; the test process keeps "C".
        var layout = TerminalLayout(columns: 10)
        for _ in 0..<9 { layout.advance(1) }
        layout.advance(2)
        #expect([layout.row, layout.column] == [1, 2])
        layout.advance(2)
        #expect([layout.row, layout.column] == [1, 4])
    }

    @Test("output's last row: pieces continue it, a newline ends it, a full row wraps")
    func outputTail() {
        var tail = OutputTail()
        tail.add("Hel", columns: 10)
        #expect(tail == OutputTail(isOpen: true, column: 3, pendingWrap: false))
        tail.add("lo\n", columns: 10)
        #expect(tail == OutputTail())
        tail.add("0123456789", columns: 10)
        #expect(tail == OutputTail(isOpen: true, column: 0, pendingWrap: true))
        tail.add("ab", columns: 10)
        #expect(tail == OutputTail(isOpen: true, column: 2, pendingWrap: false))
        tail.add("\r", columns: 10)
        #expect(tail == OutputTail(isOpen: true, column: 0, pendingWrap: false))
        tail.add("\u{1B}[1;31mred\u{1B}[0m", columns: 10)
        #expect(tail == OutputTail(isOpen: true, column: 3, pendingWrap: false))
        tail.add("\t", columns: 10)
        #expect(tail.column == 8)
    }
}
