import LLMDMemory
import LLMDProtocol
import Testing

@testable import LLMDApplication

@Suite("Session settings")
struct SessionSettingsTests {
    @Test("changes are applied and named; parameters alone tune the current strategy; null restores defaults")
    func apply() throws {
        var settings = SessionSettings()
        #expect(try settings.apply(["memory": "window", "k": 3, "system": "Be brief."]) == ["memory", "system"])
        #expect(settings.memory == .window(k: 3))
        #expect(try settings.apply(["k": 1]) == ["memory"])
        #expect(settings.memory == .window(k: 1))
        #expect(try settings.apply(["k": .null]) == ["memory"])
        #expect(settings.memory == .window(k: 5))
        #expect(try settings.apply(["memory": "summary-buffer", "max_tokens": 300]) == ["memory"])
        #expect(try settings.apply(["memory": .null, "system": .null]) == ["memory", "system"])
        #expect(settings.memory == .buffer && settings.systemPrompt == nil)
        #expect(try settings.apply(["memory": "buffer"]).isEmpty)
    }

    @Test("bad settings name the member as the request spells it")
    func errors() {
        var settings = SessionSettings()
        for (params, field) in [
            (["k": 2] as JSONObject, "settings.k"), (["memory": "vector"], "settings.memory"),
            (["max_tokens": 0, "memory": "token-buffer"], "settings.max_tokens"), (["colour": "red"], "settings.colour"),
            (["prompt_style": "chatty"], "settings.prompt_style"),
        ] {
            do {
                _ = try settings.apply(params)
                Issue.record("\(params) was accepted")
            } catch {
                #expect(error.code == .invalidParams)
                #expect(error.detail["field"]?.stringValue == field, "\(error)")
            }
        }
        #expect(settings == SessionSettings(), "a rejected change changes nothing")
    }

    @Test("settings survive their stored JSON")
    func roundTrip() throws {
        var settings = SessionSettings()
        _ = try settings.apply([
            "provider": "local", "model": "gpt-4o", "memory": "token-buffer", "max_tokens": 900, "prompt_style": "conversation",
            "endpoint": "completions", "system": "s", "tags": ["a", "b"],
        ])
        #expect(SessionSettings(stored: settings.json) == settings)
        #expect(SessionSettings(stored: [:]) == SessionSettings())
    }
}
