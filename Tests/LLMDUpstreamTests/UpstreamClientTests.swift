import LLMDCore
import LLMDCurl
import LLMDOpenAI
import LLMDProtocol
import LLMDTesting
import Logging
import Synchronization
import Testing

@testable import LLMDUpstream

/// Tokens and retries a call reported.
final class Collected: Sendable {
    private let state = Mutex<(tokens: [String], retries: [RetryNotice])>(([], []))
    var tokens: [String] { state.withLock { $0.tokens } }
    var retries: [RetryNotice] { state.withLock { $0.retries } }
    var observer: CallObserver {
        CallObserver(
            tokens: { tokens in self.state.withLock { $0.tokens += tokens } },
            retry: { notice in self.state.withLock { $0.retries.append(notice) } })
    }
}

@Suite("Upstream calls")
struct UpstreamClientTests {
    let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    private func provider(_ fixture: FixtureServer, key: String? = "sk-test-not-a-secret") -> ResolvedProvider {
        var configuration = ProviderConfiguration(name: "fixture")
        configuration.baseURL = fixture.baseURL
        configuration.retryBackoff = .milliseconds(10)
        configuration.retryBackoffMaximum = .milliseconds(50)
        configuration.idleTimeout = .seconds(5)
        return ResolvedProvider(configuration: configuration, apiKey: key.map(APIKey.init))
    }

    private let hello = ModelInput.messages([ChatMessage(role: "user", content: "hello there")])

    private func call(
        _ client: UpstreamClient, _ provider: ResolvedProvider, model: String, input: ModelInput? = nil,
        stream: Bool = true, collected: Collected = Collected()
    ) async -> Result<CallResult, CallFailure> {
        do {
            return .success(
                try await client.call(
                    model: model, input: input ?? hello, options: GenerationOptions(), stream: stream,
                    provider: provider, observer: collected.observer))
        } catch {
            return .failure(error)
        }
    }

    @Test("a streamed chat call delivers each token in order, with the provider's usage")
    func streamedChat() async throws {
        let fixture = try FixtureServer()
        let engine = CurlEngine()
        defer { engine.shutdown() }
        let client = UpstreamClient(engine: engine, logger: logger)
        let collected = Collected()
        let result = try await call(client, provider(fixture), model: "fixture", collected: collected).get()
        #expect(collected.tokens == ["echo: ", "hello ", "there"])
        #expect(result.text == "echo: hello there")
        #expect(result.finishReason == "stop")
        #expect(result.usage == TokenUsage(promptTokens: 6, completionTokens: 3, source: .provider))
        #expect(result.usage != nil)
        #expect(result.attempts == 1)
        #expect(result.timeToFirstToken != nil)
        let sent = try #require(try fixture.requestLog().first)
        #expect(sent["headers"]?.objectValue?["authorization"] == "Bearer sk-test", "the fixture logs only a prefix")
        #expect(sent["body"]?.objectValue?["stream_options"] == ["include_usage": true])
    }

    @Test("Header= lines go with every request; the key goes as a bearer token")
    func extraHeaders() async throws {
        let fixture = try FixtureServer()
        let engine = CurlEngine()
        defer { engine.shutdown() }
        var configured = provider(fixture)
        configured.configuration.headers = ["OpenAI-Organization: org-llmd", "X-Trace: 1"]
        _ = try await call(UpstreamClient(engine: engine, logger: logger), configured, model: "fixture").get()
        let headers = try #require(try fixture.requestLog().first?["headers"]?.objectValue)
        #expect(headers["openai-organization"] == "org-llmd")
        #expect(headers["x-trace"] == "1")
        #expect(headers["content-type"] == "application/json")
    }

    @Test("the legacy completions endpoint and non-streamed calls")
    func legacyAndWhole() async throws {
        let fixture = try FixtureServer()
        let engine = CurlEngine()
        defer { engine.shutdown() }
        let client = UpstreamClient(engine: engine, logger: logger)
        let legacy = try await call(client, provider(fixture), model: "fixture", input: .prompt("say hi")).get()
        #expect(legacy.text == "echo: say hi")
        let whole = try await call(client, provider(fixture), model: "fixture", stream: false).get()
        #expect(whole.text == "echo: hello there")
        #expect(whole.usage?.totalTokens == 9)
        #expect(try fixture.requestLog().map { $0["path"] } == ["/v1/completions", "/v1/chat/completions"])
    }

    @Test("a server that sends no usage is reported as such")
    func noUsage() async throws {
        let fixture = try FixtureServer()
        let engine = CurlEngine()
        defer { engine.shutdown() }
        let result = try await call(UpstreamClient(engine: engine, logger: logger), provider(fixture), model: "fixture/no-usage").get()
        #expect(result.usage == nil)
        #expect(result.usage == nil)
    }

    @Test("429 is retried after Retry-After, 500 with backoff; each retry is reported")
    func retries() async throws {
        let fixture = try FixtureServer()
        let engine = CurlEngine()
        defer { engine.shutdown() }
        let client = UpstreamClient(engine: engine, logger: logger)
        let collected = Collected()
        let started = ContinuousClock.now
        let limited = try await call(client, provider(fixture), model: "fixture/429-then-ok:1", collected: collected).get()
        #expect(limited.attempts == 2)
        #expect(ContinuousClock.now - started >= .seconds(1), "Retry-After: 1 honoured")
        #expect(collected.retries.map(\.error.code) == [.upstreamRateLimited])
        #expect(collected.retries.first?.delay == .seconds(1))
        let failing = try await call(client, provider(fixture), model: "fixture/500-then-ok:2").get()
        #expect(failing.attempts == 3)
    }

    @Test("quota, auth and bad requests fail at once with named errors")
    func notRetried() async throws {
        let fixture = try FixtureServer()
        let engine = CurlEngine()
        defer { engine.shutdown() }
        let client = UpstreamClient(engine: engine, logger: logger)
        let cases: [(String, ResolvedProvider, ErrorCode)] = [
            ("fixture/quota", provider(fixture), .upstreamQuotaExceeded),
            ("fixture", provider(fixture, key: nil), .upstreamUnauthorized),
            ("fixture/400", provider(fixture), .upstreamBadRequest),
            ("fixture/vllm-error", provider(fixture), .upstreamBadRequest),
            ("fixture/404", provider(fixture), .upstreamNotFound),
        ]
        for (model, provider, code) in cases {
            guard case .failure(let failure) = await call(client, provider, model: model) else {
                Issue.record("\(model) succeeded")
                continue
            }
            #expect(failure.error.code == code, "\(model)")
            #expect(failure.attempts == 1, "\(model)")
        }
    }

    @Test("a stream cut after tokens fails with what arrived, and is not retried")
    func cutStream() async throws {
        let fixture = try FixtureServer()
        let engine = CurlEngine()
        defer { engine.shutdown() }
        let collected = Collected()
        let input = ModelInput.messages([ChatMessage(role: "user", content: "a b c d e f")])
        guard case .failure(let failure) = await call(
            UpstreamClient(engine: engine, logger: logger), provider(fixture), model: "fixture/cut", input: input,
            collected: collected)
        else {
            Issue.record("the cut stream succeeded")
            return
        }
        #expect(failure.error.code == .upstreamStreamCut)
        #expect(failure.partialText == "echo: a b ")
        #expect(failure.tokensDelivered == 3)
        #expect(failure.attempts == 1)
        #expect(try fixture.requestLog().count == 1)
    }

    @Test("an error object mid-stream fails the call with the server's message")
    func errorMidStream() async throws {
        let fixture = try FixtureServer()
        let engine = CurlEngine()
        defer { engine.shutdown() }
        guard case .failure(let failure) = await call(
            UpstreamClient(engine: engine, logger: logger), provider(fixture), model: "fixture/error-mid")
        else {
            Issue.record("succeeded")
            return
        }
        #expect(failure.error.code == .upstreamStreamError)
        #expect(failure.error.message == "The server had an error while processing your request.")
        #expect(failure.partialText == "echo: hello ")
    }

    @Test("a server rejecting stream_options is asked again without it, and not asked again")
    func streamOptionsRejected() async throws {
        let fixture = try FixtureServer()
        let engine = CurlEngine()
        defer { engine.shutdown() }
        let client = UpstreamClient(engine: engine, logger: logger)
        let first = try await call(client, provider(fixture), model: "fixture/reject-stream-options").get()
        #expect(first.text == "echo: hello there")
        #expect(first.usage == nil)
        _ = try await call(client, provider(fixture), model: "fixture/reject-stream-options").get()
        let asked = try fixture.requestLog().map { $0["body"]?.objectValue?["stream_options"] != nil }
        #expect(asked == [true, false, false])
    }

    @Test("silence past the idle timeout is upstream.timeout")
    func idleTimeout() async throws {
        let fixture = try FixtureServer()
        let engine = CurlEngine()
        defer { engine.shutdown() }
        var quick = provider(fixture)
        quick.configuration.idleTimeout = .milliseconds(200)
        quick.configuration.maximumRetries = 0
        guard case .failure(let failure) = await call(UpstreamClient(engine: engine, logger: logger), quick, model: "fixture/hang")
        else {
            Issue.record("succeeded")
            return
        }
        #expect(failure.error.code == .upstreamTimeout)
    }

    @Test("a call over its total timeout is upstream.timeout, saying which")
    func totalTimeout() async throws {
        let fixture = try FixtureServer()
        let engine = CurlEngine()
        defer { engine.shutdown() }
        var bounded = provider(fixture)
        bounded.configuration.totalTimeout = .milliseconds(300)
        bounded.configuration.maximumRetries = 0
        let long = ModelInput.messages([ChatMessage(role: "user", content: String(repeating: "w ", count: 100))])
        guard case .failure(let failure) = await call(
            UpstreamClient(engine: engine, logger: logger), bounded, model: "fixture/slow:20", input: long)
        else {
            Issue.record("succeeded")
            return
        }
        #expect(failure.error.code == .upstreamTimeout)
        #expect(failure.error.message.contains("total timeout"))
        #expect(failure.tokensDelivered > 0, "tokens streamed before the deadline are kept")
    }

    @Test("cancelling the task aborts the upstream transfer, seen by the server")
    func cancellation() async throws {
        let fixture = try FixtureServer()
        let engine = CurlEngine()
        defer { engine.shutdown() }
        let client = UpstreamClient(engine: engine, logger: logger)
        let collected = Collected()
        let long = ModelInput.messages([ChatMessage(role: "user", content: String(repeating: "w ", count: 300))])
        let provider = provider(fixture)
        let task = Task { await call(client, provider, model: "fixture/slow:20", input: long, collected: collected) }
        while collected.tokens.isEmpty { try await Task.sleep(for: .milliseconds(5)) }
        task.cancel()
        guard case .failure(let failure) = await task.value else {
            Issue.record("finished despite cancellation")
            return
        }
        #expect(failure.error.code == .cancelled)
        #expect(waitUntil { (try? fixture.requestLog())?.first?["client_gone"] == true })
    }

    @Test("the fake provider: replies in turn, or derived from the input, streamed word by word")
    func fake() async throws {
        let engine = CurlEngine()
        defer { engine.shutdown() }
        let client = UpstreamClient(engine: engine, logger: logger)
        var scripted = ProviderConfiguration(name: "script", kind: .fake)
        scripted.fakeReplies = ["first reply", "second"]
        scripted.fakeTokenDelay = .zero
        let provider = ResolvedProvider(configuration: scripted, apiKey: nil)
        let collected = Collected()
        #expect(try await call(client, provider, model: "m", collected: collected).get().text == "first reply")
        #expect(collected.tokens == ["first ", "reply"])
        #expect(try await call(client, provider, model: "m").get().text == "second")
        #expect(try await call(client, provider, model: "m").get().text == "first reply")
        var derived = ProviderConfiguration.builtInFake
        derived.fakeTokenDelay = .zero
        let result = try await call(client, ResolvedProvider(configuration: derived, apiKey: nil), model: "m").get()
        #expect(result.text == "[fake] You said: hello there")
        #expect(result.usage == nil, "the daemon counts the offline provider's tokens")
    }

    @Test("the fake provider streams every word in order, flat out or paced; a cancelled stream counts what it sent")
    func fakeStreams() async throws {
        let engine = CurlEngine()
        defer { engine.shutdown() }
        let client = UpstreamClient(engine: engine, logger: logger)
        let words = (0..<150).map { "w\($0) " }
        var flatOut = ProviderConfiguration(name: "flat", kind: .fake)
        flatOut.fakeReplies = [words.joined()]
        flatOut.fakeTokenDelay = .zero
        let collected = Collected()
        _ = try await call(client, ResolvedProvider(configuration: flatOut, apiKey: nil), model: "m", collected: collected).get()
        #expect(collected.tokens == words)

        var paced = flatOut
        paced.fakeTokenDelay = .milliseconds(5)
        let partial = Collected()
        let task = Task { await call(client, ResolvedProvider(configuration: paced, apiKey: nil), model: "m", collected: partial) }
        while partial.tokens.count < 3 { try await Task.sleep(for: .milliseconds(2)) }
        task.cancel()
        guard case .failure(let failure) = await task.value else {
            Issue.record("finished despite cancellation")
            return
        }
        #expect(failure.error.code == .cancelled)
        #expect(failure.tokensDelivered == partial.tokens.count && failure.tokensDelivered >= 3)
        #expect(failure.partialText == partial.tokens.joined())
    }
}
