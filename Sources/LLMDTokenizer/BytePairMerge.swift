/// Where encoded tokens go: an array of ids, or just a count.
protocol TokenSink {
    mutating func append(_ token: UInt32)
}

/// Token ids, as `encode` returns them.
struct TokenList: TokenSink {
    var tokens: [Int] = []

    @inline(__always)
    mutating func append(_ token: UInt32) { tokens.append(Int(token)) }
}

/// A count of tokens, so `count` allocates nothing per token.
struct TokenCount: TokenSink {
    var count = 0

    @inline(__always)
    mutating func append(_ token: UInt32) { count += 1 }
}

/// Pieces longer than this merge with a heap instead of tiktoken's linear scans, which are
/// quadratic: a megabyte without spaces or digits (a DNA sequence, a long hex-free identifier)
/// would otherwise take minutes. Both give the same tokens.
let heapMergeThreshold = 256

extension VocabularyView {
    /// Encodes a piece that is not itself a token, as tiktoken's `byte_pair_merge` does:
    /// repeatedly merge the adjacent pair whose bytes have the lowest rank, the leftmost of
    /// equals first, until no pair is a token.
    ///
    /// - Parameters:
    ///   - piece: the piece's bytes; `readable` bytes from there may be read.
    ///   - parts: scratch space, reused across pieces to avoid allocating per piece.
    func mergePairs<Sink: TokenSink>(
        _ piece: UnsafePointer<UInt8>, count: Int, readable: Int, parts: inout [UInt64], into sink: inout Sink
    ) {
        if count > heapMergeThreshold {
            mergePairsWithHeap(piece, count: count, readable: readable, into: &sink)
            return
        }
        // Each part is `rank << 32 | start`: the rank of the pair that starts at this part, and
        // the part's first byte. The smallest value is then the lowest rank, leftmost first.
        parts.removeAll(keepingCapacity: true)
        for start in 0..<(count - 1) {
            parts.append(UInt64(rank(of: piece + start, length: 2, readable: readable - start)) << 32 | UInt64(start))
        }
        parts.append(UInt64(noRank) << 32 | UInt64(count - 1))
        parts.append(UInt64(noRank) << 32 | UInt64(count))

        parts.withUnsafeMutableBufferPointer { parts in
            var partCount = parts.count
            @inline(__always) func start(_ part: Int) -> Int { Int(truncatingIfNeeded: parts[part] & 0xFFFF_FFFF) }
            // The rank of the part at `part` merged with the next one, where `part + 1` is
            // about to be merged into `part` (hence `part + 3`).
            @inline(__always) func mergedRank(_ part: Int) -> UInt64 {
                guard part + 3 < partCount else { return UInt64(noRank) }
                let first = start(part)
                return UInt64(rank(of: piece + first, length: start(part + 3) - first, readable: readable - first))
            }
            while true {
                var best = UInt64.max
                var bestPart = 0
                for part in 0..<(partCount - 1) where parts[part] < best {
                    best = parts[part]
                    bestPart = part
                }
                if best >> 32 == UInt64(noRank) { break }
                if bestPart > 0 {
                    parts[bestPart - 1] = mergedRank(bestPart - 1) << 32 | UInt64(start(bestPart - 1))
                }
                parts[bestPart] = mergedRank(bestPart) << 32 | UInt64(start(bestPart))
                for part in (bestPart + 1)..<(partCount - 1) { parts[part] = parts[part + 1] }
                partCount -= 1
            }
            for part in 0..<(partCount - 1) {
                let first = start(part)
                sink.append(rank(of: piece + first, length: start(part + 1) - first, readable: readable - first))
            }
        }
    }

    /// The same merges in O(n log n): parts in a linked list, candidate pairs in a min-heap of
    /// `rank << 32 | start`, stale entries skipped when popped.
    private func mergePairsWithHeap<Sink: TokenSink>(
        _ piece: UnsafePointer<UInt8>, count: Int, readable: Int, into sink: inout Sink
    ) {
        // Parts are named by their first byte; `next[count]` ends the list.
        var next = [Int](unsafeUninitializedCapacity: count + 1) { buffer, initialized in
            for index in 0...count { buffer[index] = index + 1 }
            initialized = count + 1
        }
        var previous = [Int](unsafeUninitializedCapacity: count) { buffer, initialized in
            for index in 0..<count { buffer[index] = index - 1 }
            initialized = count
        }
        var pairRank = [UInt32](repeating: noRank, count: count)
        var heap = MinHeap()
        func rankOfPair(startingAt part: Int) -> UInt32 {
            guard next[part] < count else { return noRank }
            return rank(of: piece + part, length: next[next[part]] - part, readable: readable - part)
        }
        for part in 0..<(count - 1) {
            pairRank[part] = rank(of: piece + part, length: 2, readable: readable - part)
            if pairRank[part] != noRank { heap.insert(UInt64(pairRank[part]) << 32 | UInt64(part)) }
        }
        while let candidate = heap.popMin() {
            let part = Int(truncatingIfNeeded: candidate & 0xFFFF_FFFF)
            // A part that was merged away has previous == -2; a changed pair has a new rank.
            guard previous[part] != -2, pairRank[part] == UInt32(candidate >> 32) else { continue }
            let absorbed = next[part]
            next[part] = next[absorbed]
            if next[absorbed] < count { previous[next[absorbed]] = part }
            previous[absorbed] = -2
            pairRank[part] = rankOfPair(startingAt: part)
            if pairRank[part] != noRank { heap.insert(UInt64(pairRank[part]) << 32 | UInt64(part)) }
            let before = previous[part]
            if before >= 0 {
                pairRank[before] = rankOfPair(startingAt: before)
                if pairRank[before] != noRank { heap.insert(UInt64(pairRank[before]) << 32 | UInt64(before)) }
            }
        }
        var part = 0
        while part < count {
            sink.append(rank(of: piece + part, length: next[part] - part, readable: readable - part))
            part = next[part]
        }
    }
}

/// A binary min-heap of packed `rank << 32 | start` values.
private struct MinHeap {
    private var values: [UInt64] = []

    mutating func insert(_ value: UInt64) {
        values.append(value)
        var child = values.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard values[child] < values[parent] else { break }
            values.swapAt(child, parent)
            child = parent
        }
    }

    mutating func popMin() -> UInt64? {
        guard let last = values.popLast() else { return nil }
        guard !values.isEmpty else { return last }
        let minimum = values[0]
        values[0] = last
        var parent = 0
        while true {
            let left = 2 * parent + 1
            guard left < values.count else { break }
            let right = left + 1
            let smaller = right < values.count && values[right] < values[left] ? right : left
            guard values[smaller] < values[parent] else { break }
            values.swapAt(smaller, parent)
            parent = smaller
        }
        return minimum
    }
}
