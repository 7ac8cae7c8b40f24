import Testing

@testable import LLMDUpstream

@Suite("Offline provider's summaries")
struct FakeSummaryTests {
    /// The tail of LangChain's progressive-summary prompt, after its worked example.
    func prompt(summary: String, lines: String) -> String {
        "Progressively summarize the lines of conversation provided, adding onto the previous summary returning a new summary.\n\n"
            + "EXAMPLE\nCurrent summary:\nThe human asks.\n\nNew lines of conversation:\nHuman: Why?\nAI: Because.\n\n"
            + "New summary:\nThe human asks why.\nEND OF EXAMPLE\n\n"
            + "Current summary:\n\(summary)\n\nNew lines of conversation:\n\(lines)\n\nNew summary:"
    }

    @Test("a summarising prompt gets the previous summary plus what the human said; anything else gets none")
    func summary() {
        #expect(
            OfflineModelServer.fakeSummary(of: prompt(summary: "", lines: "Human: I want roses\nAI: [fake] You said: I want roses"))
                == "The human said \"I want roses\". The AI answered.")
        #expect(
            OfflineModelServer.fakeSummary(of: prompt(summary: "Earlier.", lines: "Human: pink"))
                == "Earlier. The human said \"pink\".")
        #expect(OfflineModelServer.fakeSummary(of: "hello") == nil)
    }
}
