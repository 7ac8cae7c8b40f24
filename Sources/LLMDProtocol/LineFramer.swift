#if canImport(Glibc)
import Glibc
#endif

/// Splits a byte stream into newline-delimited lines with a size limit.
///
/// A pure state machine: feed it whatever a `read` returned with ``append(_:)``, then
/// drain frames with ``next()``. Lines may be split or joined arbitrarily across reads;
/// splitting on `0x0A` never cuts a UTF-8 sequence, because that byte cannot occur inside one.
///
/// A line longer than the limit is not buffered: its bytes are counted and discarded
/// up to the next newline, and one ``Frame/oversized(length:)`` stands for it, so the
/// peer gets an error and the connection keeps working.
public struct LineFramer: Sendable {
    public enum Frame: Sendable, Equatable {
        /// A complete line without its terminator (`\n` or `\r\n`).
        case line([UInt8])
        /// A line that exceeded the limit; `length` counts its bytes without the terminator.
        case oversized(length: Int)
    }

    /// The largest accepted line, in bytes, not counting the newline.
    public var maximumLineLength: Int

    private var buffer: [UInt8] = []
    /// Where the unconsumed bytes in `buffer` begin.
    private var start = 0
    /// How far past `start` has already been searched for a newline.
    private var scanned = 0
    /// Bytes of an oversized line discarded so far, or nil when not discarding.
    private var discarded: Int?

    public init(maximumLineLength: Int) {
        precondition(maximumLineLength > 0)
        self.maximumLineLength = maximumLineLength
    }

    /// Bytes received but not yet returned as a frame.
    public var bufferedByteCount: Int { buffer.count - start }

    /// Bytes received since the last line was handed out: those held, and those of an
    /// overlong line already dropped.
    public var bytesSinceLastLine: Int { bufferedByteCount + (discarded ?? 0) }

    public mutating func append(_ bytes: some Sequence<UInt8>) {
        if start > 0, start >= buffer.count / 2 {
            buffer.removeFirst(start)
            start = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next complete frame, or nil when more bytes are needed.
    ///
    /// Empty lines (including a bare `\r`) are skipped: they are keep-alives, not requests.
    public mutating func next() -> Frame? {
        while true {
            guard let newline = findNewline() else {
                dropOverlongPrefix()
                return nil
            }
            let lineEnd = newline > start && buffer[newline - 1] == 0x0D ? newline - 1 : newline
            let length = lineEnd - start
            let lineStart = start
            start = newline + 1
            scanned = 0
            if let alreadyDiscarded = discarded {
                discarded = nil
                return .oversized(length: alreadyDiscarded + length)
            }
            if length > maximumLineLength {
                return .oversized(length: length)
            }
            if length == 0 { continue }
            return .line(Array(buffer[lineStart..<lineEnd]))
        }
    }

    /// Ends the stream: returns a last line that had no terminator, if any.
    public mutating func finish() -> Frame? {
        defer {
            buffer = []
            start = 0
            scanned = 0
            discarded = nil
        }
        let remaining = buffer.count - start
        if let alreadyDiscarded = discarded {
            return .oversized(length: alreadyDiscarded + remaining)
        }
        var end = buffer.count
        if end > start, buffer[end - 1] == 0x0D { end -= 1 }
        guard end > start else { return nil }
        return .line(Array(buffer[start..<end]))
    }

    private mutating func findNewline() -> Int? {
        let from = start + scanned
        // memchr, not a loop over the array: a client streaming tokens splits every line here.
        let found = buffer.withUnsafeBufferPointer { bytes -> Int? in
            guard from < bytes.count, let base = bytes.baseAddress,
                let hit = memchr(base + from, 0x0A, bytes.count - from)
            else { return nil }
            return base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
        }
        if found == nil { scanned = buffer.count - start }
        return found
    }

    /// Once an unterminated line is over the limit, keep only a possible trailing `\r`
    /// and count the rest, so a peer cannot make the daemon buffer without bound.
    private mutating func dropOverlongPrefix() {
        let pending = buffer.count - start
        // One byte of slack: a line of exactly the limit may still be waiting for "\r\n".
        guard pending > maximumLineLength + 1 || (discarded != nil && pending > 1) else { return }
        let keep = buffer.last == 0x0D ? 1 : 0
        discarded = (discarded ?? 0) + pending - keep
        buffer.removeSubrange(start..<(buffer.count - keep))
        scanned = 0
    }
}
