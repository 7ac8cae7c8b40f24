/// The event vocabulary: LangChain's callback methods, plus llmd's own (llmd-protocol(7)).
public enum EventType: String, CaseIterable, Sendable, Hashable {
    /// A conversation turn (or a bare `complete` call) begins: the chain.
    case chainStart = "chain_start"
    case chainEnd = "chain_end"
    case chainError = "chain_error"
    /// A chat model is called, with the messages sent.
    case chatModelStart = "chat_model_start"
    /// A completion model (the legacy endpoint) is called, with the prompt.
    case llmStart = "llm_start"
    case llmNewToken = "llm_new_token"
    case llmEnd = "llm_end"
    case llmError = "llm_error"
    case retry
    /// Text worth showing, such as the prompt after formatting.
    case text
    /// Published by a client with `publish`.
    case custom
    case sessionCreated = "session_created"
    case sessionDeleted = "session_deleted"
    case sessionRenamed = "session_renamed"
    /// A session's settings changed (model, memory strategy, prompt style…).
    case sessionUpdated = "session_updated"
    case memoryUpdated = "memory_updated"
    case usageRecorded = "usage_recorded"
    case budgetExceeded = "budget_exceeded"
    /// A subscription fell behind and skipped events; it says where to resume.
    case lagged
    /// A blocking subscriber did not acknowledge an event in time; the run went on.
    case ackTimeout = "ack_timeout"
    /// Events went out live but the journal could not keep them (a flood, a full disk).
    case journalGap = "journal_gap"

    /// Events about one subscriber rather than a run: delivered to that subscriber, and to
    /// others only when they name the type in their filter.
    public var isAddressed: Bool { self == .lagged || self == .ackTimeout }

    /// Whether a subscriber may block on the type (`subscribe`'s `blocking`): tokens never
    /// wait, and the addressed events are about a subscriber, not a run.
    public var canBlock: Bool { self != .llmNewToken && !isAddressed }

    /// The case's place in the declaration: a payload-free enum is stored as that number
    /// (Swift's type layout), one byte here.
    var ordinal: UInt8 { unsafeBitCast(self, to: UInt8.self) }

    // A type with a raw value compares and hashes by it unless told otherwise: a string
    // hashed for every subscription an event is matched against.
    public static func == (lhs: EventType, rhs: EventType) -> Bool { lhs.ordinal == rhs.ordinal }

    public func hash(into hasher: inout Hasher) { hasher.combine(ordinal) }
}

/// A set of event types as one bit each: what an event is matched against for every
/// subscription, where a `Set<EventType>` would hash the type each time.
public struct EventTypeMask: Sendable, Equatable {
    private var bits: UInt32

    public init(_ types: some Sequence<EventType>) {
        bits = types.reduce(0) { $0 | $1.bit }
    }

    public func contains(_ type: EventType) -> Bool { bits & type.bit != 0 }
}

extension EventType {
    fileprivate var bit: UInt32 { 1 << ordinal }
}

/// One callback event, as the daemon journals it and sends it.
///
/// Every event has a daemon-wide `seq` that only grows, across restarts too, so a
/// subscriber resumes from the last one it saw. `request` or `subscription` says which
/// request or subscription of the receiving connection it answers.
public struct CallbackEvent: Sendable {
    /// The fields, shared by copies of the event until one of them changes a field.
    ///
    /// An event goes from its producer to the bus, the requesting client and handlers once
    /// per streamed token; copying a dozen fields (and retaining each) at every hand-over
    /// cost more than the rest of its way. Only a uniquely referenced storage is ever
    /// changed, which is what makes sharing it across threads safe.
    private final class Storage: @unchecked Sendable {
        var name: String
        var type: EventType?
        var seq: UInt64
        var time: Int64
        var session: String?
        var runID: String
        var parentRunID: String?
        var tags: [String]
        var metadata: JSONObject
        var data: JSONObject
        var request: RequestID?
        var subscription: Int64?
        var publishedBody: [UInt8]?
        var encodedContext: [UInt8]?

        init(
            name: String, type: EventType?, seq: UInt64 = 0, time: Int64 = 0, session: String?, runID: String,
            parentRunID: String?, tags: [String], metadata: JSONObject, data: JSONObject, request: RequestID? = nil,
            subscription: Int64? = nil, publishedBody: [UInt8]? = nil, encodedContext: [UInt8]? = nil
        ) {
            self.name = name
            self.type = type
            self.seq = seq
            self.time = time
            self.session = session
            self.runID = runID
            self.parentRunID = parentRunID
            self.tags = tags
            self.metadata = metadata
            self.data = data
            self.request = request
            self.subscription = subscription
            self.publishedBody = publishedBody
            self.encodedContext = encodedContext
        }

        func copy() -> Storage {
            Storage(
                name: name, type: type, seq: seq, time: time, session: session, runID: runID, parentRunID: parentRunID,
                tags: tags, metadata: metadata, data: data, request: request, subscription: subscription,
                publishedBody: publishedBody, encodedContext: encodedContext)
        }
    }

    private var storage: Storage

    private var uniqueStorage: Storage {
        mutating get {
            if !isKnownUniquelyReferenced(&storage) { storage = storage.copy() }
            return storage
        }
    }

    /// The event's type, named after LangChain's callback methods (`llm_new_token`).
    public var name: String {
        get { storage.name }
        set {
            let storage = uniqueStorage
            storage.name = newValue
            storage.type = EventType(rawValue: newValue)
        }
    }
    /// `name` as a known type; nil for a name this version does not know. Kept, not
    /// derived on each use: every token's event is asked for it several times.
    public var type: EventType? { storage.type }
    public var seq: UInt64 {
        get { storage.seq }
        set { uniqueStorage.seq = newValue }
    }
    /// Microseconds since the Unix epoch.
    public var time: Int64 {
        get { storage.time }
        set { uniqueStorage.time = newValue }
    }
    public var session: String? {
        get { storage.session }
        set { uniqueStorage.session = newValue }
    }
    public var runID: String {
        get { storage.runID }
        set { uniqueStorage.runID = newValue }
    }
    public var parentRunID: String? {
        get { storage.parentRunID }
        set { uniqueStorage.parentRunID = newValue }
    }
    public var tags: [String] {
        get { storage.tags }
        _modify { yield &uniqueStorage.tags }
    }
    public var metadata: JSONObject {
        get { storage.metadata }
        _modify { yield &uniqueStorage.metadata }
    }
    public var data: JSONObject {
        get { storage.data }
        _modify { yield &uniqueStorage.data }
    }
    public var request: RequestID? {
        get { storage.request }
        set { uniqueStorage.request = newValue }
    }
    public var subscription: Int64? {
        get { storage.subscription }
        set { uniqueStorage.subscription = newValue }
    }
    /// The body as the publisher encoded it (``encodeBody(into:)``), so that every
    /// recipient (the requester, subscribers, handlers) copies it instead of encoding the
    /// event again. Set once the event is final: fields changed afterwards would not show,
    /// except `request` and `subscription`, which are not part of the body.
    public var publishedBody: [UInt8]? {
        get { storage.publishedBody }
        set { uniqueStorage.publishedBody = newValue }
    }
    /// `session` through `metadata` as ``encodeBody(into:)`` writes them, when the
    /// producer encoded them once for all the events of a run (``encodeContext()``); the
    /// same staleness rule as ``publishedBody``.
    public var encodedContext: [UInt8]? {
        get { storage.encodedContext }
        set { uniqueStorage.encodedContext = newValue }
    }

    public init(
        name: String, seq: UInt64 = 0, time: Int64 = 0, session: String? = nil, runID: String = "",
        parentRunID: String? = nil, tags: [String] = [], metadata: JSONObject = [:], data: JSONObject = [:],
        request: RequestID? = nil, subscription: Int64? = nil
    ) {
        storage = Storage(
            name: name, type: EventType(rawValue: name), seq: seq, time: time, session: session, runID: runID,
            parentRunID: parentRunID, tags: tags, metadata: metadata, data: data, request: request,
            subscription: subscription)
    }

    /// An event of a known type; spares looking the type up by its name, which a run's
    /// manager would do for every token.
    public init(
        type: EventType, session: String?, runID: String, parentRunID: String?, tags: [String], metadata: JSONObject,
        data: JSONObject, encodedContext: [UInt8]?
    ) {
        storage = Storage(
            name: type.rawValue, type: type, session: session, runID: runID, parentRunID: parentRunID, tags: tags,
            metadata: metadata, data: data, encodedContext: encodedContext)
    }

    /// The event without its addressing, up to but not including the closing brace:
    /// encoded once, then completed for each recipient with ``completeLine(_:request:subscription:)``.
    public func encodeBody(into line: inout [UInt8]) {
        if let publishedBody {
            line.append(contentsOf: publishedBody)
            return
        }
        EventBodyHead.append(name: name, seq: seq, time: time, to: &line)
        if let encodedContext {
            line.append(contentsOf: encodedContext)
        } else {
            encodeContext(into: &line)
        }
        line.append(literal: #","data":"#)
        data.encode(into: &line)
    }

    /// The bodies ``encodeBody(into:)`` writes for the `llm_new_token` events of `tokens`,
    /// numbered from `firstSeq`, at `time`, in a run whose ``encodeContext()`` is
    /// `context`, without making the events: the bus publishes tokens this way unless a
    /// handler takes them as events.
    ///
    /// Written in one pass into one array of the exact size: this runs for every token,
    /// and an allocation for each cost more than the rest of its encoding.
    public static func encodeTokenBodies(
        _ tokens: [String], firstSeq: UInt64, time: Int64, context: [UInt8]
    ) -> EncodedBodies {
        var head: [UInt8] = []
        EventBodyHead.appendOpening(name: EventType.llmNewToken.rawValue, to: &head)
        // What follows each token's `seq` up to its text is the same for all of them.
        var middle: [UInt8] = []
        middle.reserveCapacity(context.count + 48)
        EventBodyHead.appendClosing(time: time, to: &middle)
        middle.append(contentsOf: context)
        middle.append(literal: #","data":{"token":"#)
        // Tokens as JSON strings: nearly all go in as they are, between quotes; the others
        // are escaped first.
        var escaped: [(index: Int, string: [UInt8])] = []
        var size = 0
        for (index, token) in tokens.enumerated() {
            var token = token
            let plainCount = token.withUTF8 { JSONValue.needsNoEscapes($0) ? $0.count + 2 : nil }
            let stringCount: Int
            if let plainCount {
                stringCount = plainCount
            } else {
                var string: [UInt8] = []
                JSONValue.encodeString(token, into: &string)
                escaped.append((index, string))
                stringCount = string.count
            }
            size += head.count + decimalDigitCount(firstSeq &+ UInt64(index)) + middle.count + stringCount + 1
        }
        var ends: [Int] = []
        ends.reserveCapacity(tokens.count)
        let bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            var writer = UnsafeByteWriter(buffer.baseAddress!)
            var nextEscaped = escaped.startIndex
            for (index, token) in tokens.enumerated() {
                head.withUnsafeBufferPointer { writer.write($0) }
                writer.writeDecimal(firstSeq &+ UInt64(index))
                middle.withUnsafeBufferPointer { writer.write($0) }
                if nextEscaped < escaped.endIndex, escaped[nextEscaped].index == index {
                    escaped[nextEscaped].string.withUnsafeBufferPointer { writer.write($0) }
                    nextEscaped += 1
                } else {
                    var token = token
                    writer.write(UInt8(ascii: "\""))
                    token.withUTF8 { writer.write($0) }
                    writer.write(UInt8(ascii: "\""))
                }
                writer.write(UInt8(ascii: "}"))
                ends.append(buffer.baseAddress!.distance(to: writer.cursor))
            }
            initialized = size
        }
        return EncodedBodies(bytes: bytes, ends: ends)
    }

    /// The part of the body a run's events share, for ``encodedContext``.
    public func encodeContext() -> [UInt8] {
        var context: [UInt8] = []
        encodeContext(into: &context)
        return context
    }

    private func encodeContext(into line: inout [UInt8]) {
        line.append(literal: #","session":"#)
        if let session { JSONValue.encodeString(session, into: &line) } else { line.append(literal: "null") }
        line.append(literal: #","run_id":"#)
        JSONValue.encodeString(runID, into: &line)
        line.append(literal: #","parent_run_id":"#)
        if let parentRunID {
            JSONValue.encodeString(parentRunID, into: &line)
        } else {
            line.append(literal: "null")
        }
        line.append(literal: #","tags":["#)
        for (index, tag) in tags.enumerated() {
            if index > 0 { line.append(UInt8(ascii: ",")) }
            JSONValue.encodeString(tag, into: &line)
        }
        line.append(literal: #"],"metadata":"#)
        metadata.encode(into: &line)
    }

    /// Closes a body from ``encodeBody(into:)`` with the recipient's addressing and a newline.
    public static func completeLine(_ line: inout [UInt8], request: RequestID?, subscription: Int64?) {
        switch request {
        case nil: break
        case .int(let id)?:
            // Not through JSONValue: this runs for every token a client streams.
            line.append(literal: #","request":"#)
            if id < 0 { line.append(UInt8(ascii: "-")) }
            appendDecimal(id.magnitude, to: &line)
        case .string(let id)?:
            line.append(literal: #","request":"#)
            JSONValue.encodeString(id, into: &line)
        }
        if let subscription {
            line.append(literal: #","subscription":"#)
            appendDecimal(UInt64(subscription), to: &line)
        }
        line.append(literal: "}\n")
    }

    /// The event a published body (``encodeBody(into:)``, as the journal keeps it) holds;
    /// nil when the bytes are not one.
    public init?(publishedBody body: ArraySlice<UInt8>) {
        guard let object = try? JSONParser.parse(Array(body) + [UInt8(ascii: "}")]).objectValue else { return nil }
        self.init(fields: object)
    }

    init?(fields object: JSONObject) {
        // One pass over the members, not a lookup per field: a client decodes every token's
        // event. A later duplicate wins, as with lookups.
        var name: String?
        var seq: UInt64 = 0
        var time: Int64 = 0
        var session: String?
        var runID = ""
        var parentRunID: String?
        var tags: [String] = []
        var metadata: JSONObject = [:]
        var data: JSONObject = [:]
        var request: RequestID?
        var subscription: Int64?
        for member in object.members {
            let value = member.value
            // The length first: an integer comparison rules out most names without
            // comparing strings.
            switch (member.key.utf8.count, member.key) {
            case (5, "event"): name = value.stringValue
            case (3, "seq"): seq = value.intValue.map { UInt64(max(0, $0)) } ?? 0
            case (2, "ts"): time = value.intValue ?? 0
            case (7, "session"): session = value.stringValue
            case (6, "run_id"): runID = value.stringValue ?? ""
            case (13, "parent_run_id"): parentRunID = value.stringValue
            case (4, "tags"): tags = value.arrayValue?.compactMap(\.stringValue) ?? []
            case (8, "metadata"): metadata = value.objectValue ?? [:]
            case (4, "data"): data = value.objectValue ?? [:]
            case (7, "request"): request = RequestID(json: value)
            case (12, "subscription"): subscription = value.intValue
            default: break
            }
        }
        guard let name else { return nil }
        self.init(
            name: name, seq: seq, time: time, session: session, runID: runID, parentRunID: parentRunID, tags: tags,
            metadata: metadata, data: data, request: request, subscription: subscription)
    }
}

extension CallbackEvent: Equatable {
    /// Events are equal by their fields; whether one carries its published encoding does
    /// not matter.
    public static func == (lhs: CallbackEvent, rhs: CallbackEvent) -> Bool {
        lhs.name == rhs.name && lhs.seq == rhs.seq && lhs.time == rhs.time && lhs.session == rhs.session
            && lhs.runID == rhs.runID && lhs.parentRunID == rhs.parentRunID && lhs.tags == rhs.tags
            && lhs.metadata == rhs.metadata && lhs.data == rhs.data && lhs.request == rhs.request
            && lhs.subscription == rhs.subscription
    }
}

extension Array where Element == UInt8 {
    /// Appends a literal's bytes: a plain copy, where a `String`'s UTF-8 view is walked.
    @inline(__always)
    mutating func append(literal: StaticString) {
        append(contentsOf: UnsafeBufferPointer(start: literal.utf8Start, count: literal.utf8CodeUnitCount))
    }
}

/// Event bodies written one after another into one array: the events published together.
public struct EncodedBodies: Sendable {
    public let bytes: [UInt8]
    /// Where each body ends in `bytes`; the first begins at 0, each other where the one
    /// before ends.
    public let ends: [Int]

    public init(bytes: [UInt8], ends: [Int]) {
        self.bytes = bytes
        self.ends = ends
    }

    public var count: Int { ends.count }

    /// The body at `index`, sharing `bytes`.
    public subscript(index: Int) -> ArraySlice<UInt8> {
        bytes[(index == 0 ? 0 : ends[index - 1])..<ends[index]]
    }
}

/// How many digits `value` has in decimal: by multiplying, which is cheaper than dividing.
@inline(__always)
func decimalDigitCount(_ value: UInt64) -> Int {
    var count = 1
    var bound: UInt64 = 10
    while count < 20, value >= bound {
        count += 1
        bound &*= 10
    }
    return count
}

/// Writes bytes into memory the caller sized for them.
private struct UnsafeByteWriter {
    private(set) var cursor: UnsafeMutablePointer<UInt8>

    init(_ start: UnsafeMutablePointer<UInt8>) {
        cursor = start
    }

    mutating func write(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let base = bytes.baseAddress else { return }
        cursor.update(from: base, count: bytes.count)
        cursor += bytes.count
    }

    mutating func write(_ byte: UInt8) {
        cursor.pointee = byte
        cursor += 1
    }

    /// `value` in decimal: no sign, no leading zero.
    mutating func writeDecimal(_ value: UInt64) {
        let digits = decimalDigitCount(value)
        var rest = value
        for index in stride(from: digits - 1, through: 0, by: -1) {
            cursor[index] = UInt8(ascii: "0") + UInt8(truncatingIfNeeded: rest % 10)
            rest /= 10
        }
        cursor += digits
    }
}

/// Writes `value` in decimal without going through `String`: digits into a stack buffer,
/// then one append (an event's timestamp has 16 of them).
@inline(__always)
func appendDecimal(_ value: UInt64, to line: inout [UInt8]) {
    withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 20) { digits in
        var writer = UnsafeByteWriter(digits.baseAddress!)
        writer.writeDecimal(value)
        line.append(contentsOf: UnsafeBufferPointer(start: digits.baseAddress, count: digits.baseAddress!.distance(to: writer.cursor)))
    }
}
