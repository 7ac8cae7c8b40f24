@testable import LLMDCurl
import Testing

@Suite("read pacing")
struct ReadPacingTests {
    private let start = ContinuousClock.now
    private let interval = Duration.microseconds(200)

    private func at(_ microseconds: Int) -> ContinuousClock.Instant { start + .microseconds(microseconds) }

    @Test("reads further apart than the interval are never paced")
    func slowStream() {
        var pacing = ReadPacing(interval: interval)
        for round in 0..<5 {
            let started = at(round * 20_000)
            #expect(pacing.roundEnded(started: started, read: true, now: started + .microseconds(10)) == .waitForNetwork)
        }
    }

    @Test("a read within the interval of the last starts pacing: the next round starts an interval after this one")
    func fastStream() {
        var pacing = ReadPacing(interval: interval)
        #expect(pacing.roundEnded(started: at(0), read: true, now: at(10)) == .waitForNetwork)
        #expect(pacing.roundEnded(started: at(30), read: true, now: at(40)) == .readAgain(after: .microseconds(190)))
        // Paced rounds are an interval apart, which keeps pacing on while they find data.
        #expect(pacing.roundEnded(started: at(230), read: true, now: at(280)) == .readAgain(after: .microseconds(150)))
        #expect(pacing.roundEnded(started: at(430), read: true, now: at(450)) == .readAgain(after: .microseconds(180)))
    }

    @Test("a round that took the whole interval is followed at once")
    func longRound() {
        var pacing = ReadPacing(interval: interval)
        _ = pacing.roundEnded(started: at(0), read: true, now: at(10))
        #expect(pacing.roundEnded(started: at(30), read: true, now: at(500)) == .readAgain(after: .zero))
    }

    @Test("a paced round that finds nothing ends pacing; a slow read after it is not paced")
    func stopsWhenTheStreamSlows() {
        var pacing = ReadPacing(interval: interval)
        _ = pacing.roundEnded(started: at(0), read: true, now: at(10))
        #expect(pacing.roundEnded(started: at(30), read: true, now: at(40)) == .readAgain(after: .microseconds(190)))
        #expect(pacing.roundEnded(started: at(230), read: false, now: at(240)) == .waitForNetwork)
        #expect(pacing.roundEnded(started: at(50_000), read: true, now: at(50_010)) == .waitForNetwork)
        // And a burst after that paces again.
        #expect(pacing.roundEnded(started: at(50_020), read: true, now: at(50_030)) == .readAgain(after: .microseconds(190)))
    }

    @Test("an interval of zero reads whenever data comes")
    func off() {
        var pacing = ReadPacing(interval: .zero)
        #expect(pacing.roundEnded(started: at(0), read: true, now: at(1)) == .waitForNetwork)
        #expect(pacing.roundEnded(started: at(2), read: true, now: at(3)) == .waitForNetwork)
    }
}
