import Foundation
import LLMDProtocol

/// The OpenAI-compatible fixture server (Tests/Fixtures/openai_fixture.py) on a free
/// loopback port, stopped when the value goes away.
public final class FixtureServer: @unchecked Sendable {
    // Set once in init; only read afterwards.
    public let port: Int
    private let process: ChildProcess
    private let directory: TemporaryDirectory

    public static let scriptPath = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/openai_fixture.py").path

    public struct StartError: Error, CustomStringConvertible {
        public var description: String
    }

    public init() throws {
        directory = try TemporaryDirectory()
        let output = directory.file("fixture.log")
        let process = try ChildProcess(
            "/usr/bin/env", ["python3", Self.scriptPath], environment: ProcessInfo.processInfo.environment,
            outputPath: output)
        self.process = process
        var found: Int?
        _ = waitUntil(timeout: .seconds(20)) {
            let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
            if let line = text.split(separator: "\n").first(where: { $0.hasPrefix("listening on ") }) {
                found = Int(line.dropFirst("listening on ".count))
            }
            return found != nil || !process.isRunning
        }
        guard let found else {
            throw StartError(description: "fixture did not start: \((try? String(contentsOfFile: output, encoding: .utf8)) ?? "")")
        }
        port = found
    }

    /// `http://127.0.0.1:PORT/v1`, what a provider's base URL would be.
    public var baseURL: String { "http://127.0.0.1:\(port)/v1" }

    /// llmd.conf text whose default provider `local` is this fixture, its key `secret` in a
    /// private file in `keys`; `extra` follows the provider's keys.
    public func config(keys: TemporaryDirectory, secret: String = "sk-test-fixture", extra: String = "") throws -> String {
        let keyFile = try keys.write("key", secret + "\n")
        chmod(keyFile, 0o600)
        return """
            [Daemon]
            DefaultProvider=local

            [Provider local]
            BaseURL=\(baseURL)
            APIKeyFile=\(keyFile)
            DefaultModel=fixture
            RetryBackoffSec=20ms
            \(extra)
            """
    }

    /// Every request the fixture has seen, as it logged them.
    public func requestLog() throws -> [JSONObject] {
        let body = try httpGet("/_fixture/log")
        return try JSONParser.parse(body).arrayValue?.compactMap(\.objectValue) ?? []
    }

    /// A minimal HTTP/1.0 GET over a plain socket, so observing the fixture does not
    /// depend on the HTTP client under test.
    private func httpGet(_ path: String) throws -> [UInt8] {
        let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(descriptor) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        let request = Array("GET \(path) HTTP/1.0\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { send(descriptor, $0.baseAddress, $0.count, 0) }
        var response: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if count <= 0 { break }
            response += buffer[0..<count]
        }
        let separator: [UInt8] = [13, 10, 13, 10]
        guard let start = (0...(response.count - 4)).first(where: { Array(response[$0..<($0 + 4)]) == separator }) else {
            return []
        }
        return Array(response[(start + 4)...])
    }
}
