import LLMDCore
import LLMDEvents
import LLMDProtocol
import LLMDStore
import LLMDSystemd
import Logging

#if canImport(Glibc)
import Glibc
#endif

extension EventBus {
    /// The bus the configuration describes, with its daemon-wide handlers.
    ///
    /// - Parameters:
    ///   - stateDirectory: where the journal file goes, created when missing; unused
    ///     when `Journal=no`.
    ///   - verbose: add a stdout handler (`llmd --verbose`).
    /// - Throws: ``EventSetupError`` naming the file that cannot be opened.
    public static func make(
        configuration: DaemonConfiguration, stateDirectory: String, verbose: Bool, logger: Logger
    ) throws(EventSetupError) -> EventBus {
        let events = configuration.events
        var settings = EventBusSettings()
        settings.outbox = OutboxLimits(highWater: events.queueSize, stallTimeout: events.stallTimeout)
        settings.ackTimeout = events.ackTimeout
        settings.journalMaximumAge = events.journalMaximumAge
        settings.journalMaximumBytes = events.journalMaximumBytes
        settings.journalCommitDelay = events.journalCommitDelay
        var handlers: [FilteredCallbackHandler] = []
        var configured = configuration.handlers
        if verbose { configured.append(HandlerConfiguration(name: "--verbose", kind: .stdout)) }
        for handler in configured {
            let made: any CallbackHandler
            switch handler.kind {
            case .stdout:
                made = TextCallbackHandler(color: isatty(STDOUT_FILENO) == 1) { text in
                    var text = text
                    text.withUTF8 { _ = write(STDOUT_FILENO, $0.baseAddress, $0.count) }
                }
            case .journald:
                made = JournaldCallbackHandler()
            case .file:
                guard let path = handler.path else {
                    throw EventSetupError(message: "[Handler \(handler.name)]: Type=file needs Path=")
                }
                do {
                    made = try FileCallbackHandler(path: path, format: handler.format)
                } catch {
                    throw EventSetupError(message: "[Handler \(handler.name)]: cannot open \(error)")
                }
            }
            handlers.append(FilteredCallbackHandler(types: handler.handledTypes, handler: made))
        }
        var journalPath: String?
        if events.journal {
            journalPath = try privateStateFile("events.db", in: stateDirectory)
        }
        do {
            return try EventBus(settings: settings, journalPath: journalPath, handlers: handlers, logger: logger)
        } catch {
            throw EventSetupError(message: "cannot open the event journal \(journalPath ?? ""): \(error)")
        }
    }
}

extension JournalRecord.Context {
    /// `event`'s fields that the journal keeps beside its body, and filters look at.
    convenience init(_ event: CallbackEvent) {
        self.init(
            type: event.name, session: event.session, runID: event.runID, parentRunID: event.parentRunID, tags: event.tags)
    }
}

/// Why the event machinery cannot start.
public struct EventSetupError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }

    package init(message: String) {
        self.message = message
    }
}
