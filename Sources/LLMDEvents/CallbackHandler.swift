import LLMDProtocol

/// Receives a run's callback events in-process, one method per event type, as LangChain's
/// `BaseCallbackHandler`. Every method has a default that does nothing.
///
/// Methods run on the thread that emits the event — for tokens, the HTTP engine's — so
/// they must be quick. A handler that throws is logged and the run goes on, unless
/// ``raisesErrors`` is true (LangChain's `raise_error`): then the run fails with the error.
public protocol CallbackHandler: Sendable {
    var raisesErrors: Bool { get }
    /// Every event comes through here; the default calls the method for its type.
    func handle(_ event: CallbackEvent) throws
    func onChainStart(_ event: CallbackEvent) throws
    func onChainEnd(_ event: CallbackEvent) throws
    func onChainError(_ event: CallbackEvent) throws
    func onChatModelStart(_ event: CallbackEvent) throws
    func onLLMStart(_ event: CallbackEvent) throws
    func onLLMNewToken(_ event: CallbackEvent) throws
    func onLLMEnd(_ event: CallbackEvent) throws
    func onLLMError(_ event: CallbackEvent) throws
    func onRetry(_ event: CallbackEvent) throws
    func onText(_ event: CallbackEvent) throws
    func onCustomEvent(_ event: CallbackEvent) throws
    /// llmd's own events (sessions, memory, usage, budgets, subscribers).
    func onDaemonEvent(_ event: CallbackEvent) throws
}

extension CallbackHandler {
    public var raisesErrors: Bool { false }
    public func onChainStart(_ event: CallbackEvent) throws {}
    public func onChainEnd(_ event: CallbackEvent) throws {}
    public func onChainError(_ event: CallbackEvent) throws {}
    /// As in LangChain, a handler without its own gets chat-model starts as `llm_start`.
    public func onChatModelStart(_ event: CallbackEvent) throws { try onLLMStart(event.asLLMStart) }
    public func onLLMStart(_ event: CallbackEvent) throws {}
    public func onLLMNewToken(_ event: CallbackEvent) throws {}
    public func onLLMEnd(_ event: CallbackEvent) throws {}
    public func onLLMError(_ event: CallbackEvent) throws {}
    public func onRetry(_ event: CallbackEvent) throws {}
    public func onText(_ event: CallbackEvent) throws {}
    public func onCustomEvent(_ event: CallbackEvent) throws {}
    public func onDaemonEvent(_ event: CallbackEvent) throws {}

    /// Calls the method for the event's type.
    public func handle(_ event: CallbackEvent) throws {
        switch event.type {
        case .chainStart: try onChainStart(event)
        case .chainEnd: try onChainEnd(event)
        case .chainError: try onChainError(event)
        case .chatModelStart: try onChatModelStart(event)
        case .llmStart: try onLLMStart(event)
        case .llmNewToken: try onLLMNewToken(event)
        case .llmEnd: try onLLMEnd(event)
        case .llmError: try onLLMError(event)
        case .retry: try onRetry(event)
        case .text: try onText(event)
        case .custom: try onCustomEvent(event)
        case .sessionCreated, .sessionDeleted, .sessionRenamed, .sessionUpdated, .memoryUpdated, .usageRecorded, .budgetExceeded,
            .lagged, .ackTimeout, .journalGap, nil:
            try onDaemonEvent(event)
        }
    }
}

/// The asynchronous form, as LangChain's `AsyncCallbackHandler`: the run awaits each
/// method before going on, except for tokens, which are handed over in order without
/// holding the stream back.
public protocol AsyncCallbackHandler: Sendable {
    var raisesErrors: Bool { get }
    /// Every event comes through here; the default calls the method for its type.
    func handle(_ event: CallbackEvent) async throws
    func onChainStart(_ event: CallbackEvent) async throws
    func onChainEnd(_ event: CallbackEvent) async throws
    func onChainError(_ event: CallbackEvent) async throws
    func onChatModelStart(_ event: CallbackEvent) async throws
    func onLLMStart(_ event: CallbackEvent) async throws
    func onLLMNewToken(_ event: CallbackEvent) async throws
    func onLLMEnd(_ event: CallbackEvent) async throws
    func onLLMError(_ event: CallbackEvent) async throws
    func onRetry(_ event: CallbackEvent) async throws
    func onText(_ event: CallbackEvent) async throws
    func onCustomEvent(_ event: CallbackEvent) async throws
    func onDaemonEvent(_ event: CallbackEvent) async throws
}

extension AsyncCallbackHandler {
    public var raisesErrors: Bool { false }
    public func onChainStart(_ event: CallbackEvent) async throws {}
    public func onChainEnd(_ event: CallbackEvent) async throws {}
    public func onChainError(_ event: CallbackEvent) async throws {}
    /// As in LangChain, a handler without its own gets chat-model starts as `llm_start`.
    public func onChatModelStart(_ event: CallbackEvent) async throws { try await onLLMStart(event.asLLMStart) }
    public func onLLMStart(_ event: CallbackEvent) async throws {}
    public func onLLMNewToken(_ event: CallbackEvent) async throws {}
    public func onLLMEnd(_ event: CallbackEvent) async throws {}
    public func onLLMError(_ event: CallbackEvent) async throws {}
    public func onRetry(_ event: CallbackEvent) async throws {}
    public func onText(_ event: CallbackEvent) async throws {}
    public func onCustomEvent(_ event: CallbackEvent) async throws {}
    public func onDaemonEvent(_ event: CallbackEvent) async throws {}

    /// Calls the method for the event's type.
    public func handle(_ event: CallbackEvent) async throws {
        switch event.type {
        case .chainStart: try await onChainStart(event)
        case .chainEnd: try await onChainEnd(event)
        case .chainError: try await onChainError(event)
        case .chatModelStart: try await onChatModelStart(event)
        case .llmStart: try await onLLMStart(event)
        case .llmNewToken: try await onLLMNewToken(event)
        case .llmEnd: try await onLLMEnd(event)
        case .llmError: try await onLLMError(event)
        case .retry: try await onRetry(event)
        case .text: try await onText(event)
        case .custom: try await onCustomEvent(event)
        case .sessionCreated, .sessionDeleted, .sessionRenamed, .sessionUpdated, .memoryUpdated, .usageRecorded, .budgetExceeded,
            .lagged, .ackTimeout, .journalGap, nil:
            try await onDaemonEvent(event)
        }
    }
}
