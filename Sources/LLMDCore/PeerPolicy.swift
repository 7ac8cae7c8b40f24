import LLMDProtocol

/// A connected process as the kernel reports it (SO_PEERCRED).
public struct PeerCredentials: Sendable, Equatable, CustomStringConvertible {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32

    public init(pid: Int32, uid: UInt32, gid: UInt32) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
    }

    public var description: String { "pid \(pid) uid \(uid) gid \(gid)" }
}

/// Who may talk to the daemon: its own uid and root always; with a configured
/// `SocketGroup=`, members of that group too.
///
/// File permissions on the socket are the first gate; this is the second, so a
/// mistaken `SocketMode=` never opens the daemon to everyone.
public struct PeerPolicy: Sendable, Equatable {
    public var daemonUID: UInt32
    public var allowedGroup: UInt32?

    public init(daemonUID: UInt32, allowedGroup: UInt32?) {
        self.daemonUID = daemonUID
        self.allowedGroup = allowedGroup
    }

    /// - Parameter groups: the peer's groups beyond its primary one, when known.
    public func admits(_ peer: PeerCredentials, groups: [UInt32]) -> Bool {
        if peer.uid == 0 || peer.uid == daemonUID { return true }
        guard let allowedGroup else { return false }
        return peer.gid == allowedGroup || groups.contains(allowedGroup)
    }

    /// The error a refused peer receives before the connection closes.
    public func refusal(of peer: PeerCredentials) -> ProtocolError {
        ProtocolError(
            .peerRefused,
            "uid \(peer.uid) may not use this llmd (it serves uid \(daemonUID)"
                + (allowedGroup.map { " and group \($0)" } ?? "") + ")",
            detail: ["uid": .int(Int64(peer.uid)), "gid": .int(Int64(peer.gid))]
        )
    }
}
