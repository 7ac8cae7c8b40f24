/// How a session remembers its conversation: LangChain's classic memory classes.
public enum MemoryStrategy: Sendable, Equatable {
    /// The whole history (`ConversationBufferMemory`).
    case buffer
    /// The last `k` exchanges (`ConversationBufferWindowMemory`).
    case window(k: Int)
    /// Drop the oldest messages while over `maxTokens` (`ConversationTokenBufferMemory`).
    case tokenBuffer(maxTokens: Int)
    /// A running summary, updated by the LLM after each turn (`ConversationSummaryMemory`).
    case summary
    /// Recent messages verbatim; the oldest folded into a summary while over `maxTokens`
    /// (`ConversationSummaryBufferMemory`).
    case summaryBuffer(maxTokens: Int)

    /// LangChain's defaults: `k=5`, `max_token_limit=2000`.
    public static let defaultK = 5
    public static let defaultMaxTokens = 2000

    /// The names `llmctl send --memory` and the protocol take.
    public static let names = ["buffer", "window", "token-buffer", "summary", "summary-buffer"]

    /// The strategy called `name`, its parameters given or LangChain's defaults; nil for an
    /// unknown name.
    public init?(name: String, k: Int? = nil, maxTokens: Int? = nil) {
        switch name {
        case "buffer": self = .buffer
        case "window": self = .window(k: k ?? Self.defaultK)
        case "token-buffer": self = .tokenBuffer(maxTokens: maxTokens ?? Self.defaultMaxTokens)
        case "summary": self = .summary
        case "summary-buffer": self = .summaryBuffer(maxTokens: maxTokens ?? Self.defaultMaxTokens)
        default: return nil
        }
    }

    public var name: String {
        switch self {
        case .buffer: "buffer"
        case .window: "window"
        case .tokenBuffer: "token-buffer"
        case .summary: "summary"
        case .summaryBuffer: "summary-buffer"
        }
    }

    public var k: Int? {
        if case .window(let k) = self { return k }
        return nil
    }

    public var maxTokens: Int? {
        switch self {
        case .tokenBuffer(let limit), .summaryBuffer(let limit): limit
        default: nil
        }
    }
}

/// What a session remembers: a summary of what was folded away, and messages verbatim,
/// oldest first.
///
/// Every strategy keeps a suffix of the conversation's messages, so storage marks a
/// message as out of memory and never rewrites one. Summarising strategies fold the
/// oldest messages into `summary`; if the summarising call fails, those messages stay
/// here verbatim and are folded by the next turn's call instead, so nothing is lost.
public struct ConversationMemory: Sendable, Equatable {
    public var summary: String
    public var messages: [ConversationMessage]

    public init(summary: String = "", messages: [ConversationMessage] = []) {
        self.summary = summary
        self.messages = messages
    }

    /// The history LangChain's memory loads (`load_memory_variables` with
    /// `return_messages=True`): a summary comes first as a system message.
    public func historyMessages(_ strategy: MemoryStrategy) -> [ConversationMessage] {
        switch strategy {
        case .buffer, .tokenBuffer: return messages
        case .window(let k): return k > 0 ? Array(messages.suffix(2 * k)) : []
        case .summary, .summaryBuffer:
            return summary.isEmpty ? messages : [ConversationMessage(.system, summary)] + messages
        }
    }

    /// The history as the `{history}` of a text prompt (`return_messages=False`).
    ///
    /// `ConversationSummaryMemory` gives its summary bare; the others render their messages
    /// with `get_buffer_string`, a summary-buffer's summary as a `System:` line.
    public func historyText(_ strategy: MemoryStrategy) -> String {
        guard case .summary = strategy else { return ConversationMessage.bufferString(historyMessages(strategy)) }
        // Messages are here only when a summarising call failed; they follow the summary.
        let pending = ConversationMessage.bufferString(messages)
        if summary.isEmpty { return pending }
        return pending.isEmpty ? summary : summary + "\n" + pending
    }

    /// Adds one exchange and applies the strategy's limit (LangChain's `save_context`).
    ///
    /// - Returns: the memory after the exchange, and what left it: messages dropped, and
    ///   messages to fold into the summary with ``SummaryPrompt`` before the turn commits.
    public func recording(
        input: String, output: String, strategy: MemoryStrategy, counter: TokenCounter, endpoint: Endpoint
    ) -> MemoryUpdate {
        var memory = self
        memory.messages += [ConversationMessage(.user, input), ConversationMessage(.assistant, output)]
        var update = MemoryUpdate(memory: memory)
        switch strategy {
        case .buffer:
            break
        case .window(let k):
            // Every message stays stored; the window shows the last k exchanges, so a
            // larger k later brings older ones back, as in LangChain. Report what left it.
            let before = max(0, messages.count - 2 * k)
            let after = max(0, memory.messages.count - 2 * k)
            update.leftWindow = Array(memory.messages[before..<after])
        case .tokenBuffer(let limit):
            update.dropped = memory.prune(to: limit, counter: counter, endpoint: endpoint)
        case .summary:
            update.toSummarize = memory.messages
            memory.messages = []
        case .summaryBuffer(let limit):
            update.toSummarize = memory.prune(to: limit, counter: counter, endpoint: endpoint)
        }
        update.memory = memory
        return update
    }

    /// Pops the oldest messages while the rest count more than `limit` tokens; a buffer
    /// exactly at the limit stays whole.
    private mutating func prune(to limit: Int, counter: TokenCounter, endpoint: Endpoint) -> [ConversationMessage] {
        var pruned: [ConversationMessage] = []
        while !messages.isEmpty, counter.count(messages, endpoint: endpoint) > limit {
            pruned.append(messages.removeFirst())
        }
        return pruned
    }
}

/// The outcome of recording one exchange.
public struct MemoryUpdate: Sendable, Equatable {
    /// Memory after the exchange, before any summary is folded in.
    public var memory: ConversationMemory
    /// Messages the token limit removed (`token-buffer`).
    public var dropped: [ConversationMessage] = []
    /// Messages that moved out of a `window`; they stay stored.
    public var leftWindow: [ConversationMessage] = []
    /// Messages to fold into the summary (`summary`, `summary-buffer`).
    public var toSummarize: [ConversationMessage] = []

    public init(memory: ConversationMemory) {
        self.memory = memory
    }

    /// Whether the strategy changed anything beyond appending the exchange: what a
    /// `memory_updated` event reports.
    public var changed: Bool { !dropped.isEmpty || !leftWindow.isEmpty || !toSummarize.isEmpty }

    /// The memory once the summarising call returned `summary`.
    public func folding(summary: String) -> ConversationMemory {
        ConversationMemory(summary: summary, messages: memory.messages)
    }

    /// The memory when the summarising call failed: the messages stay verbatim, in order,
    /// to be folded next time.
    public var unfolded: ConversationMemory {
        ConversationMemory(summary: memory.summary, messages: toSummarize + memory.messages)
    }
}
