import LLMDProtocol

/// `[Events]` of llmd.conf(5): the journal, subscriber queues, blocking subscribers.
public struct EventsConfiguration: Sendable, Equatable {
    /// `Journal=`: persist every event (the default) or keep them in memory only.
    public var journal = true
    /// `JournalMaxSize=`: oldest events go while the journal is larger.
    public var journalMaximumBytes: Int64? = 256 << 20
    /// `JournalMaxAgeSec=`: events older than this go.
    public var journalMaximumAge: Duration? = .seconds(30 * 24 * 3600)
    /// `JournalCommitDelaySec=`: how long events gather before one transaction commits
    /// them all; what a crash of the daemon can lose at most.
    public var journalCommitDelay: Duration = .milliseconds(5)
    /// `QueueSize=`: bytes a connection may have waiting before its subscriptions lag.
    public var queueSize = 4 << 20
    /// `StallTimeoutSec=`: a full queue that takes nothing for this long is disconnected.
    public var stallTimeout: Duration = .seconds(30)
    /// `AckTimeoutSec=`: how long a run waits for a blocking subscriber.
    public var ackTimeout: Duration = .seconds(5)
    /// `TokenBatchSec=`: in a stream faster than one read per this long, how long a token
    /// may wait to be read and sent with the tokens after it; zero reads and sends each
    /// as it comes.
    public var tokenBatch: Duration = Self.defaultTokenBatch
    /// Half of the 1 ms from a token's arrival to its subscribers that llmd aims for; a
    /// stream this fast shows a person 2,000 tokens a second either way.
    public static let defaultTokenBatch = Duration.microseconds(500)

    public init() {}

    static let keys: [ConfigurationKey<EventsConfiguration>] = [
        .init(name: "Journal") { config, value throws(ConfigValueError) in
            config.journal = value.isEmpty ? true : try parseBoolean(value)
        },
        .init(name: "JournalMaxSize") { config, value throws(ConfigValueError) in
            config.journalMaximumBytes = value.isEmpty ? 256 << 20 : try parseLimit(value, parseByteSize).map(Int64.init)
        },
        .init(name: "JournalMaxAgeSec") { config, value throws(ConfigValueError) in
            config.journalMaximumAge = value.isEmpty ? .seconds(30 * 24 * 3600) : try parseLimit(value, parseTimeSpan)
        },
        .init(name: "JournalCommitDelaySec") { config, value throws(ConfigValueError) in
            config.journalCommitDelay = try boundedTimeSpan(
                value, key: "JournalCommitDelaySec", default: .milliseconds(5), atMost: .seconds(1), written: "1s")
        },
        .init(name: "QueueSize") { config, value throws(ConfigValueError) in
            let size = value.isEmpty ? 4 << 20 : try parseByteSize(value)
            guard size >= 64 << 10 else { throw ConfigValueError("QueueSize= must be at least 64K") }
            config.queueSize = size
        },
        .init(name: "StallTimeoutSec") { config, value throws(ConfigValueError) in
            config.stallTimeout = value.isEmpty ? .seconds(30) : try parseTimeSpan(value)
        },
        .init(name: "AckTimeoutSec") { config, value throws(ConfigValueError) in
            config.ackTimeout = value.isEmpty ? .seconds(5) : try parseTimeSpan(value)
        },
        .init(name: "TokenBatchSec") { config, value throws(ConfigValueError) in
            config.tokenBatch = try boundedTimeSpan(
                value, key: "TokenBatchSec", default: defaultTokenBatch, atMost: .milliseconds(10), written: "10ms")
        },
    ]

    /// A time span up to `maximum` (`written` so in the error), or `fallback` when empty.
    private static func boundedTimeSpan(
        _ value: String, key: String, default fallback: Duration, atMost maximum: Duration, written: String
    ) throws(ConfigValueError) -> Duration {
        let span = value.isEmpty ? fallback : try parseTimeSpan(value)
        guard span <= maximum else { throw ConfigValueError("\(key)= must be at most \(written)") }
        return span
    }
}

/// A daemon-wide callback handler, from a `[Handler NAME]` section.
public struct HandlerConfiguration: NamedSection, Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        /// LangChain's `StdOutCallbackHandler`: `> Entering new … chain...` on standard output.
        case stdout
        /// LangChain's `FileCallbackHandler`: the same text, or NDJSON, appended to `Path=`.
        case file
        /// One journal entry per event, with structured fields.
        case journald
    }

    public enum Format: String, Sendable, CaseIterable {
        case text
        case ndjson
    }

    public var name: String
    /// `Type=`.
    public var kind: Kind = .stdout
    /// `Path=`, for files.
    public var path: String?
    /// `Format=`, for files.
    public var format: Format = .text
    /// `Events=`: the types handled; nil for all but `llm_new_token`, which would flood a
    /// log (NDJSON files get every type).
    public var events: Set<EventType>?

    public init(name: String, kind: Kind = .stdout) {
        self.name = name
        self.kind = kind
    }

    /// The event types this handler gets.
    public var handledTypes: Set<EventType> {
        if let events { return events }
        let all = Set(EventType.allCases)
        return kind == .file && format == .ndjson ? all : all.subtracting([.llmNewToken])
    }

    static let keys: [ConfigurationKey<HandlerConfiguration>] = [
        .init(name: "Type") { config, value throws(ConfigValueError) in
            guard let kind = Kind(rawValue: value) else {
                throw ConfigValueError("expected one of \(Kind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            config.kind = kind
        },
        .init(name: "Path") { config, value throws(ConfigValueError) in
            guard value.isEmpty || value.hasPrefix("/") else { throw ConfigValueError("the path must be absolute") }
            config.path = value.isEmpty ? nil : value
        },
        .init(name: "Format") { config, value throws(ConfigValueError) in
            guard let format = Format(rawValue: value.isEmpty ? "text" : value) else {
                throw ConfigValueError("expected text or ndjson")
            }
            config.format = format
        },
        .init(name: "Events") { config, value throws(ConfigValueError) in
            let names = value.split(whereSeparator: { $0 == " " || $0 == "," }).map(String.init)
            guard !names.isEmpty else {
                config.events = nil
                return
            }
            var types = Set<EventType>()
            for name in names {
                guard let type = EventType(rawValue: name) else { throw ConfigValueError("unknown event type '\(name)'") }
                types.insert(type)
            }
            config.events = types
        },
    ]
}

/// A `[KIND NAME]` section's settings: one value per NAME.
protocol NamedSection {
    var name: String { get }
}

/// One key of a section: its name and how its text becomes a setting.
struct ConfigurationKey<Settings>: Sendable {
    var name: String
    var apply: @Sendable (inout Settings, String) throws(ConfigValueError) -> Void
}

/// `yes`/`no` and the other spellings systemd accepts.
func parseBoolean(_ text: String) throws(ConfigValueError) -> Bool {
    switch text.lowercased() {
    case "yes", "true", "on", "1": return true
    case "no", "false", "off", "0": return false
    default: throw ConfigValueError("expected yes or no")
    }
}

/// A limit that `infinity` turns off.
func parseLimit<Value>(_ text: String, _ parse: (String) throws(ConfigValueError) -> Value) throws(ConfigValueError) -> Value? {
    text == "infinity" ? nil : try parse(text)
}
