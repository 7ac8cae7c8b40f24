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
        #expect(try daemon.connect().call("ping")["pong"] == true)
    }
}
