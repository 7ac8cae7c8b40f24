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
        everything the journal retains. Output (-o): short, one readable line per event, a
        run's tokens flowing as text and child runs indented, the default on a terminal;
        json, each event one line as the daemon sent it, the default otherwise and with
        --json; json-pretty, each event indented; cat, the text of the tokens alone, so
        'llmctl events -f -o cat' shows replies as they stream. Colour is used on a terminal
        unless NO_COLOR is set and non-empty or TERM is dumb. With --follow, llmctl survives
        a daemon restart: it reconnects and resumes after the last event it printed.
        """,
    options: clientOptions + [
        .value("-s", "--session", valueName: "name", help: "Only this session's events (repeatable).", liveValues: "sessions"),
        .value(
            "-t", "--type", valueName: "type", help: "Only events of this type, e.g. llm_end (repeatable).",
            choices: EventType.allCases.map(\.rawValue)),
        .value("--tag", valueName: "tag", help: "Only events carrying this tag (repeatable: any of them)."),
        .value("--run", valueName: "id", help: "Only this run and its child runs (one run tree)."),
        .value(
            "--since", valueName: "seq|time",
            help: "Start after this seq, or at this time: 2026-11-21T10:00:00Z, '2026-11-21 10:00', -10min, -2h."),
        .value("--until", valueName: "seq|time", help: "Stop at this seq or time (as for --since)."),
        .value("-n", "--lines", valueName: "count", help: "Only the last COUNT events the journal holds (then live ones with -f)."),
        .value(
            "-g", "--grep", valueName: "pattern",
            help: "Only events whose text matches this regular expression (case-insensitive when all lowercase)."),
        .value("-o", "--output", valueName: "format", help: "short, json, json-pretty or cat.", choices: EventOutput.allCases.map(\.rawValue)),
        .flag("-f", "--follow", help: "Keep printing live events; reconnect when the daemon restarts."),
    ])

/// How `llmctl events` prints each event.
enum EventOutput: String, CaseIterable {
    case short
    case json
    case jsonPretty = "json-pretty"
    case cat
}

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
        let until = parsed.value("--until").map { text -> EventCursor in
            guard let cursor = EventCursor.parse(text) else { usageFailure("--until needs \(EventCursor.expected)") }
            return cursor
        }
        let lines = parsed.value("--lines").map { text -> Int in
            guard let count = Int(text), count >= 0 else { usageFailure("-n needs a whole number, got '\(text)'") }
            return count
        }
        var grep: EventGrep?
        if let pattern = parsed.value("--grep") {
            do {
                grep = try EventGrep(pattern)
            } catch {
                usageFailure("--grep '\(pattern)' is not a regular expression: \(error)")
            }
        }
        if let since = sinceCursor(parsed) {
            params.start(after: since)
        } else if !follow || lines != nil {
            // -n looks back through the journal; without -f so does a plain `events`.
            params.since = 0
        }
        let terminal = isatty(STDOUT_FILENO) == 1
        let output = parsed.value("--output").flatMap(EventOutput.init) ?? (parsed.flag("--json") || !terminal ? .json : .short)
        var printer = EventPrinter(output: output, color: Terminal.colorEnabled(isTerminal: terminal))
        // With -n, replayed events wait here until the replay ends: only the last ones print.
        var held = lines.map { EventTail(limit: $0) }
        try subscribe(params, socket: parsed.value("--socket"), follow: follow, onWentAway: { printer.finishLine() }) {
            message throws(ClientError) in
            switch message {
            case .event(let event):
                if let until, until.precedes(event) {
                    // Past --until: nothing later is wanted, live or replayed.
                    held?.events.forEach { printer.print($0) }
                    printer.finishLine()
                    return false
                }
                guard grep?.matches(event) ?? true else { return true }
                if held != nil { held?.append(event) } else { printer.print(event) }
                return true
            case .ready:
                held?.events.forEach { printer.print($0) }
                held = nil
                printer.finishLine()
                return follow
            }
        }
    }

    /// `--since`, read; a value that is neither a seq nor a time is a usage error.
    static func sinceCursor(_ parsed: ParsedCommandLine) -> EventCursor? {
        parsed.value("--since").map { text in
            guard let cursor = EventCursor.parse(text) else { usageFailure("--since needs \(EventCursor.expected)") }
            return cursor
        }
    }

    /// Subscribes with `params` and hands `onMessage` each message until it returns false,
    /// saying on standard error where the events begin and, with `follow`, when live ones
    /// follow.
    ///
    /// With `follow`, outlives a daemon restart: when the connection closes, it says so,
    /// connects again as soon as the daemon answers (``Reconnection``), and subscribes again
    /// after the last event it handed on; every other failure is thrown, as is no daemon at
    /// the start.
    ///
    /// - Parameters:
    ///   - onWentAway: the daemon has gone, before the notice says so.
    ///   - onSubscribed: each subscription made, with the client it was made on.
    static func subscribe(
        _ params: SubscribeMethod.Params, socket: String?, follow: Bool,
        onSubscribed: (LLMDClient, SubscribeMethod.Result) -> Void = { _, _ in },
        onWentAway: () -> Void = {},
        onMessage: (SubscriptionMessage) throws(ClientError) -> Bool
    ) throws(ClientError) {
        var params = params
        var lastSeq: UInt64?
        var reconnected = false
        var client = try LLMDClient(socketPath: socket)
        while true {
            do {
                if let lastSeq {
                    params.since = lastSeq
                    params.sinceTime = nil
                }
                try client.subscribe(params) { reply in
                    let (cursor, oldest) = (reply.cursor, reply.oldestSeq)
                    var note = reconnected ? "-- reconnected; resuming after seq \(cursor)" : "-- events after seq \(cursor)"
                    if let oldest, cursor + 1 < oldest { note += " (journal begins at seq \(oldest))" }
                    printError(note + " --")
                    onSubscribed(client, reply)
                } onMessage: { message throws(ClientError) in
                    switch message {
                    case .event(let event): lastSeq = event.seq
                    case .ready(let seq): lastSeq = max(lastSeq ?? 0, seq)
                    }
                    guard try onMessage(message) else { return false }
                    if case .ready = message, follow { printError("-- live --") }
                    return true
                }
                return
            } catch {
                guard case .connectionClosed = error, follow else { throw error }
            }
            onWentAway()
            printError("-- daemon went away; waiting for it to come back --")
            reconnected = true
            client = try Reconnection.client(socket: socket, bound: nil)
        }
    }
}

/// The last `limit` events of a replay, for `-n`.
struct EventTail {
    let limit: Int
    private(set) var events: [CallbackEvent] = []

    init(limit: Int) { self.limit = limit }

    mutating func append(_ event: CallbackEvent) {
        guard limit > 0 else { return }
        if events.count == limit { events.removeFirst() }
        events.append(event)
    }
}

/// `--grep`: a regular expression over an event's text (its token, text, reply, error
/// message, name…), case-insensitive when the pattern has no capitals, as journalctl's.
struct EventGrep {
    let regex: Regex<AnyRegexOutput>

    init(_ pattern: String) throws {
        let regex = try Regex(pattern)
        self.regex = pattern.contains(where: \.isUppercase) ? regex : regex.ignoresCase()
    }

    func matches(_ event: CallbackEvent) -> Bool {
        var encoded: [UInt8] = []
        event.data.encode(into: &encoded)
        return [event.name, event.session ?? "", EventPrinter.details(event), String(decoding: encoded, as: UTF8.self)]
            .contains { $0.contains(regex) }
    }
}

/// Whether to colour output, as no-color.org and terminals agree: only on a terminal,
/// not when `NO_COLOR` is set and non-empty, not when `TERM` is `dumb`.
enum Terminal {
    static func colorEnabled(isTerminal: Bool) -> Bool {
        guard isTerminal else { return false }
        if let value = getenv("NO_COLOR"), value.pointee != 0 { return false }
        if let term = getenv("TERM"), String(cString: term) == "dumb" { return false }
        return true
    }
}

/// Where `--since` starts (or `--until` stops): a seq, or a time in microseconds since the epoch.
enum EventCursor: Equatable {
    case seq(UInt64)
    case time(Int64)

    /// What a cursor may be, for a usage error.
    static let expected = "a seq or a time such as 2026-11-21T10:00:00Z, '2026-11-21 10:00' or -10min"

    /// Whether `event` comes after this point, so `--until` stops before it.
    func precedes(_ event: CallbackEvent) -> Bool {
        switch self {
        case .seq(let seq): event.seq > seq
        case .time(let time): event.time > time
        }
    }

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

extension SubscribeMethod.Params {
    /// Replays from `cursor` first: the events after a seq, or from a time on.
    mutating func start(after cursor: EventCursor) {
        switch cursor {
        case .seq(let seq): since = seq
        case .time(let microseconds): sinceTime = microseconds
        }
    }
}

extension CallbackEvent {
    /// The event as one line of JSON, as the daemon sends it but without `request` and
    /// `subscription`: what `events -o json` prints and a hook of `on` reads.
    var jsonLine: String {
        var line: [UInt8] = []
        encodeBody(into: &line)
        CallbackEvent.completeLine(&line, request: nil, subscription: nil)
        return String(decoding: line, as: UTF8.self)
    }
}

/// Prints events as `-o` asks: NDJSON as the daemon sent them, indented JSON, the text
/// of the tokens alone, or (short) a readable run tree in which a run's tokens flow as text.
struct EventPrinter {
    let output: EventOutput
    let color: Bool
    /// Depth of each run seen, for indenting child runs.
    private var depths: [String: Int] = [:]
    /// Tokens are being printed on the current line.
    private var inTokens = false

    init(output: EventOutput, color: Bool) {
        self.output = output
        self.color = color
    }

    mutating func print(_ event: CallbackEvent) {
        switch output {
        case .json:
            writeOut(event.jsonLine)
        case .jsonPretty:
            let value = (try? JSONParser.parse(event.jsonLine)) ?? .null
            writeOut(value.prettyPrinted + "\n")
        case .cat:
            if event.type == .llmNewToken {
                writeOut(event.data["token"]?.stringValue ?? "")
                inTokens = true
            } else if event.type == .llmEnd || event.type == .llmError {
                finishLine()
            }
        case .short:
            printShort(event)
        }
    }

    private mutating func printShort(_ event: CallbackEvent) {
        let depth = event.parentRunID.flatMap { depths[$0].map { $0 + 1 } } ?? 0
        if !event.runID.isEmpty, depths[event.runID] == nil { depths[event.runID] = depth }
        if event.type == .llmNewToken {
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
        let isError = event.name.hasSuffix("_error") || event.type == .budgetExceeded || event.type == .journalGap
        let name = paint(event.name, isError ? "1;31" : "1")
        var line = "\(indent)\(seq) \(time) \(name)"
        if let external = event.data["external"]?.objectValue {
            // A run another program reported (run.event): what reported it, and its pid.
            let source = external["source"]?.stringValue ?? "external"
            line += " " + paint("via \(source)[\(external["pid"]?.intValue.map(String.init) ?? "?")]", "35")
        }
        if let session = event.session { line += " [\(session)]" }
        let details = Self.details(event)
        if !details.isEmpty { line += " " + details }
        if event.type == .chainStart { line += paint(" run=\(event.runID.prefix(8))", "2") }
        writeOut(line + "\n")
        if event.type == .chainEnd || event.type == .chainError { depths[event.runID] = nil }
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

    /// `text` on one line, cut at `limit` characters with how many more there were.
    static func elided(_ text: String, limit: Int = 80) -> String {
        let flat = String(text.map { $0 == "\n" || $0 == "\r" ? " " : $0 })
        guard flat.count > limit else { return flat }
        return String(flat.prefix(limit)) + "… (+\(flat.count - limit) chars)"
    }

    /// The few fields that say what happened: one line, whatever the event's size.
    static func details(_ event: CallbackEvent) -> String {
        let data = event.data
        let string = { (key: String) in data[key]?.stringValue }
        let int = { (key: String) in data[key]?.intValue ?? 0 }
        var parts: [String] = []
        guard let type = event.type else {
            // A type newer than this llmctl: its data, kept to one line.
            var encoded: [UInt8] = []
            data.encode(into: &encoded)
            return data.isEmpty ? "" : elided(String(decoding: encoded, as: UTF8.self), limit: 120)
        }
        switch type {
        case .chainStart:
            parts.append(string("name") ?? "")
            if let input = data["inputs"]?.objectValue?["input"]?.stringValue { parts.append("input=\"\(elided(input, limit: 60))\"") }
        case .chainEnd:
            let outputs = data["outputs"]?.objectValue ?? [:]
            if let text = outputs["response"]?.stringValue ?? outputs["text"]?.stringValue {
                parts.append("\"\(elided(text, limit: 60))\"")
            }
        case .chatModelStart, .llmStart:
            if let model = string("model") { parts.append("model=\(model)") }
            if let provider = string("provider") { parts.append("provider=\(provider)") }
            if let messages = data["messages"]?.arrayValue { parts.append("(\(messages.count) messages)") }
            if data["offline"] == true { parts.append("offline") }
        case .llmNewToken:
            parts.append(elided(string("token") ?? ""))
        case .llmEnd:
            if let reason = string("finish_reason") { parts.append("finish=\(reason)") }
            if let usage = data["usage"]?.objectValue {
                let prompt = usage["prompt_tokens"]?.intValue.map(String.init) ?? "?"
                let completion = usage["completion_tokens"]?.intValue.map(String.init) ?? "?"
                parts.append("tokens=\(prompt)+\(completion) (\(usage["source"]?.stringValue ?? "unknown"))")
            }
            if let ttft = data["ttft_ms"]?.intValue { parts.append("ttft=\(ttft)ms") }
        case .llmError, .chainError:
            let error = data["error"]?.objectValue
            parts.append("\(error?["code"]?.stringValue ?? "error"): \(elided(error?["message"]?.stringValue ?? "", limit: 120))")
            if let partial = string("partial_text"), !partial.isEmpty { parts.append("partial=\(partial.count) chars") }
        case .retry:
            let code = data["error"]?.objectValue?["code"]?.stringValue ?? "error"
            parts.append("attempt=\(int("attempt")) delay=\(int("delay_ms"))ms after \(code)")
        case .text:
            if let title = string("title") { parts.append("\(title):") }
            parts.append(elided(string("text") ?? ""))
        case .custom:
            parts.append(string("name") ?? "")
            if let value = data["data"] {
                var encoded: [UInt8] = []
                value.encode(into: &encoded)
                parts.append(elided(String(decoding: encoded, as: UTF8.self), limit: 60))
            }
        case .sessionCreated:
            let settings = data["settings"]?.objectValue ?? [:]
            parts.append("memory=\(settings["memory"]?.stringValue ?? "buffer")")
            if let model = settings["model"]?.stringValue { parts.append("model=\(model)") }
        case .sessionUpdated:
            let changed = data["changed"]?.arrayValue?.compactMap(\.stringValue) ?? []
            let settings = data["settings"]?.objectValue ?? [:]
            parts.append(changed.map { name in "\(name)=" + (settings[name].map { $0.stringValue ?? $0.encodedString } ?? "default") }.joined(separator: " "))
        case .sessionRenamed:
            parts.append("\(string("from") ?? "?") → \(string("to") ?? "?")")
        case .sessionDeleted:
            parts.append("turns=\(int("turns"))")
        case .memoryUpdated:
            parts.append("\(string("strategy") ?? "?") kept=\(int("kept_messages")) dropped=\(int("dropped"))")
            if int("summarized") > 0 { parts.append("summarized=\(int("summarized"))") }
            parts.append("history=\(int("history_tokens")) tokens")
            if data["summary_error"] != nil { parts.append("(summary failed)") }
        case .usageRecorded:
            parts.append("\(string("model") ?? "?") tokens=\(int("prompt_tokens"))+\(int("completion_tokens"))")
            parts.append("(\(string("source") ?? "?"))")
            parts.append("cost=" + (data["cost"]?.doubleValue.map(LLMCtl.formatUSD) ?? "unknown"))
        case .budgetExceeded:
            let budget = string("session") ?? string("scope") ?? string("day") ?? ""
            parts.append("\(string("kind") ?? "?") \(budget) reason=\(string("reason") ?? "?")")
        case .lagged:
            parts.append("missed=\(int("missed")) resume_from=\(int("resume_from"))")
        case .ackTimeout:
            parts.append("subscription=\(int("subscription")) seq=\(int("seq")) waited=\(int("timeout_ms"))ms")
        case .journalGap:
            parts.append("count=\(int("count")) seqs \(int("first_seq"))–\(int("last_seq"))")
        }
        return parts.filter { !$0.isEmpty }.joined(separator: " ")
    }
}

extension JSONValue {
    /// Indented by two spaces, members in the order they came, as `jq .` shows it.
    var prettyPrinted: String { pretty(indent: "") }

    private func pretty(indent: String) -> String {
        let inner = indent + "  "
        switch self {
        case .array(let values) where !values.isEmpty:
            return "[\n" + values.map { inner + $0.pretty(indent: inner) }.joined(separator: ",\n") + "\n" + indent + "]"
        case .object(let object) where !object.isEmpty:
            let members = object.map { inner + JSONValue.string($0.key).encodedString + ": " + $0.value.pretty(indent: inner) }
            return "{\n" + members.joined(separator: ",\n") + "\n" + indent + "}"
        default:
            return encodedString
        }
    }
}
