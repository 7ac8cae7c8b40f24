import Testing

@testable import LLMDProtocol

@Suite("Line framing")
struct LineFramerTests {
    private func frames(_ chunks: [[UInt8]], limit: Int = 16) -> [LineFramer.Frame] {
        var framer = LineFramer(maximumLineLength: limit)
        var result: [LineFramer.Frame] = []
        for chunk in chunks {
            framer.append(chunk)
            while let frame = framer.next() { result.append(frame) }
        }
        if let last = framer.finish() { result.append(last) }
        return result
    }

    private func bytes(_ string: String) -> [UInt8] { Array(string.utf8) }

    @Test("joined lines in one read come out one by one")
    func joined() {
        #expect(frames([bytes("a\nbb\nccc\n")]) == [.line(bytes("a")), .line(bytes("bb")), .line(bytes("ccc"))])
    }

    @Test("a line split at every byte boundary is reassembled")
    func splitEverywhere() {
        let input = bytes("{\"id\":1}\n{\"id\":2}\n")
        for cut in 0...input.count {
            let result = frames([Array(input[..<cut]), Array(input[cut...])], limit: 64)
            #expect(result == [.line(bytes("{\"id\":1}")), .line(bytes("{\"id\":2}"))], "cut at \(cut)")
        }
    }

    @Test("a multi-byte UTF-8 character split across reads survives")
    func partialUTF8() {
        let input = bytes("é😀\n")
        let result = frames(input.map { [$0] }, limit: 64)
        #expect(result == [.line(bytes("é😀"))])
        if case .line(let line) = result.first {
            #expect(String(validating: line, as: UTF8.self) == "é😀")
        }
    }

    @Test("CRLF is accepted and empty lines are skipped")
    func crlfAndEmpty() {
        #expect(frames([bytes("a\r\n\n\r\n\nb\n")]) == [.line(bytes("a")), .line(bytes("b"))])
    }

    @Test("a line exactly at the limit passes, one byte more is oversized")
    func limitEdges() {
        let atLimit = String(repeating: "x", count: 16)
        #expect(frames([bytes(atLimit + "\r\n")]) == [.line(bytes(atLimit))])
        #expect(frames([bytes(atLimit + "x\n")]) == [.oversized(length: 17)])
    }

    @Test("an oversized line is counted, not buffered, and the stream goes on")
    func oversizedStreaming() {
        var framer = LineFramer(maximumLineLength: 16)
        var result: [LineFramer.Frame] = []
        for _ in 0..<1000 {
            framer.append(bytes("0123456789"))
            while let frame = framer.next() { result.append(frame) }
            #expect(framer.bufferedByteCount <= 18)
        }
        framer.append(bytes("\nok\n"))
        while let frame = framer.next() { result.append(frame) }
        #expect(result == [.oversized(length: 10_000), .line(bytes("ok"))])
    }

    @Test("bytes since the last line count those held and those of an overlong line already dropped")
    func bytesSinceLastLine() {
        var framer = LineFramer(maximumLineLength: 16)
        framer.append(bytes("ab\ncdef"))
        _ = framer.next()
        #expect(framer.bytesSinceLastLine == 4)
        for _ in 0..<10 {
            framer.append(bytes("0123456789"))
            _ = framer.next()
        }
        #expect(framer.bufferedByteCount <= 18)
        #expect(framer.bytesSinceLastLine == 104)
        framer.append(bytes("\n"))
        #expect(framer.next() == .oversized(length: 104))
        #expect(framer.bytesSinceLastLine == 0)
    }

    @Test("an oversized line ending in CRLF split across reads is measured without the CR")
    func oversizedCRLF() {
        #expect(frames([bytes(String(repeating: "y", count: 40) + "\r"), bytes("\nz\n")]) == [
            .oversized(length: 40), .line(bytes("z")),
        ])
    }

    @Test("a last line without newline is returned by finish")
    func finish() {
        #expect(frames([bytes("a\nlast")]) == [.line(bytes("a")), .line(bytes("last"))])
        #expect(frames([bytes("a\n")]) == [.line(bytes("a"))])
        #expect(frames([bytes(String(repeating: "z", count: 40))]) == [.oversized(length: 40)])
    }
}
