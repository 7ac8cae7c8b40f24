import Testing

@testable import LLMDTransport

@Suite("Input budget")
struct InputBudgetTests {
    @Test("within the limit nobody goes; past it the largest holders go until three quarters of it are held")
    func evictsLargestToThreeQuarters() {
        let budget = InputBudget()
        #expect(budget.hold(300, by: 1, limit: 1000).isEmpty)
        #expect(budget.hold(10, by: 2, limit: 1000).isEmpty)
        #expect(budget.hold(400, by: 3, limit: 1000).isEmpty)
        #expect(budget.hold(250, by: 4, limit: 1000).isEmpty)
        #expect(budget.total == 960)
        // 1,300 held: 3 (400) and 2 (350) go, leaving 550, within 750.
        let evicted = budget.hold(350, by: 2, limit: 1000)
        #expect(evicted.map(\.id) == [3, 2], "\(evicted)")
        #expect(evicted.map(\.held) == [400, 350])
        #expect(budget.total == 550)
    }

    @Test("a connection that finishes its line or leaves no longer counts")
    func releases() {
        let budget = InputBudget()
        _ = budget.hold(500, by: 1, limit: 1000)
        _ = budget.hold(400, by: 2, limit: 1000)
        _ = budget.hold(0, by: 1, limit: 1000)
        #expect(budget.total == 400)
        budget.release(2)
        #expect(budget.total == 0)
        #expect(budget.hold(900, by: 3, limit: 1000).isEmpty)
    }
}
