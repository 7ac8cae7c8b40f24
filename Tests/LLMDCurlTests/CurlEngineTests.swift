import Dispatch
import Foundation
import LLMDCurl
import LLMDTesting
import Synchronization
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Collects one transfer's events; `wait()` blocks until it ends.
final class Recorder: HTTPResponseHandler {
    private struct State {
        var head: HTTPResponseHead?
        var body: [UInt8] = []
        var result: Result<Void, TransferFailure>?
        var endings = 0
        var threadName: String?
    }

    private let state = Mutex(State())
    private let done = DispatchSemaphore(value: 0)
    private let firstByte = DispatchSemaphore(value: 0)

    func responseStarted(_ head: HTTPResponseHead) {
        let name = try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)
        state.withLock {
            $0.head = head
            $0.threadName = name
        }
    }

    func bodyReceived(_ bytes: UnsafeRawBufferPointer) {
        let first = state.withLock { state -> Bool in
            defer { state.body.append(contentsOf: bytes) }
            return state.body.isEmpty
        }
        if first { firstByte.signal() }
    }

    func transferEnded(_ result: Result<Void, TransferFailure>) {
        state.withLock {
            $0.result = result
            $0.endings += 1
        }
        done.signal()
    }

    /// Waits for the end; nil if it does not come within `seconds`.
    func wait(seconds: Int = 20) -> Result<Void, TransferFailure>? {
        guard done.wait(timeout: .now() + .seconds(seconds)) == .success else { return nil }
        return state.withLock { $0.result }
    }

    /// Waits for the end and returns how it failed; nil after success or no end.
    func waitForFailure(seconds: Int = 20) -> TransferFailure? {
        guard case .failure(let failure)? = wait(seconds: seconds) else { return nil }
        return failure
    }

    func waitForFirstByte(seconds: Int = 20) -> Bool {
        firstByte.wait(timeout: .now() + .seconds(seconds)) == .success
    }

    var head: HTTPResponseHead? { state.withLock { $0.head } }
    var bodyText: String { state.withLock { String(decoding: $0.body, as: UTF8.self) } }
    var endings: Int { state.withLock { $0.endings } }
    /// The name of the thread the response's head was handed over on.
    var threadName: String? { state.withLock { $0.threadName } }
}

@Suite("curl engine")
struct CurlEngineTests {
    private func chat(_ fixture: FixtureServer, model: String, stream: Bool = true, content: String = "hello there")
        -> HTTPRequest
    {
        let body = #"{"model":"\#(model)","stream":\#(stream),"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"\#(content)"}]}"#
        return HTTPRequest(
            url: fixture.baseURL + "/chat/completions",
            headers: ["Authorization: Bearer sk-test-not-a-secret", "Content-Type: application/json"],
            body: Array(body.utf8), idleTimeout: .seconds(5))
    }

    @Test("a streamed response arrives whole, with its status and headers")
    func streams() throws {
        let fixture = try FixtureServer()
        let engine = CurlEngine()
        defer { engine.shutdown() }
        let recorder = Recorder()
        engine.start(chat(fixture, model: "fixture"), handler: recorder)
        let result = try #require(recorder.wait())
        #expect((try? result.get()) != nil)
        #expect(recorder.head?.status == 200)
        #expect(recorder.head?.header("content-type") == "text/event-stream")
        #expect(recorder.bodyText.contains(#""content": "echo: ""#))
        #expect(recorder.bodyText.hasSuffix("data: [DONE]\n\n"))
        #expect(recorder.endings == 1)
        #expect(recorder.threadName == "llmd-http\n", "the engine's thread is named for top -H and ps -L")
    }

    @Test("an error status is a response like any other, with Retry-After readable")
    func errorStatus() throws {
        let fixture = try FixtureServer()
        let engine = CurlEngine()
        defer { engine.shutdown() }
        let recorder = Recorder()
        engine.start(chat(fixture, model: "fixture/429-then-ok:1"), handler: recorder)
        #expect((try? recorder.wait()?.get()) != nil)
        #expect(recorder.head?.status == 429)
        #expect(recorder.head?.header("retry-after") == "1")
        #expect(recorder.bodyText.contains("rate_limit_exceeded"))
    }

    @Test("a stream cut mid-way is reported as interrupted, with what arrived kept")
    func cut() throws {
        let fixture = try FixtureServer()
        let engine = CurlEngine()
        defer { engine.shutdown() }
        let recorder = Recorder()
        engine.start(chat(fixture, model: "fixture/cut", content: "a b c d e f"), handler: recorder)
        guard case .interrupted? = recorder.waitForFailure() else {
            Issue.record("expected interrupted")
            return
        }
        #expect(recorder.bodyText.contains(#""content": "b ""#))
    }

    @Test("silence past the idle timeout ends the transfer")
    func idleTimeout() throws {
        let fixture = try FixtureServer()
        let engine = CurlEngine()
        defer { engine.shutdown() }
        var request = chat(fixture, model: "fixture/hang")
        request.idleTimeout = .milliseconds(300)
        let recorder = Recorder()
        let started = ContinuousClock.now
        engine.start(request, handler: recorder)
        #expect(recorder.waitForFailure() == .idleTimeout)
        #expect(ContinuousClock.now - started < .seconds(5))
    }

    @Test("cancelling aborts the upstream connection at once, and the server sees the client go")
    func cancel() throws {
        let fixture = try FixtureServer()
        let engine = CurlEngine()
        defer { engine.shutdown() }
        let recorder = Recorder()
        let id = engine.start(chat(fixture, model: "fixture/slow:50", content: String(repeating: "w ", count: 200)), handler: recorder)
        #expect(recorder.waitForFirstByte())
        engine.cancel(id)
        #expect(recorder.waitForFailure() == .cancelled)
        #expect(recorder.endings == 1)
        let gone = waitUntil(timeout: .seconds(10)) {
            (try? fixture.requestLog())?.first?["client_gone"] == true
        }
        #expect(gone, "the fixture should have seen the connection close")
    }

    @Test("a server that never completes the handshake: connect timeout")
    func connectTimeout() throws {
        // A loopback listener with backlog 0 whose queue is already full drops further
        // SYNs, so the next connect hangs: a connect timeout without leaving the machine.
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(listener, pointer, length) == 0 && listen(listener, 0) == 0 && getsockname(listener, pointer, &length) == 0
            }
        }
        try #require(bound)
        let fillers = (0..<4).map { _ in socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0) }
        defer { fillers.forEach { close($0) } }
        for filler in fillers {
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(filler, $0, length) }
            }
        }
        usleep(100_000)
        let port = Int(UInt16(bigEndian: address.sin_port))
        let engine = CurlEngine()
        defer { engine.shutdown() }
        let recorder = Recorder()
        engine.start(
            HTTPRequest(url: "http://127.0.0.1:\(port)/v1/chat/completions", body: [0x7B, 0x7D], connectTimeout: .milliseconds(300)),
            handler: recorder)
        #expect(recorder.waitForFailure() == .connectTimeout)
    }

    @Test("nothing listening: unreachable, quickly")
    func unreachable() throws {
        let engine = CurlEngine()
        defer { engine.shutdown() }
        let recorder = Recorder()
        // Port 9 (discard) is closed on loopback here; the kernel refuses at once.
        engine.start(HTTPRequest(url: "http://127.0.0.1:9/v1/chat/completions", body: [0x7B, 0x7D]), handler: recorder)
        guard case .unreachable(let message)? = recorder.waitForFailure() else {
            Issue.record("expected unreachable")
            return
        }
        #expect(!message.isEmpty)
    }

    @Test("64 concurrent streams all complete with their own text, on one engine thread")
    func concurrent() throws {
        let fixture = try FixtureServer()
        let engine = CurlEngine()
        defer { engine.shutdown() }
        let recorders = (0..<64).map { _ in Recorder() }
        for (index, recorder) in recorders.enumerated() {
            engine.start(chat(fixture, model: "fixture", content: "request \(index)"), handler: recorder)
        }
        for (index, recorder) in recorders.enumerated() {
            let failure = recorder.waitForFailure(seconds: 60)
            #expect(failure == nil, "stream \(index): \(String(describing: failure))")
            #expect(recorder.bodyText.contains(#""content": "\#(index)""#), "stream \(index)")
        }
    }

    @Test("with batching, a slow stream's every read ends a batch at once, on the engine thread")
    func batching() throws {
        let fixture = try FixtureServer()
        let log = BatchLog()
        let engine = CurlEngine(
            batching: ReadBatching(
                readInterval: .milliseconds(20), threadStarted: { log.append(.threadStarted) },
                endBatch: { log.append(.endBatch) }))
        defer { engine.shutdown() }
        let recorder = BatchLog.Handler(log: log)
        // 50 ms between tokens: after each read the engine would wait, so the read's batch
        // must end before the next read comes.
        engine.start(chat(fixture, model: "fixture/slow:50", content: "a b c d"), handler: recorder)
        #expect(recorder.wait() != nil)
        engine.shutdown()  // joins the thread: its last batch has ended
        let entries = log.entries
        #expect(entries.first?.kind == .threadStarted)
        #expect(entries.allSatisfy { pthread_equal($0.thread, entries[0].thread) != 0 }, "all on one thread")
        let kinds = entries.map(\.kind)
        let reads = kinds.indices.filter { kinds[$0] == .read }
        // Reads 50 ms apart came from rounds with a wait between them.
        let apart = zip(reads, reads.dropFirst()).filter { entries[$1].time - entries[$0].time >= .milliseconds(25) }
        #expect(apart.count >= 3)
        for (read, next) in apart {
            #expect(kinds[read..<next].contains(.endBatch), "reads \(read) and \(next) in one batch")
        }
        #expect(kinds.lastIndex(of: .endBatch)! > reads.last!)
    }

    @Test("a stream faster than the read interval is read in a few paced rounds, whole and in order")
    func pacing() throws {
        let fixture = try FixtureServer()
        let log = BatchLog()
        let engine = CurlEngine(
            batching: ReadBatching(readInterval: .milliseconds(20), threadStarted: {}, endBatch: { log.append(.endBatch) }))
        defer { engine.shutdown() }
        let recorder = BatchLog.Handler(log: log)
        // 300 tokens 0.5 ms apart: read as they come, nearly every token would be a round
        // of its own; paced, a round every 20 ms reads the ~40 that gathered.
        let tokens = 300
        engine.start(chat(fixture, model: "fixture/tokens:\(tokens):500"), handler: recorder)
        #expect(recorder.wait() != nil)
        engine.shutdown()
        let kinds = log.entries.map(\.kind)
        let roundsThatRead = zip(kinds, kinds.dropFirst()).filter { $0 == .read && $1 == .endBatch }.count
        #expect(roundsThatRead > 1)
        #expect(roundsThatRead <= tokens / 3, "\(roundsThatRead) rounds read the \(tokens) tokens")
        // A round's HTTP chunks, a token each, reach the handler together: in one piece,
        // or, if the round read more than 16 KiB (a thread held up under load), in pieces
        // that large.
        let handedOn = kinds.filter { $0 == .read }.count
        let splits = recorder.body.utf8.count / (16 << 10)
        #expect(handedOn >= roundsThatRead && handedOn <= roundsThatRead + splits, "\(handedOn) pieces from \(roundsThatRead) rounds")
        let text = recorder.body.split(separator: "\n").compactMap { line -> String? in
            guard line.hasPrefix("data: {"), let range = line.range(of: #""content": ""#) else { return nil }
            return String(line[range.upperBound...].prefix { $0 != "\"" })
        }.joined()
        #expect(text == (0..<tokens).map { "t\($0) " }.joined())
    }
}

/// What the engine did with batching on, in order, and on which thread.
private final class BatchLog: Sendable {
    enum Kind { case threadStarted, read, endBatch }
    struct Entry {
        var kind: Kind
        var thread: pthread_t
        var time: ContinuousClock.Instant
    }

    private let state = Mutex<[Entry]>([])

    func append(_ kind: Kind) { state.withLock { $0.append(Entry(kind: kind, thread: pthread_self(), time: .now)) } }
    var entries: [Entry] { state.withLock { $0 } }

    /// Logs each read of the response body.
    final class Handler: HTTPResponseHandler {
        private let log: BatchLog
        private let done = DispatchSemaphore(value: 0)
        private let received = Mutex<[UInt8]>([])

        init(log: BatchLog) { self.log = log }

        var body: String { received.withLock { String(decoding: $0, as: UTF8.self) } }

        func responseStarted(_ head: HTTPResponseHead) {}
        func bodyReceived(_ bytes: UnsafeRawBufferPointer) {
            log.append(.read)
            received.withLock { $0.append(contentsOf: bytes) }
        }
        func transferEnded(_ result: Result<Void, TransferFailure>) { done.signal() }

        func wait() -> Void? { done.wait(timeout: .now() + .seconds(20)) == .success ? () : nil }
    }
}
