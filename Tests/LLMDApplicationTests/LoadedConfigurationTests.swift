import Foundation
import LLMDCore
import LLMDTesting
import Testing

@testable import LLMDApplication

@Suite("Loaded configuration")
struct LoadedConfigurationTests {
    @Test("a SocketGroup= naming no group is an error at its line, among the others in reading order")
    func unknownGroup() throws {
        let directory = try TemporaryDirectory()
        let main = try directory.write(
            "llmd.conf", "[Daemon]\nLogLevel=debug\nSocketGroup=no-such-group-llmd\nMaxLineBytes=1\n")
        let loaded = LoadedConfiguration.load(mainPath: main, mainFileRequired: true)
        #expect(loaded.hasErrors)
        #expect(loaded.socketGroupID == nil)
        #expect(
            loaded.diagnostics.map(\.description) == [
                "\(main):3: error: SocketGroup=no-such-group-llmd: no such group",
                "\(main):4: error: invalid MaxLineBytes=1: MaxLineBytes= must be between 1K and 256M, got 1",
            ])
    }

    @Test("an existing group resolves to its gid")
    func knownGroup() throws {
        let directory = try TemporaryDirectory()
        let main = try directory.write("llmd.conf", "[Daemon]\nSocketGroup=root\n")
        let loaded = LoadedConfiguration.load(mainPath: main, mainFileRequired: true)
        #expect(!loaded.hasErrors)
        #expect(loaded.socketGroupID == 0)
    }

    @Test("ReplyFile= adds a reply per line to the offline provider; a missing file is an error at its line")
    func replyFile() throws {
        let directory = try TemporaryDirectory()
        let replies = try directory.write("replies.txt", "first reply\n\nsecond reply\n")
        let main = try directory.write(
            "llmd.conf", "[Provider fake]\nReply=inline\nReplyFile=\(replies)\n[Provider other]\nType=fake\nReplyFile=/nonexistent/r\n")
        let loaded = LoadedConfiguration.load(mainPath: main, mainFileRequired: true, environment: { _ in nil })
        let fake = try #require(loaded.providers.first { $0.name == "fake" })
        #expect(fake.configuration.fakeReplies == ["inline", "first reply", "second reply"])
        #expect(loaded.diagnostics.map(\.description) == ["\(main):6: error: ReplyFile=/nonexistent/r: No such file or directory"])
    }

    @Test("a missing default file is fine, a missing named one is an error")
    func missingFile() throws {
        let directory = try TemporaryDirectory()
        #expect(!LoadedConfiguration.load(mainPath: directory.file("none.conf"), mainFileRequired: false).hasErrors)
        let required = LoadedConfiguration.load(mainPath: directory.file("none.conf"), mainFileRequired: true)
        #expect(required.diagnostics.map(\.description) == ["\(directory.file("none.conf")): error: No such file or directory"])
    }

    @Test("a key file's line end is trimmed, CRLF too; a key with a control character or a space is refused, unshown")
    func keyFiles() throws {
        let directory = try TemporaryDirectory()
        func load(_ contents: String, environment: [String: String] = [:]) throws -> LoadedConfiguration {
            let key = try directory.write("key", contents)
            chmod(key, 0o600)
            let main = try directory.write(
                "llmd.conf", "[Provider file]\nAPIKeyFile=\(key)\n[Provider variable]\nAPIKeyEnvironment=LLMD_TEST_KEY\n")
            return LoadedConfiguration.load(mainPath: main, mainFileRequired: true, environment: { environment[$0] })
        }
        let windows = try load("sk-test-1234\r\n", environment: ["LLMD_TEST_KEY": "sk-env-5678\r"])
        #expect(!windows.hasErrors, "\(windows.diagnostics)")
        #expect(windows.providers.first { $0.name == "file" }?.apiKey?.secret == "sk-test-1234")
        #expect(windows.providers.first { $0.name == "variable" }?.apiKey?.secret == "sk-env-5678")

        let broken = try load("sk-te\u{1B}st\n", environment: ["LLMD_TEST_KEY": "sk-a b"])
        #expect(
            broken.diagnostics.map(\.message) == [
                "APIKeyFile=\(directory.file("key")): the key has a control character (U+001B) at character 6",
                "APIKeyEnvironment=LLMD_TEST_KEY: the key has a space at character 5",
            ])
        #expect(broken.providers.allSatisfy { $0.apiKey == nil })
    }
}
