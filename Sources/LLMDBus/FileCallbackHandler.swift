import LLMDCore
import LLMDEvents
import LLMDProtocol

#if canImport(Glibc)
import Glibc
#endif

/// LangChain's `FileCallbackHandler`, daemon-wide: the run text, or every event as one
/// NDJSON line, appended to a file that log rotation may move (it is reopened when gone).
final class FileCallbackHandler: CallbackHandler {
    private let path: String
    private let format: HandlerConfiguration.Format
    // Used only on the bus's handler queue, one event at a time.
    nonisolated(unsafe) private var descriptor: Int32 = -1
    nonisolated(unsafe) private var lastRotationCheck = ContinuousClock.now

    /// - Throws: ``FileHandlerError`` when the file cannot be opened for appending.
    init(path: String, format: HandlerConfiguration.Format) throws(FileHandlerError) {
        self.path = path
        self.format = format
        descriptor = try Self.open(path)
    }

    deinit {
        if descriptor >= 0 { close(descriptor) }
    }

    private static func open(_ path: String) throws(FileHandlerError) -> Int32 {
        let descriptor = Glibc.open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o640)
        guard descriptor >= 0 else { throw FileHandlerError(path: path, message: String(cString: strerror(errno))) }
        return descriptor
    }

    func handle(_ event: CallbackEvent) throws {
        var bytes: [UInt8] = []
        switch format {
        case .ndjson:
            event.encodeBody(into: &bytes)
            CallbackEvent.completeLine(&bytes, request: nil, subscription: nil)
        case .text:
            guard let text = LangChainText.text(for: event, color: false) else { return }
            bytes = Array(text.utf8)
        }
        // Reopen after rotation moved or removed the file; looked for once a second, not
        // on every token of an NDJSON log.
        if ContinuousClock.now - lastRotationCheck >= .seconds(1) {
            lastRotationCheck = .now
            var info = stat()
            if stat(path, &info) != 0 {
                close(descriptor)
                descriptor = try Self.open(path)
            }
        }
        let written = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
        if written != bytes.count { throw FileHandlerError(path: path, message: String(cString: strerror(errno))) }
    }
}

struct FileHandlerError: Error, CustomStringConvertible {
    var path: String
    var message: String
    var description: String { "\(path): \(message)" }
}
