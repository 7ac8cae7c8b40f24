/// Where values lie in encoded JSON, found by scanning the bytes, not parsing them into
/// values: the journal finds a chat start's messages in its body this way, and puts the
/// very same bytes back on replay.
///
/// The input is the daemon's own encoding, so it is valid JSON; an object may lack its
/// closing brace (an event body, ``JournalRecord/body``, ends before it).
enum JSONBytes {
    /// The range of the value at `path`, member names from the outermost object in, or
    /// nil when there is no such member.
    static func valueRange(of path: [String], in bytes: ArraySlice<UInt8>) -> Range<Int>? {
        var scanner = Scanner(bytes: bytes)
        var found: Range<Int>?
        var remaining = path[...]
        while let name = remaining.first {
            scanner.skipWhitespace()
            guard scanner.peek == UInt8(ascii: "{") else { return nil }
            scanner.position += 1
            found = nil
            while true {
                scanner.skipWhitespace()
                guard let byte = scanner.peek, byte != UInt8(ascii: "}") else { return nil }
                if byte == UInt8(ascii: ",") {
                    scanner.position += 1
                    continue
                }
                guard let key = scanner.stringRange() else { return nil }
                scanner.skipWhitespace()
                guard scanner.peek == UInt8(ascii: ":") else { return nil }
                scanner.position += 1
                scanner.skipWhitespace()
                let start = scanner.position
                if bytes[key].elementsEqual(name.utf8) {
                    if remaining.count == 1 {
                        guard scanner.skipValue() else { return nil }
                        found = start..<scanner.position
                    }
                    break
                }
                guard scanner.skipValue() else { return nil }
            }
            remaining = remaining.dropFirst()
        }
        return found
    }

    /// The ranges of the elements of the array at `range`.
    static func elements(ofArrayAt range: Range<Int>, in bytes: ArraySlice<UInt8>) -> [Range<Int>]? {
        var scanner = Scanner(bytes: bytes[range])
        guard scanner.peek == UInt8(ascii: "[") else { return nil }
        scanner.position += 1
        var elements: [Range<Int>] = []
        while true {
            scanner.skipWhitespace()
            guard let byte = scanner.peek else { return nil }
            if byte == UInt8(ascii: "]") { return elements }
            if byte == UInt8(ascii: ",") {
                scanner.position += 1
                continue
            }
            let start = scanner.position
            guard scanner.skipValue() else { return nil }
            elements.append(start..<scanner.position)
        }
    }

    private struct Scanner {
        let bytes: ArraySlice<UInt8>
        var position: Int

        init(bytes: ArraySlice<UInt8>) {
            self.bytes = bytes
            position = bytes.startIndex
        }

        var peek: UInt8? { position < bytes.endIndex ? bytes[position] : nil }

        mutating func skipWhitespace() {
            while let byte = peek, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { position += 1 }
        }

        /// Reads past a string; returns the range between its quotes.
        mutating func stringRange() -> Range<Int>? {
            guard peek == UInt8(ascii: "\"") else { return nil }
            position += 1
            let start = position
            while let byte = peek {
                if byte == UInt8(ascii: "\\") {
                    position += 2
                } else if byte == UInt8(ascii: "\"") {
                    defer { position += 1 }
                    return start..<position
                } else {
                    position += 1
                }
            }
            return nil
        }

        /// Reads past one value of any kind.
        mutating func skipValue() -> Bool {
            guard let byte = peek else { return false }
            switch byte {
            case UInt8(ascii: "\""):
                return stringRange() != nil
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                var depth = 0
                while let current = peek {
                    switch current {
                    case UInt8(ascii: "\""):
                        guard stringRange() != nil else { return false }
                        continue
                    case UInt8(ascii: "{"), UInt8(ascii: "["):
                        depth += 1
                    case UInt8(ascii: "}"), UInt8(ascii: "]"):
                        depth -= 1
                        if depth == 0 {
                            position += 1
                            return true
                        }
                    default:
                        break
                    }
                    position += 1
                }
                return false
            default:
                // A number, true, false or null: up to the next delimiter.
                while let current = peek, current != UInt8(ascii: ","), current != UInt8(ascii: "}"),
                    current != UInt8(ascii: "]"), current != 0x20, current != 0x0A, current != 0x0D, current != 0x09
                {
                    position += 1
                }
                return true
            }
        }
    }
}
