import LLMDTokenizer
import Logging
import Testing

@testable import LLMDApplication

@Suite("Token counters")
struct TokenCountersTests {
    private static func environment(_ values: [String: String]) -> (String) -> String? { { values[$0] } }

    @Test("a built or installed binary looks in share/llmd beside its directory, after LLMD_VOCAB_DIR, before the system's")
    func searchPath() {
        let built = TokenCounters.searchPath(
            configured: nil, environment: Self.environment(["HOME": "/home/ann", "LLMD_VOCAB_DIR": "/tmp/v"]),
            executable: "/src/llmd/.build/x86_64-unknown-linux-gnu/release/llmd")
        #expect(
            built == [
                "/tmp/v", "/src/llmd/.build/x86_64-unknown-linux-gnu/share/llmd", "/home/ann/.local/share/llmd",
                "/usr/local/share/llmd", "/usr/share/llmd",
            ])
        let installed = TokenCounters.searchPath(
            configured: nil, environment: Self.environment(["XDG_DATA_HOME": "/data", "LLMD_VOCAB_DIR": ""]),
            executable: "/usr/local/bin/llmd")
        #expect(installed == ["/usr/local/share/llmd", "/data/llmd", "/usr/share/llmd"], "each directory once")
    }

    @Test("VocabularyDirectory= is the only place looked in; the hint names the files and the script")
    func configured() {
        let counters = TokenCounters(
            configured: "/opt/vocab", environment: Self.environment(["LLMD_VOCAB_DIR": "/tmp/v"]), executable: "/usr/bin/llmd",
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() }))
        #expect(counters.directories == ["/opt/vocab"])
        #expect(counters.missingVocabularyHint.contains("cl100k_base.tiktoken and o200k_base.tiktoken"))
        #expect(counters.missingVocabularyHint.contains("scripts/fetch-tiktoken-vocab.sh DIR"))
        #expect(counters.tokenizer(.cl100k_base) == nil)
    }
}
