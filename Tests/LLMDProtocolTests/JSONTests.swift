import Testing

@testable import LLMDProtocol

@Suite("JSON codec")
struct JSONTests {
    @Test("parses every value kind")
    func parsesValues() throws {
        let value = try JSONParser.parse(#" {"a": [1, -2.5, 3e2, true, false, null, "x"], "b": {}} "#)
        let object = try #require(value.objectValue)
        #expect(object["a"] == [1, -2.5, 300.0, true, false, nil, "x"])
        #expect(object["b"] == .object([:]))
    }

    @Test("keeps 64-bit integers exact and falls back to doubles beyond")
    func integers() throws {
        #expect(try JSONParser.parse("9223372036854775807") == .int(Int64.max))
        #expect(try JSONParser.parse("-9223372036854775808") == .int(Int64.min))
        #expect(try JSONParser.parse("9223372036854775808") == .double(9_223_372_036_854_775_808))
        #expect(try JSONParser.parse("0") == .int(0))
        #expect(try JSONParser.parse("-0.0") == .double(-0.0))
    }

    @Test("decodes escapes, including surrogate pairs")
    func escapes() throws {
        let value = try JSONParser.parse(#""a\"b\\c\/d\b\f\n\r\t\u00e9\ud83d\ude00""#)
        #expect(value == .string("a\"b\\c/d\u{08}\u{0C}\n\r\té😀"))
    }

    @Test(
        "rejects malformed input with a byte offset",
        arguments: [
            ("", 0), ("{", 1), ("[1,]", 3), ("{\"a\":1,}", 7), ("01", 1), ("1.", 2), ("-", 1), ("tru", 0),
            ("\"abc", 4), ("\"\u{01}\"", 1), (#""\x""#, 2), (#""\ud800""#, 7), (#""\udc00""#, 7), ("1 2", 2),
            ("{1:2}", 1), ("nul", 0), ("1e", 2), ("[1 2]", 3), ("1e999", 0),
        ])
    func rejects(input: String, offset: Int) {
        #expect(throws: JSONSyntaxError.self) { try JSONParser.parse(input) }
        do {
            _ = try JSONParser.parse(input)
        } catch {
            #expect(error.offset == offset, "\(input): \(error)")
        }
    }

    @Test("reads strings whatever the offset of what ends the plain ASCII run: word-wise and byte-wise reads agree")
    func stringsAtEveryOffset() throws {
        for offset in 0..<20 {
            let before = String(repeating: "a", count: offset)
            let after = String(repeating: "b", count: 11)
            #expect(try JSONParser.parse("\"\(before)\"") == .string(before))
            #expect(try JSONParser.parse("\"\(before)\\n\(after)\"") == .string(before + "\n" + after))
            #expect(try JSONParser.parse("\"\(before)é\(after)\"") == .string(before + "é" + after))
            #expect(try JSONParser.parse("\"\(before)~\u{7F} \(after)\"") == .string(before + "~\u{7F} " + after))
            var control = false
            do { _ = try JSONParser.parse("\"\(before)\u{1F}\(after)\"") } catch { control = error.offset == offset + 1 }
            #expect(control, "a control character at \(offset)")
            let invalid = [0x22] + Array(before.utf8) + [0xFF] + Array(after.utf8) + [0x22]
            #expect(throws: JSONSyntaxError.self) { try JSONParser.parse(invalid) }
        }
    }

    @Test("rejects invalid UTF-8 inside strings")
    func invalidUTF8() {
        let bytes: [UInt8] = [0x22, 0x61, 0xC3, 0x22]  // "a<truncated é>"
        #expect(throws: JSONSyntaxError.self) { try JSONParser.parse(bytes) }
        let overlong: [UInt8] = [0x22, 0xC0, 0xAF, 0x22]
        #expect(throws: JSONSyntaxError.self) { try JSONParser.parse(overlong) }
    }

    @Test("bounds nesting depth")
    func depth() throws {
        let deep = String(repeating: "[", count: JSONParser.maximumDepth + 1)
            + String(repeating: "]", count: JSONParser.maximumDepth + 1)
        #expect(throws: JSONSyntaxError.self) { try JSONParser.parse(deep) }
        let allowed = String(repeating: "[", count: JSONParser.maximumDepth)
            + String(repeating: "]", count: JSONParser.maximumDepth)
        _ = try JSONParser.parse(allowed)
    }

    @Test("encodes compactly with escapes and keeps member order")
    func encodes() {
        let value: JSONValue = ["type": "x", "s": "q\"\\\n\u{01}é", "n": 1.5, "i": -3, "a": [true, nil]]
        #expect(value.encodedString == #"{"type":"x","s":"q\"\\\n\u0001é","n":1.5,"i":-3,"a":[true,null]}"#)
        #expect(JSONValue.double(.nan).encodedString == "null")
    }

    @Test("round-trips through encode and parse")
    func roundTrip() throws {
        let value: JSONValue = [
            "text": "line\r\n\t😀 \u{7F} \u{1F}", "big": .int(Int64.max), "small": 1e-7, "nested": [["k": [1, 2]]],
        ]
        #expect(try JSONParser.parse(value.encoded) == value)
    }

    @Test("object equality ignores order; the last duplicate key wins")
    func objects() throws {
        #expect(JSONObject(dictionaryLiteral: ("a", 1), ("b", 2)) == ["b": 2, "a": 1])
        let parsed = try #require(try JSONParser.parse(#"{"a":1,"a":2}"#).objectValue)
        #expect(parsed["a"] == 2)
        var object: JSONObject = ["a": 1]
        object["a"] = nil
        #expect(object.isEmpty)
        // Found by fuzzing: with a duplicate key, an object must still equal itself.
        let duplicated = try #require(try JSONParser.parse(#"{"usage":[1],"usage":{"n":2}}"#).objectValue)
        #expect(duplicated == duplicated)
        #expect(duplicated == ["usage": ["n": 2]])
        #expect(try JSONParser.parse(JSONValue.object(duplicated).encoded) == .object(duplicated))
    }

    @Test("reads a plain string in place, and refuses an escaped or unterminated one")
    func plainStrings() throws {
        let text = Array(#" "choices" : "a\"b" "open"#.utf8)
        try text.withUnsafeBufferPointer { bytes in
            var reader = JSONParser(bytes)
            let key = try reader.readPlainString()
            #expect(key.equals("choices"))
            #expect(!key.equals("choice") && !key.equals("choicez"))
            let colon = reader.consume(UInt8(ascii: ":"))
            #expect(colon)
            let escaped = reader
            #expect(throws: JSONSyntaxError.self) {
                var copy = escaped
                _ = try copy.readPlainString()
            }
            #expect(try reader.readString() == "a\"b")
            let unterminated = reader
            #expect(throws: JSONSyntaxError.self) {
                var copy = unterminated
                _ = try copy.readPlainString()
            }
        }
        #expect(UnsafeBufferPointer<UInt8>(start: nil, count: 0).equals(""))
    }

    @Test("byte buffers compare equal only with the same bytes, empty ones included")
    func buffersCompare() {
        let empty = UnsafeBufferPointer<UInt8>(start: nil, count: 0)
        Array("choices".utf8).withUnsafeBufferPointer { choices in
            #expect(choices.equals(choices))
            for other in ["choicez", "choice", "choices!", ""] {
                let same = Array(other.utf8).withUnsafeBufferPointer { choices.equals($0) }
                #expect(!same, "\(other)")
            }
            #expect(!empty.equals(choices))
        }
        #expect(empty.equals(empty))
    }

    @Test("skips numbers of every form to just past them, and refuses what JSON does not allow")
    func skipsNumbers() throws {
        for number in ["0", "-0", "7", "-12", "3.25", "1e5", "2E-3", "-4.5e+10", "18446744073709551616"] {
            let text = Array("\(number),".utf8)
            try text.withUnsafeBufferPointer { bytes in
                var reader = JSONParser(bytes)
                try reader.skipValue()
                #expect(reader.index == number.utf8.count, "\(number)")
                let comma = reader.consume(UInt8(ascii: ","))
                #expect(comma, "\(number)")
            }
        }
        for number in ["01", "1.", "-", "1e", "1e+", "-.5", "1.e3"] {
            Array(number.utf8).withUnsafeBufferPointer { bytes in
                let reader = JSONParser(bytes)
                #expect(throws: JSONSyntaxError.self, "\(number)") {
                    var copy = reader
                    try copy.skipValue()
                }
            }
        }
    }
}

@Suite("UTF-8 validation")
struct UTF8ValidationTests {
    private func valid(_ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBufferPointer { UTF8Validation.isValid($0) }
    }

    @Test("accepts every well-formed length, up to U+10FFFF")
    func wellFormed() {
        for text in ["a", "é", "€", "😀", "\u{10FFFF}", "\u{D7FF}", "\u{E000}", "mixed é€😀 text"] {
            #expect(valid(Array(text.utf8)), "\(text)")
        }
    }

    @Test(
        "rejects overlong forms, surrogates, values past U+10FFFF, stray and truncated bytes",
        arguments: [
            [0xC0, 0xAF], [0xC1, 0xBF], [0xE0, 0x80, 0xAF], [0xF0, 0x80, 0x80, 0xAF],  // overlong
            [0xED, 0xA0, 0x80], [0xED, 0xBF, 0xBF],  // UTF-16 surrogates
            [0xF4, 0x90, 0x80, 0x80], [0xF5, 0x80, 0x80, 0x80], [0xFF],  // beyond Unicode
            [0x80], [0xBF], [0xC3], [0xE2, 0x82], [0xF0, 0x9F, 0x98], [0xE2, 0x28, 0xA1],  // stray, truncated, bad continuation
        ] as [[UInt8]])
    func malformed(bytes: [UInt8]) {
        #expect(!valid(bytes))
        #expect(throws: JSONSyntaxError.self) { try JSONParser.parse([0x22] + bytes + [0x22]) }
    }
}
