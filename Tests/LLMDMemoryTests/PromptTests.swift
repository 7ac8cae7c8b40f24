import LLMDMemory
import Testing

@Suite("Prompt styles")
struct PromptTests {
    /// Two turns of the flower shop conversation, in buffer memory.
    let memory = recorded(
        [
            ("Hi, I want to buy a bouquet for my girlfriend's birthday.", "Hello! I'd love to help. What does she like?"),
            ("She likes pink roses.", "Pink roses are a lovely choice."),
        ], strategy: .buffer)
    let input = "Do you remember why I came yesterday?"

    /// LangChain's ConversationChain with ConversationBufferMemory, third turn: the template
    /// of langchain/chains/conversation/prompt.py, the history as get_buffer_string
    /// renders it (`Human: `/`AI: ` lines joined by newlines). Written out by hand.
    let expected =
        "The following is a friendly conversation between a human and an AI. The AI is talkative and provides lots of specific details from its context. If the AI does not know the answer to a question, it truthfully says it does not know.\n"
        + "\n"
        + "Current conversation:\n"
        + "Human: Hi, I want to buy a bouquet for my girlfriend's birthday.\n"
        + "AI: Hello! I'd love to help. What does she like?\n"
        + "Human: She likes pink roses.\n"
        + "AI: Pink roses are a lovely choice.\n"
        + "Human: Do you remember why I came yesterday?\n"
        + "AI:"

    @Test("the conversation style is LangChain's ConversationChain prompt, byte for byte")
    func conversationChain() {
        let completion = TurnPrompt(
            style: .conversation, endpoint: .completions, systemPrompt: nil, memory: memory, strategy: .buffer, input: input)
        #expect(completion == .completion(expected))
        // To a chat model LangChain sends the same text as one human message.
        let chat = TurnPrompt(style: .conversation, endpoint: .chat, systemPrompt: nil, memory: memory, strategy: .buffer, input: input)
        #expect(chat == .chat([ConversationMessage(.user, expected)]))
        // The first turn has an empty history line, as in LangChain.
        let first = TurnPrompt(
            style: .conversation, endpoint: .completions, systemPrompt: nil, memory: ConversationMemory(), strategy: .buffer,
            input: "Hi")
        guard case .completion(let firstText) = first else { Issue.record("not a completion"); return }
        #expect(firstText.hasSuffix("it truthfully says it does not know.\n\nCurrent conversation:\n\nHuman: Hi\nAI:"))
        #expect(first.tokens(wordCounter) == words(ConversationTemplate.template) - 1)
    }

    @Test("a value that looks like a field is not substituted again")
    func noResubstitution() {
        let prompt = TurnPrompt(
            style: .conversation, endpoint: .completions, systemPrompt: nil, memory: ConversationMemory(), strategy: .buffer,
            input: "what is {history}?")
        guard case .completion(let text) = prompt else { Issue.record("not a completion"); return }
        #expect(text.hasSuffix("Human: what is {history}?\nAI:"))
    }

    @Test("the messages style: system prompt, history, new message; a summary is a system message")
    func messages() {
        let prompt = TurnPrompt(
            style: .messages, endpoint: .chat, systemPrompt: "Be brief.", memory: memory, strategy: .window(k: 1), input: input)
        #expect(
            prompt
                == .chat([
                    ConversationMessage(.system, "Be brief."), ConversationMessage(.user, "She likes pink roses."),
                    ConversationMessage(.assistant, "Pink roses are a lovely choice."), ConversationMessage(.user, input),
                ]))
        let summarised = ConversationMemory(summary: "A bouquet.", messages: [])
        #expect(
            TurnPrompt(style: .messages, endpoint: .chat, systemPrompt: "", memory: summarised, strategy: .summary, input: "x")
                == .chat([ConversationMessage(.system, "A bouquet."), ConversationMessage(.user, "x")]))
        #expect(
            TurnPrompt(style: .messages, endpoint: .completions, systemPrompt: nil, memory: summarised, strategy: .summary, input: "x")
                == .completion("System: A bouquet.\nHuman: x"))
    }

    @Test("a system prompt in the conversation style precedes the template")
    func conversationWithSystemPrompt() {
        let chat = TurnPrompt(style: .conversation, endpoint: .chat, systemPrompt: "Be brief.", memory: memory, strategy: .buffer, input: input)
        #expect(chat == .chat([ConversationMessage(.system, "Be brief."), ConversationMessage(.user, expected)]))
        let completion = TurnPrompt(
            style: .conversation, endpoint: .completions, systemPrompt: "Be brief.", memory: memory, strategy: .buffer, input: input)
        #expect(completion == .completion("Be brief.\n\n" + expected))
    }

    @Test("the summarising prompt is LangChain's progressive summary, with the lines as get_buffer_string renders them")
    func summaryPrompt() {
        let text = SummaryPrompt.render(
            summary: "The human wants flowers.", messages: [ConversationMessage(.user, "Pink?"), ConversationMessage(.assistant, "Yes.")])
        #expect(text.hasPrefix("Progressively summarize the lines of conversation provided, adding onto the previous summary returning a new summary.\n\nEXAMPLE\nCurrent summary:\n"))
        #expect(text.hasSuffix("END OF EXAMPLE\n\nCurrent summary:\nThe human wants flowers.\n\nNew lines of conversation:\nHuman: Pink?\nAI: Yes.\n\nNew summary:"))
        #expect(TurnPrompt(text: text, endpoint: .chat) == .chat([ConversationMessage(.user, text)]))
        #expect(TurnPrompt(text: text, endpoint: .completions) == .completion(text))
    }

    @Test("context windows by model family, configuration first; an overflow says by how much")
    func contextWindow() {
        #expect(ContextWindow.tokens(for: "gpt-4o-2024-08-06") == 128_000)
        #expect(ContextWindow.tokens(for: "gpt-4") == 8_192)
        #expect(ContextWindow.tokens(for: "gpt-3.5-turbo-instruct") == 4_096)
        #expect(ContextWindow.tokens(for: "gpt-4o", configured: ["gpt-4o": 1000]) == 1000)
        #expect(ContextWindow.tokens(for: "llama3") == nil)
        #expect(ContextWindow.overflow(prompt: 90, reply: 10, window: 100) == nil)
        #expect(ContextWindow.overflow(prompt: 90, reply: 11, window: 100)?.excess == 1)
    }

    @Test("completion models go to the completions endpoint")
    func endpoints() {
        #expect(Endpoint(model: "gpt-3.5-turbo-instruct") == .completions)
        #expect(Endpoint(model: "davinci-002") == .completions)
        #expect(Endpoint(model: "gpt-4o-mini") == .chat)
        #expect(Endpoint(model: "fake") == .chat)
    }
}
