import Foundation

/// A directory under /tmp that is removed when the value goes away, even if a test fails.
///
/// Paths stay short on purpose: a Unix socket path must fit in 107 bytes.
public final class TemporaryDirectory: @unchecked Sendable {
    // Immutable after init; removal happens once in deinit.
    public let path: String

    public init(mode: Int = 0o700) throws {
        var template = Array("/tmp/llmd-test-XXXXXX".utf8CString)
        guard let created = mkdtemp(&template) else {
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
        path = String(cString: created)
        chmod(path, mode_t(mode))
    }

    public func file(_ name: String) -> String { path + "/" + name }

    /// Writes `text` to `name` inside the directory and returns its path.
    @discardableResult
    public func write(_ name: String, _ text: String) throws -> String {
        let target = file(name)
        try FileManager.default.createDirectory(
            atPath: (target as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try text.write(toFile: target, atomically: true, encoding: .utf8)
        return target
    }

    deinit {
        try? FileManager.default.removeItem(atPath: path)
    }
}
