import Foundation
import LLMDClient
import LLMDProtocol
import LLMDTesting
import Testing

/// No session inherits another's data: a name given again, after a delete or a rename,
/// names a new session whose usage, budget, history and events start empty.
@Suite("Session identity")
struct SessionIdentityTests {
    static let config = "[Provider fake]\nTokenDelayMSec=0\n"

    private func llmctlJSON(_ daemon: DaemonProcess, _ arguments: [String]) throws -> JSONObject {
        let result = try llmctl(arguments + ["--socket", daemon.socketPath, "--json"])
        #expect(result.status == 0, "llmctl \(arguments): \(result.standardError)")
        return try #require(try JSONParser.parse(result.standardOutput).objectValue)
    }

    @Test("delete, then create: the new session has none of the old one's usage, budget, history or events")
    func deleteThenCreate() throws {
        let daemon = try DaemonProcess(config: Self.config)
        let socket = ["--socket", daemon.socketPath]
        #expect(try llmctl(["send", "-s", "aa", "first message of aa"] + socket).status == 0)
        let spent = try #require(try llmctlJSON(daemon, ["usage", "-s", "aa"])["total"]?.objectValue?["total_tokens"]?.intValue)
        // A budget aa has used up: any further call of aa's is refused.
        #expect(try llmctl(["budget", "set", "-s", "aa", "--max-tokens", String(spent + 1)] + socket).status == 0)
        #expect(try llmctl(["send", "-s", "aa", "again"] + socket).standardError.contains("[budget.exceeded]"))
        #expect(try llmctl(["session", "rm", "aa"] + socket).status == 0)

        let cc = try llmctl(["send", "-s", "cc", "hello from cc"] + socket)
        #expect(cc.status == 0, "cc is not refused by aa's budget: \(cc.standardError)")
        let ccUsage = try #require(try llmctlJSON(daemon, ["usage", "-s", "cc"])["total"]?.objectValue)
        #expect(ccUsage["requests"] == 1, "cc's own call only: \(ccUsage)")
        let budgets = try #require(try llmctlJSON(daemon, ["budget", "show"])["budgets"]?.arrayValue)
        #expect(budgets.allSatisfy { $0.objectValue?["kind"] != "session" }, "\(budgets)")
        let export = try llmctlJSON(daemon, ["session", "export", "cc"])
        #expect(export["turn_list"]?.arrayValue?.count == 1)

        // The name given again is a new session too.
        #expect(try llmctl(["send", "-s", "aa", "a new aa"] + socket).status == 0)
        #expect(try llmctlJSON(daemon, ["usage", "-s", "aa"])["total"]?.objectValue?["requests"] == 1)
        #expect(try llmctlJSON(daemon, ["session", "export", "aa"])["turn_list"]?.arrayValue?.count == 1)
        let replayed = try llmctl(["events", "-s", "aa", "-t", "chain_start", "--json"] + socket)
        let inputs = replayed.standardOutput.split(separator: "\n").compactMap {
            try? JSONParser.parse(String($0)).objectValue?["data"]?.objectValue?["inputs"]?.objectValue?["input"]?.stringValue
        }
        #expect(inputs == ["a new aa"], "the deleted aa's turns are not the new aa's history: \(replayed.standardOutput)")

        // The ledger keeps what the deleted aa spent, as its own.
        let table = try llmctl(["usage", "--by", "session"] + socket)
        let lines = table.standardOutput.split(separator: "\n").map(String.init)
        #expect(lines.contains { $0.hasPrefix("aa (deleted 20") }, "\(table.standardOutput)")
        #expect(lines.filter { $0.hasPrefix("aa ") }.count == 2)
        let groups = try #require(try llmctlJSON(daemon, ["usage", "--by", "session"])["groups"]?.arrayValue?.compactMap(\.objectValue))
        let deleted = try #require(groups.first { $0["deleted"] == true })
        #expect(deleted["key"] == "aa" && deleted["total_tokens"] == .int(spent) && deleted["deleted_at"]?.stringValue != nil)
    }

    @Test("a new session's name may not hold characters that change how a terminal shows text; joiners are fine")
    func namesShownSafely() throws {
        let daemon = try DaemonProcess(config: Self.config)
        let client = try LLMDClient(socketPath: daemon.socketPath)
        func refusal(_ method: ProtocolMethod, _ params: JSONObject) -> ProtocolError? {
            do throws(ClientError) {
                _ = try client.call(method, params)
            } catch {
                if case .remote(let error) = error { return error }
            }
            return nil
        }
        for (name, character) in [("a\u{9B}2J", "U+009B"), ("b\u{85}", "U+0085"), ("txt.\u{202E}exe", "U+202E"), ("l\u{2028}", "U+2028")] {
            let error = refusal(.sessionCreate, ["session": .string(name)])
            #expect(error?.code == .invalidParams && error?.detail["character"] == .string(character), "\(name.unicodeScalars.map(\.value))")
            #expect(refusal(.send, ["session": .string(name), "text": "hi"])?.detail["character"] == .string(character))
        }
        #expect(refusal(.sessionCreate, ["session": "family 👨‍👩‍👧"]) == nil, "ZWJ sequences are names")
        let renamed = refusal(.sessionRename, ["session": "family 👨‍👩‍👧", "to": "x\u{202E}"])
        #expect(renamed?.detail["field"] == "to")
        #expect(try client.call(.sessionList)["sessions"]?.arrayValue?.count == 1)
    }

    /// What the model expects a session to own.
    private struct Owned {
        var requests: Int64 = 0
        var tokens: Int64 = 0
        var turns = 0
        /// Turns since the session took its name: what replay by the name shows.
        var turnsUnderName = 0
        var budget = false
    }

    @Test("1,200 random creates, renames, deletes, turns and budgets, with a restart: each session owns exactly its own")
    func randomized() throws {
        let state = try TemporaryDirectory()
        var daemon = try DaemonProcess(config: Self.config, stateDirectory: state.path)
        var client = try LLMDClient(socketPath: daemon.socketPath)
        var random = SplitMix64(state: 22)
        let names = ["a", "b", "c", "d", "e"]
        var live: [String: Owned] = [:]
        // Deleted sessions that made calls: the groups `usage --by session` keeps for them.
        var deleted: [String] = []
        // Names given to a new session after another had them: their replay must start empty.
        var reused: Set<String> = []
        var everUsed: Set<String> = []

        func remote(_ body: () throws(ClientError) -> Void) -> ErrorCode? {
            do throws(ClientError) {
                try body()
                return nil
            } catch {
                guard case .remote(let error) = error else {
                    Issue.record("not a daemon's error: \(error)")
                    return nil
                }
                return error.code
            }
        }
        func born(_ name: String) {
            if everUsed.contains(name) { reused.insert(name) }
            everUsed.insert(name)
        }

        func check(_ step: Int) throws {
            let listed = try client.call(.sessionList)["sessions"]?.arrayValue?.compactMap { $0.objectValue?["session"]?.stringValue }
            #expect(Set(listed ?? []) == Set(live.keys), "step \(step)")
            let grouped = try client.call(.usage, ["by": "session"])["groups"]?.arrayValue?.compactMap(\.objectValue) ?? []
            var liveGroups: [String: (Int64, Int64)] = [:]
            var deletedGroups: [String] = []
            for group in grouped {
                let key = group["key"]?.stringValue ?? ""
                let sums = (group["requests"]?.intValue ?? 0, group["total_tokens"]?.intValue ?? 0)
                if group["deleted"] == true { deletedGroups.append("\(key) \(sums.0) \(sums.1)") } else { liveGroups[key] = sums }
            }
            #expect(deletedGroups.sorted() == deleted.sorted(), "step \(step)")
            for (name, owned) in live {
                let total = try client.call(.usage, ["session": .string(name)])["total"]?.objectValue
                #expect(total?["requests"]?.intValue == owned.requests, "step \(step): requests of '\(name)'")
                #expect(total?["total_tokens"]?.intValue == owned.tokens, "step \(step): tokens of '\(name)'")
                if owned.requests > 0 { #expect(liveGroups[name].map { [$0.0, $0.1] } == [owned.requests, owned.tokens]) }
                let shown = try client.call(.sessionShow, ["session": .string(name), "turns": 0])
                #expect(shown["turn_count"]?.intValue == Int64(owned.turns), "step \(step): turns of '\(name)'")
            }
            let budgets = try client.call(.budgetShow)["budgets"]?.arrayValue?.compactMap(\.objectValue) ?? []
            let sessionBudgets = budgets.filter { $0["kind"] == "session" }
            #expect(
                Set(sessionBudgets.compactMap { $0["session"]?.stringValue }) == Set(live.filter(\.value.budget).keys),
                "step \(step): budgets")
            for budget in sessionBudgets {
                let name = budget["session"]?.stringValue ?? ""
                #expect(budget["spent"]?.objectValue?["tokens"]?.intValue == live[name]?.tokens, "step \(step): spent of '\(name)'")
            }
        }

        var operations = 0
        for step in 1...1_200 {
            let name = names.randomElement(using: &random)!
            switch Int.random(in: 0..<100, using: &random) {
            case 0..<15:
                let code = remote { () throws(ClientError) in _ = try client.call(.sessionCreate, ["session": .string(name)]) }
                if live[name] != nil {
                    #expect(code == .sessionExists, "step \(step)")
                } else {
                    #expect(code == nil, "step \(step)")
                    live[name] = Owned()
                    born(name)
                }
            case 15..<60:
                var usage: Int64 = 0
                let code = remote { () throws(ClientError) in
                    let result = try client.send(SendMethod.Params(session: name, text: "turn \(step)"), onToken: { _ in })
                    usage = Int64(result.reply.usage.tokens.totalTokens)
                }
                #expect(code == nil, "step \(step)")
                if live[name] == nil { born(name) }
                live[name, default: Owned()].requests += 1
                live[name, default: Owned()].tokens += usage
                live[name, default: Owned()].turns += 1
                live[name, default: Owned()].turnsUnderName += 1
            case 60..<75:
                let to = names.randomElement(using: &random)!
                let code = remote { () throws(ClientError) in _ = try client.call(.sessionRename, ["session": .string(name), "to": .string(to)]) }
                if live[name] == nil {
                    #expect(code == .sessionNotFound, "step \(step)")
                } else if live[to] != nil {
                    #expect(code == .sessionExists, "step \(step)")
                } else {
                    #expect(code == nil, "step \(step)")
                    live[to] = live.removeValue(forKey: name)
                    live[to]?.turnsUnderName = 0
                    born(to)
                }
            case 75..<90:
                let code = remote { () throws(ClientError) in _ = try client.call(.sessionDelete, ["session": .string(name)]) }
                if let owned = live.removeValue(forKey: name) {
                    #expect(code == nil, "step \(step)")
                    if owned.requests > 0 { deleted.append("\(name) \(owned.requests) \(owned.tokens)") }
                } else {
                    #expect(code == .sessionNotFound, "step \(step)")
                }
            default:
                let code = remote { () throws(ClientError) in
                    _ = try client.call(.budgetSet, ["session": .string(name), "max_tokens": 1_000_000_000])
                }
                if live[name] != nil {
                    #expect(code == nil, "step \(step)")
                    live[name]?.budget = true
                } else {
                    #expect(code == .sessionNotFound, "step \(step)")
                }
            }
            operations += 1
            if step % 100 == 0 { try check(step) }
            if step == 600 {
                // Ids and the ledger outlive the daemon.
                client.connection.close()
                daemon.send(signal: SIGTERM)
                #expect(daemon.waitForExit() == .exited(0))
                daemon = try DaemonProcess(config: Self.config, stateDirectory: state.path)
                client = try LLMDClient(socketPath: daemon.socketPath)
                try check(step)
            }
        }
        #expect(operations == 1_200)
        #expect(!deleted.isEmpty && !reused.isEmpty, "the sequence deleted sessions and gave their names again")

        // A name given again replays the current session's turns only.
        for name in reused.sorted() where live[name] != nil {
            var roots = 0
            try LLMDClient(socketPath: daemon.socketPath).subscribe(
                SubscribeMethod.Params(sessions: [name], types: ["chain_start"], since: 0)
            ) { message throws(ClientError) in
                guard case .event(let event) = message else { return false }
                if event.parentRunID == nil { roots += 1 }
                return true
            }
            #expect(roots == live[name]!.turnsUnderName, "replay of '\(name)'")
        }
    }
}
