import LLMDEvents
import LLMDProtocol
import Logging
import Synchronization
import Testing

/// Records what it is given.
final class Recorder: CallbackHandler {
    let events = Mutex<[CallbackEvent]>([])
    let raisesErrors: Bool
    let failOn: String?

    init(raisesErrors: Bool = false, failOn: String? = nil) {
        self.raisesErrors = raisesErrors
        self.failOn = failOn
    }

    struct Failure: Error {}

    func handle(_ event: CallbackEvent) throws {
        events.withLock { $0.append(event) }
        if event.name == failOn { throw Failure() }
    }

    var names: [String] { events.withLock { $0.map(\.name) } }
}

/// Only overrides per-type methods, as most handlers do.
final class TokenCounter: CallbackHandler {
    let tokens = Mutex(0)
    let ends = Mutex(0)
    func onLLMNewToken(_ event: CallbackEvent) { tokens.withLock { $0 += 1 } }
    func onLLMEnd(_ event: CallbackEvent) { ends.withLock { $0 += 1 } }
}

actor SlowAsyncRecorder: AsyncCallbackHandler {
    var names: [String] = []
    func handle(_ event: CallbackEvent) async throws {
        if event.name == "llm_new_token" { try await Task.sleep(for: .milliseconds(2)) }
        names.append(event.name)
    }
}

@Suite("Callback manager")
struct CallbackManagerTests {
    let logger = Logger(label: "test")

    @Test("a child run names its parent, inherits tags and metadata, and reaches inheritable handlers only")
    func runTree() async throws {
        let inherited = Recorder()
        let rootOnly = Recorder()
        let sink = LocalEventSink()
        let chain = CallbackManager(
            session: "s", tags: ["t1"], metadata: ["k": "v"], handlers: [.sync(rootOnly)],
            inheritableHandlers: [.sync(inherited)], sink: sink, logger: logger)
        let llm = chain.child(tags: ["t2", "t1"], metadata: ["m": 1])
        try await chain.emit(.chainStart, [:])
        try await llm.emit(.chatModelStart, [:])
        llm.emitTokens(["Hi", " there"])
        try await llm.emit(.llmEnd, [:])
        try await chain.emit(.chainEnd, [:])
        #expect(inherited.names == ["chain_start", "chat_model_start", "llm_new_token", "llm_new_token", "llm_end", "chain_end"])
        #expect(rootOnly.names == ["chain_start", "chain_end"])
        let events = inherited.events.withLock { $0 }
        #expect(events.map(\.seq) == [1, 2, 3, 4, 5, 6])
        #expect(events[2].data["token"] == "Hi" && events[3].data["token"] == " there")
        #expect(events[1].parentRunID == chain.runID)
        #expect(events[1].runID == llm.runID)
        #expect(events[0].parentRunID == nil)
        #expect(events[2].tags == ["t1", "t2"])
        #expect(events[2].metadata == ["k": "v", "m": 1])
        #expect(events.allSatisfy { $0.session == "s" })
        #expect(chain.runID != llm.runID && chain.runID.count == 36)
    }

    @Test("a run's events carry their shared part encoded once, and encode exactly as events built field by field")
    func encodedOnce() async throws {
        let recorder = Recorder()
        let chain = CallbackManager(
            session: "s\"1", tags: ["t\n"], metadata: ["k": "v", "n": 2], inheritableHandlers: [.sync(recorder)],
            sink: LocalEventSink(), logger: logger)
        let llm = chain.child(tags: ["t2"])
        llm.emitNow(.llmNewToken, ["token": "é\u{1}"])
        try await chain.emit(.chainEnd, [:])
        for event in recorder.events.withLock({ $0 }) {
            #expect(event.encodedContext != nil)
            var plain = event
            plain.encodedContext = nil
            var expected: [UInt8] = []
            var actual: [UInt8] = []
            plain.encodeBody(into: &expected)
            event.encodeBody(into: &actual)
            #expect(String(decoding: actual, as: UTF8.self) == String(decoding: expected, as: UTF8.self))
            // A published body is what recipients copy: fields changed later do not show.
            var published = event
            published.publishedBody = actual
            published.data = ["other": 1]
            var copied: [UInt8] = []
            published.encodeBody(into: &copied)
            #expect(copied == actual)
            #expect(published != event && plain == event)
        }
    }

    @Test("per-type methods receive their events")
    func perTypeMethods() async throws {
        let counter = TokenCounter()
        let run = CallbackManager(inheritableHandlers: [.sync(counter)], sink: LocalEventSink(), logger: logger)
        for _ in 0..<3 { run.emitNow(.llmNewToken, ["token": "x"]) }
        try await run.emit(.llmEnd, [:])
        #expect(counter.tokens.withLock { $0 } == 3)
        #expect(counter.ends.withLock { $0 } == 1)
    }

    @Test("a failing handler is logged and the run goes on, unless it raises")
    func handlerErrors() async throws {
        let quiet = Recorder(failOn: "chain_start")
        let run = CallbackManager(inheritableHandlers: [.sync(quiet)], sink: LocalEventSink(), logger: logger)
        try await run.emit(.chainStart, [:])
        try await run.emit(.chainEnd, [:])
        #expect(quiet.names == ["chain_start", "chain_end"])

        let raising = Recorder(raisesErrors: true, failOn: "chain_start")
        let failing = CallbackManager(inheritableHandlers: [.sync(raising)], sink: LocalEventSink(), logger: logger)
        await #expect(throws: CallbackError.self) { try await failing.emit(.chainStart, [:]) }

        let onToken = Recorder(raisesErrors: true, failOn: "llm_new_token")
        let streaming = CallbackManager(inheritableHandlers: [.sync(onToken)], sink: LocalEventSink(), logger: logger)
        streaming.emitNow(.llmNewToken, ["token": "x"])
        #expect(throws: CallbackError.self) { try streaming.checkRaised() }
    }

    @Test("an asynchronous handler gets tokens in order, and lifecycle events wait for it")
    func asyncHandler() async throws {
        let recorder = SlowAsyncRecorder()
        let run = CallbackManager(inheritableHandlers: [.async(recorder)], sink: LocalEventSink(), logger: logger)
        try await run.emit(.chatModelStart, [:])
        for _ in 0..<5 { run.emitNow(.llmNewToken, ["token": "x"]) }
        try await run.emit(.llmEnd, [:])
        // llm_end returned only after the handler processed it, and so every token before it.
        #expect(await recorder.names == ["chat_model_start"] + Array(repeating: "llm_new_token", count: 5) + ["llm_end"])
    }
}
