import LLMDEvents
import LLMDProtocol
import Testing

@Suite("Event filters")
struct EventFilterTests {
    func matches(_ filter: EventFilter, _ type: EventType, session: String? = nil, run: String = "r", parent: String? = nil, tags: [String] = []) -> Bool {
        filter.matches(type: type, session: session, runID: run, parentRunID: parent, tags: tags)
    }

    @Test("no filter takes every run event but not those addressed to another subscriber")
    func everything() {
        let all = EventFilter()
        #expect(matches(all, .llmNewToken))
        #expect(matches(all, .chainStart, session: "s"))
        #expect(!matches(all, .lagged))
        #expect(!matches(all, .ackTimeout))
        #expect(matches(EventFilter(types: [.lagged]), .lagged))
    }

    @Test("sessions, types, tags and run all must hold")
    func conditions() {
        let filter = EventFilter(sessions: ["work"], types: [.llmEnd, .chainEnd], tags: ["a", "b"], runID: "chain")
        #expect(matches(filter, .llmEnd, session: "work", run: "llm", parent: "chain", tags: ["b"]))
        #expect(matches(filter, .chainEnd, session: "work", run: "chain", tags: ["a"]))
        #expect(!matches(filter, .llmNewToken, session: "work", run: "chain", tags: ["a"]))
        #expect(!matches(filter, .llmEnd, session: nil, run: "chain", tags: ["a"]))
        #expect(!matches(filter, .llmEnd, session: "home", run: "chain", tags: ["a"]))
        #expect(!matches(filter, .llmEnd, session: "work", run: "chain", tags: ["c"]))
        #expect(!matches(filter, .llmEnd, session: "work", run: "other", parent: "x", tags: ["a"]))
    }

    @Test("subscribe's parameters make the filter; an unknown type is a named error")
    func parsing() throws {
        let filter = try EventFilter(params: SubscribeMethod.Params(sessions: ["a"], types: ["llm_end"], tags: ["t"], runID: "r"))
        #expect(filter == EventFilter(sessions: ["a"], types: [.llmEnd], tags: ["t"], runID: "r"))
        #expect(filter.types == [.llmEnd])
        var changed = filter
        changed.types = [.chainStart, .llmNewToken]
        #expect(changed.types == [.chainStart, .llmNewToken])
        #expect(matches(changed, .llmNewToken, session: "a", run: "r", parent: nil, tags: ["t"]))
        #expect(!matches(changed, .llmEnd, session: "a", run: "r", parent: nil, tags: ["t"]))
        changed.types = nil
        #expect(changed.types == nil)
        #expect(try EventFilter(params: SubscribeMethod.Params()) == EventFilter())
        let allTypes = JSONValue.array(EventType.allCases.map { .string($0.rawValue) })
        #expect(throws: ProtocolError(.invalidParams, "unknown event type 'llm_finish'", detail: ["field": "types", "types": allTypes])) {
            try EventFilter(params: SubscribeMethod.Params(types: ["llm_end", "llm_finish"]))
        }
    }
}
