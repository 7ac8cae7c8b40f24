import Foundation
import LLMDClient
import LLMDProtocol
import LLMDTesting
import Testing

/// Sessions through the whole path: llmctl and clients, the daemon with its SQLite file,
/// the fixture server logging every prompt the daemon sends.
@Suite("Sessions")
struct SessionTests {
    let keys: TemporaryDirectory

    init() throws {
        keys = try TemporaryDirectory()
    }

    private func config(_ fixture: FixtureServer, extra: String = "") throws -> String {
        try fixture.config(keys: keys, extra: extra)
    }

    /// The chat messages of each request the fixture saw, for one model, in order.
    private func sentMessages(_ fixture: FixtureServer, model: String = "fixture") throws -> [[String]] {
        try fixture.requestLog().filter { $0["model"]?.stringValue == model }.compactMap { entry in
            entry["body"]?.objectValue?["messages"]?.arrayValue?.compactMap { message -> String? in
                guard let object = message.objectValue else { return nil }
                return "\(object["role"]?.stringValue ?? ""): \(object["content"]?.stringValue ?? "")"
            }
        }
    }

    private func send(_ daemon: DaemonProcess, _ arguments: [String]) throws -> ProcessResult {
        try llmctl(["send", "--socket", daemon.socketPath] + arguments)
    }

    private func json(_ result: ProcessResult) throws -> JSONObject {
        try #require(try JSONParser.parse(result.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)).objectValue)
    }

    @Test("a session is created on first use and each turn sends the history; llmctl lists and shows it")
    func buffer() throws {
        let fixture = try FixtureServer()
        let daemon = try DaemonProcess(config: try config(fixture))
        let first = try send(daemon, ["-s", "shop", "--system", "Be brief.", "I want roses"])
        #expect(first.status == 0, "\(first.standardError)")
        #expect(first.standardOutput == "echo: I want roses\n")
        #expect(first.standardError.contains("created session 'shop'"))
        let second = try send(daemon, ["-s", "shop", "pink ones"])
        #expect(second.standardOutput == "echo: pink ones\n")
        #expect(!second.standardError.contains("created"))
        #expect(
            try sentMessages(fixture).last == [
                "system: Be brief.", "user: I want roses", "assistant: echo: I want roses", "user: pink ones",
            ])

        let list = try llmctl(["sessions", "--socket", daemon.socketPath])
        #expect(list.status == 0)
        let row = try #require(list.standardOutput.split(separator: "\n").first { $0.hasPrefix("shop ") })
        #expect(row.contains(" 2 ") && row.contains("buffer"), "\(list.standardOutput)")
        let show = try llmctl(["session", "show", "--socket", daemon.socketPath, "shop"])
        #expect(show.standardOutput.contains("turns:         2 completed"))
        #expect(show.standardOutput.contains("> pink ones"))
        let prompt = try llmctl(["session", "show", "--prompt", "--socket", daemon.socketPath, "shop", "next", "one"])
        #expect(
            prompt.standardOutput
                == "[system]\nBe brief.\n[user]\nI want roses\n[assistant]\necho: I want roses\n[user]\npink ones\n"
                + "[assistant]\necho: pink ones\n[user]\nnext one\n")
        let memory = try llmctl(["memory", "show", "--socket", daemon.socketPath, "shop"])
        #expect(memory.standardOutput.contains("messages: 4 in memory, 4 in the next prompt"), "\(memory.standardOutput)")
        #expect(memory.standardOutput.contains("  Human: I want roses\n  AI: echo: I want roses"))
    }

    @Test("options change an existing session and llmctl says so; a window keeps the last k exchanges")
    func window() throws {
        let fixture = try FixtureServer()
        let daemon = try DaemonProcess(config: try config(fixture))
        for text in ["one", "two"] { _ = try send(daemon, ["-s", "w", text]) }
        let switched = try send(daemon, ["-s", "w", "--memory", "window", "--k", "1", "three"])
        #expect(switched.standardError.contains("session 'w' now uses memory window (k=1)"), "\(switched.standardError)")
        #expect(try sentMessages(fixture).last == ["user: two", "assistant: echo: two", "user: three"])
        let zero = try send(daemon, ["-s", "w", "--k", "0", "four"])
        #expect(zero.status == 0)
        #expect(try sentMessages(fixture).last == ["user: four"])
        let bad = try send(daemon, ["-s", "fresh", "--k", "2", "x"])
        #expect(bad.status == 1)
        #expect(bad.standardError.contains("k sets the window memory's size"))
        let noSession = try send(daemon, ["--max-tokens", "10", "x"])
        #expect(noSession.status == 64)
        #expect(noSession.standardError.contains("need a session"))
    }

    @Test("summary-buffer folds the oldest messages into a summary through a child run; a failed summary keeps them")
    func summaryBuffer() throws {
        let fixture = try FixtureServer()
        let daemon = try DaemonProcess(config: try config(fixture))
        let watcher = try daemon.connect()
        _ = try watcher.call(.subscribe, params: ["sessions": ["sb"], "types": ["memory_updated", "chain_start"]])
        _ = try send(daemon, ["-s", "sb", "--memory", "summary-buffer", "--max-tokens", "25", "alpha beta gamma"])
        let second = try send(daemon, ["-s", "sb", "--json", "delta epsilon zeta"])
        let result = try json(second)
        #expect(result["memory"]?.objectValue?["summarized"] == 2, "\(result)")
        #expect(result["summary_usage"]?.arrayValue?.count == 1)
        #expect(result["text"] == "echo: delta epsilon zeta", "the reply is the turn's, not the summary's")
        let summaryRequest = try #require(try sentMessages(fixture).last)
        #expect(summaryRequest.count == 1 && summaryRequest[0].contains("New lines of conversation:\nHuman: alpha beta gamma\nAI: echo: alpha beta gamma\n\nNew summary:"))
        var memoryEvent: CallbackEvent?
        var summaryChain: CallbackEvent?
        #expect(try waitUntil {
            if case .event(let event) = try watcher.readMessage() {
                if event.name == "memory_updated" { memoryEvent = event }
                if event.name == "chain_start", event.parentRunID != nil { summaryChain = event }
            }
            return memoryEvent != nil
        })
        #expect(memoryEvent?.data["summary"] == "summary of 2 lines")
        #expect(summaryChain?.tags.contains("memory") == true, "the summarising call is a child chain of the turn")
        let third = try send(daemon, ["-s", "sb", "eta"])
        #expect(third.status == 0)
        let prompt = try #require(try sentMessages(fixture).filter { $0.last == "user: eta" }.last)
        #expect(prompt.first == "system: summary of 2 lines", "\(prompt)")

        let failing = try send(daemon, ["-s", "sf", "--json", "-m", "fixture/summary-fails", "--memory", "summary", "one"])
        #expect(failing.status == 0)
        #expect(try json(failing)["summary_error"]?.objectValue?["code"] == "upstream.server_error")
        let memory = try llmctl(["memory", "show", "--json", "--socket", daemon.socketPath, "sf"])
        #expect(try json(memory)["messages"]?.arrayValue?.count == 2, "messages stay verbatim when the summary fails")
    }

    @Test("the conversation style sends LangChain's ConversationChain prompt to the completions endpoint")
    func conversationStyle() throws {
        let fixture = try FixtureServer()
        let daemon = try DaemonProcess(config: try config(fixture))
        _ = try send(daemon, ["-s", "lc", "--prompt-style", "conversation", "--endpoint", "completions", "Hi there!"])
        let preview = try llmctl(["session", "show", "--prompt", "--socket", daemon.socketPath, "lc", "And you?"])
        _ = try send(daemon, ["-s", "lc", "And you?"])
        let prompts = try fixture.requestLog().compactMap { $0["body"]?.objectValue?["prompt"]?.stringValue }
        let header =
            "The following is a friendly conversation between a human and an AI. The AI is talkative and provides lots of specific details from its context. If the AI does not know the answer to a question, it truthfully says it does not know.\n\nCurrent conversation:\n"
        #expect(prompts.first == header + "\nHuman: Hi there!\nAI:")
        #expect(prompts.last == header + "Human: Hi there!\nAI: echo: " + prompts[0] + "\nHuman: And you?\nAI:")
        #expect(preview.standardOutput == (prompts.last ?? "") + "\n", "session show --prompt prints what is sent")
        #expect(try fixture.requestLog().allSatisfy { $0["path"] == "/v1/completions" })
    }

    @Test("sessions survive a restart; kill -9 mid-turn leaves earlier turns intact and the cut one marked")
    func persistence() throws {
        let fixture = try FixtureServer()
        let state = try TemporaryDirectory()
        let config = try config(fixture)
        do {
            let daemon = try DaemonProcess(config: config, stateDirectory: state.path)
            _ = try send(daemon, ["-s", "keep", "first"])
            _ = try send(daemon, ["-s", "keep", "second"])
            daemon.send(signal: SIGTERM)
            #expect(daemon.waitForExit() == .exited(0))
        }
        do {
            let daemon = try DaemonProcess(config: config, stateDirectory: state.path)
            let third = try send(daemon, ["-s", "keep", "third"])
            #expect(third.status == 0)
            #expect(try sentMessages(fixture).last?.count == 5, "history from before the restart is sent")
            let connection = try daemon.connect()
            try connection.send(
                Request(id: .int(1), method: "send", params: ["session": "keep", "text": "slow", "settings": ["model": "fixture/slow:100"]]))
            #expect(try waitUntil { if case .event(let event) = try connection.readMessage() { return event.name == "llm_new_token" }; return false })
            daemon.send(signal: SIGKILL)
            _ = daemon.waitForExit()
        }
        let daemon = try DaemonProcess(config: config, stateDirectory: state.path)
        #expect(daemon.log.contains("1 turn(s) were cut short"))
        let show = try json(try llmctl(["session", "show", "--json", "--socket", daemon.socketPath, "keep"]))
        let turns = show["recent_turns"]?.arrayValue?.compactMap(\.objectValue) ?? []
        #expect(turns.map { $0["status"]?.stringValue ?? "" } == ["completed", "completed", "completed", "interrupted"])
        #expect(show["turns"] == 3)
        let memory = try json(try llmctl(["memory", "show", "--json", "--socket", daemon.socketPath, "keep"]))
        #expect(memory["messages"]?.arrayValue?.count == 6, "the interrupted turn never entered memory")
    }

    @Test("two clients on one session: the second is queued, turns keep arrival order, both see every event")
    func sharedSession() throws {
        let fixture = try FixtureServer()
        let daemon = try DaemonProcess(config: try config(fixture))
        _ = try send(daemon, ["-s", "team", "-m", "fixture/slow:150", "hello"])
        let (alice, bob) = (try daemon.connect(), try daemon.connect())
        for watcher in [alice, bob] { _ = try watcher.call(.subscribe, params: ["sessions": ["team"]]) }
        try alice.send(Request(id: .string("a"), method: "send", params: ["session": "team", "text": "from alice", "events": false]))
        // Wait until alice's turn runs, then bob's arrives behind it.
        #expect(try waitUntil { if case .event(let event) = try alice.readMessage() { return event.name == "llm_new_token" }; return false })
        try bob.send(Request(id: .string("b"), method: "send", params: ["session": "team", "text": "from bob", "events": false]))
        var queued: Notice?
        var bobReply: JSONObject?
        var bobInputs: [String] = []
        #expect(try waitUntil(timeout: .seconds(20)) {
            switch try bob.readMessage() {
            case .notice(let notice) where notice.name == "queued": queued = notice
            case .event(let event) where event.name == "chain_start":
                bobInputs.append(event.data["inputs"]?.objectValue?["input"]?.stringValue ?? "")
            case .reply(.string("b"), let result): bobReply = result
            default: break
            }
            return bobReply != nil
        })
        #expect(queued?.fields["position"] == 1)
        #expect(bobInputs == ["from alice", "from bob"], "bob's subscription saw alice's turn, then his own")
        #expect(bobReply?["turn"] == 3)
        var aliceInputs: [String] = []
        #expect(try waitUntil {
            if case .event(let event) = try alice.readMessage(), event.name == "chain_start" {
                aliceInputs.append(event.data["inputs"]?.objectValue?["input"]?.stringValue ?? "")
            }
            return aliceInputs.contains("from bob")
        })
        let bobPrompt = try #require(try sentMessages(fixture, model: "fixture/slow:150").last)
        #expect(bobPrompt.suffix(3) == ["user: from alice", "assistant: echo: from alice", "user: from bob"])
    }

    @Test("a prompt over the context window fails with how much too long; the failed turn is recorded, memory untouched")
    func contextWindow() throws {
        let fixture = try FixtureServer()
        let daemon = try DaemonProcess(config: try config(fixture, extra: "\n[Model fixture]\nContextWindow=40\n"))
        _ = try send(daemon, ["-s", "big", "one two three four five six seven eight"])
        let over = try send(daemon, ["-s", "big", "--json", "nine ten eleven twelve thirteen fourteen fifteen sixteen"])
        #expect(over.status == 1)
        #expect(over.standardError.contains("[context.window_exceeded]"), "\(over.standardError)")
        #expect(over.standardError.contains("more than fixture's context window of 40"))
        let show = try json(try llmctl(["session", "show", "--json", "--socket", daemon.socketPath, "big"]))
        let statuses = show["recent_turns"]?.arrayValue?.compactMap { $0.objectValue?["status"]?.stringValue }
        #expect(statuses == ["completed", "failed"])
        #expect(try fixture.requestLog().count == 1, "nothing was sent for the turn that did not fit")
        let window = try send(daemon, ["-s", "big", "--memory", "window", "--k", "0", "short"])
        #expect(window.status == 0, "a memory that keeps less makes it fit: \(window.standardError)")
    }

    @Test("rename, export, delete, and named errors for missing and existing sessions")
    func management() throws {
        let fixture = try FixtureServer()
        let daemon = try DaemonProcess(config: try config(fixture))
        let socket = ["--socket", daemon.socketPath]
        #expect(try llmctl(["session", "create"] + socket + ["a", "--memory", "window", "--k", "2"]).status == 0)
        let again = try llmctl(["session", "create"] + socket + ["a", "--memory", "summary"])
        #expect(again.status == 1 && again.standardError.contains("[session.exists]"))
        #expect(try llmctl(["session", "show"] + socket + ["a"]).standardOutput.contains("memory:        window (k=2)"))
        let noProvider = try llmctl(["session", "set"] + socket + ["a", "-p", "nowhere"])
        #expect(noProvider.status == 1 && noProvider.standardError.contains("[provider.not_found]"))
        _ = try send(daemon, ["-s", "a", "hello"])
        #expect(try llmctl(["session", "rename"] + socket + ["a", "b"]).status == 0)
        let missing = try llmctl(["session", "show"] + socket + ["a"])
        #expect(missing.status == 1 && missing.standardError.contains("[session.not_found]"))
        let markdown = try llmctl(["session", "export"] + socket + ["b"])
        #expect(markdown.standardOutput.hasPrefix("# b\n"))
        #expect(markdown.standardOutput.contains("**Human:** hello\n\n**AI:** echo: hello\n"))
        #expect(markdown.standardOutput.contains("memory: window (k=2)"))
        let exported = try json(try llmctl(["session", "export", "--json"] + socket + ["b"]))
        #expect(exported["turn_list"]?.arrayValue?.first?.objectValue?["output"] == "echo: hello")
        let messages = exported["messages"]?.arrayValue?.compactMap(\.objectValue) ?? []
        #expect(messages.map { $0["content"]?.stringValue ?? "" } == ["hello", "echo: hello"])
        #expect(messages.allSatisfy { $0["turn"] == 1 && $0["in_memory"] == true })
        #expect(try llmctl(["session", "rm"] + socket + ["b"]).status == 0)
        #expect(try llmctl(["sessions"] + socket).standardOutput.contains("No sessions yet"))
        let status = try json(try llmctl(["status", "--json"] + socket))
        #expect(status["sessions"] == 0)
    }
}
