import LLMDClient
import LLMDCommandLine
import LLMDProtocol

#if canImport(Glibc)
import Glibc
#endif

let eventsCommand = Command(
    "events", abstract: "Print callback events: replayed from the journal, then live with --follow.",
    discussion: """
        Without --since, --follow shows live events only and a plain 'llmctl events' replays
        everything the journal retains. On a terminal, tokens of a run flow as text and child
        runs are indented; with --json, or when the output is not a terminal, each event is
        one JSON line as the daemon sent it. With --follow, llmctl survives a daemon restart:
        it reconnects and resumes after the last event it printed.
        """,
    options: clientOptions + [
        .value("-s", "--session", valueName: "name", help: "Only this session's events (repeatable)."),
        .value("-t", "--type", valueName: "type", help: "Only events of this type, e.g. llm_end (repeatable)."),
        .value("--tag", valueName: "tag", help: "Only events carrying this tag (repeatable: any of them)."),
        .value("--run", valueName: "id", help: "Only this run and its child runs."),
        .value(
            "--since", valueName: "seq|time",
            help: "Start after this seq, or at this time: 2026-11-21T10:00:00Z, '2026-11-21 10:00', -10min, -2h."),
        .flag("-f", "--follow", help: "Keep printing live events; reconnect when the daemon restarts."),
    ])

extension LLMCtl {
    static func events(_ parsed: ParsedCommandLine) throws(ClientError) {
        // An option not given leaves its condition out, as an empty list would match nothing.
        let values = { (option: String) -> [String]? in
            let given = parsed.allValues(option)
            return given.isEmpty ? nil : given
        }
        var params = SubscribeMethod.Params(
            sessions: values("--session"), types: values("--type"), tags: values("--tag"), runID: parsed.value("--run"))
        let follow = parsed.flag("--follow")
        switch parsed.value("--since").map({ EventCursor.parse($0) }) {
        case .seq(let seq)??: params.since = seq
        case .time(let microseconds)??: params.sinceTime = microseconds
        case nil?:
            printError("llmctl: --since needs a seq or a time such as 2026-11-21T10:00:00Z, '2026-11-21 10:00' or -10min")
            exit(64)
        case nil:
            if !follow { params.since = 0 }
        }
        let pretty = !parsed.flag("--json") && isatty(STDOUT_FILENO) == 1
        var printer = EventPrinter(pretty: pretty, color: pretty && getenv("NO_COLOR") == nil)
        var lastSeq: UInt64?
        var reconnecting = false
        while true {
            do {
                let client = try LLMDClient(socketPath: parsed.value("--socket"))
                if let lastSeq {
                    params.since = lastSeq
                    params.sinceTime = nil
                }
                try client.subscribe(params) { reply in
                    let (cursor, oldest) = (reply.cursor, reply.oldestSeq)
                    var note = reconnecting ? "-- reconnected; resuming after seq \(cursor)" : "-- events after seq \(cursor)"
                    if let oldest, cursor + 1 < oldest { note += " (journal begins at seq \(oldest))" }
                    printError(note + " --")
                } onMessage: { message throws(ClientError) in
                    switch message {
                    case .event(let event):
                        lastSeq = event.seq
                        printer.print(event)
                        return true
                    case .ready(let seq):
                        lastSeq = max(lastSeq ?? 0, seq)
                        printer.finishLine()
                        if follow { printError("-- live --") }
                        return follow
                    }
                }
                return
            } catch {
                switch error {
                case .connectionClosed where follow, .daemonNotRunning where follow && reconnecting: break
                default: throw error
                }
            }
            printer.finishLine()
            if !reconnecting { printError("-- daemon went away; waiting for it to come back --") }
            reconnecting = true
            usleep(500_000)
        }
    }
}

/// Where `--since` starts: a seq, or a time in microseconds since the epoch.
enum EventCursor: Equatable {
    case seq(UInt64)
    case time(Int64)

    /// A seq (`1042`), a relative time (`-10min`, `-2h`, `-30s`, `-1d`), or an absolute
    /// one: `2026-11-21T10:00:00Z` (UTC) or `2026-11-21 10:00[:00]` (local time).
    static func parse(_ text: String, now: Int64 = Timestamp.nowMicroseconds()) -> EventCursor? {
        if let seq = UInt64(text) { return .seq(seq) }
        if text.hasPrefix("-") {
            let units: [(String, Int64)] = [("min", 60), ("s", 1), ("h", 3600), ("d", 86400)]
            for (suffix, seconds) in units where text.hasSuffix(suffix) {
                guard let count = Int64(text.dropFirst().dropLast(suffix.count)), count >= 0 else { return nil }
                return .time(now - count * seconds * 1_000_000)
            }
            return nil
        }
        let utc = text.hasSuffix("Z")
        let digits = text.split(whereSeparator: { "-T :Z".contains($0) }).map { Int32($0) }
        guard (5...6).contains(digits.count), digits.allSatisfy({ $0 != nil }) else { return nil }
        var parts = tm()
        parts.tm_year = digits[0]! - 1900
        parts.tm_mon = digits[1]! - 1
        parts.tm_mday = digits[2]!
        parts.tm_hour = digits[3]!
        parts.tm_min = digits[4]!
        parts.tm_sec = digits.count == 6 ? digits[5]! : 0
        parts.tm_isdst = -1
        let seconds = utc ? timegm(&parts) : mktime(&parts)
        guard seconds != -1 else { return nil }
        return .time(Int64(seconds) * 1_000_000)
    }
}

/// Prints events: NDJSON as the daemon sent them, or, on a terminal, a readable run tree
/// in which a run's tokens flow as text.
struct EventPrinter {
    let pretty: Bool
    let color: Bool
    /// Depth of each run seen, for indenting child runs.
    private var depths: [String: Int] = [:]
    /// Tokens are being printed on the current line.
    private var inTokens = false

    init(pretty: Bool, color: Bool) {
        self.pretty = pretty
        self.color = color
    }

    mutating func print(_ event: CallbackEvent) {
        guard pretty else {
            var line: [UInt8] = []
            event.encodeBody(into: &line)
            CallbackEvent.completeLine(&line, request: nil, subscription: nil)
            writeOut(String(decoding: line, as: UTF8.self))
            return
        }
        let depth = event.parentRunID.flatMap { depths[$0].map { $0 + 1 } } ?? 0
        if !event.runID.isEmpty, depths[event.runID] == nil { depths[event.runID] = depth }
        if event.name == EventType.llmNewToken.rawValue {
            if !inTokens {
                writeOut(String(repeating: "  ", count: depth + 1))
                inTokens = true
            }
            writeOut(event.data["token"]?.stringValue ?? "")
            return
        }
        finishLine()
        let indent = String(repeating: "  ", count: depth)
        let seq = paint("#\(event.seq)", "2")
        let time = paint(Self.clock(event.time), "2")
        let isError = event.name.hasSuffix("_error") || event.name == EventType.budgetExceeded.rawValue
        let name = paint(event.name, isError ? "1;31" : "1")
        var line = "\(indent)\(seq) \(time) \(name)"
        if let session = event.session { line += " [\(session)]" }
        let details = Self.details(event)
        if !details.isEmpty { line += " " + details }
        if event.name == EventType.chainStart.rawValue { line += paint(" run=\(event.runID.prefix(8))", "2") }
        writeOut(line + "\n")
        if event.name == EventType.chainEnd.rawValue || event.name == EventType.chainError.rawValue {
            depths[event.runID] = nil
        }
    }

    /// Ends a line of tokens.
    mutating func finishLine() {
        if inTokens { writeOut("\n") }
        inTokens = false
    }

    private func paint(_ text: String, _ code: String) -> String {
        color ? "\u{1B}[\(code)m\(text)\u{1B}[0m" : text
    }

    /// `HH:MM:SS.mmm` in local time.
    static func clock(_ microseconds: Int64) -> String {
        var seconds = time_t(microseconds / 1_000_000)
        var parts = tm()
        localtime_r(&seconds, &parts)
        let pad = Timestamp.zeroPadded
        return "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(microseconds / 1000 % 1000), 3))"
    }

    /// The few fields that say what happened, per event type.
    static func details(_ event: CallbackEvent) -> String {
        let data = event.data
        var parts: [String] = []
        switch event.type {
        case .chainStart:
            parts.append(data["name"]?.stringValue ?? "")
        case .chatModelStart, .llmStart:
            if let model = data["model"]?.stringValue { parts.append("model=\(model)") }
            if let provider = data["provider"]?.stringValue { parts.append("provider=\(provider)") }
            if let messages = data["messages"]?.arrayValue { parts.append("(\(messages.count) messages)") }
        case .llmEnd:
            if let reason = data["finish_reason"]?.stringValue { parts.append("finish=\(reason)") }
            if let usage = data["usage"]?.objectValue {
                let prompt = usage["prompt_tokens"]?.intValue.map(String.init) ?? "?"
                let completion = usage["completion_tokens"]?.intValue.map(String.init) ?? "?"
                parts.append("tokens=\(prompt)+\(completion) (\(usage["source"]?.stringValue ?? "unknown"))")
            }
            if let ttft = data["ttft_ms"]?.intValue { parts.append("ttft=\(ttft)ms") }
        case .llmError, .chainError:
            let error = data["error"]?.objectValue
            parts.append("\(error?["code"]?.stringValue ?? "error"): \(error?["message"]?.stringValue ?? "")")
        case .retry:
            parts.append("attempt=\(data["attempt"]?.intValue ?? 0) delay=\(data["delay_ms"]?.intValue ?? 0)ms")
        case .text:
            parts.append(data["text"]?.stringValue ?? "")
        case .custom:
            parts.append(data["name"]?.stringValue ?? "")
        case .usageRecorded:
            parts.append("\(data["model"]?.stringValue ?? "?") tokens=\(data["prompt_tokens"]?.intValue ?? 0)+\(data["completion_tokens"]?.intValue ?? 0)")
            parts.append("(\(data["source"]?.stringValue ?? "?"))")
            parts.append("cost=" + (data["cost"]?.doubleValue.map(LLMCtl.formatUSD) ?? "unknown"))
        case .budgetExceeded:
            let budget = data["session"]?.stringValue ?? data["scope"]?.stringValue ?? data["day"]?.stringValue ?? ""
            parts.append("\(data["kind"]?.stringValue ?? "?") \(budget) reason=\(data["reason"]?.stringValue ?? "?")")
        case .lagged:
            parts.append("missed=\(data["missed"]?.intValue ?? 0) resume_from=\(data["resume_from"]?.intValue ?? 0)")
        default:
            var encoded: [UInt8] = []
            data.encode(into: &encoded)
            if !data.isEmpty { parts.append(String(decoding: encoded, as: UTF8.self)) }
        }
        return parts.filter { !$0.isEmpty }.joined(separator: " ")
    }
}
