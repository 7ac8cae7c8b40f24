import LLMDProtocol

/// The text LangChain's `StdOutCallbackHandler` and `FileCallbackHandler` print, so a
/// `llmd --verbose` run reads like a `verbose=True` chain.
public enum LangChainText {
    /// What the handler prints for `event`, nil for events it is silent on.
    ///
    /// - Parameter color: bold headers and green text, as on a terminal.
    public static func text(for event: CallbackEvent, color: Bool) -> String? {
        func bold(_ text: String) -> String { color ? "\u{1B}[1m\(text)\u{1B}[0m" : text }
        switch event.type {
        case .chainStart:
            let name = event.data["name"]?.stringValue ?? "LLMChain"
            return "\n\n" + bold("> Entering new \(name) chain...") + "\n"
        case .chainEnd:
            return "\n" + bold("> Finished chain.") + "\n"
        case .chainError:
            let message = event.data["error"]?.objectValue?["message"]?.stringValue ?? "unknown error"
            return "\n" + bold("> Chain failed: \(message)") + "\n"
        case .text:
            let text = event.data["text"]?.stringValue ?? ""
            // LangChain's print_text: the text in the handler's colour, no newline added.
            let colored = color ? "\u{1B}[32;1m\u{1B}[1;3m\(text)\u{1B}[0m" : text
            // LLMChain's verbose prompt: its title line, the prompt in green, then a newline.
            guard let title = event.data["title"]?.stringValue else { return colored }
            return title + ":\n" + colored + "\n"
        default:
            return nil
        }
    }
}

/// Writes LangChain's text for each event: the stdout handler, and the file handler's
/// `text` format.
public struct TextCallbackHandler: CallbackHandler {
    private let write: @Sendable (String) -> Void
    private let color: Bool

    public init(color: Bool, write: @escaping @Sendable (String) -> Void) {
        self.color = color
        self.write = write
    }

    public func handle(_ event: CallbackEvent) {
        if let text = LangChainText.text(for: event, color: color) { write(text) }
    }
}

/// Passes on only the event types it was configured for.
public struct FilteredCallbackHandler: CallbackHandler {
    public let types: Set<EventType>
    public let handler: any CallbackHandler

    public init(types: Set<EventType>, handler: any CallbackHandler) {
        self.types = types
        self.handler = handler
    }

    /// The types that reach the handler: `types`, and chat-model starts when it takes them
    /// as `llm_start`.
    public var acceptedTypes: Set<EventType> {
        EventTypeMask(types).takesChatModelStartsAsLLMStarts ? types.union([.chatModelStart]) : types
    }

    public func handle(_ event: CallbackEvent) throws {
        guard let type = event.type else { return }
        if types.contains(type) {
            try handler.handle(event)
        } else if type == .chatModelStart, types.contains(.llmStart) {
            try handler.handle(event.asLLMStart)
        }
    }
}
