/// The protocol's methods, named once: the daemon registers its handlers under these, the
/// connection answers the ones that are its own, and clients call them by these names.
/// llmd-protocol(7) describes each under *METHODS*, which a test holds to this list.
public enum ProtocolMethod: String, CaseIterable, Sendable {
    case hello
    case ping
    case status
    case complete
    case cancel
    case subscribe
    case unsubscribe
    case ack
    case publish
    case runEvent = "run.event"
    case send
    case sessionCreate = "session.create"
    case sessionUpdate = "session.update"
    case sessionList = "session.list"
    case sessionShow = "session.show"
    case sessionRename = "session.rename"
    case sessionDelete = "session.delete"
    case sessionExport = "session.export"
    case memoryShow = "memory.show"
    case scopeBegin = "scope.begin"
    case scopeEnd = "scope.end"
    case scopeShow = "scope.show"
    case usage
    case budgetSet = "budget.set"
    case budgetShow = "budget.show"
    case tokensCount = "tokens.count"
    case keyCreate = "key.create"
    case keyList = "key.list"
    case keyRevoke = "key.revoke"
    case providerList = "provider.list"
    case modelList = "model.list"

    /// Answered by the connection itself, not by a registered handler: `cancel` and the
    /// subscription methods, which act on the connection's own requests and queue.
    public var isConnectionLevel: Bool {
        switch self {
        case .cancel, .subscribe, .unsubscribe, .ack: true
        default: false
        }
    }
}

/// Every typed method: what a test holds llmd-protocol(7) to, and ``ProtocolMethod`` too.
public var typedMethods: [any TypedMethod.Type] {
    [
        HelloMethod.self, PingMethod.self, StatusMethod.self, CompleteMethod.self, SendMethod.self, SessionCreateMethod.self,
        SessionUpdateMethod.self, SessionListMethod.self, SessionShowMethod.self, SessionRenameMethod.self,
        SessionDeleteMethod.self, SessionExportMethod.self, MemoryShowMethod.self,
        PublishMethod.self, RunEventMethod.self, SubscribeMethod.self, UnsubscribeMethod.self, AckMethod.self, CancelMethod.self,
        ScopeBeginMethod.self, ScopeEndMethod.self, ScopeShowMethod.self, UsageMethod.self, BudgetSetMethod.self,
        BudgetShowMethod.self, TokensCountMethod.self, ProviderListMethod.self, ModelListMethod.self,
        KeyCreateMethod.self, KeyListMethod.self, KeyRevokeMethod.self,
    ]
}
