import LLMDEvents
import Testing

@Suite("Subscription flow")
struct SubscriptionFlowTests {
    @Test("catch-up passes live events over, then goes live at its cursor")
    func catchUpThenLive() {
        var flow = SubscriptionFlow(cursor: 10, live: false)
        #expect(flow.live() == .skip)
        flow.caughtUp(through: 11)
        flow.goLive()
        #expect(flow.live() == .offer)
        flow.offered(12...12, accepted: true)
        #expect(flow.cursor == 12)
    }

    @Test("a refused event starts lagging; later ones are counted; resume replays from the first missed")
    func lagThenResume() {
        var flow = SubscriptionFlow(cursor: 0, live: true)
        flow.offered(5...5, accepted: true)
        #expect(flow.live() == .offer)
        flow.offered(6...6, accepted: false)
        #expect(flow.mode == .lagging(firstMissed: 6, missed: 1))
        #expect(flow.live() == .skip)
        #expect(flow.live() == .skip)
        #expect(flow.mode == .lagging(firstMissed: 6, missed: 3))
        #expect(flow.drained(resume: true, latest: 9) == .catchUp(missed: 3, resumeFrom: 6))
        #expect(flow.mode == .catchingUp)
        #expect(flow.cursor == 5)
        #expect(flow.drained(resume: true, latest: 9) == nil)
    }

    @Test("skip goes on live from the newest event")
    func lagThenSkip() {
        var flow = SubscriptionFlow(cursor: 0, live: true)
        flow.offered(3...3, accepted: false)
        #expect(flow.drained(resume: false, latest: 40) == .skipAhead(missed: 1, resumeFrom: 3))
        #expect(flow.mode == .live)
        #expect(flow.cursor == 40)
    }

    @Test("events offered together are taken or missed together, and counted each")
    func groups() {
        var flow = SubscriptionFlow(cursor: 0, live: true)
        #expect(flow.live(count: 4) == .offer)
        flow.offered(1...4, accepted: true)
        #expect(flow.cursor == 4)
        #expect(flow.live(count: 3) == .offer)
        flow.offered(5...7, accepted: false)
        #expect(flow.mode == .lagging(firstMissed: 5, missed: 3))
        #expect(flow.live(count: 2) == .skip)
        #expect(flow.drained(resume: true, latest: 9) == .catchUp(missed: 5, resumeFrom: 5))
        #expect(flow.cursor == 4)
    }
}
