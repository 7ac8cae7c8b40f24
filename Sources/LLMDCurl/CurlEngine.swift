import CCurl
import LLMDLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One HTTP request for the engine, and what to do with its response.
///
/// The callbacks run on the engine's thread, one transfer at a time: they must be quick
/// and must not block (hand work to another executor).
public struct HTTPRequest: Sendable {
    public var url: String
    /// `Name: value` header lines.
    public var headers: [String]
    /// A POST body; nil sends a GET.
    public var body: [UInt8]?
    public var connectTimeout: Duration
    /// The longest silence once the response has begun (between received bytes); zero for
    /// none. Before the first byte, the connect and total timeouts apply: a large prompt
    /// may take the server long to start answering.
    public var idleTimeout: Duration
    /// The longest the whole transfer may take.
    public var totalTimeout: Duration

    public init(
        url: String, headers: [String] = [], body: [UInt8]? = nil, connectTimeout: Duration = .seconds(10),
        idleTimeout: Duration = .seconds(60), totalTimeout: Duration = .seconds(600)
    ) {
        self.url = url
        self.headers = headers
        self.body = body
        self.connectTimeout = connectTimeout
        self.idleTimeout = idleTimeout
        self.totalTimeout = totalTimeout
    }
}

/// The start of a response: its status and header fields (names lower-cased).
public struct HTTPResponseHead: Sendable, Equatable {
    public var status: Int
    public var headers: [(name: String, value: String)]

    public func header(_ name: String) -> String? {
        headers.last { $0.name == name }?.value
    }

    public static func == (lhs: HTTPResponseHead, rhs: HTTPResponseHead) -> Bool {
        lhs.status == rhs.status && lhs.headers.elementsEqual(rhs.headers) { $0 == $1 }
    }
}

/// Why a transfer ended without a complete response.
public enum TransferFailure: Error, Sendable, Equatable {
    case cancelled
    /// No connection within the connect timeout.
    case connectTimeout
    /// Nothing received for longer than the idle timeout.
    case idleTimeout
    /// The whole transfer took longer than the total timeout.
    case totalTimeout
    /// The server could not be reached (DNS, refused, TLS); curl's message.
    case unreachable(String)
    /// The connection broke after the response had started; curl's message.
    case interrupted(String)
}

/// Receives a transfer's events on the engine thread.
public protocol HTTPResponseHandler: AnyObject, Sendable {
    func responseStarted(_ head: HTTPResponseHead)
    func bodyReceived(_ bytes: UnsafeRawBufferPointer)
    /// Called exactly once, last.
    func transferEnded(_ result: Result<Void, TransferFailure>)
}

/// How the engine's owner gathers what several reads produce into one hand-off.
///
/// A fast stream delivers a read every few microseconds. Handing each read's work to
/// another thread wakes that thread every time; gathering what a round of reading
/// produced wakes it once per round. Rounds of a fast stream come at most once per
/// `readInterval` (``ReadPacing``); a slow stream's every read is a round of its own, so
/// it is not delayed. A stream faster than its reader never lets the engine pause, and
/// one `curl_multi_perform` may read a hundred times: the owner bounds how long it holds
/// work, per item it produces.
public struct ReadBatching: Sendable {
    /// The least time between the starts of two rounds of reading while data comes faster
    /// than that; zero reads whenever data comes.
    public var readInterval: Duration
    /// Runs on the engine thread when it starts, before any transfer.
    public var threadStarted: @Sendable () -> Void
    /// Runs on the engine thread at the end of every round of reading, before it pauses or
    /// waits for the network.
    public var endBatch: @Sendable () -> Void

    public init(
        readInterval: Duration, threadStarted: @escaping @Sendable () -> Void, endBatch: @escaping @Sendable () -> Void
    ) {
        self.readInterval = readInterval
        self.threadStarted = threadStarted
        self.endBatch = endBatch
    }
}

/// Drives every HTTP transfer of the daemon on one thread through libcurl's multi interface.
///
/// One thread, not one per request: `curl_multi_poll` waits on all sockets at once, and
/// `curl_multi_wakeup` lets other threads hand in new transfers or cancellations. The
/// multi handle keeps a connection cache, so calls to one provider reuse connections, and
/// multiplexes HTTP/2 streams over one connection.
public final class CurlEngine: Sendable {
    /// Identifies a transfer for cancellation.
    public struct TransferID: Hashable, Sendable {
        let value: UInt64
    }

    private enum Command {
        case start(TransferID, HTTPRequest, any HTTPResponseHandler)
        case cancel(TransferID)
        case stop
    }

    // The multi handle is used by the engine thread, except curl_multi_wakeup, which
    // libcurl documents as callable from any thread.
    private nonisolated(unsafe) let multi: UnsafeMutableRawPointer
    private let commands = Mutex<(queue: [Command], nextID: UInt64)>(([], 1))
    private let thread = Mutex<DedicatedThread?>(nil)
    private let batching: ReadBatching?

    /// - Parameter batching: nil reads whenever data comes and hands on work at once.
    public init(batching: ReadBatching? = nil) {
        self.batching = batching
        // Thread-safe since libcurl 7.84; done here, on first use, not at daemon start.
        precondition(curl_global_init(Int(CURL_GLOBAL_DEFAULT)) == CURLE_OK, "curl_global_init failed")
        multi = curl_multi_init()
        _ = llmd_curl_multi_setopt_long(multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX)
        let thread = DedicatedThread(name: "llmd-http") { self.runLoop() }
        self.thread.withLock { $0 = thread }
    }

    /// Starts a transfer; the handler hears about it on the engine thread.
    @discardableResult
    public func start(_ request: HTTPRequest, handler: any HTTPResponseHandler) -> TransferID {
        let id = commands.withLock { state -> TransferID in
            let id = TransferID(value: state.nextID)
            state.nextID += 1
            state.queue.append(.start(id, request, handler))
            return id
        }
        curl_multi_wakeup(multi)
        return id
    }

    /// Aborts a transfer: its connection is closed and its handler told `.cancelled`.
    /// Cancelling a finished transfer does nothing.
    public func cancel(_ id: TransferID) {
        commands.withLock { $0.queue.append(.cancel(id)) }
        curl_multi_wakeup(multi)
    }

    /// Cancels all transfers and ends the thread; the engine is unusable afterwards.
    /// Calling it again does nothing.
    public func shutdown() {
        // The first call takes the thread; later ones must not touch the freed multi handle.
        guard let thread = thread.withLock({ state -> DedicatedThread? in
            defer { state = nil }
            return state
        }) else { return }
        commands.withLock { $0.queue.append(.stop) }
        curl_multi_wakeup(multi)
        thread.join()
    }

    // MARK: - The engine thread

    private func runLoop() {
        var transfers: [TransferID: Transfer] = [:]
        var byHandle: [UnsafeMutableRawPointer: TransferID] = [:]
        var running: Int32 = 0
        var pacing = ReadPacing(interval: batching?.readInterval ?? .zero)
        batching?.threadStarted()

        func finish(_ id: TransferID, _ result: Result<Void, TransferFailure>) {
            guard let transfer = transfers.removeValue(forKey: id) else { return }
            byHandle[transfer.easy] = nil
            curl_multi_remove_handle(multi, transfer.easy)
            transfer.end(result)
        }

        while true {
            let pending = commands.withLock { state -> [Command] in
                defer { state.queue.removeAll() }
                return state.queue
            }
            for command in pending {
                switch command {
                case .start(let id, let request, let handler):
                    let transfer = Transfer(request: request, handler: handler)
                    transfers[id] = transfer
                    byHandle[transfer.easy] = id
                    curl_multi_add_handle(multi, transfer.easy)
                case .cancel(let id):
                    finish(id, .failure(.cancelled))
                case .stop:
                    for id in Array(transfers.keys) { finish(id, .failure(.cancelled)) }
                    batching?.endBatch()
                    curl_multi_cleanup(multi)
                    return
                }
            }

            let roundStart = ContinuousClock.now
            curl_multi_perform(multi, &running)
            var queued: Int32 = 0
            while let message = curl_multi_info_read(multi, &queued) {
                guard message.pointee.msg == CURLMSG_DONE, let easy = message.pointee.easy_handle,
                    let id = byHandle[easy], let transfer = transfers[id]
                else { continue }
                finish(id, transfer.outcome(of: message.pointee.data.result))
            }
            for transfer in transfers.values { transfer.deliverHeldBody() }

            // Idle timeouts are llmd's own: curl's low-speed limit counts whole seconds.
            let now = ContinuousClock.now
            var wait = Duration.milliseconds(1000)
            var read = false
            for (id, transfer) in transfers {
                if transfer.takeActivity(at: now) { read = true }
                guard let lastActivity = transfer.lastActivity else { continue }
                // An idle timeout of zero means none, like curl's own zero timeouts.
                guard transfer.idleTimeout > .zero else { continue }
                let deadline = lastActivity + transfer.idleTimeout
                if deadline <= now {
                    finish(id, .failure(.idleTimeout))
                } else {
                    wait = min(wait, deadline - now)
                }
            }
            batching?.endBatch()
            if case .readAgain(let pause) = pacing.roundEnded(started: roundStart, read: read, now: now) {
                // Not curl_multi_poll: the data that came would end the pause at once.
                // Commands wait for the pause, which is shorter than anyone notices.
                sleep(for: pause)
                continue
            }
            var curlTimeout = -1
            curl_multi_timeout(multi, &curlTimeout)
            if curlTimeout >= 0 { wait = min(wait, .milliseconds(curlTimeout)) }
            curl_multi_poll(multi, nil, 0, Int32(max(1, wait.wholeMillisecondsRoundedUp)), nil)
        }
    }
}

/// One easy handle with its request data and response state; lives on the engine thread.
private final class Transfer {
    let easy: UnsafeMutableRawPointer
    let handler: any HTTPResponseHandler
    let idleTimeout: Duration
    /// The end of the last round in which response bytes arrived; nil before the first.
    private(set) var lastActivity: ContinuousClock.Instant?
    /// Whether response bytes arrived since ``takeActivity(at:)``: set for each piece curl
    /// hands over (a streamed token, often), where reading the clock would cost more than
    /// the piece.
    private var active = false
    private var headerList: UnsafeMutablePointer<curl_slist>?
    /// Where curl writes a failure's detail; fixed memory, since curl keeps the pointer.
    private let errorBuffer = UnsafeMutablePointer<CChar>.allocate(capacity: Int(CURL_ERROR_SIZE))
    private var pendingHead: HTTPResponseHead?
    private var responseStarted = false
    private var ended = false
    /// Body bytes read in this round, handed on together at its end (``deliverHeldBody()``):
    /// curl writes each HTTP chunk on its own, and a streaming server sends a chunk per
    /// token, so a round's tokens would otherwise be handled one at a time.
    private var heldBody: [UInt8] = []
    /// Held bytes are handed on at this size even before the round ends: a stream faster
    /// than its reader can keep one `curl_multi_perform` reading for long.
    private static let heldBodyLimit = 16 << 10

    init(request: HTTPRequest, handler: any HTTPResponseHandler) {
        self.handler = handler
        self.idleTimeout = request.idleTimeout
        easy = curl_easy_init()
        let context = Unmanaged.passUnretained(self).toOpaque()
        _ = llmd_curl_easy_setopt_string(easy, CURLOPT_URL, request.url)
        _ = llmd_curl_easy_setopt_long(easy, CURLOPT_NOSIGNAL, 1)
        _ = llmd_curl_easy_setopt_long(easy, CURLOPT_HTTP_VERSION, Int(CURL_HTTP_VERSION_2TLS))
        _ = llmd_curl_easy_setopt_long(easy, CURLOPT_CONNECTTIMEOUT_MS, Int(request.connectTimeout.wholeMillisecondsRoundedUp))
        _ = llmd_curl_easy_setopt_long(easy, CURLOPT_TIMEOUT_MS, Int(request.totalTimeout.wholeMillisecondsRoundedUp))
        _ = llmd_curl_easy_setopt_long(easy, CURLOPT_TCP_KEEPALIVE, 1)
        errorBuffer.initialize(repeating: 0, count: Int(CURL_ERROR_SIZE))
        _ = llmd_curl_easy_setopt_pointer(easy, CURLOPT_ERRORBUFFER, errorBuffer)
        for header in request.headers {
            headerList = curl_slist_append(headerList, header)
        }
        _ = llmd_curl_easy_setopt_slist(easy, CURLOPT_HTTPHEADER, headerList)
        if let body = request.body {
            _ = llmd_curl_easy_setopt_long(easy, CURLOPT_POSTFIELDSIZE, body.count)
            body.withUnsafeBufferPointer { bytes in
                bytes.withMemoryRebound(to: CChar.self) {
                    _ = llmd_curl_easy_setopt_pointer(easy, CURLOPT_COPYPOSTFIELDS, UnsafeMutableRawPointer(mutating: $0.baseAddress))
                }
            }
        }
        _ = llmd_curl_easy_setopt_pointer(easy, CURLOPT_HEADERDATA, context)
        _ = llmd_curl_easy_setopt_data_callback(easy, CURLOPT_HEADERFUNCTION) { data, size, count, context in
            let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
            transfer.headerLine(UnsafeRawBufferPointer(start: data, count: size * count))
            return size * count
        }
        _ = llmd_curl_easy_setopt_pointer(easy, CURLOPT_WRITEDATA, context)
        _ = llmd_curl_easy_setopt_data_callback(easy, CURLOPT_WRITEFUNCTION) { data, size, count, context in
            let transfer = Unmanaged<Transfer>.fromOpaque(context!).takeUnretainedValue()
            transfer.body(UnsafeRawBufferPointer(start: data, count: size * count))
            return size * count
        }
    }

    deinit {
        curl_easy_cleanup(easy)
        curl_slist_free_all(headerList)
        errorBuffer.deallocate()
    }

    /// Collects the header block of the final response; an interim `100 Continue` or a
    /// redirect starts a new block.
    private func headerLine(_ bytes: UnsafeRawBufferPointer) {
        active = true
        // Trim bytes, not Characters: "\r\n" is a single Character in Swift.
        var end = bytes.count
        while end > 0, bytes[end - 1] == 0x0A || bytes[end - 1] == 0x0D { end -= 1 }
        let line = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[0..<end]), as: UTF8.self)
        if line.hasPrefix("HTTP/") {
            let status = line.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
            pendingHead = HTTPResponseHead(status: status, headers: [])
        } else if let colon = line.firstIndex(of: ":") {
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].drop { $0 == " " || $0 == "\t" }
            pendingHead?.headers.append((name, String(value)))
        }
    }

    private func body(_ bytes: UnsafeRawBufferPointer) {
        active = true
        startResponseIfNeeded()
        if heldBody.count + bytes.count > Self.heldBodyLimit { deliverHeldBody() }
        heldBody.append(contentsOf: bytes)
    }

    /// Whether response bytes arrived since the last call; if so, `now` becomes the time
    /// of the last activity. Called at the end of each round.
    func takeActivity(at now: ContinuousClock.Instant) -> Bool {
        guard active else { return false }
        active = false
        lastActivity = now
        return true
    }

    /// Hands the bytes held since the last call to the handler.
    func deliverHeldBody() {
        guard !heldBody.isEmpty else { return }
        heldBody.withUnsafeBytes { handler.bodyReceived($0) }
        heldBody.removeAll(keepingCapacity: true)
    }

    private func startResponseIfNeeded() {
        guard !responseStarted else { return }
        responseStarted = true
        var status = 0
        _ = llmd_curl_easy_getinfo_long(easy, CURLINFO_RESPONSE_CODE, &status)
        var head = pendingHead ?? HTTPResponseHead(status: status, headers: [])
        head.status = status
        handler.responseStarted(head)
    }

    func outcome(of code: CURLcode) -> Result<Void, TransferFailure> {
        if code == CURLE_OK {
            startResponseIfNeeded()  // an empty body still has a status
            return .success(())
        }
        let message = errorBuffer[0] != 0 ? String(cString: errorBuffer) : String(cString: curl_easy_strerror(code))
        switch code {
        case CURLE_OPERATION_TIMEDOUT:
            // Connected but no answer yet is the total timeout too, not the connect one.
            var connectMicroseconds: curl_off_t = 0
            _ = llmd_curl_easy_getinfo_off_t(easy, CURLINFO_CONNECT_TIME_T, &connectMicroseconds)
            return .failure(responseStarted || connectMicroseconds > 0 ? .totalTimeout : .connectTimeout)
        case _ where responseStarted:
            return .failure(.interrupted(message))
        default:
            return .failure(.unreachable(message))
        }
    }

    func end(_ result: Result<Void, TransferFailure>) {
        guard !ended else { return }
        ended = true
        deliverHeldBody()
        handler.transferEnded(result)
    }
}

extension Duration {
    /// Whole milliseconds, rounding any remainder up so short timeouts never become zero.
    fileprivate var wholeMillisecondsRoundedUp: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1000 + (attoseconds + 999_999_999_999_999) / 1_000_000_000_000_000
    }
}

/// Sleeps the calling thread.
private func sleep(for duration: Duration) {
    guard duration > .zero else { return }
    let (seconds, attoseconds) = duration.components
    var remaining = timespec(tv_sec: Int(seconds), tv_nsec: Int(attoseconds / 1_000_000_000))
    var request = remaining
    while nanosleep(&request, &remaining) != 0, errno == EINTR { request = remaining }
}
