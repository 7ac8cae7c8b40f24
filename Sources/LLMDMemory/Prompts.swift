/// How a turn's prompt is built from memory and the new message.
public enum PromptStyle: String, Sendable, CaseIterable {
    /// The system prompt, the history as chat messages, then the new user message.
    case messages
    /// LangChain's `ConversationChain`: its default template filled with the history as
    /// text, sent as one user message (chat) or as the prompt (completions).
    case conversation
}

/// What a turn sends: chat messages, or one text prompt for the completions endpoint.
public enum TurnPrompt: Sendable, Equatable {
    case chat([ConversationMessage])
    case completion(String)

    /// Builds the prompt for `input` on top of `memory`.
    ///
    /// A system prompt in the `conversation` style goes before the template: as a system
    /// message on the chat endpoint, as a paragraph on the completions endpoint. Without
    /// one, the text is exactly what LangChain's `ConversationChain` sends.
    public init(
        style: PromptStyle, endpoint: Endpoint, systemPrompt: String?, memory: ConversationMemory,
        strategy: MemoryStrategy, input: String
    ) {
        let system = systemPrompt.flatMap { $0.isEmpty ? nil : $0 }
        switch style {
        case .messages:
            var messages = system.map { [ConversationMessage(.system, $0)] } ?? []
            messages += memory.historyMessages(strategy)
            messages.append(ConversationMessage(.user, input))
            self = Self(messages: messages, endpoint: endpoint)
        case .conversation:
            let text = ConversationTemplate.render(history: memory.historyText(strategy), input: input)
            switch (endpoint, system) {
            case (.chat, let system?): self = .chat([ConversationMessage(.system, system), ConversationMessage(.user, text)])
            case (.chat, nil): self = .chat([ConversationMessage(.user, text)])
            case (.completions, let system?): self = .completion(system + "\n\n" + text)
            case (.completions, nil): self = .completion(text)
            }
        }
    }

    /// A one-shot text prompt (a summarising call) as `endpoint` takes it: LangChain turns a
    /// string prompt into one human message for chat models.
    public init(text: String, endpoint: Endpoint) {
        self = endpoint == .chat ? .chat([ConversationMessage(.user, text)]) : .completion(text)
    }

    /// Chat messages for the chat endpoint; for completions, LangChain's rendering of them.
    private init(messages: [ConversationMessage], endpoint: Endpoint) {
        self = endpoint == .chat ? .chat(messages) : .completion(ConversationMessage.bufferString(messages))
    }

    /// The prompt's tokens as the endpoint counts them.
    public func tokens(_ counter: TokenCounter) -> Int {
        switch self {
        case .chat(let messages): counter.count(messages, endpoint: .chat)
        case .completion(let text): counter.count(text)
        }
    }
}

/// LangChain's `ConversationChain` default prompt (`langchain/chains/conversation/prompt.py`).
public enum ConversationTemplate {
    public static let template = """
        The following is a friendly conversation between a human and an AI. The AI is talkative and provides \
        lots of specific details from its context. If the AI does not know the answer to a question, it \
        truthfully says it does not know.

        Current conversation:
        {history}
        Human: {input}
        AI:
        """

    public static func render(history: String, input: String) -> String {
        fill(template, ["history": history, "input": input])
    }
}

/// LangChain's progressive-summary prompt (`SUMMARY_PROMPT` in `langchain/memory/prompt.py`),
/// used by the summarising memories.
public enum SummaryPrompt {
    public static let template = """
        Progressively summarize the lines of conversation provided, adding onto the previous summary returning \
        a new summary.

        EXAMPLE
        Current summary:
        The human asks what the AI thinks of artificial intelligence. The AI thinks artificial intelligence is \
        a force for good.

        New lines of conversation:
        Human: Why do you think artificial intelligence is a force for good?
        AI: Because artificial intelligence will help humans reach their full potential.

        New summary:
        The human asks what the AI thinks of artificial intelligence. The AI thinks artificial intelligence is \
        a force for good because it will help humans reach their full potential.
        END OF EXAMPLE

        Current summary:
        {summary}

        New lines of conversation:
        {new_lines}

        New summary:
        """

    /// The prompt that folds `messages` into `summary` (`predict_new_summary`).
    public static func render(summary: String, messages: [ConversationMessage]) -> String {
        fill(template, ["summary": summary, "new_lines": ConversationMessage.bufferString(messages)])
    }
}

/// Python's `str.format` for plain `{name}` fields, in one pass so a value that contains
/// `{input}` is never substituted again.
func fill(_ template: String, _ values: [String: String]) -> String {
    var result = ""
    var rest = template[...]
    while let open = rest.firstIndex(of: "{") {
        result += rest[..<open]
        guard let close = rest[open...].firstIndex(of: "}"), let value = values[String(rest[rest.index(after: open)..<close])]
        else {
            result.append("{")
            rest = rest[rest.index(after: open)...]
            continue
        }
        result += value
        rest = rest[rest.index(after: close)...]
    }
    return result + rest
}
