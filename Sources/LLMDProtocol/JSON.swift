/// A JSON value, as carried on the wire.
///
/// The protocol keeps its own small JSON model instead of Foundation's so that the
/// client starts in a few milliseconds and the daemon can encode a token event
/// without a trip through `Codable`. Integers keep their 64-bit precision
/// (`seq`, token counts); other numbers are doubles.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case int(Int64)
    case double(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// The name of this value's JSON type, as used in error messages (`"string"`, `"integer"`…).
    public var typeName: String {
        switch self {
        case .null: "null"
        case .bool: "boolean"
        case .int: "integer"
        case .double: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    public var stringValue: String? {
        if case .string(let value) = self { return value }
        return nil
    }

    /// The value as an integer: an integer, or a number with no fractional part that fits.
    public var intValue: Int64? {
        switch self {
        case .int(let value): return value
        case .double(let value):
            guard value.rounded() == value, let exact = Int64(exactly: value) else { return nil }
            return exact
        default: return nil
        }
    }

    /// The value when JSON wrote it as an integer (no fraction, no exponent): what a
    /// request's integer parameters must be.
    public var integerLiteralValue: Int64? {
        if case .int(let value) = self { return value }
        return nil
    }

    public var doubleValue: Double? {
        switch self {
        case .int(let value): Double(value)
        case .double(let value): value
        default: nil
        }
    }

    public var boolValue: Bool? {
        if case .bool(let value) = self { return value }
        return nil
    }

    public var arrayValue: [JSONValue]? {
        if case .array(let value) = self { return value }
        return nil
    }

    public var objectValue: JSONObject? {
        if case .object(let value) = self { return value }
        return nil
    }

    public var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}

/// A JSON object that keeps its members in insertion order, so that lines read well
/// (`type` and `id` first) and encode deterministically.
///
/// Objects on the wire are small; lookups scan linearly, which beats hashing at this size.
public struct JSONObject: Sendable, Equatable {
    public struct Member: Sendable, Equatable {
        public var key: String
        public var value: JSONValue
    }

    public private(set) var members: [Member]

    public init() {
        self.members = []
    }

    public init(members: [Member]) {
        self.members = members
    }

    public var count: Int { members.count }
    public var isEmpty: Bool { members.isEmpty }
    public var keys: [String] { members.map(\.key) }

    /// The member named `key`; when a peer sent the key twice, the last one wins,
    /// as in most JSON parsers.
    public subscript(key: String) -> JSONValue? {
        get {
            members.last(where: { $0.key == key })?.value
        }
        set {
            if let index = members.lastIndex(where: { $0.key == key }) {
                if let newValue {
                    members[index].value = newValue
                } else {
                    members.remove(at: index)
                }
            } else if let newValue {
                members.append(Member(key: key, value: newValue))
            }
        }
    }

    /// Objects are equal when they have the same keys with equal values, in any order.
    /// A key sent twice counts with its last value, as lookups see it.
    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        let left = lhs.effectiveMembers
        guard left.count == rhs.effectiveMembers.count else { return false }
        return left.allSatisfy { member in rhs[member.key] == member.value }
    }

    /// The members with each key's last value: what lookups see.
    private var effectiveMembers: [Member] {
        members.enumerated().filter { position, member in
            !members[(position + 1)...].contains { $0.key == member.key }
        }.map(\.element)
    }
}

extension JSONObject: ExpressibleByDictionaryLiteral {
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self.members = elements.map { Member(key: $0.0, value: $0.1) }
    }
}

extension JSONObject: Sequence {
    public func makeIterator() -> IndexingIterator<[Member]> {
        members.makeIterator()
    }
}

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral,
    ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int64) { self = .int(value) }
    public init(floatLiteral value: Double) { self = .double(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) {
        self = .object(JSONObject(members: elements.map { JSONObject.Member(key: $0.0, value: $0.1) }))
    }
}

extension JSONValue {
    /// Wraps an optional string, mapping `nil` to JSON `null`.
    public init(_ string: String?) {
        self = string.map(JSONValue.string) ?? .null
    }

    /// Wraps a Swift integer.
    public init(_ integer: some BinaryInteger) {
        self = .int(Int64(integer))
    }
}
