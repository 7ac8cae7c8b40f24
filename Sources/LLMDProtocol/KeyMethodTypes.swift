/// A key of the HTTP API as `key.create` and `key.list` describe it; never the key itself.
public struct KeyDescription: JSONObjectConvertible, Equatable {
    public var name: String
    /// The scope its calls count to, and with it the scope's budget.
    public var scope: String?
    /// RFC 3339, with milliseconds.
    public var created: String
    public var revoked: String?

    public init(name: String, scope: String?, created: String, revoked: String?) {
        (self.name, self.scope, self.created, self.revoked) = (name, scope, created, revoked)
    }

    public init(json: JSONObject) throws(ProtocolError) {
        name = try json.requiredString("name")
        scope = try json.string("scope")
        created = try json.requiredString("created")
        revoked = try json.string("revoked")
    }

    public var json: JSONObject {
        ["name": .string(name), "scope": JSONValue(scope), "created": .string(created), "revoked": JSONValue(revoked)]
    }
}

/// The name of a key: 1 to 64 letters, digits, `-`, `_` or `.`.
enum KeyName {
    static func read(_ json: JSONObject) throws(ProtocolError) -> String {
        guard let name = try json.string("name"), (1...64).contains(name.utf8.count),
            name.utf8.allSatisfy({ $0.isASCIIAlphanumeric || $0 == UInt8(ascii: "-") || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") })
        else {
            throw .invalidParam("name", expected: "a key name of 1 to 64 letters, digits, '-', '_' or '.'", got: json["name"])
        }
        return name
    }
}

extension UInt8 {
    fileprivate var isASCIIAlphanumeric: Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(self) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(self)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self)
    }
}

/// `key.create`: a key for the HTTP API's TCP listener, shown in this reply only.
public enum KeyCreateMethod: TypedMethod {
    public static let method = ProtocolMethod.keyCreate

    public struct Params: MethodParameters, Equatable {
        public enum Key: String, CaseIterable { case name, scope }

        public static var parameterNames: [String] {
            Key.allCases.map(\.rawValue) + BudgetLimitChange.Key.allCases.map(\.rawValue)
        }

        public var name: String
        public var scope: String?
        /// A budget of the key's own: a scope made for the key, in `scope` if given.
        public var limits: BudgetLimitChange

        public init(name: String, scope: String? = nil, limits: BudgetLimitChange = BudgetLimitChange()) {
            (self.name, self.scope, self.limits) = (name, scope, limits)
        }

        public init(json: JSONObject) throws(ProtocolError) {
            name = try KeyName.read(json)
            scope = try json.string(Key.scope)
            limits = try BudgetLimitChange(json: json)
        }

        public var json: JSONObject {
            var object = JSONObject([Key.name: .string(name), Key.scope: scope.map(JSONValue.string)])
            limits.add(to: &object)
            return object
        }
    }

    public struct Result: JSONObjectConvertible, Equatable {
        public var key: KeyDescription
        /// The key itself, for `Authorization: Bearer`; llmd keeps only its digest.
        public var secret: String

        public init(key: KeyDescription, secret: String) { (self.key, self.secret) = (key, secret) }

        public init(json: JSONObject) throws(ProtocolError) {
            key = try KeyDescription(json: json)
            secret = try json.requiredString("key")
        }

        public var json: JSONObject {
            var object = key.json
            object["key"] = .string(secret)
            return object
        }
    }
}

/// `key.list`: the keys, revoked ones included; never their secrets.
public enum KeyListMethod: TypedMethod {
    public static let method = ProtocolMethod.keyList
    public typealias Params = NoParams

    public struct Result: JSONObjectConvertible, Equatable {
        public var keys: [KeyDescription]

        public init(keys: [KeyDescription]) { self.keys = keys }

        public init(json: JSONObject) throws(ProtocolError) {
            keys = try json.objects("keys") ?? []
        }

        public var json: JSONObject { ["keys": .objects(keys)] }
    }
}

/// `key.revoke`: the key stops working at once.
public enum KeyRevokeMethod: TypedMethod {
    public static let method = ProtocolMethod.keyRevoke

    public struct Params: MethodParameters, Equatable {
        public enum Key: String, CaseIterable { case name }
        public var name: String

        public init(name: String) { self.name = name }

        public init(json: JSONObject) throws(ProtocolError) {
            name = try KeyName.read(json)
        }

        public var json: JSONObject { ["name": .string(name)] }
    }

    public typealias Result = KeyDescription
}
