import LLMDStore
import Testing

@testable import LLMDBus

@Suite("Journal backlog")
struct JournalBacklogTests {
    private func records(_ seqs: ClosedRange<UInt64>, size: Int = 100) -> [JournalRecord] {
        seqs.map {
            JournalRecord(seq: $0, time: 0, type: "custom", session: nil, runID: "r", parentRunID: nil, tags: [], body: Array(repeating: 0, count: size))
        }
    }

    private mutating func publish(_ backlog: inout JournalBacklog, _ seqs: ClosedRange<UInt64>, size: Int = 100) -> Bool {
        let published = records(seqs, size: size)
        guard backlog.reserve(count: published.count, bodyBytes: published.count * size, seqs: seqs) else { return false }
        published.forEach { backlog.add($0) }
        return true
    }

    @Test("under the soft limit all is taken in; past the hard one events are left out and counted; a commit empties it")
    mutating func limits() {
        // Each record costs its 100 bytes and 64 of overhead.
        var backlog = JournalBacklog(softLimit: 1_640, hardLimit: 3_280)
        #expect(publish(&backlog, 1...9))
        #expect(!backlog.isOverSoftLimit)
        #expect(publish(&backlog, 10...10))
        #expect(backlog.isOverSoftLimit, "ten records: at the soft limit, publishers that may wait do")
        #expect(publish(&backlog, 11...20))
        #expect(!publish(&backlog, 21...21), "past the hard limit")
        #expect(!publish(&backlog, 22...25))
        #expect(backlog.bytes == 3_280)
        let batch = backlog.take()
        #expect(batch.map(\.seq) == Array(1...20))
        #expect(backlog.bytes == 0 && !backlog.isOverSoftLimit)
        #expect(publish(&backlog, 26...26))
        #expect(backlog.takeGap() == JournalBacklog.Gap(count: 5, first: 21, last: 25))
        #expect(backlog.takeGap() == nil, "announced once")
    }

    @Test("a batch that failed goes back before the newer events; past the hard limit the oldest are left out")
    mutating func putBack() {
        var backlog = JournalBacklog(softLimit: 1_000, hardLimit: 1_640)
        #expect(publish(&backlog, 1...6))
        let failed = backlog.take()
        #expect(publish(&backlog, 7...10))
        backlog.putBack(failed)
        #expect(backlog.records.map(\.seq) == Array(1...10))
        #expect(backlog.takeGap() == nil)
        #expect(publish(&backlog, 11...11) == false, "full")
        let again = backlog.take()
        #expect(publish(&backlog, 12...15))
        backlog.putBack(again)
        #expect(backlog.records.map(\.seq) == Array(5...10) + Array(12...15), "the four oldest make room")
        #expect(backlog.bytes == 10 * 164)
        let gap = backlog.takeGap()
        #expect(gap?.count == 5, "11, refused, and 1 to 4")
    }
}
