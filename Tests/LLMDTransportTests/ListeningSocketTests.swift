import Foundation
import LLMDTesting
import Testing

@testable import LLMDTransport

@Suite("Listening socket")
struct ListeningSocketTests {
    private func options(_ path: String, mode: UInt32 = 0o600) -> ListeningSocket.Options {
        ListeningSocket.Options(path: path, mode: mode, group: nil, directoryMode: 0o700)
    }

    private func mode(of path: String) throws -> Int {
        try #require(FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int)
    }

    @Test("binds with the requested mode, creating missing directories with theirs")
    func bindsWithMode() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("a/b/llmd.sock")
        let socket = try ListeningSocket.bind(options(path, mode: 0o660))
        defer { close(socket.descriptor) }
        #expect(try mode(of: path) == 0o660)
        #expect(try mode(of: directory.file("a/b")) == 0o700)
        #expect(socket.ownsPath)
        #expect(socket.activationGroup == nil, "a socket llmd bound itself is governed by SocketGroup= only")
        socket.removeFile()
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test("a socket file nobody listens on is replaced")
    func replacesStale() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("llmd.sock")
        let first = try ListeningSocket.bind(options(path))
        close(first.descriptor)  // a crash: the file stays, nobody listens
        let second = try ListeningSocket.bind(options(path))
        close(second.descriptor)
    }

    @Test("a live listener is reported, and its file left alone")
    func refusesLive() throws {
        let directory = try TemporaryDirectory()
        let path = directory.file("llmd.sock")
        let live = try ListeningSocket.bind(options(path))
        defer { close(live.descriptor) }
        #expect {
            try ListeningSocket.bind(options(path))
        } throws: { error in
            guard case ListeningSocketError.alreadyRunning(path, nil) = error else { return false }
            return true
        }
        #expect(FileManager.default.fileExists(atPath: path))
    }

    @Test("a path that is not a socket, or too long for sun_path, is refused with a reason")
    func refusesBadPaths() throws {
        let directory = try TemporaryDirectory()
        let regular = try directory.write("plain", "x")
        #expect(throws: ListeningSocketError.self) { try ListeningSocket.bind(options(regular)) }
        #expect(String(describing: catching { try ListeningSocket.bind(options(regular)) }).contains("is not a socket"))
        let long = directory.file(String(repeating: "x", count: 120))
        #expect(String(describing: catching { try ListeningSocket.bind(options(long)) }).contains("longer than the limit of 107"))
    }

    @Test("an inherited, group-writable socket admits its file's group")
    func activationGroup() throws {
        guard geteuid() == 0 else {
            print("skipped: changing a socket's group to nogroup needs root")
            return
        }
        let directory = try TemporaryDirectory()
        let path = directory.file("activated.sock")
        let bound = try ListeningSocket.bind(options(path))
        defer { close(bound.descriptor) }
        #expect(chown(path, uid_t.max, 65534) == 0)
        let inherited = ListeningSocket.inherited(descriptor: bound.descriptor, path: path)
        #expect(inherited.activationGroup == nil, "mode 0600 gives the group nothing")
        #expect(chmod(path, 0o660) == 0)
        #expect(inherited.activationGroup == 65534)
        inherited.removeFile()
        #expect(FileManager.default.fileExists(atPath: path), "systemd owns an inherited socket's file")
    }

    private func catching(_ body: () throws -> ListeningSocket) -> Error? {
        do {
            let socket = try body()
            close(socket.descriptor)
            return nil
        } catch {
            return error
        }
    }
}
