import LLMDCore
import LLMDOpenAI

/// A kind of model server: how a call reaches it, which models it offers, whether it
/// costs anything. The offline provider is one as an OpenAI-compatible API is, so callers
/// ask a provider's server rather than check which kind it is.
public protocol ModelServer: Sendable {
    /// The model a call uses when it names none and the provider sets no `DefaultModel=`.
    var builtInModel: String? { get }
    /// Whether its calls cost nothing, whatever the price table says.
    var isFree: Bool { get }
    /// Whether its calls stay on this machine: a run's `chat_model_start` says so.
    var isOffline: Bool { get }
    /// One call, once the provider's concurrency limit let it start.
    func call(_ call: ModelCall, client: UpstreamClient) async throws(CallFailure) -> CallResult
    /// The models it offers.
    func listModels(provider: ResolvedProvider, client: UpstreamClient, timeout: Duration) async throws(UpstreamError) -> [String]
}

/// What one call asks of a model server.
public struct ModelCall: Sendable {
    public var model: String
    public var input: ModelInput
    public var options: GenerationOptions
    public var stream: Bool
    public var provider: ResolvedProvider
    public var observer: CallObserver
}

/// An OpenAI-compatible HTTP API: OpenAI, Ollama's `/v1`, llama.cpp's server, vLLM…
struct OpenAICompatibleServer: ModelServer {
    var builtInModel: String? { nil }
    var isFree: Bool { false }
    var isOffline: Bool { false }

    func call(_ call: ModelCall, client: UpstreamClient) async throws(CallFailure) -> CallResult {
        try await client.callOpenAICompatible(call)
    }

    func listModels(provider: ResolvedProvider, client: UpstreamClient, timeout: Duration) async throws(UpstreamError) -> [String] {
        try await client.listOpenAICompatibleModels(provider: provider, timeout: timeout)
    }
}

extension ResolvedProvider {
    /// The server its `Type=` names.
    public var server: any ModelServer {
        switch configuration.kind {
        case .openai: OpenAICompatibleServer()
        case .fake: OfflineModelServer()
        }
    }
}
