import LLMDMetrics
import Testing

@Suite("Metric labels")
struct MetricLabelsTests {
    let labels = MetricLabels(providers: ["openai", "local"], models: ["fixture", "my-finetune"])

    @Test("configured models keep their name; built-in ones count as their family; the rest as other")
    func models() {
        #expect(labels.model("fixture") == "fixture")
        #expect(labels.model("my-finetune") == "my-finetune")
        #expect(labels.model("gpt-4o") == "gpt-4o")
        #expect(labels.model("gpt-4o-2024-08-06") == "gpt-4o", "a dated snapshot is its family")
        #expect(labels.model("gpt-4o-mini") == "gpt-4o-mini", "a longer family is not folded into a shorter one")
        #expect(labels.model("openai/gpt-4.1-nano") == "gpt-4.1-nano", "LiteLLM's provider prefix is ignored")
        #expect(labels.model("fixture/cached:4:3") == "other", "a name configuration does not know")
        #expect(labels.model("gpt-4omni") == "other", "a prefix that is not a word of the name does not match")
        #expect(labels.model("") == "other")
    }

    @Test("configured providers keep their name; any other a client names is other")
    func providers() {
        #expect(labels.provider("openai") == "openai")
        #expect(labels.provider("local") == "local")
        #expect(labels.provider("langchain-script") == "other")
    }
}
