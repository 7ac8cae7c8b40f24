import CEditLine

/// Where text lands on a terminal `columns` wide, as libedit lays out its prompt and line.
///
/// `printAbove` must move from the cursor inside the edited line back to the prompt's first
/// row, and libedit does not say which row that is. Replaying libedit's layout rules gives
/// it: a character that would cross the right edge wraps, a wide one pads the rest of the
/// row first, a control character shows as `^X`, a tab pads to a multiple of 8, and a full
/// row moves the cursor to the start of the next one (libedit forces that wrap).
struct TerminalLayout: Equatable {
    var columns: Int
    var row = 0
    var column = 0

    init(columns: Int) {
        self.columns = max(columns, 1)
    }

    /// Lays out a prompt: characters between `\u{1}` and `\u{2}` (readline's markers
    /// around escape sequences) take no room.
    mutating func addPrompt(_ prompt: String) {
        var ignoring = false
        for scalar in prompt.unicodeScalars {
            switch scalar {
            case "\u{1}": ignoring = true
            case "\u{2}": ignoring = false
            default: if !ignoring { addEdited(scalar) }
            }
        }
    }

    /// Lays out text of the edited line.
    mutating func addEdited<S: Sequence>(_ scalars: S) where S.Element == Unicode.Scalar {
        for scalar in scalars { addEdited(scalar) }
    }

    private mutating func addEdited(_ scalar: Unicode.Scalar) {
        if scalar == "\t" {
            repeat { advance(1) } while column % 8 != 0
        } else if scalar.value < 0x20 || scalar.value == 0x7F {
            advance(1)
            advance(1)
        } else {
            advance(Self.width(of: scalar))
        }
    }

    /// Places a character `width` columns wide.
    mutating func advance(_ width: Int) {
        if width > 1, column + width > columns {
            row += 1
            column = 0
        }
        column += width
        if column >= columns {
            row += 1
            column = 0
        }
    }

    /// Columns a printable character takes: 2 for East Asian wide ones and most emoji, 0 for
    /// combining marks, as the C library's tables for the current LC_CTYPE say.
    static func width(of scalar: Unicode.Scalar) -> Int {
        let width = Int(llmd_wcwidth(scalar.value))
        // Unknown to the locale (C locale, unassigned): one column, as most terminals draw it.
        return width < 0 ? 1 : width
    }
}

/// Where the last row written above the prompt stopped, so that output may continue it.
///
/// Tokens stream in pieces, so `printAbove("Hel")` then `printAbove("lo\n")` must end on
/// one row: the editor remembers where the unfinished row stopped and returns there.
struct OutputTail: Equatable {
    /// Whether the row output continues on has text: the prompt then needs a row of its own.
    var isOpen = false
    /// The column where output continues on that row.
    var column = 0
    /// The text filled its last row exactly: a terminal holds the cursor on that row's last
    /// column until the next character, which starts the next row.
    var pendingWrap = false

    /// Follows `text` as a terminal draws it: newlines end the row, carriage returns go back
    /// to its start, CSI escape sequences (colours) take no room, tabs stop at multiples of 8.
    mutating func add(_ text: String, columns: Int) {
        let columns = max(columns, 1)
        var escape = EscapeState.none
        for scalar in text.unicodeScalars {
            switch escape {
            case .introduced:
                escape = scalar == "[" ? .parameters : .none
                continue
            case .parameters:
                // A CSI sequence ends with a byte from @ to ~.
                if (0x40...0x7E).contains(scalar.value) { escape = .none }
                continue
            case .none:
                break
            }
            switch scalar {
            case "\n":
                self = OutputTail()
            case "\r":
                column = 0
                pendingWrap = false
            case "\u{1B}":
                escape = .introduced
            case "\t":
                isOpen = true
                if pendingWrap { (column, pendingWrap) = (0, false) }
                column = min((column / 8 + 1) * 8, columns - 1)
            default:
                guard scalar.value >= 0x20, scalar.value != 0x7F else { continue }
                // A combining mark joins the character before it.
                let width = TerminalLayout.width(of: scalar)
                guard width > 0 else { continue }
                if pendingWrap || (width > 1 && column + width > columns) { column = 0 }
                isOpen = true
                column += width
                pendingWrap = column >= columns
                if pendingWrap { column = 0 }
            }
        }
    }

    private enum EscapeState {
        case none, introduced, parameters
    }
}
