import LLMDProtocol

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#endif

/// One server-sent event, as the HTML standard's EventSource defines it.
public struct ServerSentEvent: Sendable, Equatable {
    /// The `event:` field; nil means the default type, `message`.
    public var type: String?
    /// The `data:` lines joined by `\n`, as raw UTF-8 bytes: OpenAI puts JSON here, and the
    /// JSON parser validates it, so the bytes are not decoded twice.
    public var data: [UInt8]
    /// The `id:` field in force when the event was dispatched.
    public var lastEventID: String?

    public init(type: String? = nil, data: [UInt8], lastEventID: String? = nil) {
        self.type = type
        self.data = data
        self.lastEventID = lastEventID
    }

    /// Whether this is OpenAI's end-of-stream marker, `data: [DONE]`.
    public var isDone: Bool { data.withUnsafeBytes { ServerSentEventParser.isDone($0) } }
}

/// Parses a `text/event-stream` body into events: a pure state machine fed bytes as they
/// arrive, split anywhere.
///
/// Follows the HTML standard's parsing rules: lines end in CRLF, LF or CR (a CRLF split
/// across two reads counts once); a leading BOM is skipped; `:` starts a comment; a field
/// without a colon has an empty value; one space after the colon is dropped; `data` lines
/// accumulate; a blank line dispatches; a `retry` with non-digits and an `id` containing
/// NUL are ignored. Unlike a browser it bounds an event's size, since the peer is a remote
/// server the daemon does not control.
public struct ServerSentEventParser: Sendable {
    /// Why the stream cannot be parsed further.
    public enum Failure: Error, Sendable, Equatable {
        /// One event or line grew beyond the limit (bytes).
        case eventTooLarge(limit: Int)
    }

    /// What the end of the stream left behind.
    public struct Remainder: Sendable, Equatable {
        /// Data of an event whose closing blank line never came; the standard discards it,
        /// the caller may still want to report it.
        public var undispatchedData: [UInt8]?
        /// Whether the stream ended in the middle of a line.
        public var endedMidLine: Bool
    }

    public let maximumEventSize: Int
    /// The last `retry:` value, in milliseconds.
    public private(set) var reconnectionTime: Int?
    /// Comments seen (`: keep-alive`); servers send them to keep idle connections open.
    public private(set) var commentCount = 0

    private var line: [UInt8] = []
    private var data: [UInt8] = []
    /// The event's only `data` line so far, where it lies in the bytes being parsed: not
    /// copied unless another line joins it or the bytes end before the event does.
    /// Unchecked: it is nil whenever no call is parsing, so a parser that crosses threads
    /// never carries a pointer.
    nonisolated(unsafe) private var borrowedData: UnsafeRawBufferPointer?
    private var hasData = false
    private var eventType: String?
    private var lastEventID: String?
    private var skipNextLF = false
    private var atStreamStart = true
    private var bomBytesSeen = 0

    public init(maximumEventSize: Int = 16 << 20) {
        self.maximumEventSize = maximumEventSize
    }

    /// Parses `bytes` and appends every event they complete to `events`.
    ///
    /// - Throws: ``Failure/eventTooLarge(limit:)``; the parser is then unusable.
    public mutating func parse(_ bytes: [UInt8], into events: inout [ServerSentEvent]) throws(Failure) {
        // withUnsafeBytes rethrows untyped errors; carry the typed one out by hand.
        var failure: Failure?
        bytes.withUnsafeBytes { raw in
            do throws(Failure) { try parse(raw) { events.append(ServerSentEvent($0)) } } catch { failure = error }
        }
        if let failure { throw failure }
    }

    /// Parses `bytes` and hands every event they complete to `dispatch`, in order.
    ///
    /// Scans for line ends and copies whole runs, rather than byte by byte, and hands an
    /// event over where its data lies when it can: this runs on every chunk a provider
    /// streams.
    ///
    /// - Throws: ``Failure/eventTooLarge(limit:)``; the parser is then unusable.
    package mutating func parse(
        _ bytes: UnsafeRawBufferPointer, each dispatch: (BorrowedServerSentEvent) -> Void
    ) throws(Failure) {
        defer {
            // The bytes are the caller's: data still waiting for its event is kept.
            if let borrowed = borrowedData {
                data.append(contentsOf: borrowed)
                borrowedData = nil
            }
        }
        var index = 0
        if atStreamStart {
            // The UTF-8 BOM (EF BB BF) may only open the stream, possibly split across reads.
            let bom: [UInt8] = [0xEF, 0xBB, 0xBF]
            while index < bytes.count, atStreamStart {
                if bytes[index] == bom[bomBytesSeen] {
                    bomBytesSeen += 1
                    index += 1
                    if bomBytesSeen == bom.count { atStreamStart = false }
                } else {
                    atStreamStart = false
                    // Not a BOM after all: those bytes were content.
                    line.append(contentsOf: bom[0..<bomBytesSeen])
                }
            }
        }
        while index < bytes.count {
            let byte = bytes[index]
            if byte == 0x0A || byte == 0x0D {
                index += 1
                if byte == 0x0A, skipNextLF {
                    skipNextLF = false
                    continue
                }
                skipNextLF = byte == 0x0D
                processBufferedLine(dispatch)
                continue
            }
            skipNextLF = false
            let end = Self.lineEnd(in: bytes, from: index + 1)
            if line.isEmpty, end < bytes.count {
                // A whole line within this read, the usual case: parsed where it lies, its
                // end consumed as above.
                let whole = UnsafeRawBufferPointer(rebasing: bytes[index..<end])
                if whole.count + dataCount > maximumEventSize { throw .eventTooLarge(limit: maximumEventSize) }
                skipNextLF = bytes[end] == 0x0D
                index = end + 1
                processLine(whole, lendingData: true, dispatch)
                continue
            }
            line.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[index..<end]))
            if line.count + dataCount > maximumEventSize { throw .eventTooLarge(limit: maximumEventSize) }
            index = end
        }
    }

    /// The index of the first CR or LF at or after `start`; `bytes.count` when none.
    ///
    /// With memchr, which scans a word or more at a time: a byte-by-byte loop over each
    /// streamed event's line was most of the parser's cost.
    private static func lineEnd(in bytes: UnsafeRawBufferPointer, from start: Int) -> Int {
        guard start < bytes.count, let base = bytes.baseAddress else { return bytes.count }
        let count = bytes.count - start
        // LF ends nearly every line; a CR can only end one before it.
        let lf = memchr(base + start, 0x0A, count).map { base.distance(to: UnsafeRawPointer($0)) } ?? bytes.count
        let cr = memchr(base + start, 0x0D, lf - start).map { base.distance(to: UnsafeRawPointer($0)) }
        return cr ?? lf
    }

    /// Ends the stream, reporting what was left incomplete.
    public mutating func finish() -> Remainder {
        let endedMidLine = !line.isEmpty
        if endedMidLine {
            // A last line without terminator still counts as a line, but its event is
            // never dispatched: no blank line followed it.
            processBufferedLine { _ in }
        }
        return Remainder(undispatchedData: hasData ? data : nil, endedMidLine: endedMidLine)
    }

    /// Whether `data` is OpenAI's end-of-stream marker, `[DONE]`.
    static func isDone(_ data: UnsafeRawBufferPointer) -> Bool {
        data.assumingMemoryBound(to: UInt8.self).equals("[DONE]")
    }

    /// The bytes of the current event's data so far.
    private var dataCount: Int { borrowedData?.count ?? data.count }

    /// Processes the line gathered in `line` across reads, and empties it.
    private mutating func processBufferedLine(_ dispatch: (BorrowedServerSentEvent) -> Void) {
        var gathered: [UInt8] = []
        swap(&gathered, &line)
        // Not lent: the buffer is reused for the next line.
        gathered.withUnsafeBytes { processLine($0, lendingData: false, dispatch) }
        gathered.removeAll(keepingCapacity: true)
        swap(&gathered, &line)
    }

    /// - Parameter lendingData: whether `line` stays where it is until the bytes being
    ///   parsed end, so that a `data` value may be handed over from there.
    private mutating func processLine(
        _ line: UnsafeRawBufferPointer, lendingData: Bool, _ dispatch: (BorrowedServerSentEvent) -> Void
    ) {
        if line.isEmpty {
            dispatchEvent(dispatch)
            return
        }
        if line[0] == UInt8(ascii: ":") {
            commentCount += 1
            return
        }
        let colon = line.firstIndex(of: UInt8(ascii: ":"))
        let name = UnsafeRawBufferPointer(rebasing: line[..<(colon ?? line.endIndex)]).assumingMemoryBound(to: UInt8.self)
        var valueStart = colon.map { $0 + 1 } ?? line.endIndex
        if valueStart < line.endIndex, line[valueStart] == UInt8(ascii: " ") { valueStart += 1 }
        let value = UnsafeRawBufferPointer(rebasing: line[valueStart...])

        // Byte comparisons: this runs once per streamed token.
        if name.equals("data") {
            if !hasData, lendingData {
                borrowedData = value
            } else {
                if let borrowed = borrowedData {
                    data.append(contentsOf: borrowed)
                    borrowedData = nil
                }
                if hasData { data.append(0x0A) }
                data.append(contentsOf: value)
            }
            hasData = true
        } else if name.equals("event") {
            eventType = String(decoding: value, as: UTF8.self)
        } else if name.equals("id"), !value.contains(0) {
            lastEventID = String(decoding: value, as: UTF8.self)
        } else if name.equals("retry"), !value.isEmpty,
            value.allSatisfy({ $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "9") })
        {
            reconnectionTime = Int(String(decoding: value, as: UTF8.self))
        }
        // Other fields are ignored, as the standard says.
    }

    private mutating func dispatchEvent(_ dispatch: (BorrowedServerSentEvent) -> Void) {
        defer {
            hasData = false
            eventType = nil
            borrowedData = nil
            data.removeAll(keepingCapacity: true)
        }
        guard hasData else { return }
        if let borrowed = borrowedData {
            dispatch(BorrowedServerSentEvent(type: eventType, data: borrowed, lastEventID: lastEventID))
        } else {
            data.withUnsafeBytes { dispatch(BorrowedServerSentEvent(type: eventType, data: $0, lastEventID: lastEventID)) }
        }
    }
}

/// An event as ``ServerSentEventParser/parse(_:each:)`` dispatches it: its data is where
/// the parser found or gathered it, valid only until the handler returns.
package struct BorrowedServerSentEvent {
    package var type: String?
    package var data: UnsafeRawBufferPointer
    package var lastEventID: String?

    /// Whether this is OpenAI's end-of-stream marker, `data: [DONE]`.
    package var isDone: Bool { ServerSentEventParser.isDone(data) }
}

extension ServerSentEvent {
    /// `event` with its data copied.
    package init(_ event: BorrowedServerSentEvent) {
        self.init(type: event.type, data: Array(event.data), lastEventID: event.lastEventID)
    }
}
