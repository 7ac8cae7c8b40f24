import CSQLite

/// A key of the HTTP API, as stored: its name, the SHA-256 of the key, the scope its
/// calls count to, and when it was made and revoked (microseconds since the epoch).
public struct StoredKey: Sendable, Equatable {
    public var name: String
    public var digest: String
    public var scope: String?
    public var created: Int64
    public var revoked: Int64?

    public init(name: String, digest: String, scope: String?, created: Int64, revoked: Int64?) {
        (self.name, self.digest, self.scope, self.created, self.revoked) = (name, digest, scope, created, revoked)
    }
}

extension SessionStore {
    /// Stores a new key.
    ///
    /// - Returns: false when a key of that name exists, revoked or not.
    public func createKey(name: String, digest: String, scope: String?, now: Int64) throws(StoreError) -> Bool {
        guard try keys().allSatisfy({ $0.name != name }) else { return false }
        try database.prepare("INSERT INTO api_keys (name, digest, scope, created) VALUES (?, ?, ?, ?)").run([
            .text(name), .text(digest), scope.map(SQLiteValue.text) ?? .null, .int(now),
        ])
        return true
    }

    public func keys() throws(StoreError) -> [StoredKey] {
        let statement = try database.prepare("SELECT name, digest, scope, created, revoked FROM api_keys ORDER BY created, name")
        try statement.bind([])
        return try rows(of: statement) {
            StoredKey(
                name: $0.text(0), digest: $0.text(1), scope: $0.isNull(2) ? nil : $0.text(2), created: $0.int(3),
                revoked: $0.isNull(4) ? nil : $0.int(4))
        }
    }

    /// Revokes the key called `name`, once; revoking it again keeps the first time.
    ///
    /// - Returns: false when there is no such key.
    public func revokeKey(name: String, now: Int64) throws(StoreError) -> Bool {
        guard try keys().contains(where: { $0.name == name }) else { return false }
        try database.prepare("UPDATE api_keys SET revoked = ? WHERE name = ? AND revoked IS NULL").run([.int(now), .text(name)])
        return true
    }
}
