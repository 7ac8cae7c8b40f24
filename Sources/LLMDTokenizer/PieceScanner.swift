/// Splits UTF-8 text into the pieces tiktoken's pattern for an encoding matches, by hand.
///
/// Each method answers "where does the match that starts here end", following the regex's
/// alternatives in order with the same greedy, possessive and backtracking choices, so the
/// pieces are exactly those of `regex.find_iter`. Working on bytes with one table lookup per
/// scalar is what makes this many times faster than a regex engine.
struct PieceScanner {
    /// The whole text, valid UTF-8.
    let text: UnsafePointer<UInt8>
    /// End of the segment being split; the patterns see it as the end of the text (`$`, the
    /// `(?!\S)` look-ahead), as tiktoken splits the text between special tokens separately.
    let end: Int
    /// `ScalarFlagTable.blockOfHighBits`.
    let blockOfHighBits: UnsafePointer<UInt16>
    /// `ScalarFlagTable.flags`.
    let flags: UnsafePointer<UInt8>

    /// The flags of the scalar at byte `index` and the number of bytes it takes.
    @inline(__always)
    func scalar(at index: Int) -> (flags: ScalarFlags, length: Int) {
        let lead = text[index]
        if lead < 0x80 { return (ScalarFlags(rawValue: flags[Int(lead)]), 1) }
        let value: UInt32
        let length: Int
        if lead < 0xE0 {
            value = UInt32(lead & 0x1F) << 6 | UInt32(text[index + 1] & 0x3F)
            length = 2
        } else if lead < 0xF0 {
            value = UInt32(lead & 0x0F) << 12 | UInt32(text[index + 1] & 0x3F) << 6 | UInt32(text[index + 2] & 0x3F)
            length = 3
        } else {
            value =
                UInt32(lead & 0x07) << 18 | UInt32(text[index + 1] & 0x3F) << 12
                | UInt32(text[index + 2] & 0x3F) << 6 | UInt32(text[index + 3] & 0x3F)
            length = 4
        }
        let block = Int(blockOfHighBits[Int(value >> 8)])
        return (ScalarFlags(rawValue: flags[block << 8 | Int(value & 0xFF)]), length)
    }

    /// Where the run of scalars with any of `wanted` starting at `index` ends.
    @inline(__always)
    func run(of wanted: ScalarFlags, from index: Int) -> Int {
        var index = index
        while index < end {
            let next = scalar(at: index)
            guard !next.flags.isDisjoint(with: wanted) else { break }
            index += next.length
        }
        return index
    }

    /// The end of ` ?[^\s\p{L}\p{N}]+` and the line breaks after it (`[\r\n]*`, and `/`
    /// too for o200k_base) when the piece at `index` is punctuation; nil when it is not.
    @inline(__always)
    func punctuationEnd(
        at index: Int, afterFirst: Int, first: (flags: ScalarFlags, length: Int), trailingSlash: Bool
    ) -> Int? {
        let start: Int
        if first.flags.isPunctuation {
            start = index
        } else if text[index] == 0x20 && afterFirst < end && scalar(at: afterFirst).flags.isPunctuation {
            start = afterFirst
        } else {
            return nil
        }
        var position = punctuationRun(from: start)
        while position < end
            && (text[position] == 0x0A || text[position] == 0x0D || (trailingSlash && text[position] == 0x2F))
        {
            position += 1
        }
        return position
    }

    /// Where the run of `[^\s\p{L}\p{N}]` starting at `index` ends.
    @inline(__always)
    func punctuationRun(from index: Int) -> Int {
        var index = index
        while index < end {
            let next = scalar(at: index)
            guard next.flags.isPunctuation else { break }
            index += next.length
        }
        return index
    }

    /// Where `\p{N}{1,3}` starting at `index` ends (the scalar there is a number).
    @inline(__always)
    func numberEnd(from index: Int) -> Int {
        var index = index
        var count = 0
        while count < 3 && index < end {
            let next = scalar(at: index)
            guard next.flags.contains(.number) else { break }
            index += next.length
            count += 1
        }
        return index
    }

    /// Is the scalar at `index` (if any) one of `wanted`?
    @inline(__always)
    func scalar(at index: Int, isAnyOf wanted: ScalarFlags) -> Bool {
        index < end && !scalar(at: index).flags.isDisjoint(with: wanted)
    }

    /// Where `(?i:'s|'t|'re|'ve|'m|'ll|'d)` matching at `index` ends, or nil.
    ///
    /// Unicode case folding makes `s` match `ſ` (U+017F) too; no other letter here has a
    /// non-ASCII fold.
    @inline(__always)
    func contractionEnd(at index: Int) -> Int? {
        guard index + 1 < end, text[index] == 0x27 else { return nil }
        let first = text[index + 1] | 0x20
        if first == 0x73 || first == 0x74 || first == 0x6D || first == 0x64 { return index + 2 }  // s t m d
        guard index + 2 < end else { return nil }
        if text[index + 1] == 0xC5 && text[index + 2] == 0xBF { return index + 3 }  // ſ
        let second = text[index + 2] | 0x20
        switch (first, second) {
        case (0x72, 0x65), (0x76, 0x65), (0x6C, 0x6C): return index + 3  // re ve ll
        default: return nil
        }
    }

    /// How a run of whitespace starting at `index` looks, for the patterns' whitespace rules.
    @inline(__always)
    func whitespaceRun(from index: Int) -> (end: Int, lastScalarStart: Int, lastNewlineEnd: Int?, count: Int) {
        var position = index
        var lastScalarStart = index
        var lastNewlineEnd: Int?
        var count = 0
        while position < end {
            let next = scalar(at: position)
            guard next.flags.contains(.whitespace) else { break }
            lastScalarStart = position
            position += next.length
            if next.flags.contains(.newline) { lastNewlineEnd = position }
            count += 1
        }
        return (position, lastScalarStart, lastNewlineEnd, count)
    }

    /// The end of the cl100k_base piece starting at `index`:
    /// ```
    /// '(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+
    /// |\s++$|\s*[\r\n]|\s+(?!\S)|\s
    /// ```
    func cl100kPieceEnd(from index: Int) -> Int {
        let first = scalar(at: index)
        let afterFirst = index + first.length
        if let contraction = contractionEnd(at: index) { return contraction }
        if first.flags.contains(.letter) { return run(of: .letter, from: afterFirst) }
        if first.flags.canPrecedeWord && scalar(at: afterFirst, isAnyOf: .letter) {
            return run(of: .letter, from: afterFirst)
        }
        if first.flags.contains(.number) { return numberEnd(from: index) }
        if let punctuationEnd = punctuationEnd(at: index, afterFirst: afterFirst, first: first, trailingSlash: false) {
            return punctuationEnd
        }
        // What is left is whitespace, which `\s` always matches.
        let whitespace = whitespaceRun(from: index)
        if whitespace.end == end { return end }  // \s++$
        if let newlineEnd = whitespace.lastNewlineEnd { return newlineEnd }  // \s*[\r\n]
        if whitespace.count > 1 { return whitespace.lastScalarStart }  // \s+(?!\S)
        return whitespace.end  // \s
    }

    /// The end of the o200k_base piece starting at `index`:
    /// ```
    /// [^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+(?i:'s|'t|'re|'ve|'m|'ll|'d)?
    /// |[^\r\n\p{L}\p{N}]?[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*(?i:'s|'t|'re|'ve|'m|'ll|'d)?
    /// |\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n/]*|\s*[\r\n]+|\s+(?!\S)|\s+
    /// ```
    func o200kPieceEnd(from index: Int) -> Int {
        let first = scalar(at: index)
        let afterFirst = index + first.length
        let canBePrefix = first.flags.canPrecedeWord
        let canStartWord = !first.flags.isDisjoint(with: [.wordUpper, .wordLower])
        if canBePrefix || canStartWord {
            // The optional prefix is greedy: each word alternative first tries with it, then
            // without; only a mark can both be the prefix and start the word.
            let wordEnd =
                (canBePrefix ? lowerWordEnd(from: afterFirst) : nil)
                ?? (canStartWord ? lowerWordEnd(from: index) : nil)
                ?? (canBePrefix ? upperWordEnd(from: afterFirst) : nil)
                ?? (canStartWord ? upperWordEnd(from: index) : nil)
            if let wordEnd { return contractionEnd(at: wordEnd) ?? wordEnd }
        }
        if first.flags.contains(.number) { return numberEnd(from: index) }
        if let punctuationEnd = punctuationEnd(at: index, afterFirst: afterFirst, first: first, trailingSlash: true) {
            return punctuationEnd
        }
        let whitespace = whitespaceRun(from: index)
        if let newlineEnd = whitespace.lastNewlineEnd { return newlineEnd }  // \s*[\r\n]+
        if whitespace.end == end { return end }  // \s+(?!\S) at the end
        if whitespace.count > 1 { return whitespace.lastScalarStart }  // \s+(?!\S)
        return whitespace.end  // \s+
    }

    /// Where `[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]*[\p{Ll}\p{Lm}\p{Lo}\p{M}]+` matching at `index`
    /// ends, or nil.
    ///
    /// The greedy star first takes the whole upper run; if no lower-case scalar follows, it
    /// gives back scalars until the last one that also counts as lower (caseless or mark).
    @inline(__always)
    func lowerWordEnd(from index: Int) -> Int? {
        var position = index
        var lastLowerEnd: Int?
        while position < end {
            let next = scalar(at: position)
            guard next.flags.contains(.wordUpper) else { break }
            position += next.length
            if next.flags.contains(.wordLower) { lastLowerEnd = position }
        }
        if scalar(at: position, isAnyOf: .wordLower) { return run(of: .wordLower, from: position) }
        return lastLowerEnd
    }

    /// Where `[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]+[\p{Ll}\p{Lm}\p{Lo}\p{M}]*` matching at `index`
    /// ends, or nil.
    @inline(__always)
    func upperWordEnd(from index: Int) -> Int? {
        let upperEnd = run(of: .wordUpper, from: index)
        guard upperEnd > index else { return nil }
        return run(of: .wordLower, from: upperEnd)
    }
}
