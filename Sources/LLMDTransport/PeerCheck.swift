import LLMDApplication
import LLMDCore
import NIOCore

#if canImport(Glibc)
import Glibc
#endif

/// `struct ucred` from <sys/socket.h>, which Swift's Glibc module hides behind
/// `_GNU_SOURCE`: pid_t, uid_t, gid_t, three 32-bit fields in this order on Linux.
private struct KernelPeerCredentials: Sendable {
    var pid: Int32
    var uid: UInt32
    var gid: UInt32
}

/// Who is on the other end of a Unix socket connection, and whether llmd serves them:
/// the same check for the protocol socket and the HTTP API's.
public enum PeerCheck {
    struct NotASocket: Error {}

    /// The peer's credentials as the kernel recorded them at connect (`SO_PEERCRED`).
    public static func credentials(of channel: Channel) -> EventLoopFuture<PeerCredentials> {
        guard let provider = channel as? SocketOptionProvider else {
            return channel.eventLoop.makeFailedFuture(NotASocket())
        }
        return provider.unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SO_PEERCRED).map {
            (credentials: KernelPeerCredentials) in
            PeerCredentials(pid: credentials.pid, uid: credentials.uid, gid: credentials.gid)
        }
    }

    /// Whether `policy` admits `peer`; its groups are looked up only when they matter.
    public static func admits(_ peer: PeerCredentials, policy: PeerPolicy) -> Bool {
        let groups = policy.allowedGroup == nil || peer.uid == policy.daemonUID ? [] : SystemUsers.groups(of: peer)
        return policy.admits(peer, groups: groups)
    }
}
