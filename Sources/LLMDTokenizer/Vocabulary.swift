import Glibc

/// The ordinary tokens of an encoding: each token's bytes by rank, and a hash table from bytes
/// to rank.
///
/// The table is open addressing over one flat array, with the first eight bytes of each key
/// stored in its slot: most lookups (pairs while merging, short words) then compare one
/// integer and never touch the token bytes.
struct Vocabulary: Sendable {
    /// Every token's bytes, back to back in rank order.
    let tokenBytes: [UInt8]
    /// Token `r`'s bytes are `tokenBytes[tokenOffsets[r] ..< tokenOffsets[r + 1]]`.
    let tokenOffsets: [UInt32]
    /// Linear-probing hash table; a power of two in size and at most 40% full.
    let slots: [RankSlot]

    /// Loads a `.tiktoken` file: one `<base64 of the token's bytes> <rank>` line per token,
    /// ranks 0, 1, 2… in order, as OpenAI publishes them.
    ///
    /// - Throws: `TokenizerError` naming the file, and the line when its content is wrong.
    init(contentsOf path: String, encoding: Encoding) throws(TokenizerError) {
        let file = try readWholeFile(path, encoding: encoding)
        var tokenOffsets: [UInt32] = [0]
        tokenOffsets.reserveCapacity(encoding.ordinaryTokenCount + 1)
        // Decoded base64 is shorter than its text, so the file's size bounds the token bytes.
        let arena = UnsafeMutableBufferPointer<UInt8>.allocate(capacity: file.count)
        defer { arena.deallocate() }
        var arenaCount = 0
        let parseError = file.withUnsafeBufferPointer { file in
            parseLines(file, into: arena, arenaCount: &arenaCount, offsets: &tokenOffsets)
        }
        if let parseError {
            throw .vocabularyMalformed(path: path, encoding: encoding, line: parseError.line, reason: parseError.reason)
        }
        let tokenBytes = Array(arena[0..<arenaCount])
        self.tokenBytes = tokenBytes
        self.tokenOffsets = tokenOffsets
        self.slots = try Self.hashTable(
            tokenBytes: tokenBytes, tokenOffsets: tokenOffsets, path: path, encoding: encoding)
        let tokenCount = tokenOffsets.count - 1
        guard tokenCount == encoding.ordinaryTokenCount else {
            throw .vocabularyMismatch(path: path, encoding: encoding, tokenCount: tokenCount)
        }
        let missingByte = withView { view in
            (0..<256).first { byte in
                var key = UInt8(byte)
                return view.rank(of: &key, length: 1, readable: 1) == noRank
            }
        }
        if let missingByte {
            throw .vocabularyMalformed(
                path: path, encoding: encoding, line: tokenCount + 1,
                reason: "no token for the single byte \(missingByte)")
        }
    }

    /// Calls `body` with raw views of the tables, for the hot loops.
    func withView<Result>(_ body: (VocabularyView) -> Result) -> Result {
        tokenBytes.withUnsafeBufferPointer { tokenBytes in
            tokenOffsets.withUnsafeBufferPointer { tokenOffsets in
                slots.withUnsafeBufferPointer { slots in
                    body(
                        VocabularyView(
                            tokenBytes: tokenBytes.baseAddress!, tokenOffsets: tokenOffsets.baseAddress!,
                            slots: slots.baseAddress!, slotMask: slots.count - 1,
                            slotShift: UInt64(64 - slots.count.trailingZeroBitCount)))
                }
            }
        }
    }

    /// The bytes of ordinary token `rank`, or nil when there is none.
    func bytes(ofToken rank: Int) -> ArraySlice<UInt8>? {
        guard rank >= 0 && rank < tokenOffsets.count - 1 else { return nil }
        return tokenBytes[Int(tokenOffsets[rank])..<Int(tokenOffsets[rank + 1])]
    }

    private static func hashTable(
        tokenBytes: [UInt8], tokenOffsets: [UInt32], path: String, encoding: Encoding
    ) throws(TokenizerError) -> [RankSlot] {
        let tokenCount = tokenOffsets.count - 1
        var capacity = 1024
        while capacity * 2 < tokenCount * 5 { capacity *= 2 }
        var slots = [RankSlot](repeating: RankSlot(head: 0, rank: 0, length: 0), count: capacity)
        let shift = UInt64(64 - capacity.trailingZeroBitCount)
        for rank in 0..<tokenCount {
            let start = Int(tokenOffsets[rank])
            let length = Int(tokenOffsets[rank + 1]) - start
            var head: UInt64 = 0
            for index in 0..<min(length, 8) { head |= UInt64(tokenBytes[start + index]) << (8 * index) }
            var tail: UInt64 = 0
            if length > 8 {
                for index in 0..<8 { tail |= UInt64(tokenBytes[start + length - 8 + index]) << (8 * index) }
            }
            var slot = slotIndex(head: head, tail: tail, length: length, shift: shift)
            while slots[slot].length != 0 {
                let other = slots[slot]
                if other.head == head && Int(other.length) == length {
                    let otherStart = Int(tokenOffsets[Int(other.rank)])
                    if tokenBytes[otherStart..<otherStart + length] == tokenBytes[start..<start + length] {
                        throw .vocabularyMalformed(
                            path: path, encoding: encoding, line: rank + 1,
                            reason: "the same bytes as token \(other.rank)")
                    }
                }
                slot = (slot + 1) & (capacity - 1)
            }
            slots[slot] = RankSlot(head: head, rank: UInt32(rank), length: UInt32(length))
        }
        return slots
    }
}

/// One entry of the rank hash table; `length` 0 marks an empty slot (no token is empty).
struct RankSlot: Sendable {
    /// The key's first eight bytes, little-endian, zero-padded.
    var head: UInt64
    var rank: UInt32
    var length: UInt32
}

/// What a lookup returns for bytes that are not a token; tiktoken's `Rank::MAX`.
let noRank = UInt32.max

/// Where a key's hash puts it: the top bits of a multiplicative hash of its first and last
/// eight bytes and its length.
@inline(__always)
func slotIndex(head: UInt64, tail: UInt64, length: Int, shift: UInt64) -> Int {
    let mixed = (head ^ (tail &* 0x9FB2_1C65_1E98_DF25)) &+ UInt64(truncatingIfNeeded: length)
    return Int(truncatingIfNeeded: (mixed &* 0x9E37_79B9_7F4A_7C15) >> shift)
}

/// Raw pointers into a `Vocabulary`, valid inside `Vocabulary.withView` only.
struct VocabularyView {
    let tokenBytes: UnsafePointer<UInt8>
    let tokenOffsets: UnsafePointer<UInt32>
    let slots: UnsafePointer<RankSlot>
    let slotMask: Int
    let slotShift: UInt64

    /// The rank of the `length` bytes at `key`, or `noRank`.
    ///
    /// `readable` is how many bytes from `key` on may be read (at least `length`): with eight,
    /// the head is one unaligned load.
    @inline(__always)
    func rank(of key: UnsafePointer<UInt8>, length: Int, readable: Int) -> UInt32 {
        var head: UInt64
        if readable >= 8 {
            head = UInt64(littleEndian: UnsafeRawPointer(key).loadUnaligned(as: UInt64.self))
            if length < 8 { head &= (1 &<< UInt64(8 &* length)) &- 1 }
        } else {
            head = 0
            for index in 0..<length { head |= UInt64(key[index]) &<< UInt64(8 &* index) }
        }
        var tail: UInt64 = 0
        if length > 8 {
            tail = UInt64(littleEndian: UnsafeRawPointer(key + (length - 8)).loadUnaligned(as: UInt64.self))
        }
        var slot = slotIndex(head: head, tail: tail, length: length, shift: slotShift)
        while true {
            let candidate = slots[slot]
            if candidate.length == 0 { return noRank }
            if candidate.head == head && Int(candidate.length) == length {
                if length <= 8 { return candidate.rank }
                let start = Int(tokenOffsets[Int(candidate.rank)])
                if memcmp(tokenBytes + start + 8, key + 8, length - 8) == 0 { return candidate.rank }
            }
            slot = (slot &+ 1) & slotMask
        }
    }
}

/// Reads `path` whole, mapping failures to the errors a user can act on.
private func readWholeFile(_ path: String, encoding: Encoding) throws(TokenizerError) -> [UInt8] {
    let descriptor = open(path, O_RDONLY | O_CLOEXEC)
    if descriptor < 0 {
        let error = errno
        if error == ENOENT || error == ENOTDIR { throw .vocabularyMissing(path: path, encoding: encoding) }
        throw .vocabularyUnreadable(path: path, reason: String(cString: strerror(error)))
    }
    defer { close(descriptor) }
    var status = stat()
    var contents: [UInt8] = []
    if fstat(descriptor, &status) == 0 { contents.reserveCapacity(Int(status.st_size)) }
    var chunk = [UInt8](repeating: 0, count: 1 << 16)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        if count > 0 {
            contents.append(contentsOf: chunk[0..<count])
        } else if count == 0 {
            return contents
        } else if errno != EINTR {
            throw .vocabularyUnreadable(path: path, reason: String(cString: strerror(errno)))
        }
    }
}

/// Parses every line of a `.tiktoken` file, decoding tokens into `arena` and recording where
/// each ends in `offsets`; returns the first problem, with its line number.
private func parseLines(
    _ file: UnsafeBufferPointer<UInt8>, into arena: UnsafeMutableBufferPointer<UInt8>, arenaCount: inout Int,
    offsets: inout [UInt32]
) -> (line: Int, reason: String)? {
    var lineNumber = 0
    var lineStart = 0
    while lineStart < file.count {
        lineNumber += 1
        var lineEnd = lineStart
        while lineEnd < file.count && file[lineEnd] != 0x0A { lineEnd += 1 }
        defer { lineStart = lineEnd + 1 }
        var contentEnd = lineEnd
        if contentEnd > lineStart && file[contentEnd - 1] == 0x0D { contentEnd -= 1 }
        if contentEnd == lineStart { continue }

        var space = lineStart
        while space < contentEnd && file[space] != 0x20 { space += 1 }
        guard space < contentEnd else { return (lineNumber, "no space between token and rank") }
        guard space > lineStart else { return (lineNumber, "empty token") }
        let decoded = base64Values.withUnsafeBufferPointer {
            decodeBase64(file, lineStart..<space, into: arena.baseAddress! + arenaCount, values: $0.baseAddress!)
        }
        guard let decoded else {
            return (lineNumber, "the token is not base64")
        }
        var rank = 0
        for index in (space + 1)..<contentEnd {
            let digit = Int(file[index]) - 0x30
            guard digit >= 0 && digit <= 9 && rank < 1 << 31 else { return (lineNumber, "the rank is not a number") }
            rank = rank * 10 + digit
        }
        guard contentEnd > space + 1 else { return (lineNumber, "the rank is not a number") }
        guard rank == offsets.count - 1 else {
            return (lineNumber, "rank \(rank) where \(offsets.count - 1) was expected")
        }
        arenaCount += decoded
        offsets.append(UInt32(arenaCount))
    }
    return nil
}

/// Decodes standard, padded base64 from `file[range]` to `output`; returns the byte count, or
/// nil for anything that is not strict base64.
@inline(__always)
private func decodeBase64(
    _ file: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, into output: UnsafeMutablePointer<UInt8>,
    values: UnsafePointer<UInt8>
) -> Int? {
    guard range.count % 4 == 0 else { return nil }
    var written = 0
    var index = range.lowerBound
    while true {
        let isLast = index + 4 == range.upperBound
        // Only the last quad may end in padding: "xx==" holds one byte, "xxx=" two.
        let padding = isLast && file[index + 3] == 0x3D ? (file[index + 2] == 0x3D ? 2 : 1) : 0
        let first = values[Int(file[index])]
        let second = values[Int(file[index + 1])]
        let third = padding == 2 ? 0 : values[Int(file[index + 2])]
        let fourth = padding >= 1 ? 0 : values[Int(file[index + 3])]
        guard (first | second | third | fourth) & 0x80 == 0 else { return nil }
        let quad = UInt32(first) << 18 | UInt32(second) << 12 | UInt32(third) << 6 | UInt32(fourth)
        output[written] = UInt8(truncatingIfNeeded: quad >> 16)
        output[written + 1] = UInt8(truncatingIfNeeded: quad >> 8)
        output[written + 2] = UInt8(truncatingIfNeeded: quad)
        written += 3 - padding
        if isLast { return written }
        index += 4
    }
}

/// The 6-bit value of each base64 character; 0xFF for the rest.
private let base64Values: [UInt8] = {
    var values = [UInt8](repeating: 0xFF, count: 256)
    let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    for (value, character) in alphabet.enumerated() { values[Int(character)] = UInt8(value) }
    return values
}()
