import Logging
import Testing

@testable import LLMDSystemd

#if canImport(Glibc)
import Glibc
#endif

@Suite("Journal log handler")
struct JournalLogHandlerTests {
    @Test("metadata keys become valid journal field names")
    func fieldNames() {
        #expect(JournalLogHandler.fieldName("peer_uid") == "PEER_UID")
        #expect(JournalLogHandler.fieldName("request-id.v2") == "REQUEST_ID_V2")
    }

    @Test("log levels map to syslog priorities")
    func priorities() {
        let expected: [(Logger.Level, Int)] = [
            (.trace, 7), (.debug, 7), (.info, 6), (.notice, 5), (.warning, 4), (.error, 3), (.critical, 2),
        ]
        for (level, priority) in expected {
            #expect(JournalLogHandler.syslogPriority(level) == priority)
        }
    }

    @Test("the journal is used only when $JOURNAL_STREAM names the very stream stderr is")
    func journalStreamDetection() throws {
        var pipeEnds: [Int32] = [0, 0]
        #expect(pipe(&pipeEnds) == 0)
        defer { pipeEnds.forEach { close($0) } }
        var info = stat()
        #expect(fstat(pipeEnds[1], &info) == 0)
        let matching = "\(info.st_dev):\(info.st_ino)"
        #expect(JournalLogHandler.isJournal(descriptor: pipeEnds[1], journalStream: matching))
        #expect(!JournalLogHandler.isJournal(descriptor: pipeEnds[1], journalStream: "\(info.st_dev):\(info.st_ino + 1)"))
        #expect(!JournalLogHandler.isJournal(descriptor: pipeEnds[1], journalStream: nil))
        #expect(!JournalLogHandler.isJournal(descriptor: pipeEnds[1], journalStream: "garbage"))
    }
}
