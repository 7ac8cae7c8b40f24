import NIOCore
import NIOEmbedded
import Synchronization
import Testing

@testable import LLMDTransport

@Suite("Read pacer")
struct ReadPacerTests {
    @Test("a connection waits from 64 KiB of a line on, or from 1 KiB while all lines hold 4 MiB")
    func whoWaits() {
        #expect(!ReadPacer.mustWait(lineBytes: 64 * 1024 - 1, allLinesBytes: 0))
        #expect(ReadPacer.mustWait(lineBytes: 64 * 1024, allLinesBytes: 0))
        #expect(!ReadPacer.mustWait(lineBytes: 1023, allLinesBytes: 100 << 20))
        #expect(ReadPacer.mustWait(lineBytes: 1024, allLinesBytes: 4 << 20))
        #expect(!ReadPacer.mustWait(lineBytes: 1024, allLinesBytes: (4 << 20) - 1))
    }

    @Test("each millisecond those waiting read 256 KiB among them, in the order they came; one alone gets all of it")
    func turns() {
        let loop = EmbeddedEventLoop()
        let pacer = ReadPacer(eventLoop: loop)
        let resumed = Mutex<[(connection: Int, allowance: Int)]>([])
        for connection in 0..<20 {
            pacer.wait(on: loop) { allowance in resumed.withLock { $0.append((connection, allowance)) } }
        }
        loop.advanceTime(by: .microseconds(999))
        #expect(resumed.withLock { $0.isEmpty }, "nobody before the first turn")
        loop.advanceTime(by: .microseconds(1))
        // 20 waiting: 256 KiB shared is less than a read each, so 16 read 16 KiB.
        #expect(resumed.withLock { $0.map(\.connection) } == Array(0..<16))
        #expect(resumed.withLock { Set($0.map(\.allowance)) } == [16 << 10])
        loop.advanceTime(by: .milliseconds(1))
        // 4 left share the 256 KiB.
        #expect(resumed.withLock { $0.map(\.connection) } == Array(0..<20))
        #expect(resumed.withLock { $0.last?.allowance } == (256 << 10) / 4)
        resumed.withLock { $0.removeAll() }
        pacer.wait(on: loop) { allowance in resumed.withLock { $0.append((20, allowance)) } }
        loop.advanceTime(by: .milliseconds(1))
        #expect(resumed.withLock { $0.map(\.allowance) } == [256 << 10])
        loop.advanceTime(by: .milliseconds(5))
        #expect(resumed.withLock { $0.count } == 1, "no turn without a connection waiting")
    }
}
