import Foundation
import LLMDTokenizer
import Testing

/// The vocabulary files the tests load, from `$LLMD_VOCAB_DIR` (the Makefile sets it to
/// `.build-vocab`, filled by scripts/fetch-tiktoken-vocab.sh).
///
/// Without the variable, the tests that need a vocabulary are skipped; with it, a missing file
/// fails them.
enum Vocabularies {
    static let directory: String? = {
        guard let directory = ProcessInfo.processInfo.environment["LLMD_VOCAB_DIR"], !directory.isEmpty else {
            return nil
        }
        return directory
    }()

    static let skipReason: Comment =
        "LLMD_VOCAB_DIR is not set: run scripts/fetch-tiktoken-vocab.sh DIR and set LLMD_VOCAB_DIR=DIR"

    /// One tokenizer per encoding for the whole test run: loading takes milliseconds, not
    /// nothing. Throws (failing the test) when the directory lacks the file.
    static func tokenizer(_ encoding: Encoding) throws -> Tokenizer {
        try #require(loaded, skipReason)[encoding]!.get()
    }

    private static let loaded: [Encoding: Result<Tokenizer, TokenizerError>]? = directory.map { directory in
        Dictionary(
            uniqueKeysWithValues: Encoding.allCases.map { encoding in
                let path = directory + "/" + encoding.fileName
                return (
                    encoding,
                    Result { () throws(TokenizerError) in try Tokenizer(encoding: encoding, vocabularyFile: path) }
                )
            })
    }
}

/// Tests/Fixtures/tokenizer_expected.json, written by scripts/gen-tokenizer-fixture.py with
/// Python's tiktoken.
struct ExpectedTokens: Decodable {
    struct Case: Decodable {
        var name: String
        var text: String
        var cl100k_base: Tokens
        var o200k_base: Tokens

        func tokens(_ encoding: Encoding) -> Tokens {
            switch encoding {
            case .cl100k_base: return cl100k_base
            case .o200k_base: return o200k_base
            }
        }
    }

    struct Tokens: Decodable {
        var ordinary: [Int]
        /// Only present where it differs from `ordinary`.
        var allSpecial: [Int]?
    }

    struct Chat: Decodable {
        struct Message: Decodable {
            var role: String
            var content: String
            var name: String?
        }

        var messages: [Message]
        var tokens: [String: Int]
    }

    var tiktoken: String
    var cases: [Case]
    var chat: Chat

    /// The fixture, read once.
    static func fixture() throws -> ExpectedTokens { try loaded.get() }

    private static let loaded = Result {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/tokenizer_expected.json")
        return try JSONDecoder().decode(ExpectedTokens.self, from: Data(contentsOf: url))
    }
}
