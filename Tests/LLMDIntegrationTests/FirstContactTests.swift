import Foundation
import LLMDClient
import LLMDProtocol
import LLMDTesting
import Testing

/// What a new user meets first: a call with nothing but OPENAI_API_KEY, a provider with no
/// model, a completion model from the command line, and a daemon llmctl cannot find.
@Suite("First contact")
struct FirstContactTests {
    let keys: TemporaryDirectory

    init() throws {
        keys = try TemporaryDirectory()
    }

    /// Requests the fixture saw on `path`, in order.
    private func requests(_ fixture: FixtureServer, path: String) throws -> [JSONObject] {
        try fixture.requestLog().filter { $0["path"]?.stringValue == path }
    }

    @Test("OPENAI_API_KEY alone is enough: the provider it makes calls gpt-4o-mini")
    func environmentProvider() throws {
        let fixture = try FixtureServer()
        let daemon = try DaemonProcess(
            environment: ["OPENAI_API_KEY": "sk-test-environment", "OPENAI_BASE_URL": fixture.baseURL])
        let sent = try llmctl(["send", "--socket", daemon.socketPath, "Hi"])
        #expect(sent.status == 0, "\(sent.standardError)")
        #expect(sent.standardOutput == "echo: Hi\n")
        let chat = try requests(fixture, path: "/v1/chat/completions")
        #expect(chat.map { $0["model"] } == ["gpt-4o-mini"])
    }

    @Test("a provider without a model: the error names -m and DefaultModel= and lists what /v1/models offers")
    func noModel() throws {
        let fixture = try FixtureServer()
        let keyFile = try keys.write("key", "sk-test-no-model\n")
        chmod(keyFile, 0o600)
        let daemon = try DaemonProcess(
            config: """
                [Provider bare]
                BaseURL=\(fixture.baseURL)
                APIKeyFile=\(keyFile)

                [Provider gone]
                BaseURL=http://127.0.0.1:9/v1
                ConnectTimeoutSec=1
                """)
        let oneOff = try llmctl(["send", "--socket", daemon.socketPath, "-p", "bare", "hello"])
        #expect(oneOff.status == 1)
        #expect(oneOff.standardError.contains("[provider.no_model]"), "\(oneOff.standardError)")
        #expect(oneOff.standardError.contains("llmctl send -m MODEL"))
        #expect(oneOff.standardError.contains("DefaultModel= in [Provider bare]"))
        #expect(oneOff.standardError.contains("it offers: fixture, gpt-4o-mini, gpt-4o, gpt-3.5-turbo-instruct"))
        #expect(try requests(fixture, path: "/v1/models").count == 1)

        let turn = try llmctl(["send", "--socket", daemon.socketPath, "-s", "notes", "-p", "bare", "hello"])
        #expect(turn.status == 1)
        #expect(turn.standardError.contains("llmctl send -s notes -m MODEL"), "\(turn.standardError)")
        #expect(turn.standardError.contains("it offers: fixture"))

        // A provider that does not answer: still how to fix it, and why no list.
        let client = try LLMDClient(socketPath: daemon.socketPath)
        let failure: ProtocolError? = {
            do throws(ClientError) {
                _ = try client.complete(CompleteMethod.Params(provider: "gone", input: PromptInput(text: "hello")), onToken: { _ in })
            } catch {
                if case .remote(let error) = error { return error }
            }
            return nil
        }()
        let error = try #require(failure, "a call without a model fails with the daemon's error")
        #expect(error.code == .modelMissing)
        #expect(error.message.contains("DefaultModel="))
        #expect(error.detail["models_error"]?.stringValue?.hasPrefix("upstream.") == true, "\(error.detail)")
    }

    @Test("llmctl send picks the endpoint by model without a session; --endpoint works without one too")
    func legacyCompletions() throws {
        let fixture = try FixtureServer()
        let daemon = try DaemonProcess(config: try fixture.config(keys: keys))
        let instruct = try llmctl(["send", "--socket", daemon.socketPath, "-m", "gpt-3.5-turbo-instruct", "Say", "hi"])
        #expect(instruct.status == 0, "\(instruct.standardError)")
        #expect(instruct.standardOutput == "echo: Say hi\n")
        let completions = try requests(fixture, path: "/v1/completions")
        #expect(completions.map { $0["body"]?.objectValue?["prompt"] } == ["Say hi"])
        #expect(try requests(fixture, path: "/v1/chat/completions").isEmpty)

        let forced = try llmctl(["send", "--socket", daemon.socketPath, "--endpoint", "completions", "plain", "text"])
        #expect(forced.status == 0, "\(forced.standardError)")
        #expect(try requests(fixture, path: "/v1/completions").last?["body"]?.objectValue?["prompt"] == "plain text")

        // The fixture answers a chat model on the wrong endpoint as OpenAI does.
        let wrong = try llmctl(["send", "--socket", daemon.socketPath, "-m", "gpt-4o", "--endpoint", "completions", "x"])
        #expect(wrong.status == 1)
        #expect(wrong.standardError.contains("[upstream.not_found]"), "\(wrong.standardError)")

        // A value llmctl knows is wrong is a usage error, named with the ones there are, before anything is sent.
        let bad = try llmctl(["send", "--socket", daemon.socketPath, "--endpoint", "fax", "x"])
        #expect(bad.status == 64 && bad.standardError.contains("--endpoint 'fax' is not one of: chat, completions"), "\(bad.standardError)")
    }

    @Test("an unknown provider's error lists the known ones")
    func unknownProvider() throws {
        let daemon = try DaemonProcess()
        let result = try llmctl(["send", "--socket", daemon.socketPath, "-p", "opnai", "hello"])
        #expect(result.status == 1)
        #expect(result.standardError.contains("no provider named 'opnai'; the providers are: fake"), "\(result.standardError)")
    }

    @Test("with no daemon where llmctl looks, it names the one that does listen and how to reach it")
    func otherDaemonHint() throws {
        // XDG_RUNTIME_DIR's daemon is root's own one; for anyone else it is simply found.
        let runtime = try TemporaryDirectory()
        let socket = runtime.file("llmd/llmd.sock")
        try FileManager.default.createDirectory(atPath: runtime.file("llmd"), withIntermediateDirectories: true)
        let daemon = try DaemonProcess(socketPath: socket)
        var environment = ProcessInfo.processInfo.environment
        environment["LLMD_SOCKET"] = nil
        environment["XDG_RUNTIME_DIR"] = runtime.path
        let status = try llmctl(["status"], environment: environment)
        if getuid() != 0 {
            #expect(status.status == 0, "a user's own daemon is found: \(status.standardError)")
            return
        }
        // Root talks to the system instance; with none running, the hint names the other.
        guard access(SocketLocation.systemPath, F_OK) != 0 else { return }
        #expect(status.status == 69)
        #expect(status.standardError.contains("no llmd is listening on /run/llmd/llmd.sock"), "\(status.standardError)")
        #expect(status.standardError.contains("an llmd is listening on \(socket)"))
        #expect(status.standardError.contains("--socket \(socket)"))
        #expect(status.standardError.contains("LLMD_SOCKET=\(socket)"))
        _ = daemon
    }
}
