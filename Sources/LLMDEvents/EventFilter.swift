import LLMDProtocol

/// What a subscription wants: every condition given must hold.
public struct EventFilter: Sendable, Equatable {
    /// Sessions to follow; nil follows all, including events of no session.
    public var sessions: Set<String>?
    /// Types to receive; nil means every type except those addressed to one subscriber
    /// (`lagged`, `ack_timeout`), which are received only when named.
    public var types: Set<EventType>? {
        get { typeMask.map { mask in Set(EventType.allCases.filter(mask.contains)) } }
        set { typeMask = newValue.map(EventTypeMask.init) }
    }
    /// What `types` holds, in the form matched against every event.
    private var typeMask: EventTypeMask?
    /// Receive events carrying at least one of these tags; nil for any.
    public var tags: Set<String>?
    /// A run: its own events and those of its child runs.
    public var runID: String?
    /// Since when (microseconds since the Unix epoch) each followed session's name has
    /// named the session it names now. Replay passes over older events of the name: they
    /// are an earlier session's, since deleted or renamed away.
    public var sessionStarts: [String: Int64] = [:]

    public init(sessions: Set<String>? = nil, types: Set<EventType>? = nil, tags: Set<String>? = nil, runID: String? = nil) {
        self.sessions = sessions
        self.typeMask = types.map(EventTypeMask.init)
        self.tags = tags
        self.runID = runID
    }

    /// Whether chat-model starts come as `llm_start` (LangChain's fallback for a handler
    /// without `on_chat_model_start`): `types` names `llm_start` and not `chat_model_start`.
    public var takesChatModelStartsAsLLMStarts: Bool { typeMask?.takesChatModelStartsAsLLMStarts ?? false }

    public func matches(type: EventType?, session: String?, runID: String, parentRunID: String?, tags: [String]) -> Bool {
        if let typeMask {
            guard let type, typeMask.contains(type) || (type == .chatModelStart && typeMask.contains(.llmStart)) else {
                return false
            }
        } else if type?.isAddressed == true {
            return false
        }
        if let sessions {
            guard let session, sessions.contains(session) else { return false }
        }
        if let wanted = self.tags, !tags.contains(where: wanted.contains) { return false }
        if let wanted = self.runID, runID != wanted, parentRunID != wanted { return false }
        return true
    }

    /// Whether an event of `session` at `time` is from before the session now of that
    /// name had it, so replaying it would show another session's events as this one's.
    public func predatesSession(_ session: String?, time: Int64) -> Bool {
        guard let session, let start = sessionStarts[session] else { return false }
        return time < start
    }

    /// The filter of `subscribe`'s parameters: `sessions`, `types`, `tags` and `run_id`.
    ///
    /// - Throws: `request.invalid_params` for a type that is no event type.
    public init(params: SubscribeMethod.Params) throws(ProtocolError) {
        var types: Set<EventType>?
        if let names = params.types {
            types = []
            for name in names {
                guard let type = EventType(rawValue: name) else {
                    throw ProtocolError(
                        .invalidParams, "unknown event type '\(name)'",
                        detail: ["field": "types", "types": .array(EventType.allCases.map { .string($0.rawValue) })])
                }
                types?.insert(type)
            }
        }
        self.init(sessions: params.sessions.map(Set.init), types: types, tags: params.tags.map(Set.init), runID: params.runID)
    }
}
