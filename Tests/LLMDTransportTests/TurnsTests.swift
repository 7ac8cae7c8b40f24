import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@testable import LLMDTransport

@Suite("Turns")
struct TurnsTests {
    @Test("a turn each interval lets on as many as the share says, in the order they came, on their own loops")
    func share() {
        let timer = EmbeddedEventLoop()
        let other = EmbeddedEventLoop()
        let turns = Turns(eventLoop: timer, interval: .milliseconds(2)) { waiting in (count: 3, value: waiting) }
        let resumed = Mutex<[(who: Int, value: Int)]>([])
        for who in 0..<7 {
            turns.wait(on: who.isMultiple(of: 2) ? timer : other) { value in resumed.withLock { $0.append((who, value)) } }
        }
        timer.advanceTime(by: .milliseconds(2))
        other.run()
        #expect(Set(resumed.withLock { $0.map(\.who) }) == [0, 1, 2], "the first three")
        #expect(resumed.withLock { Set($0.map(\.value)) } == [7], "given what the share said with seven waiting")
        timer.advanceTime(by: .milliseconds(1))
        other.run()
        #expect(resumed.withLock { $0.count } == 3, "not before the interval has passed again")
        timer.advanceTime(by: .milliseconds(1))
        timer.advanceTime(by: .milliseconds(2))
        other.run()
        #expect(Set(resumed.withLock { $0.map(\.who) }) == Set(0..<7))
        #expect(resumed.withLock { $0.last(where: { $0.who == 6 })?.value } == 1, "the last alone")
    }
}
