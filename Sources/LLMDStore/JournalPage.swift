import CSQLite
import LLMDProtocol

#if canImport(Glibc)
import Glibc
#endif

/// A page's records packed into one blob (a row of `event_pages`), each record as what
/// changed since the one before it (``encode(_:)``).
enum JournalPage {
    // MARK: - Compact

    /// What a compact record's flags byte says.
    private enum Flag {
        static let sameType: UInt8 = 1
        static let sameSession: UInt8 = 2
        static let sameRun: UInt8 = 4
        static let sameParentRun: UInt8 = 8
        static let sameTags: UInt8 = 16
        static let sameContext: UInt8 = sameType | sameSession | sameRun | sameParentRun | sameTags
        /// The body began with its head (``EventBodyHead``), which is left out.
        static let headOmitted: UInt8 = 32
        static let all: UInt8 = 63
    }

    /// The records, each as what changed since the one before it: a flags byte; `seq` and
    /// time as differences from the record before (unsigned and zigzag LEB128 varints);
    /// type, session, run id, parent run id and tags only when they changed (strings as a
    /// varint length and their UTF-8, an optional one's length plus one, 0 when absent);
    /// then the body, without its head when it has the usual one (the event's type, `seq`
    /// and time, which the record already holds), as the number of bytes it shares with
    /// the start of the record before's body (after its head, if omitted), and the rest.
    ///
    /// A token stream's events differ from each other in `seq`, time and the token: a
    /// record takes about 15 bytes where every field written out takes 400, so a commit
    /// writes a few disk pages instead of a hundred.
    static func encode(_ records: ArraySlice<JournalRecord>) -> [UInt8] {
        var page: [UInt8] = []
        page.reserveCapacity(records.count * 32)
        var before: JournalRecord?
        var beforeTail: ArraySlice<UInt8> = []
        var heads = HeadMatcher()
        for record in records {
            var flags: UInt8 = 0
            if let before, before.context === record.context {
                flags |= Flag.sameContext
            } else if let before {
                if before.type == record.type { flags |= Flag.sameType }
                if before.session == record.session { flags |= Flag.sameSession }
                if before.runID == record.runID { flags |= Flag.sameRun }
                if before.parentRunID == record.parentRunID { flags |= Flag.sameParentRun }
                if before.tags == record.tags { flags |= Flag.sameTags }
            }
            var tail = record.body
            if let headLength = heads.headLength(of: record) {
                flags |= Flag.headOmitted
                tail = tail.dropFirst(headLength)
            }
            page.append(flags)
            appendVarint(record.seq &- (before?.seq ?? 0), to: &page)
            appendVarint(zigzag(record.time &- (before?.time ?? 0)), to: &page)
            if flags & Flag.sameType == 0 { append(record.type, to: &page) }
            if flags & Flag.sameSession == 0 { append(optional: record.session, to: &page) }
            if flags & Flag.sameRun == 0 { append(record.runID, to: &page) }
            if flags & Flag.sameParentRun == 0 { append(optional: record.parentRunID, to: &page) }
            if flags & Flag.sameTags == 0 {
                appendVarint(UInt64(record.tags.count), to: &page)
                for tag in record.tags { append(tag, to: &page) }
            }
            let shared = sharedPrefixLength(tail, beforeTail)
            appendVarint(UInt64(shared), to: &page)
            appendVarint(UInt64(tail.count - shared), to: &page)
            page.append(contentsOf: tail.dropFirst(shared))
            before = record
            beforeTail = tail
        }
        return page
    }

    /// Finds the head (``EventBodyHead``) at the start of bodies, for
    /// records in order: its parts before and after the `seq` are kept while the records'
    /// type and time stay the same, as they do across a group of tokens, so a body is
    /// checked with two comparisons of bytes and its `seq`'s digits.
    ///
    /// A body that begins with the head is rebuilt exactly by ``decode(_:)``, which
    /// writes the head again before the rest, whatever follows it.
    private struct HeadMatcher {
        /// The context the parts were made for; another with the same type keeps them too.
        private var context: JournalRecord.Context?
        /// Up to the `seq`.
        private var opening: [UInt8] = []
        private var time: Int64 = -1
        /// After the `seq`: the time.
        private var closing: [UInt8] = []

        /// How many bytes of `record`'s body are its head; nil when the body does not
        /// begin with it.
        mutating func headLength(of record: JournalRecord) -> Int? {
            guard record.time >= 0 else { return nil }
            if context !== record.context {
                if context?.type != record.type {
                    opening.removeAll(keepingCapacity: true)
                    EventBodyHead.appendOpening(name: record.type, to: &opening)
                }
                context = record.context
            }
            if time != record.time {
                time = record.time
                closing.removeAll(keepingCapacity: true)
                EventBodyHead.appendClosing(time: record.time, to: &closing)
            }
            return record.body.withUnsafeBytes { body -> Int? in
                guard body.count >= opening.count,
                    opening.withUnsafeBytes({ memcmp(body.baseAddress!, $0.baseAddress!, $0.count) == 0 })
                else { return nil }
                // The `seq` as the head has it: its digits, no leading zero, no more.
                let start = opening.count
                var end = start
                while end < body.count, end - start < 20, body[end] &- UInt8(ascii: "0") < 10 { end += 1 }
                var rest = record.seq
                for index in stride(from: end - 1, through: start, by: -1) {
                    guard body[index] == UInt8(ascii: "0") + UInt8(truncatingIfNeeded: rest % 10) else { return nil }
                    rest /= 10
                }
                guard end > start, rest == 0, end - start == 1 || body[start] != UInt8(ascii: "0"),
                    body.count - end >= closing.count,
                    closing.withUnsafeBytes({ memcmp(body.baseAddress! + end, $0.baseAddress!, $0.count) == 0 })
                else { return nil }
                return end + closing.count
            }
        }
    }

    private static func sharedPrefixLength(_ a: ArraySlice<UInt8>, _ b: ArraySlice<UInt8>) -> Int {
        a.withUnsafeBytes { a in
            b.withUnsafeBytes { b in
                let count = min(a.count, b.count)
                var index = 0
                // Eight bytes at a time: two bodies of a run share some 150.
                while count - index >= 8,
                    a.loadUnaligned(fromByteOffset: index, as: UInt64.self) == b.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                {
                    index += 8
                }
                while index < count, a[index] == b[index] { index += 1 }
                return index
            }
        }
    }

    private static func appendVarint(_ value: UInt64, to bytes: inout [UInt8]) {
        var rest = value
        while rest >= 0x80 {
            bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        bytes.append(UInt8(rest))
    }

    private static func zigzag(_ value: Int64) -> UInt64 { UInt64(bitPattern: (value << 1) ^ (value >> 63)) }
    private static func unzigzag(_ value: UInt64) -> Int64 { Int64(bitPattern: value >> 1) ^ -Int64(bitPattern: value & 1) }

    private static func append(_ string: String, to bytes: inout [UInt8]) {
        appendVarint(UInt64(string.utf8.count), to: &bytes)
        bytes.append(contentsOf: string.utf8)
    }

    private static func append(optional string: String?, to bytes: inout [UInt8]) {
        guard let string else { return bytes.append(0) }
        appendVarint(UInt64(string.utf8.count) + 1, to: &bytes)
        bytes.append(contentsOf: string.utf8)
    }

    // MARK: - Decoding

    static func decode(_ bytes: [UInt8]) throws(StoreError) -> [JournalRecord] {
        var reader = Reader(bytes: bytes)
        var records: [JournalRecord] = []
        var beforeTail: ArraySlice<UInt8> = []
        while reader.offset < bytes.count {
            let before = records.last
            guard let flags = reader.byte(), flags & ~Flag.all == 0, let seqDelta = reader.varint(),
                let timeDelta = reader.varint()
            else { throw damaged }
            let seq = (before?.seq ?? 0) &+ seqDelta
            let time = (before?.time ?? 0) &+ unzigzag(timeDelta)
            func field<Value>(_ flag: UInt8, _ same: Value?, _ read: () -> Value?) throws(StoreError) -> Value {
                if flags & flag != 0 {
                    guard let same else { throw damaged }
                    return same
                }
                guard let value = read() else { throw damaged }
                return value
            }
            let context: JournalRecord.Context
            if flags & Flag.sameContext == Flag.sameContext, let before {
                // Replayed records of a run share one context, as they did when written.
                context = before.context
            } else {
                let type = try field(Flag.sameType, before?.type) { reader.varintString() }
                let session = try field(Flag.sameSession, before?.session) { reader.optionalVarintString() }
                let runID = try field(Flag.sameRun, before?.runID) { reader.varintString() }
                let parentRunID = try field(Flag.sameParentRun, before?.parentRunID) { reader.optionalVarintString() }
                let tags = try field(Flag.sameTags, before?.tags) { () -> [String]? in
                    guard let count = reader.varint(), count <= UInt64(bytes.count) else { return nil }
                    var tags: [String] = []
                    for _ in 0..<count {
                        guard let tag = reader.varintString() else { return nil }
                        tags.append(tag)
                    }
                    return tags
                }
                context = JournalRecord.Context(
                    type: type, session: session, runID: runID, parentRunID: parentRunID, tags: tags)
            }
            guard let shared = reader.varint(), shared <= UInt64(beforeTail.count), let restCount = reader.varint(),
                let rest = reader.take(restCount)
            else { throw damaged }
            let tail = beforeTail.prefix(Int(shared)) + rest
            var body: [UInt8] = []
            if flags & Flag.headOmitted != 0 {
                guard time >= 0 else { throw damaged }
                body.reserveCapacity(64 + tail.count)
                EventBodyHead.append(name: context.type, seq: seq, time: time, to: &body)
            }
            body += tail
            records.append(JournalRecord(seq: seq, time: time, context: context, body: body[...]))
            beforeTail = tail
        }
        return records
    }

    private static var damaged: StoreError { StoreError(code: SQLITE_CORRUPT, message: "a damaged event journal page") }

    private struct Reader {
        let bytes: [UInt8]
        var offset = 0

        mutating func byte() -> UInt8? {
            guard offset < bytes.count else { return nil }
            defer { offset += 1 }
            return bytes[offset]
        }

        mutating func varint() -> UInt64? {
            var value: UInt64 = 0
            var shift: UInt64 = 0
            while let byte = byte() {
                guard shift < 64 else { return nil }
                value |= UInt64(byte & 0x7F) << shift
                if byte < 0x80 { return value }
                shift += 7
            }
            return nil
        }

        mutating func take<Length: BinaryInteger>(_ length: Length) -> ArraySlice<UInt8>? {
            guard length >= 0, UInt64(bytes.count - offset) >= UInt64(length) else { return nil }
            defer { offset += Int(length) }
            return bytes[offset..<offset + Int(length)]
        }

        mutating func varintString() -> String? {
            guard let length = varint() else { return nil }
            return take(length).map { String(decoding: $0, as: UTF8.self) }
        }

        /// nil inside when absent; nil outside when damaged.
        mutating func optionalVarintString() -> String?? {
            guard let length = varint() else { return nil }
            if length == 0 { return .some(nil) }
            return take(length - 1).map { .some(String(decoding: $0, as: UTF8.self)) }
        }
    }
}
