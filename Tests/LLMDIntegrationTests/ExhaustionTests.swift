import Foundation
import LLMDClient
import LLMDProtocol
import LLMDTesting
import Testing

/// A daemon out of connections or file descriptors refuses or waits, says so once, keeps
/// serving those it has, and takes new clients again when some leave.
@Suite("Exhaustion")
struct ExhaustionTests {
    /// The CPU time `pid` has used, user and system, from /proc.
    private func cpuTime(_ pid: Int32) throws -> Duration {
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        // After the command's closing parenthesis: state is field 3, utime 14 and stime 15.
        let fields = stat[stat.range(of: ")", options: .backwards)!.upperBound...].split(separator: " ")
        let ticks = (Int64(fields[11]) ?? 0) + (Int64(fields[12]) ?? 0)
        return .milliseconds(ticks * 1000 / Int64(sysconf(Int32(_SC_CLK_TCK))))
    }

    private func hello(_ connection: RawConnection, within timeout: Duration = .seconds(10)) -> JSONObject? {
        connection.readLine(timeout: timeout).flatMap { try? JSONParser.parse($0).objectValue }
    }

    @Test("past MaxConnections= a client is refused with daemon.too_many_connections, once logged; one leaving lets the next in")
    func connectionLimit() throws {
        let daemon = try DaemonProcess(config: "[Daemon]\nMaxConnections=3\n")
        var admitted: [RawConnection] = []
        for _ in 0..<3 {
            let connection = try RawConnection(path: daemon.socketPath)
            #expect(hello(connection)?["type"] == "hello")
            admitted.append(connection)
        }
        for _ in 0..<2 {
            let refused = try RawConnection(path: daemon.socketPath)
            let line = try #require(hello(refused))
            #expect(line["type"] == "error" && line["id"] == .null)
            let error = line["error"]?.objectValue
            #expect(error?["code"] == "daemon.too_many_connections" && error?["detail"]?.objectValue?["limit"] == 3, "\(line)")
            #expect(refused.readLine(timeout: .seconds(5)) == nil, "then closed")
        }
        let busy = try llmctl(["status", "--socket", daemon.socketPath])
        #expect(busy.status == 69 && busy.standardError.contains("[daemon.too_many_connections]"), "\(busy.standardError)")
        try admitted[0].send(#"{"id":1,"method":"ping"}"#)
        #expect(admitted[0].readLine()?.contains("\"pong\":true") == true, "those admitted are served")
        admitted.removeLast()
        #expect(waitUntil { (try? daemon.connect()).map { $0.close() } != nil }, "a place freed is taken")
        #expect(daemon.log.components(separatedBy: "MaxConnections=").count == 2, "logged once: \(daemon.log)")
    }

    @Test("out of file descriptors it refuses new clients with a named error at once, does not spin, serves its clients, recovers")
    func descriptorExhaustion() throws {
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/prlimit") else {
            Issue.record("prlimit (util-linux) is missing")
            return
        }
        // A hard limit of 48 descriptors: the daemon cannot raise it, and its clients take
        // what its files and event loop leave.
        let daemon = try DaemonProcess(launcher: ["/usr/bin/prlimit", "--nofile=48:48", "--"])
        var admitted: [RawConnection] = []
        var refusals: [JSONObject] = []
        for _ in 0..<60 {
            let connection = try RawConnection(path: daemon.socketPath)
            let first = try #require(hello(connection), "every client hears at once, admitted or not")
            if first["type"] == "hello" {
                admitted.append(connection)
            } else {
                refusals.append(first)
                #expect(connection.readLine(timeout: .seconds(5)) == nil, "then closed")
            }
        }
        #expect(admitted.count > 10 && !refusals.isEmpty, "\(admitted.count) admitted, \(refusals.count) refused")
        let error = refusals.first?["error"]?.objectValue
        #expect(error?["code"] == "daemon.out_of_descriptors" && error?["detail"]?.objectValue?["limit"] == 48, "\(refusals)")

        // Exhausted and idle, it does not spin.
        let before = try cpuTime(daemon.pid)
        usleep(1_000_000)
        let spent = try cpuTime(daemon.pid) - before
        #expect(spent < .milliseconds(300), "\(spent) of CPU in a second while out of descriptors")
        try admitted[0].send(#"{"id":1,"method":"ping"}"#)
        #expect(admitted[0].readLine()?.contains("\"pong\":true") == true, "clients it has are served")
        #expect(daemon.log.components(separatedBy: "out of file descriptors (").count == 2, "said once: \(daemon.log)")

        // Clients leaving make room again.
        admitted.removeLast(5)
        let again = try RawConnection(path: daemon.socketPath)
        #expect(hello(again)?["type"] == "hello")
        #expect(waitUntil { daemon.log.contains("accepting clients again; \(refusals.count) were refused") }, "\(daemon.log)")
    }

    @Test("unfinished lines of all clients together stay within MaxBufferedInput=: the largest holders go, the rest are served")
    func inputBudget() throws {
        let daemon = try DaemonProcess(config: "[Daemon]\nMaxLineBytes=128K\nMaxBufferedInput=256K\n")
        let start = #"{"id":1,"method":"ping","pad":""#
        // Four clients hold 100K each, one holds 20K: 420K in all, over 256K.
        var holders: [RawConnection] = []
        for size in [100_000, 100_000, 20_000, 100_000, 100_000] {
            let connection = try RawConnection(path: daemon.socketPath)
            #expect(hello(connection)?["type"] == "hello")
            try connection.sendRaw(start + String(repeating: "x", count: size))
            holders.append(connection)
            usleep(50_000)
        }
        var evicted = 0
        var served: [Int] = []
        for (index, connection) in holders.enumerated() {
            try? connection.sendRaw("\"}\n")
            guard let line = connection.readLine(timeout: .seconds(5)) else { continue }
            if line.contains("daemon.input_budget_exceeded") {
                evicted += 1
                #expect(line.contains(#""budget":262144"#), "\(line)")
            } else if line.contains(#""pong":true"#) {
                served.append(index)
            }
        }
        #expect(evicted == 2, "the two largest holders, enough to fit: \(daemon.log)")
        #expect(served.contains(2), "the small holder is never the one to go")
        #expect(served.count == 3)
        #expect(try daemon.connect().call(.ping)["pong"] == true)
    }

    /// Resident memory of `pid`, from /proc.
    private func residentBytes(_ pid: Int32) throws -> Int {
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let line = status.split(separator: "\n").first { $0.hasPrefix("VmRSS:") } ?? ""
        return (Int(line.split(separator: " ")[1]) ?? 0) * 1024
    }

    private func fileSize(_ path: String) -> Int {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
    }

    @Test("a publish flood beside a stalled subscriber: memory, the journal and its log stay bounded, stop is prompt, nothing committed is lost")
    func publishFlood() throws {
        let daemon = try DaemonProcess(config: "[Events]\nJournalMaxSize=16M\n")
        let stalled = try RawConnection(path: daemon.socketPath)
        #expect(hello(stalled)?["type"] == "hello")
        try stalled.send(#"{"id":1,"method":"subscribe","params":{}}"#)
        let publisher = try RawConnection(path: daemon.socketPath)
        #expect(hello(publisher)?["type"] == "hello")
        let data = String(repeating: "x", count: 2_000)
        var id = 0
        var lastSeq: Int64 = 0
        var replies = 0
        var peak = 0
        let started = ContinuousClock.now
        while ContinuousClock.now - started < .seconds(4) {
            let burst = (0..<200).map { _ -> String in
                id += 1
                return #"{"id":\#(id),"method":"publish","params":{"name":"flood","data":"\#(data)"}}"#
            }
            try publisher.sendRaw(burst.joined(separator: "\n") + "\n")
            while replies < id - 2_000, let line = publisher.readLine(timeout: .seconds(10)) {
                replies += 1
                if let seq = (try? JSONParser.parse(line).objectValue)?["result"]?.objectValue?["seq"]?.intValue { lastSeq = seq }
            }
            peak = max(peak, try residentBytes(daemon.pid))
        }
        while replies < id, let line = publisher.readLine(timeout: .seconds(20)) {
            replies += 1
            if let seq = (try? JSONParser.parse(line).objectValue)?["result"]?.objectValue?["seq"]?.intValue { lastSeq = seq }
        }
        print("publish flood: \(id) events in 4 s, peak RSS \(peak >> 20) MiB, journal \(fileSize(daemon.stateDirectory + "/events.db") >> 20) MiB, WAL \(fileSize(daemon.stateDirectory + "/events.db-wal") >> 20) MiB")
        #expect(replies == id, "every publish answered")
        #expect(peak < 256 << 20, "peak RSS \(peak >> 20) MiB")
        // As llmd(8) bounds them: JournalMaxSize=, an eighth of it, 32 MiB of log (and a page or two).
        let journal = daemon.stateDirectory + "/events.db"
        let files = fileSize(journal) + fileSize(journal + "-wal")
        #expect(files <= (16 + 2 + 32 + 1) << 20, "journal files \(files >> 20) MiB against JournalMaxSize=16M")
        // Retention runs between a backlog's pages, not after all of it.
        #expect(fileSize(journal) <= (16 + 2 + 1) << 20, "database \(fileSize(journal) >> 20) MiB against JournalMaxSize=16M")
        #expect(fileSize(journal + "-wal") <= (32 << 20) + (4 << 20), "WAL \(fileSize(journal + "-wal") >> 20) MiB")

        let stopping = ContinuousClock.now
        daemon.send(signal: SIGTERM)
        #expect(daemon.waitForExit() == .exited(0))
        #expect(ContinuousClock.now - stopping < .seconds(10), "within ShutdownTimeoutSec=")

        // The last event published is in the journal after a restart.
        let again = try DaemonProcess(config: "[Events]\nJournalMaxSize=16M\n", stateDirectory: daemon.stateDirectory)
        let replayed = try LLMDClient(socketPath: again.socketPath)
        var found = false
        try replayed.subscribe(SubscribeMethod.Params(types: ["custom"], since: UInt64(lastSeq - 1))) { message throws(ClientError) in
            if case .event(let event) = message, Int64(event.seq) == lastSeq { found = true }
            guard case .ready = message else { return true }
            return false
        }
        #expect(found, "seq \(lastSeq) was committed")
    }

    @Test("at most 32 requests of one connection run at once: the lines after are read as those finish, and all are answered")
    func requestsInFlight() throws {
        let fixture = try FixtureServer()
        let keys = try TemporaryDirectory()
        let daemon = try DaemonProcess(config: try fixture.config(keys: keys))
        let connection = try daemon.connect()
        for number in 0..<40 {
            // Five tokens 150 ms apart: each call runs for most of a second.
            try connection.send(
                Request(id: .int(Int64(number)), method: "complete", params: ["model": "fixture/tokens:5:150000", "prompt": "p"]))
        }
        #expect(waitUntil { (try? fixture.requestLog().count) == 32 })
        Thread.sleep(forTimeInterval: 0.3)
        #expect(try fixture.requestLog().count == 32, "the 33rd waits for one of the first to finish")
        var answered: Set<Int64> = []
        while answered.count < 40 {
            if case .reply(.int(let id), _) = try connection.readMessage() { answered.insert(id) }
        }
        #expect(try fixture.requestLog().count == 40)
    }

    @Test("long lines, read in turns, arrive whole among short ones")
    func longLinesInTurns() throws {
        let daemon = try DaemonProcess()
        let watcher = try RawConnection(path: daemon.socketPath)
        #expect(hello(watcher)?["type"] == "hello")
        try watcher.send(#"{"id":1,"method":"subscribe","params":{"types":["custom"]}}"#)
        #expect(watcher.readLine()?.contains(#""type":"reply""#) == true)
        let publisher = try RawConnection(path: daemon.socketPath)
        #expect(hello(publisher)?["type"] == "hello")
        let payloads = [String(repeating: "a", count: 900_000), "short", String(repeating: "b", count: 300_000)]
        // All three in one write: the long ones are read in turns, a millisecond apart.
        try publisher.sendRaw(
            payloads.enumerated().map { #"{"id":\#($0.offset),"method":"publish","params":{"name":"p","data":"\#($0.element)"}}"# }
                .joined(separator: "\n") + "\n")
        var received: [String] = []
        while received.count < payloads.count, let line = watcher.readLine(timeout: .seconds(20)) {
            let message = try JSONParser.parse(line).objectValue
            guard message?["type"] == "event" else { continue }
            received.append(message?["data"]?.objectValue?["data"]?.stringValue ?? "")
        }
        // Requests of a connection run at once, so their events may come in any order.
        // Compared, not printed: a failure would print megabytes.
        #expect(received.map(\.count).sorted() == payloads.map(\.count).sorted())
        let whole = received.sorted() == payloads.sorted()
        #expect(whole, "the bytes differ")
    }
}
