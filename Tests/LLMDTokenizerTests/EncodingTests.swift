import Foundation
import Testing

import LLMDTokenizer

@Suite("Encodings and vocabulary files")
struct EncodingTests {
    @Test(
        "maps models to encodings as tiktoken/model.py does",
        arguments: [
            ("gpt-4o", Encoding.o200k_base), ("gpt-4o-2024-08-06", .o200k_base), ("gpt-4o-mini", .o200k_base),
            ("chatgpt-4o-latest", .o200k_base), ("gpt-4.1", .o200k_base), ("gpt-4.1-nano", .o200k_base),
            ("gpt-4.5-preview", .o200k_base), ("gpt-5", .o200k_base), ("gpt-5-mini", .o200k_base),
            ("o1", .o200k_base), ("o1-preview", .o200k_base), ("o3", .o200k_base), ("o3-mini", .o200k_base),
            ("o4-mini", .o200k_base), ("o4-mini-2025-04-16", .o200k_base), ("ft:gpt-4o-mini:acme::abc", .o200k_base),
            ("gpt-4", .cl100k_base), ("gpt-4-0613", .cl100k_base), ("gpt-4-32k", .cl100k_base),
            ("gpt-4-turbo", .cl100k_base), ("gpt-3.5-turbo", .cl100k_base), ("gpt-3.5-turbo-0125", .cl100k_base),
            ("gpt-35-turbo-16k", .cl100k_base), ("gpt-3.5", .cl100k_base), ("text-embedding-3-small", .cl100k_base),
            ("text-embedding-3-large", .cl100k_base), ("text-embedding-ada-002", .cl100k_base),
            ("davinci-002", .cl100k_base), ("ft:gpt-4-0613:acme::abc", .cl100k_base),
            ("ft:gpt-3.5-turbo-0125:acme::abc", .cl100k_base),
            ("openai/gpt-4o", .o200k_base), ("azure/gpt-35-turbo", .cl100k_base),
            ("openrouter/openai/gpt-4.1-mini", .o200k_base),
        ] as [(String, Encoding)])
    func knownModels(model: String, encoding: Encoding) {
        #expect(Encoding(model: model) == encoding)
    }

    @Test(
        "has no encoding for unknown models or encodings llmd does not ship",
        arguments: [
            "text-davinci-003", "code-davinci-002", "davinci", "text-davinci-edit-001", "gpt2", "gpt-oss-120b",
            "claude-3-5-sonnet", "llama3", "", "GPT-4O", "openai/",
        ])
    func unknownModels(model: String) {
        #expect(Encoding(model: model) == nil)
    }

    @Test("names vocabulary files and special tokens as tiktoken does")
    func definitions() {
        #expect(Encoding.cl100k_base.fileName == "cl100k_base.tiktoken")
        #expect(Encoding.o200k_base.fileName == "o200k_base.tiktoken")
        #expect(Encoding.cl100k_base.specialTokens.map(\.token) == [100_257, 100_258, 100_259, 100_260, 100_276])
        #expect(Encoding.o200k_base.specialTokens.map(\.text) == ["<|endoftext|>", "<|endofprompt|>"])
        #expect(Encoding.o200k_base.specialTokens.map(\.token) == [199_999, 200_018])
    }

    @Test("a missing vocabulary file says where to get one")
    func missingFile() {
        let path = "/nonexistent-llmd-test/cl100k_base.tiktoken"
        #expect(throws: TokenizerError.vocabularyMissing(path: path, encoding: .cl100k_base)) {
            try Tokenizer(encoding: .cl100k_base, vocabularyFile: path)
        }
        let error = TokenizerError.vocabularyMissing(path: path, encoding: .cl100k_base)
        #expect(error.code == "tokenizer.vocabulary_missing")
        #expect(error.description.contains("scripts/fetch-tiktoken-vocab.sh"))
        #expect(error.description.contains("cl100k_base.tiktoken"))
    }

    @Test(
        "names the line of a malformed vocabulary",
        arguments: [
            ("IQ== 0\nIg== 1\nI\" 2\n", 3, "the token is not base64"),
            ("IQ== 0\n\nIg== 2\n", 3, "rank 2 where 1 was expected"),
            ("IQ==\n", 1, "no space between token and rank"),
            ("IQ== x\n", 1, "the rank is not a number"),
            ("IQ== \n", 1, "the rank is not a number"),
            (" 0\n", 1, "empty token"),
            ("IQ=A 0\n", 1, "the token is not base64"),
            ("IQ== 0\nIQ== 1\n", 2, "the same bytes as token 0"),
        ] as [(String, Int, String)])
    func malformed(contents: String, line: Int, reason: String) throws {
        let path = try temporaryFile(contents)
        defer { unlink(path) }
        let expected = TokenizerError.vocabularyMalformed(
            path: path, encoding: .cl100k_base, line: line, reason: reason)
        #expect(throws: expected) {
            try Tokenizer(encoding: .cl100k_base, vocabularyFile: path)
        }
    }

    @Test("a well-formed file of the wrong size is another encoding's")
    func wrongSize() throws {
        let path = try temporaryFile("IQ== 0\r\nIg== 1\r\n")
        defer { unlink(path) }
        #expect(throws: TokenizerError.vocabularyMismatch(path: path, encoding: .o200k_base, tokenCount: 2)) {
            try Tokenizer(encoding: .o200k_base, vocabularyFile: path)
        }
    }

    @Test("an unreadable vocabulary reports the system's reason")
    func unreadable() {
        #expect(throws: TokenizerError.vocabularyUnreadable(path: "/", reason: "Is a directory")) {
            try Tokenizer(encoding: .cl100k_base, vocabularyFile: "/")
        }
    }

    private func temporaryFile(_ contents: String) throws -> String {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("llmd-vocab-\(UUID().uuidString).tiktoken").path
        try contents.write(toFile: path, atomically: false, encoding: .utf8)
        return path
    }
}
