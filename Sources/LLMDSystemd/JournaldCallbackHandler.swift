import LLMDEvents
import LLMDProtocol

/// Writes each event to the journal as one entry with structured fields, so
/// `journalctl LLMD_EVENT=llm_end LLMD_SESSION=work` finds them.
public struct JournaldCallbackHandler: CallbackHandler {
    public init() {}

    public func handle(_ event: CallbackEvent) {
        JournalLogHandler.send(Self.fields(for: event))
    }

    static func fields(for event: CallbackEvent) -> [String] {
        var data: [UInt8] = []
        event.data.encode(into: &data)
        var fields = [
            "MESSAGE=\(summary(of: event))",
            "PRIORITY=\(event.name.hasSuffix("_error") || event.name == "budget_exceeded" ? 3 : 6)",
            "SYSLOG_IDENTIFIER=llmd", "LLMD_EVENT=\(event.name)", "LLMD_SEQ=\(event.seq)", "LLMD_RUN_ID=\(event.runID)",
            "LLMD_DATA=\(String(decoding: data, as: UTF8.self))",
        ]
        if let session = event.session { fields.append("LLMD_SESSION=\(session)") }
        if let parent = event.parentRunID { fields.append("LLMD_PARENT_RUN_ID=\(parent)") }
        if !event.tags.isEmpty { fields.append("LLMD_TAGS=\(event.tags.joined(separator: ","))") }
        return fields
    }

    /// A one-line human summary: the event, its session and run, and what matters most in it.
    static func summary(of event: CallbackEvent) -> String {
        var parts = [event.name]
        if let session = event.session { parts.append("session=\(session)") }
        if !event.runID.isEmpty { parts.append("run=\(event.runID.prefix(8))") }
        if let model = event.data["model"]?.stringValue { parts.append("model=\(model)") }
        if let total = event.data["usage"]?.objectValue?["total_tokens"]?.intValue { parts.append("tokens=\(total)") }
        if let message = event.data["error"]?.objectValue?["message"]?.stringValue { parts.append("error=\(message)") }
        return parts.joined(separator: " ")
    }
}
