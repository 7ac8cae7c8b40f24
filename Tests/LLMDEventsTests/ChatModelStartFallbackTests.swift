import LLMDEvents
import LLMDProtocol
import Synchronization
import Testing

/// LangChain's `on_llm_start` fallback for chat models, in the event vocabulary.
@Suite("Chat-model start fallback")
struct ChatModelStartFallbackTests {
    static let chatStart = CallbackEvent(
        name: "chat_model_start", seq: 7, time: 42, session: "s", runID: "llm", parentRunID: "chain", tags: ["t"],
        metadata: ["turn": 1],
        data: [
            "model": "gpt-4o-mini",
            "messages": [
                ["role": "system", "content": "Be brief."], ["role": "user", "content": "Hi"],
                ["role": "assistant", "content": "Hello!"], ["role": "tool", "content": "42"],
                ["role": "critic", "content": "ok"],
            ],
        ])

    @Test("the messages become one prompt, rendered as get_buffer_string renders them; the rest stays")
    func rendering() {
        let converted = Self.chatStart.asLLMStart
        #expect(converted.name == "llm_start" && converted.type == .llmStart)
        #expect(converted.data["prompts"] == ["System: Be brief.\nHuman: Hi\nAI: Hello!\nTool: 42\ncritic: ok"])
        #expect(converted.data["messages"] == nil && converted.data["model"] == "gpt-4o-mini")
        #expect(converted.data["from_chat_model"] == true)
        #expect(converted.seq == 7 && converted.time == 42 && converted.runID == "llm" && converted.parentRunID == "chain")
        #expect(converted.session == "s" && converted.tags == ["t"] && converted.metadata == ["turn": 1])
        let other = CallbackEvent(name: "llm_end", data: ["x": 1])
        #expect(other.asLLMStart == other)
    }

    @Test("a filter naming llm_start and not chat_model_start takes chat-model starts, as llm_start")
    func filters() {
        let onlyLLM = EventFilter(types: [.llmStart, .llmEnd])
        #expect(onlyLLM.takesChatModelStartsAsLLMStarts)
        #expect(onlyLLM.matches(type: .chatModelStart, session: nil, runID: "r", parentRunID: nil, tags: []))
        let both = EventFilter(types: [.llmStart, .chatModelStart])
        #expect(!both.takesChatModelStartsAsLLMStarts)
        #expect(!EventFilter().takesChatModelStartsAsLLMStarts, "no type filter: every event as it is")
        #expect(!EventFilter(types: [.llmEnd]).matches(type: .chatModelStart, session: nil, runID: "r", parentRunID: nil, tags: []))
    }

    /// Records the events its methods get.
    final class Recorder: CallbackHandler {
        let seen = Mutex<[String]>([])
        func onLLMStart(_ event: CallbackEvent) throws {
            seen.withLock { $0.append("llm_start \(event.data["prompts"]?.arrayValue?.first?.stringValue ?? "")") }
        }
    }

    final class ChatAware: CallbackHandler {
        let seen = Mutex<[String]>([])
        func onChatModelStart(_ event: CallbackEvent) throws { seen.withLock { $0.append(event.name) } }
        func onLLMStart(_ event: CallbackEvent) throws { seen.withLock { $0.append(event.name) } }
    }

    @Test("a handler without onChatModelStart gets onLLMStart, as in LangChain; one with it, its own")
    func handlers() throws {
        let recorder = Recorder()
        try recorder.handle(Self.chatStart)
        #expect(recorder.seen.withLock { $0 } == ["llm_start System: Be brief.\nHuman: Hi\nAI: Hello!\nTool: 42\ncritic: ok"])
        let aware = ChatAware()
        try aware.handle(Self.chatStart)
        #expect(aware.seen.withLock { $0 } == ["chat_model_start"])

        let filtered = FilteredCallbackHandler(types: [.llmStart], handler: aware)
        #expect(filtered.acceptedTypes == [.llmStart, .chatModelStart])
        try filtered.handle(Self.chatStart)
        #expect(aware.seen.withLock { $0 } == ["chat_model_start", "llm_start"], "a handler configured for llm_start only")
        #expect(FilteredCallbackHandler(types: [.llmEnd], handler: aware).acceptedTypes == [.llmEnd])
    }
}
