import LLMDMemory
import Testing

/// One token per word, in the chat framing of OpenAI's cookbook: 3 per message plus its
/// role and content, 3 to prime the reply. Simple enough to check by hand.
let wordCounter = TokenCounter(
    isExact: true, encodingName: "words", countText: words,
    countChat: { messages in messages.reduce(3) { $0 + 3 + words($1.role.rawValue) + words($1.content) } })

func words(_ text: String) -> Int { text.split(whereSeparator: { $0 == " " || $0 == "\n" }).count }

/// Records `exchanges` one after another, as turns do.
func recorded(_ exchanges: [(String, String)], strategy: MemoryStrategy, endpoint: Endpoint = .chat) -> ConversationMemory {
    var memory = ConversationMemory()
    for (input, output) in exchanges {
        memory = memory.recording(input: input, output: output, strategy: strategy, counter: wordCounter, endpoint: endpoint).memory
    }
    return memory
}

@Suite("Memory strategies")
struct ConversationMemoryTests {
    let three = [("q1", "a1"), ("q2", "a2"), ("q3", "a3")]

    @Test("buffer keeps every message, in order")
    func buffer() {
        let memory = recorded(three, strategy: .buffer)
        #expect(memory.historyMessages(.buffer).map(\.content) == ["q1", "a1", "q2", "a2", "q3", "a3"])
        #expect(memory.historyText(.buffer) == "Human: q1\nAI: a1\nHuman: q2\nAI: a2\nHuman: q3\nAI: a3")
    }

    @Test("window shows the last k exchanges; k=0 shows nothing; what leaves the window is reported")
    func window() {
        #expect(recorded(three, strategy: .window(k: 0)).historyMessages(.window(k: 0)).isEmpty)
        #expect(recorded(three, strategy: .window(k: 0)).historyText(.window(k: 0)) == "")
        let one = recorded(three, strategy: .window(k: 1))
        #expect(one.historyMessages(.window(k: 1)).map(\.content) == ["q3", "a3"])
        // Everything stays stored, so a larger k brings older exchanges back.
        #expect(one.historyMessages(.window(k: 2)).map(\.content) == ["q2", "a2", "q3", "a3"])
        #expect(recorded(three, strategy: .window(k: 5)).historyMessages(.window(k: 5)).count == 6)

        let first = ConversationMemory().recording(
            input: "q1", output: "a1", strategy: .window(k: 1), counter: wordCounter, endpoint: .chat)
        #expect(first.leftWindow.isEmpty)
        let second = first.memory.recording(
            input: "q2", output: "a2", strategy: .window(k: 1), counter: wordCounter, endpoint: .chat)
        #expect(second.leftWindow.map(\.content) == ["q1", "a1"])
        let zero = ConversationMemory().recording(
            input: "q1", output: "a1", strategy: .window(k: 0), counter: wordCounter, endpoint: .chat)
        #expect(zero.leftWindow.map(\.content) == ["q1", "a1"])
    }

    @Test("token-buffer keeps a buffer exactly at the limit and drops the oldest one by one above it")
    func tokenBuffer() {
        // Each message: 3 + 1 (role) + 2 (content) = 6; two messages with priming: 3 + 12 = 15.
        let exchange = [("one two", "three four")]
        #expect(recorded(exchange, strategy: .tokenBuffer(maxTokens: 15)).messages.count == 2)
        let update = ConversationMemory().recording(
            input: "one two", output: "three four", strategy: .tokenBuffer(maxTokens: 14), counter: wordCounter,
            endpoint: .chat)
        #expect(update.dropped.map(\.content) == ["one two"])
        #expect(update.memory.messages.map(\.content) == ["three four"])
        #expect(update.changed)
        // Below what one message takes, everything goes.
        let all = ConversationMemory().recording(
            input: "one two", output: "three four", strategy: .tokenBuffer(maxTokens: 8), counter: wordCounter,
            endpoint: .chat)
        #expect(all.dropped.count == 2 && all.memory.messages.isEmpty)
    }

    @Test("token-buffer on the completions endpoint counts each message rendered alone")
    func tokenBufferCompletions() {
        // "Human: one two" is 3 words, "AI: three four" is 3: 6 in all, no framing.
        #expect(recorded([("one two", "three four")], strategy: .tokenBuffer(maxTokens: 6), endpoint: .completions).messages.count == 2)
        #expect(recorded([("one two", "three four")], strategy: .tokenBuffer(maxTokens: 5), endpoint: .completions).messages.count == 1)
    }

    @Test("summary folds every exchange; a failed summarising call keeps the messages verbatim")
    func summary() {
        let update = ConversationMemory(summary: "S0").recording(
            input: "q1", output: "a1", strategy: .summary, counter: wordCounter, endpoint: .chat)
        #expect(update.toSummarize.map(\.content) == ["q1", "a1"])
        #expect(update.memory.messages.isEmpty)
        let folded = update.folding(summary: "S1")
        #expect(folded == ConversationMemory(summary: "S1"))
        // ConversationSummaryMemory gives its summary bare as the text history.
        #expect(folded.historyText(.summary) == "S1")
        #expect(folded.historyMessages(.summary) == [ConversationMessage(.system, "S1")])

        let failed = update.unfolded
        #expect(failed.summary == "S0" && failed.messages.map(\.content) == ["q1", "a1"])
        #expect(failed.historyText(.summary) == "S0\nHuman: q1\nAI: a1")
        // The next turn folds the leftovers with its own exchange.
        let next = failed.recording(input: "q2", output: "a2", strategy: .summary, counter: wordCounter, endpoint: .chat)
        #expect(next.toSummarize.map(\.content) == ["q1", "a1", "q2", "a2"])
        #expect(ConversationMemory().historyText(.summary) == "")
    }

    @Test("summary-buffer prunes oldest first into the summary, and renders it as a System line")
    func summaryBuffer() {
        // Each "w" message: 3 + 1 + 1 = 5. Two exchanges: 3 + 20 = 23; a limit of 14 keeps
        // two messages (3 + 10 = 13) and prunes the first exchange, oldest first.
        let start = recorded([("q1", "a1")], strategy: .summaryBuffer(maxTokens: 14))
        #expect(start.messages.count == 2)
        let update = start.recording(
            input: "q2", output: "a2", strategy: .summaryBuffer(maxTokens: 14), counter: wordCounter, endpoint: .chat)
        #expect(update.toSummarize.map(\.content) == ["q1", "a1"])
        #expect(update.memory.messages.map(\.content) == ["q2", "a2"])
        #expect(
            SummaryPrompt.render(summary: "", messages: update.toSummarize).hasSuffix(
                "Current summary:\n\n\nNew lines of conversation:\nHuman: q1\nAI: a1\n\nNew summary:"))
        let memory = update.folding(summary: "They greeted.")
        #expect(memory.historyText(.summaryBuffer(maxTokens: 14)) == "System: They greeted.\nHuman: q2\nAI: a2")
        #expect(memory.historyMessages(.summaryBuffer(maxTokens: 14)).first == ConversationMessage(.system, "They greeted."))
        // Under the limit nothing is summarised.
        #expect(!start.recording(input: "q", output: "a", strategy: .summaryBuffer(maxTokens: 100), counter: wordCounter, endpoint: .chat).changed)
    }

    @Test("strategy names, parameters and LangChain's defaults")
    func names() {
        #expect(MemoryStrategy(name: "window") == .window(k: 5))
        #expect(MemoryStrategy(name: "token-buffer", maxTokens: 10) == .tokenBuffer(maxTokens: 10))
        #expect(MemoryStrategy(name: "summary-buffer") == .summaryBuffer(maxTokens: 2000))
        #expect(MemoryStrategy(name: "vector") == nil)
        for name in MemoryStrategy.names { #expect(MemoryStrategy(name: name)?.name == name) }
    }
}
