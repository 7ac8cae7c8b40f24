import Foundation
import LLMDClient
import LLMDProtocol
@testable import LLMDStore
import LLMDTesting
import Synchronization
import Testing

/// Callback events through the whole path: runs publishing, the journal, subscriptions
/// on real connections, and `llmctl events`.
@Suite("Callback events")
struct EventTests {
    /// The offline provider with a quick stream of `words` tokens.
    static func fakeConfig(words: Int = 8, delayMSec: Int = 1, extra: String = "") -> String {
        let reply = (1...words).map { "w\($0)" }.joined(separator: " ")
        return """
            [Provider fake]
            Reply=\(reply)
            TokenDelayMSec=\(delayMSec)
            \(extra)
            """
    }

    /// Subscribes on `connection` and reads up to the `ready` marker.
    @discardableResult
    func subscribe(_ connection: DaemonConnection, _ params: JSONObject = [:]) throws -> (number: Int64, reply: JSONObject, replayed: [CallbackEvent]) {
        let reply = try connection.call(.subscribe, params: params)
        let number = try #require(reply["subscription"]?.intValue)
        var replayed: [CallbackEvent] = []
        while true {
            switch try connection.readMessage() {
            case .event(let event) where event.subscription == number: replayed.append(event)
            case .ready(number, _): return (number, reply, replayed)
            default: continue
            }
        }
    }

    /// Reads subscription events until `done` holds for one.
    func read(_ connection: DaemonConnection, until done: (CallbackEvent) -> Bool) throws -> [CallbackEvent] {
        var events: [CallbackEvent] = []
        while true {
            if case .event(let event) = try connection.readMessage(), event.subscription != nil {
                events.append(event)
                if done(event) { return events }
            }
        }
    }

    func complete(_ connection: DaemonConnection, _ params: JSONObject = [:], onEvent: (CallbackEvent) -> Void = { _ in }) throws -> JSONObject {
        var params = params
        params["messages"] = params["messages"] ?? [["role": "user", "content": "hi"]]
        return try connection.call(.complete, params: params, onEvent: onEvent)
    }

    @Test("a streamed call: run tree in order, the same events to the caller and to a subscriber")
    func runTree() throws {
        let daemon = try DaemonProcess(config: Self.fakeConfig())
        let watcher = try daemon.connect()
        watcher.setReadTimeout(.seconds(10))
        try subscribe(watcher)
        var mine: [CallbackEvent] = []
        let result = try complete(
            daemon.connect(), ["tags": ["demo"], "metadata": ["user": "ann"], "session": "s1"]) { mine.append($0) }
        let seen = try read(watcher) { $0.name == "chain_end" }

        let names = mine.map(\.name)
        #expect(
            names == ["chain_start", "chat_model_start"] + Array(repeating: "llm_new_token", count: 8)
                + ["llm_end", "usage_recorded", "chain_end"])
        #expect(seen.map(\.name) == names)
        #expect(seen.map(\.seq) == mine.map(\.seq))
        #expect(zip(mine.dropFirst(), mine).allSatisfy { $0.seq == $1.seq + 1 })
        let chain = mine[0]
        #expect(chain.parentRunID == nil)
        #expect(result["run_id"]?.stringValue == chain.runID)
        for event in mine[1...9] {
            #expect(event.parentRunID == chain.runID)
            #expect(event.runID == mine[1].runID)
        }
        #expect(mine.allSatisfy { $0.tags == ["demo"] && $0.metadata == ["user": "ann"] && $0.session == "s1" })
        #expect(mine[2...9].map { $0.data["token"]?.stringValue ?? "" }.joined() == "w1 w2 w3 w4 w5 w6 w7 w8")
        let end = mine[10].data
        #expect(end["text"] == "w1 w2 w3 w4 w5 w6 w7 w8")
        #expect(end["usage"]?.objectValue?["source"] == "estimated")
        #expect(mine[1].data["messages"] == [["role": "user", "content": "hi"]])
    }

    @Test("replay from the journal, then live: no gap and no duplicate while calls run")
    func replayThenLive() throws {
        let daemon = try DaemonProcess(config: Self.fakeConfig(words: 20))
        let calls = 12
        let group = DispatchGroup()
        let errors = Mutex<[String]>([])
        for _ in 0..<4 {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                do {
                    let connection = try daemon.connect()
                    for _ in 0..<(calls / 4) { _ = try complete(connection) }
                } catch {
                    errors.withLock { $0.append("\(error)") }
                }
            }
        }
        // Subscribe while the calls stream, from the very first event.
        let watcher = try daemon.connect()
        watcher.setReadTimeout(.seconds(20))
        // The status request counts itself.
        #expect(waitUntil { (try? daemon.connect().call(.status))?["requests_in_flight"]?.intValue ?? 0 > 1 })
        let (_, reply, replayed) = try subscribe(watcher, ["since": 0])
        #expect(reply["cursor"] == 0)
        var ends = replayed.filter { $0.name == "chain_end" }.count
        var all = replayed
        if ends < calls {
            all += try read(watcher) { event in
                if event.name == "chain_end" { ends += 1 }
                return ends == calls
            }
        }
        group.wait()
        #expect(errors.withLock { $0 }.isEmpty)
        #expect(all.map(\.seq) == Array(1...UInt64(all.count)))
        #expect(all.count == calls * 25)
    }

    @Test("filters: types, tags and sessions, several subscriptions on one connection")
    func filters() throws {
        let daemon = try DaemonProcess(config: Self.fakeConfig(words: 3))
        let watcher = try daemon.connect()
        watcher.setReadTimeout(.seconds(10))
        let tagged = try subscribe(watcher, ["types": ["llm_end"], "tags": ["keep"]]).number
        let session = try subscribe(watcher, ["sessions": ["s2"], "types": ["chain_start", "chain_end"]]).number
        let caller = try daemon.connect()
        _ = try complete(caller, ["tags": ["drop"], "session": "s1"])
        _ = try complete(caller, ["tags": ["keep", "x"], "session": "s2"])
        let seen = try read(watcher) { $0.name == "chain_end" }
        // The first call matched nothing: the first event seen is from the second.
        #expect(seen.map(\.name).sorted() == ["chain_end", "chain_start", "llm_end"])
        #expect(seen.first { $0.name == "llm_end" }?.subscription == tagged)
        #expect(seen.filter { $0.name.hasPrefix("chain") }.allSatisfy { $0.subscription == session && $0.session == "s2" })
        #expect(throws: ClientError.self) { try watcher.call(.subscribe, params: ["types": ["llm_finish"]]) }
        #expect(try watcher.call(.unsubscribe, params: ["subscription": .int(tagged)])["unsubscribed"] == true)
        #expect(throws: ClientError.self) { try watcher.call(.unsubscribe, params: ["subscription": .int(tagged)]) }
    }

    @Test("a blocking subscriber holds the first token until it acks; without an ack the run goes on after the timeout")
    func blocking() throws {
        let daemon = try DaemonProcess(config: Self.fakeConfig(words: 3, extra: "[Events]\nAckTimeoutSec=500ms"))
        let gate = try daemon.connect()
        gate.setReadTimeout(.seconds(10))
        let number = try subscribe(gate, ["types": ["chat_model_start", "ack_timeout"], "blocking": ["chat_model_start"]]).number

        // Acknowledged: no token before the ack.
        let caller = try daemon.connect()
        try caller.send(Request(id: .int(1), method: "complete", params: ["messages": [["role": "user", "content": "x"]]]))
        let start = try read(gate) { $0.name == "chat_model_start" }[0]
        caller.setReadTimeout(.milliseconds(300))
        var early: [String] = []
        while case .event(let event)? = try? caller.readMessage() { early.append(event.name) }
        #expect(early == ["chain_start", "chat_model_start"])
        #expect(try gate.call(.ack, params: ["subscription": .int(number), "seq": .int(Int64(start.seq))])["acknowledged"] == true)
        caller.setReadTimeout(.seconds(10))
        var tokens = 0
        while true {
            let message = try caller.readMessage()
            if case .event(let event) = message, event.name == "llm_new_token" { tokens += 1 }
            if case .reply = message { break }
        }
        #expect(tokens == 3)

        // Not acknowledged: the run waits for the timeout, which is reported, then streams.
        var events: [CallbackEvent] = []
        _ = try complete(caller) { events.append($0) }
        let timeout = try read(gate) { $0.name == "ack_timeout" }.last!
        #expect(timeout.subscription == number)
        #expect(timeout.data["timeout_ms"] == 500)
        let blockedStart = try #require(events.first { $0.name == "chat_model_start" })
        #expect(timeout.data["seq"]?.intValue == Int64(blockedStart.seq))
        #expect(events.filter { $0.name == "llm_new_token" }.allSatisfy { $0.seq > timeout.seq })
        #expect(throws: ClientError.self) { try gate.call(.subscribe, params: ["blocking": ["llm_new_token"]]) }
    }

    @Test("LangChain's fallback: asking for llm_start and not chat_model_start, chat calls come as llm_start, live, replayed and blocking")
    func llmStartFallback() throws {
        let daemon = try DaemonProcess(config: Self.fakeConfig(words: 3, extra: "[Events]\nAckTimeoutSec=30"))
        // The tutorial's async handler, ported: it sleeps in on_llm_start and on_llm_end, and
        // the run waits for it.
        let handler = try daemon.connect()
        handler.setReadTimeout(.seconds(20))
        let number = try subscribe(
            handler, ["types": ["llm_start", "llm_end"], "blocking": ["llm_start", "llm_end"]]
        ).number
        let both = try daemon.connect()
        try subscribe(both, ["types": ["llm_start", "chat_model_start"]])

        let caller = try daemon.connect()
        caller.setReadTimeout(.seconds(20))
        try caller.send(
            Request(
                id: .int(1), method: "complete",
                params: ["messages": [["role": "system", "content": "Be brief."], ["role": "user", "content": "Hi!"]]]))
        let start = try read(handler) { $0.name == "llm_start" }.last!
        #expect(start.data["prompts"] == ["System: Be brief.\nHuman: Hi!"])
        #expect(start.data["messages"] == nil && start.data["from_chat_model"] == true)
        #expect(start.data["provider"] == "fake", "the rest of the start as it was")
        usleep(300_000)
        let acknowledged = Timestamp.nowMicroseconds()
        _ = try handler.call(.ack, params: ["subscription": .int(number), "seq": .int(Int64(start.seq))])
        let end = try read(handler) { $0.name == "llm_end" }.last!
        _ = try handler.call(.ack, params: ["subscription": .int(number), "seq": .int(Int64(end.seq))])
        var tokens: [CallbackEvent] = []
        while true {
            let message = try caller.readMessage()
            if case .event(let event) = message, event.name == "llm_new_token" { tokens.append(event) }
            if case .reply = message { break }
        }
        #expect(tokens.count == 3)
        #expect(tokens.allSatisfy { $0.time >= acknowledged }, "no token before the handler woke up")

        // Asking for both: the chat model's own event, once.
        let seen = try read(both) { $0.name == "chat_model_start" }
        #expect(seen.map(\.name) == ["chat_model_start"])
        #expect(seen[0].seq == start.seq)

        // Replay converts the same way.
        let replayed = try subscribe(try daemon.connect(), ["types": ["llm_start"], "since": 0]).replayed
        #expect(replayed.map(\.name) == ["llm_start"])
        #expect(replayed.first?.data["prompts"] == start.data["prompts"] && replayed.first?.seq == start.seq)
    }

    @Test("a long session's turns cost the journal the same at turn 100 as at turn 10; replay gives back each start whole")
    func longSessionJournal() throws {
        let daemon = try DaemonProcess(config: "[Provider fake]\nTokenDelayMSec=0\nReply=Noted, thank you.\n")
        let client = try LLMDClient(socketPath: daemon.socketPath)
        var live: [UInt64: JSONObject] = [:]
        var turnStarts: [Int: UInt64] = [:]
        for turn in 1...110 {
            _ = try client.send(SendMethod.Params(session: "long", text: "message \(turn), a few words long"), onToken: { _ in }, onEvent: { event in
                if event.name == "chat_model_start" || (event.name == "chain_start" && event.parentRunID == nil) {
                    live[event.seq] = event.data
                }
                if event.name == "chain_start", event.parentRunID == nil { turnStarts[turn] = event.seq }
            })
        }
        var replayed: [UInt64: JSONObject] = [:]
        try subscribe(try daemon.connect(), ["since": 0, "types": ["chat_model_start", "chain_start"]]).replayed.forEach {
            replayed[$0.seq] = $0.data
        }
        #expect(replayed.count == live.count && replayed == live, "every start, whole")
        let lastHistory = live[turnStarts[110]!]?["inputs"]?.objectValue?["history"]?.arrayValue?.count
        #expect(lastHistory == 218, "109 exchanges of history")

        // What the journal stores of a turn's starts: the same at turn 100 as at turn 10, not
        // all of the history again. (Stored bodies, not page bytes: how records share pages
        // depends on timing.)
        daemon.send(signal: SIGTERM)
        _ = daemon.waitForExit()
        let journal = try SQLiteDatabase(path: daemon.stateDirectory + "/events.db", readOnly: true)
        let pages = try journal.prepare("SELECT records FROM event_pages")
        var stored: [UInt64: Int] = [:]
        while try pages.step() {
            for record in try JournalPage.decode(pages.bytes(0)) {
                stored[record.seq] = record.body.count
            }
        }
        for (early, late) in [(turnStarts[10]!, turnStarts[100]!)] {
            #expect(stored[late]! <= stored[early]! + 16, "chain start: \(stored[early]!) bytes at turn 10, \(stored[late]!) at 100")
        }
        let chatStarts = live.keys.filter { live[$0]?["messages"] != nil }.sorted()
        #expect(stored[chatStarts[99]]! <= stored[chatStarts[9]]! + 16, "chat start at turn 10 and 100")
        #expect(
            try journal.intValue("SELECT count(*) FROM conversation_messages") <= 221,
            "each message of the conversation once")
    }

    @Test("a vanished blocking subscriber never holds a run")
    func vanishedBlocker() throws {
        let daemon = try DaemonProcess(config: Self.fakeConfig(words: 3, extra: "[Events]\nAckTimeoutSec=60"))
        let gate = try daemon.connect()
        try subscribe(gate, ["blocking": ["chat_model_start"]])
        let caller = try daemon.connect()
        caller.setReadTimeout(.seconds(20))
        try caller.send(Request(id: .int(1), method: "complete", params: ["messages": [["role": "user", "content": "x"]]]))
        // The status request counts itself.
        #expect(waitUntil { (try? daemon.connect().call(.status))?["requests_in_flight"]?.intValue == 2 })
        gate.close()
        while true {
            if case .reply = try caller.readMessage() { break }
        }
    }

    @Test("a subscriber that stops reading lags, then catches up losslessly; a fast one sees every event")
    func lagAndResume() throws {
        let daemon = try DaemonProcess(config: Self.fakeConfig(words: 4000, delayMSec: 0, extra: "[Events]\nQueueSize=64K"))
        let slow = try daemon.connect()
        let slowNumber = try subscribe(slow).number
        let fast = try daemon.connect()
        fast.setReadTimeout(.seconds(30))
        try subscribe(fast)
        _ = try complete(daemon.connect())
        // With a 64K queue even the reading subscriber may lag now and then: it too must
        // come out whole.
        let fastAll = try read(fast) { $0.name == "chain_end" }
        let fastSeen = fastAll.filter { $0.name != "lagged" }
        #expect(fastSeen.count > 4000)
        // In order, each once (the seqs missing are checked below, with the slow one's).
        #expect(zip(fastSeen.dropFirst(), fastSeen).allSatisfy { $0.seq > $1.seq })

        slow.setReadTimeout(.seconds(30))
        let slowSeen = try read(slow) { $0.name == "chain_end" && $0.seq == fastSeen.last!.seq }
        let lagged = slowSeen.filter { $0.name == "lagged" }
        #expect(!lagged.isEmpty)
        // A `lagged` event takes a seq of its own and goes only to the subscriber it is
        // about: with both subscribers' ones, the fast one missed nothing.
        let seqs = (fastAll + lagged).map(\.seq).filter { $0 <= fastSeen.last!.seq }.sorted()
        #expect(seqs == Array(seqs.first!...seqs.last!), "a gap or a duplicate in the fast subscriber's events")
        #expect(lagged.allSatisfy { $0.subscription == slowNumber && ($0.data["missed"]?.intValue ?? 0) > 0 })
        // Each lagged event comes at its gap: the next event is the one it says to resume from.
        for (index, event) in slowSeen.enumerated() where event.name == "lagged" {
            #expect(slowSeen[index + 1].seq == UInt64(event.data["resume_from"]?.intValue ?? 0))
        }
        // Compared as booleans: the arrays are thousands long.
        let runEvents = slowSeen.filter { $0.name != "lagged" }
        #expect(runEvents.count == fastSeen.count)
        #expect(runEvents.map(\.seq).elementsEqual(fastSeen.map(\.seq)))
        #expect(runEvents.map(\.data).elementsEqual(fastSeen.map(\.data)))
    }

    @Test("a subscriber whose queue stays full without reading is disconnected as stalled, told so if it reads again in time")
    func stalled() throws {
        let daemon = try DaemonProcess(
            config: Self.fakeConfig(words: 4000, delayMSec: 0, extra: "[Events]\nQueueSize=64K\nStallTimeoutSec=2s"))
        // One that reads again within the grace period gets the notice, after what was written.
        let slow = try daemon.connect()
        try subscribe(slow)
        // One that never reads again is closed all the same.
        let dead = try daemon.connect()
        try subscribe(dead)
        _ = try complete(daemon.connect())
        #expect(waitUntil(timeout: .seconds(20)) { daemon.log.components(separatedBy: "subscriber.stalled").count == 3 })
        slow.setReadTimeout(.seconds(10))
        var notice: ProtocolError?
        #expect(throws: ClientError.connectionClosed) {
            while true {
                if case .error(nil, let error) = try slow.readMessage() { notice = error }
            }
        }
        #expect(notice?.code == .subscriberStalled, "the notice before the end")
        #expect(notice?.detail["limit_bytes"] == .int(64 << 10))
        // Both are gone once the grace period is over: only the caller's own connection is left.
        #expect(waitUntil(timeout: .seconds(10)) { (try? daemon.connect().call(.status))?["clients"] == 1 })
    }

    @Test("seq goes on after a restart, and skips ahead after a crash; replay reads the journal; retention applies at start")
    func journalAcrossRestarts() throws {
        let state = try TemporaryDirectory()
        var lastSeq: UInt64 = 0
        do {
            let first = try DaemonProcess(config: Self.fakeConfig(words: 3), stateDirectory: state.path)
            _ = try complete(first.connect()) { lastSeq = $0.seq }
            first.send(signal: SIGTERM)
            #expect(first.waitForExit() == .exited(0))
        }
        do {
            let second = try DaemonProcess(config: Self.fakeConfig(words: 3), stateDirectory: state.path)
            let watcher = try second.connect()
            let (_, reply, replayed) = try subscribe(watcher, ["since": 0])
            #expect(reply["oldest_seq"] == 1)
            #expect(replayed.map(\.seq) == Array(1...lastSeq))
            #expect(replayed.first?.name == "chain_start")
            var seqs: [UInt64] = []
            _ = try complete(second.connect()) { seqs.append($0.seq) }
            #expect(seqs.first == lastSeq + 1)
            lastSeq = seqs.last ?? 0
            second.send(signal: SIGTERM)
            #expect(second.waitForExit() == .exited(0))
        }
        usleep(1_100_000)
        let third = try DaemonProcess(
            config: Self.fakeConfig(words: 3, extra: "[Events]\nJournalMaxAgeSec=1"), stateDirectory: state.path)
        let (_, reply, replayed) = try subscribe(try third.connect(), ["since": 0])
        #expect(replayed.isEmpty)
        #expect(reply["oldest_seq"] == .null)
        var seqs: [UInt64] = []
        _ = try complete(third.connect()) { seqs.append($0.seq) }
        #expect(seqs.first == lastSeq + 1)
        // Killed: events it numbered may be lost with their commit; the next daemon's
        // numbers skip ahead (2^24) so no number names two events.
        lastSeq = try #require(seqs.last)
        third.send(signal: SIGKILL)
        #expect(third.waitForExit() != nil)
        let fourth = try DaemonProcess(config: Self.fakeConfig(words: 3), stateDirectory: state.path)
        seqs = []
        _ = try complete(fourth.connect()) { seqs.append($0.seq) }
        let first = try #require(seqs.first)
        #expect(first > lastSeq + 1 && first > 1 << 24 && first <= lastSeq + 1 + (1 << 24))
        #expect(fourth.log.contains("not closed cleanly"))
    }

    /// Holds SQLite's write lock on the database `argv[1]` until the file `argv[2]` appears,
    /// then releases it and waits until the journal holds the `seq` that file names.
    static let journalLocker = #"""
        import os, sqlite3, sys, time
        database, release = sys.argv[1], sys.argv[2]
        connection = sqlite3.connect(database, isolation_level=None)
        connection.execute("BEGIN EXCLUSIVE")
        print("locked", flush=True)
        while not os.path.exists(release):
            time.sleep(0.02)
        connection.execute("COMMIT")
        target = int(open(release).read())
        for _ in range(1000):
            if (connection.execute("SELECT max(last_seq) FROM event_pages").fetchone()[0] or 0) >= target:
                print("committed", flush=True)
                break
            time.sleep(0.02)
        """#

    @Test("a journal that cannot be written loses nothing: events flow live, and the commit is retried until it lands")
    func journalRetriesItsCommit() throws {
        let state = try TemporaryDirectory()
        let daemon = try DaemonProcess(stateDirectory: state.path)
        let lockerLog = state.file("locker.log")
        // Another writer keeps the lock past llmd's 5-second busy timeout, so the commit fails.
        let locker = try ChildProcess(
            "/usr/bin/env", ["python3", "-c", Self.journalLocker, state.file("events.db"), state.file("release")],
            environment: ProcessInfo.processInfo.environment, outputPath: lockerLog)
        defer { locker.send(signal: SIGKILL) }
        #expect(waitUntil { (try? String(contentsOfFile: lockerLog, encoding: .utf8))?.contains("locked") == true })
        let watcher = try daemon.connect()
        try subscribe(watcher)
        // One event, so one commit: a retry is the only way it can land.
        let seq = try #require(try daemon.connect().call(.publish, params: ["name": "stuck"])["seq"]?.intValue)
        #expect(try read(watcher) { $0.name == "custom" }.map(\.seq) == [UInt64(seq)])
        #expect(waitUntil(timeout: .seconds(20)) { daemon.log.contains("cannot write the event journal, will retry") })
        #expect(try daemon.connect().call(.ping)["pong"] == true)
        _ = try state.write("release", "\(seq)")
        #expect(locker.wait(timeout: .seconds(30)) == .exited(0))
        #expect(try String(contentsOfFile: lockerLog, encoding: .utf8).contains("committed"))
        // Killed, so no commit at shutdown: what the next daemon replays, the retry wrote.
        daemon.send(signal: SIGKILL)
        #expect(daemon.waitForExit() != nil)
        let next = try DaemonProcess(stateDirectory: state.path)
        let (_, _, replayed) = try subscribe(try next.connect(), ["since": 0])
        #expect(replayed.map(\.seq) == [UInt64(seq)])
    }

    @Test("llmctl events --follow prints NDJSON and resumes across a daemon restart")
    func followAcrossRestart() throws {
        let shared = try TemporaryDirectory()
        let socket = shared.file("llmd.sock")
        let output = shared.file("events.out")
        var daemon: DaemonProcess? = try DaemonProcess(
            config: Self.fakeConfig(words: 3), socketPath: socket, stateDirectory: shared.file("state"))
        let follower = try ChildProcess(
            binDirectory + "/llmctl", ["events", "--follow", "--json", "--socket", socket],
            environment: ProcessInfo.processInfo.environment, outputPath: output, errorPath: shared.file("events.err"))
        defer { follower.send(signal: SIGKILL) }
        func lines() -> [CallbackEvent] {
            ((try? String(contentsOfFile: output, encoding: .utf8)) ?? "").split(separator: "\n").compactMap {
                if case .event(let event)? = try? ServerMessage.decode(line: Array($0.utf8)) { return event }
                return nil
            }
        }
        #expect(waitUntil { (try? String(contentsOfFile: shared.file("events.err"), encoding: .utf8))?.contains("live") == true })
        _ = try complete(daemon!.connect())
        #expect(waitUntil { lines().contains { $0.name == "chain_end" } })
        daemon!.send(signal: SIGTERM)
        #expect(daemon!.waitForExit() == .exited(0))
        daemon = nil
        daemon = try DaemonProcess(config: Self.fakeConfig(words: 3), socketPath: socket, stateDirectory: shared.file("state"))
        // Published while llmctl may still be reconnecting: the cursor brings it anyway.
        _ = try complete(daemon!.connect())
        #expect(waitUntil { lines().filter { $0.name == "chain_end" }.count == 2 })
        let seen = lines()
        #expect(seen.map(\.seq) == Array(1...UInt64(seen.count)))
        #expect(seen.allSatisfy { $0.subscription == nil && $0.request == nil })
        let errors = try String(contentsOfFile: shared.file("events.err"), encoding: .utf8)
        #expect(errors.contains("reconnected; resuming after seq 8"))
    }

    @Test("publish reaches subscribers; --verbose prints LangChain's text; a file handler writes NDJSON, tokens too")
    func handlersAndPublish() throws {
        let files = try TemporaryDirectory()
        let audit = files.file("audit.ndjson")
        let tokenLog = files.file("tokens.ndjson")
        let daemon = try DaemonProcess(
            config: Self.fakeConfig(
                words: 2,
                extra: """
                    [Handler audit]\nType=file\nPath=\(audit)\nFormat=ndjson\nEvents=chain_start custom
                    [Handler tokens]\nType=file\nPath=\(tokenLog)\nFormat=ndjson\nEvents=llm_new_token
                    """),
            arguments: ["--verbose"])
        let watcher = try daemon.connect()
        watcher.setReadTimeout(.seconds(10))
        try subscribe(watcher, ["types": ["custom"]])
        let published = try daemon.connect().call(
            "publish", params: ["name": "deploy", "data": ["version": "1.2"], "tags": ["ops"]])
        let custom = try read(watcher) { $0.name == "custom" }[0]
        #expect(custom.data == ["name": "deploy", "data": ["version": "1.2"]])
        #expect(custom.tags == ["ops"])
        #expect(published["seq"]?.intValue == Int64(custom.seq))
        var streamed: [CallbackEvent] = []
        _ = try complete(daemon.connect()) { event in
            if event.name == "llm_new_token" { streamed.append(event) }
        }
        #expect(waitUntil { daemon.log.contains("> Finished chain.") })
        #expect(daemon.log.contains("\n\n> Entering new LLMChain chain...\n"))
        #expect(waitUntil {
            ((try? String(contentsOfFile: audit, encoding: .utf8)) ?? "").split(separator: "\n").count == 2
        })
        let lines = try String(contentsOfFile: audit, encoding: .utf8).split(separator: "\n")
        let names = try lines.map { try JSONParser.parse(String($0)).objectValue?["event"]?.stringValue }
        #expect(names == ["custom", "chain_start"])
        // Tokens reach a handler as the events the caller streamed, field for field.
        func loggedTokens() -> [CallbackEvent] {
            ((try? String(contentsOfFile: tokenLog, encoding: .utf8)) ?? "").split(separator: "\n").compactMap {
                if case .event(let event)? = try? ServerMessage.decode(line: Array($0.utf8)) { return event }
                return nil
            }
        }
        #expect(streamed.count == 2)
        #expect(waitUntil { loggedTokens().count == streamed.count })
        #expect(loggedTokens() == streamed.map { event in
            var event = event
            event.request = nil
            return event
        })
        // A turn whose caller takes no events: the handler still gets every token.
        _ = try daemon.connect().call(.send, params: ["session": "quiet", "text": "hi", "events": false])
        #expect(waitUntil { loggedTokens().count == 2 * streamed.count })
        let quiet = loggedTokens().dropFirst(streamed.count)
        #expect(quiet.map(\.data) == streamed.map(\.data))
        #expect(quiet.allSatisfy { $0.session == "quiet" && $0.seq > streamed.last!.seq })
    }
}
