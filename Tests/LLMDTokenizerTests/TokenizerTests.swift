import LLMDTokenizer
import Testing

@Suite("Tokenizer against tiktoken", .enabled(if: Vocabularies.directory != nil, Vocabularies.skipReason))
struct TokenizerTests {
    @Test("encode_ordinary gives tiktoken's ids for every fixture text", arguments: Encoding.allCases)
    func ordinary(encoding: Encoding) throws {
        let tokenizer = try Vocabularies.tokenizer(encoding)
        for fixture in try ExpectedTokens.fixture().cases {
            let expected = fixture.tokens(encoding).ordinary
            #expect(tokenizer.encodeOrdinary(fixture.text) == expected, "\(fixture.name)")
            #expect(tokenizer.count(fixture.text) == expected.count, "\(fixture.name)")
        }
    }

    @Test("encode with every special token allowed gives tiktoken's ids", arguments: Encoding.allCases)
    func allSpecial(encoding: Encoding) throws {
        let tokenizer = try Vocabularies.tokenizer(encoding)
        for fixture in try ExpectedTokens.fixture().cases {
            let tokens = fixture.tokens(encoding)
            #expect(
                tokenizer.encode(fixture.text, allowedSpecial: .all) == tokens.allSpecial ?? tokens.ordinary,
                "\(fixture.name)")
        }
    }

    @Test("decoding the tokens gives back the text's bytes", arguments: Encoding.allCases)
    func roundTrip(encoding: Encoding) throws {
        let tokenizer = try Vocabularies.tokenizer(encoding)
        for fixture in try ExpectedTokens.fixture().cases {
            let bytes = Array(fixture.text.utf8)
            let ordinary = tokenizer.encodeOrdinary(fixture.text)
            let withSpecial = tokenizer.encode(fixture.text, allowedSpecial: .all)
            #expect(try tokenizer.decode(ordinary) == bytes, "\(fixture.name)")
            #expect(try tokenizer.decode(withSpecial) == bytes, "\(fixture.name)")
        }
    }

    @Test("round-trips pseudo-random text from every kind of scalar", arguments: Encoding.allCases)
    func randomRoundTrip(encoding: Encoding) throws {
        let tokenizer = try Vocabularies.tokenizer(encoding)
        let alphabet: [Unicode.Scalar] = [
            "a", "Z", "'", "s", "L", " ", "\t", "\n", "\r", "/", "7", "!", "\u{00A0}", "\u{017F}", "\u{01C5}",
            "\u{02B0}", "\u{0301}", "\u{0915}", "\u{094D}", "\u{0661}", "\u{2167}", "\u{3000}", "\u{4E2D}",
            "\u{1F469}", "\u{200D}", "\u{1F3FD}", "\u{E000}", "\u{FFFD}", "\u{10FFFD}",
        ]
        var state: UInt64 = 0x5EED
        for _ in 0..<300 {
            var text = ""
            for _ in 0..<40 {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                text.unicodeScalars.append(alphabet[Int(state >> 33) % alphabet.count])
            }
            let tokens = tokenizer.encodeOrdinary(text)
            #expect(try tokenizer.decode(tokens) == Array(text.utf8), "\(text.debugDescription)")
        }
    }

    @Test("allows only the named special tokens")
    func someSpecial() throws {
        let tokenizer = try Vocabularies.tokenizer(.cl100k_base)
        let text = "<|endoftext|><|fim_prefix|>"
        #expect(
            tokenizer.encode(text, allowedSpecial: .only(["<|endoftext|>"]))
                == [100_257] + tokenizer.encodeOrdinary("<|fim_prefix|>"))
        #expect(tokenizer.encode(text, allowedSpecial: .only([])) == tokenizer.encodeOrdinary(text))
        #expect(tokenizer.encode(text, allowedSpecial: .all) == [100_257, 100_258])
    }

    @Test("decodes special tokens and rejects unknown ids", arguments: Encoding.allCases)
    func decodeSpecial(encoding: Encoding) throws {
        let tokenizer = try Vocabularies.tokenizer(encoding)
        for special in encoding.specialTokens {
            #expect(try tokenizer.decode([special.token]) == Array(special.text.utf8))
        }
        // The first id after the ordinary tokens is not special in either encoding.
        let unknown = encoding == .cl100k_base ? 100_256 : 199_998
        #expect(throws: TokenizerError.unknownToken(unknown)) { try tokenizer.decode([0, unknown]) }
        #expect(throws: TokenizerError.unknownToken(-1)) { try tokenizer.decode([-1]) }
    }

    @Test("counts the OpenAI cookbook's example chat as tiktoken does", arguments: Encoding.allCases)
    func chat(encoding: Encoding) throws {
        let tokenizer = try Vocabularies.tokenizer(encoding)
        let chat = try ExpectedTokens.fixture().chat
        let messages = chat.messages.map { ChatMessage(role: $0.role, content: $0.content, name: $0.name) }
        #expect(tokenizer.countChat(messages) == chat.tokens[encoding.rawValue])
        #expect(tokenizer.countChat([]) == 3)
    }

    @Test("a vocabulary of the other encoding is refused")
    func mismatch() throws {
        let directory = try #require(Vocabularies.directory)
        let path = directory + "/" + Encoding.o200k_base.fileName
        #expect(throws: TokenizerError.vocabularyMismatch(path: path, encoding: .cl100k_base, tokenCount: 199_998)) {
            try Tokenizer(encoding: .cl100k_base, vocabularyFile: path)
        }
    }
}
