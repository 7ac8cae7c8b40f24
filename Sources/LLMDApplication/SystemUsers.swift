import LLMDCore

#if canImport(Glibc)
import Glibc
#endif

/// Look-ups in the user and group databases (NSS).
public enum SystemUsers {
    /// The gid of the group `name`, or nil when there is none.
    public static func groupID(named name: String) -> UInt32? {
        var group = group()
        var result: UnsafeMutablePointer<group>?
        var buffer = [CChar](repeating: 0, count: 16 * 1024)
        guard getgrnam_r(name, &group, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return group.gr_gid
    }

    /// The supplementary groups of the peer's user. SO_PEERCRED carries only the primary
    /// gid, so membership in `SocketGroup=` is looked up in the group database.
    package static func groups(of peer: PeerCredentials) -> [UInt32] {
        var passwd = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16 * 1024)
        guard getpwuid_r(peer.uid, &passwd, &buffer, buffer.count, &result) == 0, result != nil,
            let name = passwd.pw_name
        else { return [] }
        var count: Int32 = 64
        var groups = [gid_t](repeating: 0, count: Int(count))
        if getgrouplist(name, peer.gid, &groups, &count) < 0 {
            groups = [gid_t](repeating: 0, count: Int(count))
            guard getgrouplist(name, peer.gid, &groups, &count) >= 0 else { return [] }
        }
        return Array(groups.prefix(Int(count)))
    }
}
