import Testing

@testable import LLMDOpenAI
import LLMDTesting

@Suite("Server-sent events")
struct ServerSentEventParserTests {
    private func parse(_ chunks: [String], limit: Int = 1 << 20) throws -> ([ServerSentEvent], ServerSentEventParser.Remainder) {
        var parser = ServerSentEventParser(maximumEventSize: limit)
        var events: [ServerSentEvent] = []
        for chunk in chunks { try parser.parse(Array(chunk.utf8), into: &events) }
        return (events, parser.finish())
    }

    private func event(_ data: String, type: String? = nil, id: String? = nil) -> ServerSentEvent {
        ServerSentEvent(type: type, data: Array(data.utf8), lastEventID: id)
    }

    @Test("an OpenAI stream: data lines, blank-line dispatch, [DONE]")
    func openAIStream() throws {
        let (events, remainder) = try parse([
            "data: {\"a\":1}\n\n", "data: {\"b\":2}\n\n", "data: [DONE]\n\n",
        ])
        #expect(events == [event("{\"a\":1}"), event("{\"b\":2}"), event("[DONE]")])
        #expect(events.last?.isDone == true)
        #expect(remainder == .init(undispatchedData: nil, endedMidLine: false))
    }

    @Test("LF, CRLF and CR line ends, including a CRLF split across reads")
    func lineEnds() throws {
        #expect(try parse(["data: a\r\n\r\ndata: b\r\rdata: c\n\n"]).0 == [event("a"), event("b"), event("c")])
        #expect(try parse(["data: a\r", "\n\r", "\n"]).0 == [event("a")])
    }

    @Test("multi-line data joins with LF; comments, event, id and retry fields")
    func fields() throws {
        var parser = ServerSentEventParser()
        var events: [ServerSentEvent] = []
        try parser.parse(
            Array(": keep-alive\nevent: error\nid: 7\nretry: 1500\ndata: line one\ndata:line two\ndata\n\n".utf8),
            into: &events)
        #expect(events == [event("line one\nline two\n", type: "error", id: "7")])
        #expect(parser.commentCount == 1)
        #expect(parser.reconnectionTime == 1500)
    }

    @Test("the event type resets after each dispatch; the last id persists; bad retry and NUL ids are ignored")
    func resets() throws {
        let (events, _) = try parse(["event: x\nid: 1\ndata: a\n\ndata: b\n\nid: bad\u{0}id\nretry: 12s\ndata: c\n\n"])
        #expect(events == [event("a", type: "x", id: "1"), event("b", id: "1"), event("c", id: "1")])
    }

    @Test("fields without data dispatch nothing; empty data dispatches an empty event")
    func emptyData() throws {
        #expect(try parse(["event: ping\n\n"]).0.isEmpty)
        #expect(try parse(["data:\n\n"]).0 == [event("")])
    }

    @Test("a leading BOM is skipped; one elsewhere, or a false start, is content")
    func byteOrderMark() throws {
        #expect(try parse(["\u{FEFF}data: a\n\n"]).0 == [event("a")])
        var parser = ServerSentEventParser()
        var events: [ServerSentEvent] = []
        try parser.parse([0xEF, 0xBB], into: &events)
        try parser.parse(Array("data: x\n\n".utf8), into: &events)  // EF BB then "d": not a BOM
        #expect(events.isEmpty, "the field name is now EF BB 'data', which is unknown")
    }

    @Test("a stream cut mid-event reports what it received")
    func cutStream() throws {
        let (events, remainder) = try parse(["data: {\"a\":1}\n\ndata: {\"b\"", ":2}\ndata: partial"])
        #expect(events == [event("{\"a\":1}")])
        #expect(remainder.undispatchedData == Array("{\"b\":2}\npartial".utf8))
        #expect(remainder.endedMidLine)
    }

    @Test("an event beyond the size limit is an error, not unbounded buffering")
    func limit() {
        #expect(throws: ServerSentEventParser.Failure.eventTooLarge(limit: 64)) {
            try parse(["data: " + String(repeating: "x", count: 100)], limit: 64)
        }
        #expect(throws: ServerSentEventParser.Failure.eventTooLarge(limit: 64)) {
            try parse([String(repeating: "data: xxxxxxxxxx\n", count: 10) + "\n"], limit: 64)
        }
    }

    @Test("randomized: any events, any line ends, split at any points, parse back the same", arguments: 0..<40)
    func randomized(seed: UInt64) throws {
        var random = SplitMix64(state: seed)
        let alphabet = Array("ab :{}\"é😀[DONE]".unicodeScalars).map(String.init)
        var expected: [ServerSentEvent] = []
        var stream = ""
        for _ in 0..<Int.random(in: 1...12, using: &random) {
            let lineCount = Int.random(in: 1...3, using: &random)
            let lines = (0..<lineCount).map { _ in
                (0..<Int.random(in: 0...12, using: &random)).map { _ in alphabet.randomElement(using: &random)! }.joined()
            }
            let end = ["\n", "\r\n", "\r"].randomElement(using: &random)!
            if Bool.random(using: &random) { stream += ": comment" + end }
            for line in lines { stream += "data: " + line + end }
            stream += end
            expected.append(event(lines.joined(separator: "\n")))
        }
        let bytes = Array(stream.utf8)
        var cuts = (0..<Int.random(in: 0...8, using: &random)).map { _ in Int.random(in: 0...bytes.count, using: &random) }
        cuts.sort()
        var parser = ServerSentEventParser()
        var events: [ServerSentEvent] = []
        var start = 0
        for cut in cuts + [bytes.count] {
            try parser.parse(Array(bytes[start..<cut]), into: &events)
            start = cut
        }
        // A stream ending in CR may leave the CR's LF pending; either way nothing is lost.
        #expect(events == expected, "seed \(seed)")
        #expect(parser.finish().undispatchedData == nil)
    }
}
