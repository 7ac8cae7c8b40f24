import LLMDEvents
import LLMDProtocol
import Testing

@Suite("LangChain text")
struct LangChainTextTests {
    @Test("chain start and end read as StdOutCallbackHandler prints them")
    func chain() {
        let start = CallbackEvent(name: "chain_start", data: ["name": "ConversationChain"])
        #expect(LangChainText.text(for: start, color: false) == "\n\n> Entering new ConversationChain chain...\n")
        #expect(
            LangChainText.text(for: start, color: true)
                == "\n\n\u{1B}[1m> Entering new ConversationChain chain...\u{1B}[0m\n")
        #expect(LangChainText.text(for: CallbackEvent(name: "chain_end"), color: false) == "\n> Finished chain.\n")
        #expect(LangChainText.text(for: CallbackEvent(name: "text", data: ["text": "Prompt after formatting:\n"]), color: false)
            == "Prompt after formatting:\n")
        #expect(LangChainText.text(for: CallbackEvent(name: "llm_new_token", data: ["token": "x"]), color: false) == nil)
    }
}
