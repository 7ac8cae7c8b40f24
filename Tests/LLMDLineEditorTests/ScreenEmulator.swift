/// What a terminal shows after some output: the subset of xterm that libedit and
/// `LineEditor` use, so tests can check the screen a user sees rather than escape bytes.
///
/// Rows scroll up past the bottom and stay in `rows`; the cursor moves within the last
/// `height` rows, as on a real terminal. Characters are one column wide.
struct ScreenEmulator {
    private(set) var width: Int
    private(set) var height: Int
    private(set) var rows: [[Character]] = [[]]
    /// The cursor, as an index into `rows` and a column.
    private(set) var row = 0
    private(set) var column = 0
    /// The last column was written: the next character starts the next row (xterm's "xn").
    private var pendingWrap = false
    /// Escape sequences it does not know, for a failing test's message.
    private(set) var ignored: [String] = []

    private var utf8 = [UInt8]()
    private var escape: [UInt8]?

    init(width: Int = 80, height: Int = 24) {
        self.width = width
        self.height = height
    }

    /// The visible text of every row, trailing blanks removed.
    var lines: [String] {
        rows.map { row in String(row[..<(row.lastIndex { $0 != " " }.map { $0 + 1 } ?? 0)]) }
    }

    /// The rows from the first one containing `marker` on.
    func lines(from marker: String) -> [String] {
        guard let start = lines.firstIndex(where: { $0.contains(marker) }) else { return [] }
        return Array(lines[start...])
    }

    /// A new size, as xterm takes it: rows keep their text up to the new width, no reflow.
    mutating func resize(width: Int, height: Int) {
        self.width = width
        self.height = height
        rows = rows.map { Array($0.prefix(width)) }
        column = min(column, width - 1)
        pendingWrap = false
    }

    mutating func feed<Bytes: Sequence>(_ bytes: Bytes) where Bytes.Element == UInt8 {
        for byte in bytes { feed(byte) }
    }

    private mutating func feed(_ byte: UInt8) {
        if var sequence = escape {
            sequence.append(byte)
            escape = sequence
            finishEscapeIfComplete(sequence)
            return
        }
        switch byte {
        case 0x1B: escape = [byte]
        case 0x0D: (column, pendingWrap) = (0, false)
        case 0x0A: lineFeed()
        case 0x08: (column, pendingWrap) = (max(column - 1, 0), false)
        case 0x07: break
        case 0x09: column = min((column / 8 + 1) * 8, width - 1)
        case ..<0x20: break
        default:
            utf8.append(byte)
            // Wait for the rest of a multi-byte character.
            if byte >= 0x80, String(validating: utf8, as: UTF8.self) == nil, utf8.count < 4 { return }
            let text = String(decoding: utf8, as: UTF8.self)
            utf8.removeAll()
            for character in text { put(character) }
        }
    }

    private mutating func put(_ character: Character) {
        if pendingWrap {
            lineFeed()
            column = 0
        }
        while rows[row].count <= column { rows[row].append(" ") }
        rows[row][column] = character
        if column == width - 1 {
            pendingWrap = true
        } else {
            column += 1
        }
    }

    private mutating func lineFeed() {
        pendingWrap = false
        row += 1
        if row == rows.count { rows.append([]) }
    }

    /// The first row the cursor can reach: rows above it have scrolled away.
    private var top: Int { max(rows.count - height, 0) }

    private mutating func finishEscapeIfComplete(_ sequence: [UInt8]) {
        guard sequence.count >= 2 else { return }
        if sequence[1] != UInt8(ascii: "[") {
            // ESC followed by one character: keypad modes, charsets' first byte and the like.
            escape = nil
            ignored.append(String(decoding: sequence, as: UTF8.self))
            return
        }
        guard let final = sequence.last, sequence.count > 2, (0x40...0x7E).contains(final) else { return }
        escape = nil
        let parameters = String(decoding: sequence[2..<(sequence.count - 1)], as: UTF8.self)
        let numbers = parameters.split(separator: ";", omittingEmptySubsequences: false).map { Int($0) }
        let count = max(numbers.first.flatMap { $0 } ?? 1, 1)
        if "ABCDGHf".unicodeScalars.contains(UnicodeScalar(final)) { pendingWrap = false }
        switch UnicodeScalar(final) {
        case "A": row = max(row - count, top)
        case "B":
            row = min(row + count, top + height - 1)
            while rows.count <= row { rows.append([]) }
        case "C": column = min(column + count, width - 1)
        case "D": column = max(column - count, 0)
        case "G": column = min(count - 1, width - 1)
        case "H", "f":
            row = min(top + count - 1, top + height - 1)
            column = min(max((numbers.count > 1 ? numbers[1] : 1) ?? 1, 1) - 1, width - 1)
            while rows.count <= row { rows.append([]) }
        case "K":
            switch numbers.first.flatMap({ $0 }) ?? 0 {
            case 0: if rows[row].count > column { rows[row].removeSubrange(column...) }
            case 1: for index in 0..<min(column + 1, rows[row].count) { rows[row][index] = " " }
            default: rows[row] = []
            }
        case "J":
            if rows[row].count > column { rows[row].removeSubrange(column...) }
            rows.removeSubrange((row + 1)...)
        case "@":
            while rows[row].count < column { rows[row].append(" ") }
            rows[row].insert(contentsOf: repeatElement(" ", count: count), at: column)
            if rows[row].count > width { rows[row].removeSubrange(width...) }
        case "P":
            if rows[row].count > column { rows[row].removeSubrange(column..<min(column + count, rows[row].count)) }
        case "m", "h", "l": break
        default: ignored.append(String(decoding: sequence, as: UTF8.self))
        }
    }
}
