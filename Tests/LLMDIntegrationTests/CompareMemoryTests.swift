import Foundation
import LLMDClient
import LLMDProtocol
import LLMDTesting
import Testing

/// `llmctl compare-memory` against a real daemon and its offline provider.
@Suite("Memory comparison")
struct CompareMemoryTests {
    let output: TemporaryDirectory

    init() throws {
        output = try TemporaryDirectory()
    }

    private func json(_ result: ProcessResult) throws -> JSONObject {
        try #require(try JSONParser.parse(result.standardOutput.trimmingCharacters(in: .whitespacesAndNewlines)).objectValue)
    }

    /// Strategy label → the tokens of each of its turns, as `--json` gives them.
    private func turns(_ result: JSONObject) -> [String: [JSONObject]] {
        var turns: [String: [JSONObject]] = [:]
        for strategy in result["strategies"]?.arrayValue?.compactMap(\.objectValue) ?? [] {
            turns[strategy["label"]?.stringValue ?? ""] = strategy["turns"]?.arrayValue?.compactMap(\.objectValue) ?? []
        }
        return turns
    }

    private func sessionNames(_ daemon: DaemonProcess) throws -> [String] {
        let list = try LLMDClient(socketPath: daemon.socketPath).call(.sessionList)
        return list["sessions"]?.arrayValue?.compactMap { $0.objectValue?["session"]?.stringValue } ?? []
    }

    @Test("the flower-shop conversation under all five strategies: tokens per turn, totals, a chart, no sessions left")
    func flowerShop() throws {
        let daemon = try DaemonProcess()
        let chart = output.file("chart.svg")
        let run = try llmctl(["compare-memory", "--socket", daemon.socketPath, "--json", "--svg", chart, "-p", "fake"])
        #expect(run.status == 0, "\(run.standardError)")
        let result = try json(run)
        #expect(result["messages"]?.arrayValue?.count == 3)
        let turns = turns(result)
        let labels = result["strategies"]?.arrayValue?.compactMap { $0.objectValue?["label"]?.stringValue }
        #expect(
            labels == [
                "buffer", "window (k=1)", "token-buffer (max_tokens=300)", "summary", "summary-buffer (max_tokens=300)",
            ])
        #expect(turns.values.allSatisfy { $0.count == 3 })

        func numbers(_ label: String, _ key: String) -> [Int64] { turns[label, default: []].compactMap { $0[key]?.intValue } }
        let buffer = numbers("buffer", "total_tokens")
        #expect(buffer.count == 3 && buffer[0] < buffer[1] && buffer[1] < buffer[2], "the buffer resends the whole conversation: \(buffer)")
        let windowPrompts = numbers("window (k=1)", "prompt_tokens")
        let bufferPrompts = numbers("buffer", "prompt_tokens")
        #expect(windowPrompts.count == 3 && windowPrompts[2] < bufferPrompts[2], "window k=1 forgets turn 1 by turn 3")
        #expect(numbers("summary", "summarising_tokens").allSatisfy { $0 > 0 }, "summary makes a summarising call each turn")
        #expect(numbers("buffer", "summarising_tokens").allSatisfy { $0 == 0 })

        for strategy in result["strategies"]?.arrayValue?.compactMap(\.objectValue) ?? [] {
            let label = strategy["label"]?.stringValue ?? ""
            let all = strategy["all_turns"]?.objectValue ?? [:]
            for key in ["prompt_tokens", "completion_tokens", "summarising_tokens", "total_tokens"] {
                #expect(all[key]?.intValue == numbers(label, key).reduce(0, +), "\(label) \(key)")
            }
            #expect(all["usage_sources"] == ["estimated"])
        }

        let svg = try String(contentsOfFile: chart, encoding: .utf8)
        #expect(svg.hasPrefix("<?xml") && svg.hasSuffix("</svg>\n"))
        #expect(svg.components(separatedBy: "<g class=\"strategy\">").count == 6)
        #expect(run.standardError.contains("wrote the chart to \(chart)"))
        #expect(try sessionNames(daemon).allSatisfy { !$0.hasPrefix("compare-memory-") }, "the comparison's sessions are deleted")
    }

    @Test("custom turns and one strategy; the table says the counts are estimates; --keep keeps the session")
    func customTurns() throws {
        let daemon = try DaemonProcess()
        let run = try llmctl([
            "compare-memory", "--socket", daemon.socketPath, "-p", "fake", "--strategies", "window", "--k", "0", "--keep",
            "I'm Alice.", "What's my name?",
        ])
        #expect(run.status == 0, "\(run.standardError)")
        let lines = run.standardOutput.split(separator: "\n").map(String.init)
        #expect(lines.starts(with: ["Turns:", "  1. I'm Alice.", "  2. What's my name?"]), "\(run.standardOutput)")
        let header = try #require(lines.first { $0.hasPrefix("MEMORY") && $0.contains("TURN") })
        #expect(header.split(separator: " ", omittingEmptySubsequences: true) == ["MEMORY", "TURN", "1", "TURN", "2", "TOTAL"])
        let row = try #require(lines.first { $0.hasPrefix("window (k=0)") }?.split(separator: " ").dropFirst(2).compactMap { Int($0) })
        #expect(row.count == 3 && row[0] + row[1] == row[2], "\(row)")
        #expect(run.standardOutput.contains("Token counts are llmd's estimates: the provider reported none."))

        let kept = try #require(try sessionNames(daemon).first { $0.hasPrefix("compare-memory-") })
        #expect(kept.hasSuffix("-window") && run.standardOutput.contains("Kept the sessions: \(kept)"))
        // k=0: the second turn's prompt held no history.
        let shown = try LLMDClient(socketPath: daemon.socketPath).call(.sessionShow, ["session": .string(kept), "prompt": true])
        #expect(shown["settings"]?.objectValue?["k"] == 0)
        #expect(shown["prompt"]?.objectValue?["messages"]?.arrayValue?.count == 1, "\(shown)")
    }

    @Test("a failing turn is reported, the sessions made so far are deleted, and llmctl exits 1")
    func failingTurn() throws {
        // A context window that each message alone fits (window k=0 runs through), and the
        // buffer's second turn does not.
        let daemon = try DaemonProcess(config: "[Model tiny]\nContextWindow=30\n")
        let run = try llmctl([
            "compare-memory", "--socket", daemon.socketPath, "-p", "fake", "-m", "tiny", "--strategies", "window,buffer",
            "--k", "0",
        ])
        #expect(run.status == 1)
        #expect(run.standardError.contains("llmctl: window (k=0): 3 turn(s)"))
        #expect(run.standardError.contains("llmctl: buffer failed at turn 2; deleting the comparison's sessions"), "\(run.standardError)")
        #expect(run.standardError.contains("[context.window_exceeded]"))
        #expect(run.standardOutput.isEmpty)
        #expect(try sessionNames(daemon).isEmpty)
    }

    @Test("unknown or repeated strategies and bad limits are usage errors, before any session is made")
    func usageErrors() throws {
        for (arguments, message) in [
            (["--strategies", "window,fifo"], "unknown memory strategy 'fifo'; strategies: buffer, window, token-buffer, summary, summary-buffer"),
            (["--strategies", "window, window"], "--strategies names 'window' twice"),
            (["--strategies", ","], "--strategies needs at least one of"),
            (["--k", "-1"], "--k needs a whole number"),
            (["--max-tokens", "0"], "--max-tokens needs a positive whole number"),
            (["first", ""], "a turn is empty"),
        ] {
            let run = try llmctl(["compare-memory", "--socket", "/nonexistent/llmd.sock"] + arguments)
            #expect(run.status == 64, "\(arguments)")
            #expect(run.standardError.hasPrefix("llmctl: " + message), "\(run.standardError)")
        }
    }
}
