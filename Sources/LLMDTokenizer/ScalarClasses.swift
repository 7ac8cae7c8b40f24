/// The Unicode categories that tiktoken's split patterns tell apart, one per scalar.
///
/// The raw values are what `scalarClassRuns` stores; scripts/gen-tokenizer-fixture.py writes
/// the same numbers.
enum ScalarClass: UInt8 {
    /// Everything else: punctuation, symbols, controls, unassigned and private-use scalars.
    case other = 0
    /// `\s`: Unicode White_Space.
    case whitespace = 1
    /// `\p{N}`: Nd, Nl, No.
    case number = 2
    /// `\p{Lu}`, `\p{Lt}`.
    case upperLetter = 3
    /// `\p{Ll}`.
    case lowerLetter = 4
    /// `\p{Lm}`, `\p{Lo}`: letters without case, which o200k's pattern counts as both.
    case caselessLetter = 5
    /// `\p{M}`: combining marks, not letters, yet part of o200k's words.
    case mark = 6
}

/// What a scalar is to the split patterns, as bits, so the scanners test a mask per question.
struct ScalarFlags: OptionSet, Sendable {
    let rawValue: UInt8

    /// `\p{L}`.
    static let letter = ScalarFlags(rawValue: 1 << 0)
    /// `\p{N}`.
    static let number = ScalarFlags(rawValue: 1 << 1)
    /// `\s`.
    static let whitespace = ScalarFlags(rawValue: 1 << 2)
    /// `\r` or `\n`.
    static let newline = ScalarFlags(rawValue: 1 << 3)
    /// `[\p{Lu}\p{Lt}\p{Lm}\p{Lo}\p{M}]`: o200k's capitalised head of a word.
    static let wordUpper = ScalarFlags(rawValue: 1 << 4)
    /// `[\p{Ll}\p{Lm}\p{Lo}\p{M}]`: o200k's lower-case body of a word.
    static let wordLower = ScalarFlags(rawValue: 1 << 5)

    init(rawValue: UInt8) { self.rawValue = rawValue }

    init(_ scalarClass: ScalarClass) {
        switch scalarClass {
        case .other: self = []
        case .whitespace: self = .whitespace
        case .number: self = .number
        case .upperLetter: self = [.letter, .wordUpper]
        case .lowerLetter: self = [.letter, .wordLower]
        case .caselessLetter: self = [.letter, .wordUpper, .wordLower]
        case .mark: self = [.wordUpper, .wordLower]
        }
    }

    /// `[^\s\p{L}\p{N}]`: what both patterns gather into punctuation pieces (marks included).
    var isPunctuation: Bool { isDisjoint(with: [.letter, .number, .whitespace]) }

    /// `[^\r\n\p{L}\p{N}]`: the one scalar allowed before a word, such as its leading space.
    var canPrecedeWord: Bool { isDisjoint(with: [.letter, .number, .newline]) }
}

/// The flags of every Unicode scalar, as a two-stage table of 256-scalar blocks.
///
/// All but about 140 blocks hold one class throughout; those share one block per class, so
/// the table takes under 40 KB where a flat one would take 1.1 MB. Built once per process
/// from the runs that scripts/gen-tokenizer-fixture.py took from tiktoken. Block 0 holds
/// U+0000–U+00FF, so an ASCII byte indexes `flags` directly.
struct ScalarFlagTable: Sendable {
    /// The table every tokenizer shares.
    static let shared = ScalarFlagTable(runs: scalarClassRuns)

    /// Block number of each `scalar >> 8`.
    let blockOfHighBits: [UInt16]
    /// `ScalarFlags` raw values: block number * 256 + `scalar & 0xFF`.
    let flags: [UInt8]

    init(runs: [UInt32]) {
        var everyScalar = [UInt8](repeating: 0, count: 0x11_0000)
        everyScalar.withUnsafeMutableBufferPointer { everyScalar in
            for (index, run) in runs.enumerated() {
                let start = Int(run >> 3)
                let end = index + 1 < runs.count ? Int(runs[index + 1] >> 3) : everyScalar.count
                let scalarClass = ScalarClass(rawValue: UInt8(run & 7)) ?? .other
                everyScalar[start..<end].update(repeating: ScalarFlags(scalarClass).rawValue)
            }
        }
        everyScalar[0x0A] |= ScalarFlags.newline.rawValue
        everyScalar[0x0D] |= ScalarFlags.newline.rawValue

        var blockOfHighBits: [UInt16] = []
        blockOfHighBits.reserveCapacity(0x1100)
        var flags: [UInt8] = []
        var uniformBlockOfFlags: [UInt8: UInt16] = [:]
        for high in 0..<0x1100 {
            let block = everyScalar[high << 8..<(high + 1) << 8]
            let first = block.first!
            let isUniform = block.allSatisfy { $0 == first }
            if isUniform, let shared = uniformBlockOfFlags[first] {
                blockOfHighBits.append(shared)
                continue
            }
            let number = UInt16(flags.count >> 8)
            if isUniform { uniformBlockOfFlags[first] = number }
            blockOfHighBits.append(number)
            flags.append(contentsOf: block)
        }
        self.blockOfHighBits = blockOfHighBits
        self.flags = flags
    }

    /// Calls `body` with raw pointers to the two stages, for the hot loops.
    func withView<Result>(_ body: (UnsafePointer<UInt16>, UnsafePointer<UInt8>) -> Result) -> Result {
        blockOfHighBits.withUnsafeBufferPointer { blockOfHighBits in
            flags.withUnsafeBufferPointer { flags in body(blockOfHighBits.baseAddress!, flags.baseAddress!) }
        }
    }
}
