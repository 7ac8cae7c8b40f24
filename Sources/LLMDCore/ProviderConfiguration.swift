import LLMDProtocol

/// One LLM provider, from a `[Provider NAME]` section of llmd.conf(5).
public struct ProviderConfiguration: NamedSection, Sendable, Equatable {
    public enum Kind: String, Sendable {
        /// An OpenAI-compatible HTTP API: OpenAI, Ollama's `/v1`, llama.cpp's server, vLLM…
        case openai
        /// llmd's offline provider: scripted or derived replies, no network.
        case fake
    }

    /// Whether to ask for a usage chunk at the end of streams.
    public enum StreamUsage: String, Sendable {
        /// Ask, and stop asking after the server rejects `stream_options` with a 400.
        case auto
        case yes
        case no
    }

    public var name: String
    /// `Type=`.
    public var kind: Kind = .openai
    /// `BaseURL=`: up to and including `/v1`.
    public var baseURL = "https://api.openai.com/v1"
    /// `APIKeyEnvironment=`: the variable holding the key.
    public var apiKeyEnvironment: String?
    /// `APIKeyFile=`: a file holding the key, readable by llmd's user only.
    public var apiKeyFile: String?
    /// `DefaultModel=`.
    public var defaultModel: String?
    /// `Header=`, repeatable: extra `Name: value` request headers.
    public var headers: [String] = []
    /// `StreamUsage=`.
    public var streamUsage: StreamUsage = .auto
    /// `MaxTokensParameter=`; nil picks by server (`max_completion_tokens` for api.openai.com).
    public var maximumTokensParameter: String?
    /// `ConnectTimeoutSec=`, `IdleTimeoutSec=`, `TimeoutSec=`.
    public var connectTimeout: Duration = .seconds(10)
    public var idleTimeout: Duration = .seconds(60)
    public var totalTimeout: Duration = .seconds(600)
    /// `MaxConcurrentCalls=`: calls to this provider at once; more wait their turn. 0: no limit.
    public var maximumConcurrentCalls = 0
    /// `MaxRetries=`, `RetryBackoffSec=`, `RetryBackoffMaxSec=`.
    public var maximumRetries = 2
    public var retryBackoff: Duration = .milliseconds(500)
    public var retryBackoffMaximum: Duration = .seconds(8)
    /// `Reply=`, repeatable (fake providers): replies given in turn; none derives a reply
    /// from the input.
    public var fakeReplies: [String] = []
    /// `ReplyFile=` (fake providers): a file of further replies, one per non-empty line,
    /// read with the configuration.
    public var fakeReplyFile: String?
    /// `TokenDelayMSec=` (fake providers): pause between streamed tokens.
    public var fakeTokenDelay: Duration = .milliseconds(20)

    public init(name: String, kind: Kind = .openai) {
        self.name = name
        self.kind = kind
    }

    /// The provider named `fake` that always exists, for demos and tests without a network.
    public static var builtInFake: ProviderConfiguration { ProviderConfiguration(name: "fake", kind: .fake) }

    /// The model of the provider made from `OPENAI_API_KEY`: OpenAI's small current chat
    /// model, so that the first `llmctl send` works with nothing configured.
    public static let environmentDefaultModel = "gpt-4o-mini"

    /// The provider `OPENAI_API_KEY` (and `OPENAI_BASE_URL`) describe, when no configured
    /// provider is named `openai`; its model is ``environmentDefaultModel``.
    public static func fromEnvironment(_ environment: (String) -> String?) -> ProviderConfiguration? {
        guard let key = environment("OPENAI_API_KEY"), !key.isEmpty else { return nil }
        var provider = ProviderConfiguration(name: "openai")
        provider.apiKeyEnvironment = "OPENAI_API_KEY"
        provider.defaultModel = environmentDefaultModel
        if let baseURL = environment("OPENAI_BASE_URL"), baseURL.hasPrefix("http://") || baseURL.hasPrefix("https://") {
            provider.baseURL = String(baseURL.trimmingSuffix("/"))
        }
        return provider
    }
}

/// An API key. Its description is redacted, so interpolating it into a log line or an
/// error message cannot leak it.
public struct APIKey: Sendable, Equatable, CustomStringConvertible, CustomDebugStringConvertible {
    public let secret: String

    public init(_ secret: String) { self.secret = secret }

    public var description: String { "(redacted)" }
    public var debugDescription: String { "(redacted)" }

    /// Why `secret` cannot be a key, or nil: an HTTP header cannot carry control
    /// characters, and a space inside a key is a paste gone wrong. Says where, not what.
    public static func problem(_ secret: String) -> String? {
        for (offset, scalar) in secret.unicodeScalars.enumerated() {
            if scalar.value < 0x20 || scalar.value == 0x7F || (0x80...0x9F).contains(scalar.value) {
                let code = String(scalar.value, radix: 16, uppercase: true)
                return "has a control character (U+\(String(repeating: "0", count: max(0, 4 - code.count)) + code)) at character \(offset + 1)"
            }
            if scalar == " " { return "has a space at character \(offset + 1)" }
        }
        return nil
    }
}

/// A provider ready to call: its settings and its key.
public struct ResolvedProvider: Sendable, Equatable {
    public var configuration: ProviderConfiguration
    public var apiKey: APIKey?

    public init(configuration: ProviderConfiguration, apiKey: APIKey?) {
        self.configuration = configuration
        self.apiKey = apiKey
    }

    public var name: String { configuration.name }
}

extension ProviderConfiguration {
    typealias Key = ConfigurationKey<ProviderConfiguration>

    static let keys: [Key] = [
        Key(name: "Type") { provider, value throws(ConfigValueError) in
            guard let kind = Kind(rawValue: value.isEmpty ? "openai" : value) else {
                throw ConfigValueError("expected openai or fake")
            }
            provider.kind = kind
        },
        Key(name: "BaseURL") { provider, value throws(ConfigValueError) in
            guard value.isEmpty || value.hasPrefix("http://") || value.hasPrefix("https://") else {
                throw ConfigValueError("expected an http:// or https:// URL")
            }
            provider.baseURL = value.isEmpty ? "https://api.openai.com/v1" : String(value.trimmingSuffix("/"))
        },
        Key(name: "APIKey") { _, _ throws(ConfigValueError) in
            throw ConfigValueError(
                "API keys are not accepted inline, where any reader of the file would see them; "
                    + "use APIKeyFile= or APIKeyEnvironment=")
        },
        Key(name: "APIKeyEnvironment") { provider, value throws(ConfigValueError) in
            provider.apiKeyEnvironment = value.isEmpty ? nil : value
        },
        Key(name: "APIKeyFile") { provider, value throws(ConfigValueError) in
            guard value.isEmpty || value.hasPrefix("/") else { throw ConfigValueError("the path must be absolute") }
            provider.apiKeyFile = value.isEmpty ? nil : value
        },
        Key(name: "DefaultModel") { provider, value throws(ConfigValueError) in
            provider.defaultModel = value.isEmpty ? nil : value
        },
        Key(name: "Header") { provider, value throws(ConfigValueError) in
            if value.isEmpty {
                provider.headers = []
                return
            }
            guard let colon = value.firstIndex(of: ":"), colon != value.startIndex else {
                throw ConfigValueError("expected Name: value")
            }
            provider.headers.append(value)
        },
        Key(name: "StreamUsage") { provider, value throws(ConfigValueError) in
            guard let setting = StreamUsage(rawValue: value.isEmpty ? "auto" : value) else {
                throw ConfigValueError("expected auto, yes or no")
            }
            provider.streamUsage = setting
        },
        Key(name: "MaxTokensParameter") { provider, value throws(ConfigValueError) in
            guard ["", "auto", "max_tokens", "max_completion_tokens"].contains(value) else {
                throw ConfigValueError("expected auto, max_tokens or max_completion_tokens")
            }
            provider.maximumTokensParameter = value.isEmpty || value == "auto" ? nil : value
        },
        Key(name: "ConnectTimeoutSec") { provider, value throws(ConfigValueError) in
            provider.connectTimeout = value.isEmpty ? .seconds(10) : try parseTimeSpan(value)
        },
        Key(name: "IdleTimeoutSec") { provider, value throws(ConfigValueError) in
            provider.idleTimeout = value.isEmpty ? .seconds(60) : try parseTimeSpan(value)
        },
        Key(name: "TimeoutSec") { provider, value throws(ConfigValueError) in
            provider.totalTimeout = value.isEmpty ? .seconds(600) : try parseTimeSpan(value)
        },
        Key(name: "MaxRetries") { provider, value throws(ConfigValueError) in
            guard value.isEmpty || (Int(value).map { (0...20).contains($0) } ?? false) else {
                throw ConfigValueError("expected a number from 0 to 20")
            }
            provider.maximumRetries = Int(value) ?? 2
        },
        Key(name: "RetryBackoffSec") { provider, value throws(ConfigValueError) in
            provider.retryBackoff = value.isEmpty ? .milliseconds(500) : try parseTimeSpan(value)
        },
        Key(name: "RetryBackoffMaxSec") { provider, value throws(ConfigValueError) in
            provider.retryBackoffMaximum = value.isEmpty ? .seconds(8) : try parseTimeSpan(value)
        },
        Key(name: "Reply") { provider, value throws(ConfigValueError) in
            if value.isEmpty { provider.fakeReplies = [] } else { provider.fakeReplies.append(value) }
        },
        Key(name: "ReplyFile") { provider, value throws(ConfigValueError) in
            guard value.isEmpty || value.hasPrefix("/") else { throw ConfigValueError("the path must be absolute") }
            provider.fakeReplyFile = value.isEmpty ? nil : value
        },
        Key(name: "MaxConcurrentCalls") { provider, value throws(ConfigValueError) in
            guard value.isEmpty || (Int(value).map { (0...10_000).contains($0) } ?? false) else {
                throw ConfigValueError("expected a number from 0 (no limit) to 10000")
            }
            provider.maximumConcurrentCalls = Int(value) ?? 0
        },
        Key(name: "TokenDelayMSec") { provider, value throws(ConfigValueError) in
            guard value.isEmpty || (Int(value).map { (0...60_000).contains($0) } ?? false) else {
                throw ConfigValueError("expected milliseconds from 0 to 60000")
            }
            provider.fakeTokenDelay = .milliseconds(Int(value) ?? 20)
        },
    ]
}

extension String {
    fileprivate func trimmingSuffix(_ suffix: String) -> Substring {
        var text = Substring(self)
        while text.hasSuffix(suffix) { text = text.dropLast(suffix.count) }
        return text
    }
}
