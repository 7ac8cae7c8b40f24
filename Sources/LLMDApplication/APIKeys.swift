import LLMDCore
import LLMDProtocol
import LLMDStore
import Synchronization

/// The HTTP API's keys: made, listed and revoked through the protocol (`key.*`), and
/// checked on every request of the TCP listener against the digests held in memory.
public final class APIKeys: Sendable {
    private let database: SessionDatabase
    private let billing: Billing
    /// The keys that work, by the SHA-256 of the key.
    private let live = Mutex<[String: StoredKey]>([:])

    public init(sessions: Sessions) {
        database = sessions.database
        billing = sessions.billing
    }

    /// Loads the keys that work.
    public func start() async throws(ProtocolError) {
        try await reload()
    }

    private func reload() async throws(ProtocolError) {
        let keys = try await database.perform { store throws(StoreError) in try store.keys() }
        live.withLock { $0 = Dictionary(keys.filter { $0.revoked == nil }.map { ($0.digest, $0) }) { first, _ in first } }
    }

    /// The key `secret` is, when it works.
    public func authenticate(_ secret: String) -> StoredKey? {
        let digest = SHA256.hex(secret)
        return live.withLock { $0[digest] }
    }

    public func register(in table: inout MethodTable) {
        table.register(KeyCreateMethod.self) { params, _ throws(ProtocolError) in
            try await self.create(params)
        }
        table.register(KeyListMethod.self) { _, _ throws(ProtocolError) in
            let keys = try await self.database.perform { store throws(StoreError) in try store.keys() }
            return KeyListMethod.Result(keys: keys.map(Self.describe))
        }
        table.register(KeyRevokeMethod.self) { params, _ throws(ProtocolError) in
            let now = Timestamp.nowMicroseconds()
            let name = params.name
            let key = try await self.database.perform { store throws(StoreError) -> StoredKey? in
                guard try store.revokeKey(name: name, now: now) else { return nil }
                return try store.keys().first { $0.name == name }
            }
            guard let key else { throw ProtocolError(.keyNotFound, "no key named '\(name)'", detail: ["name": .string(name)]) }
            try await self.reload()
            return Self.describe(key)
        }
    }

    private func create(_ params: KeyCreateMethod.Params) async throws(ProtocolError) -> KeyCreateMethod.Result {
        if let scope = params.scope {
            guard try await database.perform({ store throws(StoreError) in try store.scope(id: scope) }) != nil else {
                throw Billing.scopeNotFound(scope)
            }
        }
        guard try await database.perform({ store throws(StoreError) in try store.keys() }).allSatisfy({ $0.name != params.name }) else {
            throw Self.exists(params.name)
        }
        // A budget of the key's own is a scope of its own, nested in the one named.
        let scope =
            params.limits.isEmpty
            ? params.scope : try await billing.openScope(name: "key \(params.name)", parent: params.scope, limits: params.limits)
        let secret = Self.makeSecret()
        let (name, digest, now) = (params.name, SHA256.hex(secret), Timestamp.nowMicroseconds())
        let created = try await database.perform { store throws(StoreError) in
            try store.createKey(name: name, digest: digest, scope: scope, now: now)
        }
        guard created else { throw Self.exists(name) }
        try await reload()
        return KeyCreateMethod.Result(
            key: Self.describe(StoredKey(name: name, digest: digest, scope: scope, created: now, revoked: nil)), secret: secret)
    }

    static func exists(_ name: String) -> ProtocolError {
        ProtocolError(.keyExists, "a key named '\(name)' exists; revoked keys keep their names", detail: ["name": .string(name)])
    }

    /// `llmd-` and 48 hexadecimal digits from the system's random source.
    static func makeSecret() -> String {
        var generator = SystemRandomNumberGenerator()
        let digits = Array("0123456789abcdef")
        return "llmd-" + String((0..<48).map { _ in digits[Int(generator.next() % 16)] })
    }

    static func describe(_ key: StoredKey) -> KeyDescription {
        KeyDescription(
            name: key.name, scope: key.scope, created: Timestamp.rfc3339(milliseconds: key.created / 1000),
            revoked: key.revoked.map { Timestamp.rfc3339(milliseconds: $0 / 1000) })
    }
}
