import Foundation
import LLMDProtocol

/// A real Prometheus server (Debian's `prometheus`) in a temporary directory, scraping one
/// target every second with a bearer key, its database in that directory; stopped and
/// removed when released.
public final class PrometheusServer: @unchecked Sendable {
    public static let binary = "/usr/bin/prometheus"
    public let port: Int
    private let directory: TemporaryDirectory
    private let process: ChildProcess

    public struct StartError: Error, CustomStringConvertible {
        public var description: String
    }

    /// Starts Prometheus scraping `http://target/metrics` with `Authorization: Bearer key`.
    ///
    /// - Throws: ``StartError`` when the binary is missing (`make deps` installs it) or the
    ///   server is not ready in 30 seconds.
    public init(scraping target: String, key: String) throws {
        guard FileManager.default.isExecutableFile(atPath: Self.binary) else {
            throw StartError(
                description: "\(Self.binary) is missing: install Debian's prometheus package ('make deps' does)")
        }
        directory = try TemporaryDirectory()
        let keyFile = try directory.write("llmd.key", key)
        let config = try directory.write(
            "prometheus.yml",
            """
            global:
              scrape_interval: 1s
              scrape_timeout: 1s
            scrape_configs:
              - job_name: llmd
                authorization:
                  credentials_file: \(keyFile)
                static_configs:
                  - targets: ['\(target)']

            """)
        port = try freeLoopbackPort()
        process = try ChildProcess(
            Self.binary,
            [
                "--config.file=\(config)", "--storage.tsdb.path=\(directory.file("data"))",
                "--web.listen-address=127.0.0.1:\(port)", "--log.level=warn",
            ],
            environment: ProcessInfo.processInfo.environment.filter { !$0.key.lowercased().hasSuffix("_proxy") },
            outputPath: directory.file("prometheus.log"))
        let ready = waitUntil(timeout: .seconds(30)) {
            !process.isRunning || (try? self.get("/-/ready").status) == 200
        }
        guard ready, process.isRunning else {
            throw StartError(description: "prometheus did not start; its log:\n\(log)")
        }
    }

    public var log: String { (try? String(contentsOfFile: directory.file("prometheus.log"), encoding: .utf8)) ?? "" }

    private func get(_ path: String, query: String? = nil) throws -> (status: Int, body: String) {
        var arguments = ["-s", "-w", "\n%{http_code}", "http://127.0.0.1:\(port)\(path)"]
        if let query { arguments += ["-G", "--data-urlencode", "query=\(query)"] }
        let result = try run("/usr/bin/curl", arguments)
        let status = Int(result.standardOutput.split(separator: "\n").last ?? "") ?? -1
        return (status, String(result.standardOutput.dropLast(String(status).count + 1)))
    }

    /// An instant query through `/api/v1/query`: each series' labels and value.
    public func query(_ expression: String) throws -> [(labels: [String: String], value: Double)] {
        let (status, body) = try get("/api/v1/query", query: expression)
        guard status == 200, let answer = try JSONParser.parse(body).objectValue, answer["status"] == "success",
            let results = answer["data"]?.objectValue?["result"]?.arrayValue
        else { throw StartError(description: "query \(expression) failed (\(status)): \(body)") }
        return results.compactMap { result in
            guard let object = result.objectValue, let pair = object["value"]?.arrayValue, pair.count == 2,
                let value = pair[1].stringValue.flatMap(Double.init)
            else { return nil }
            var labels: [String: String] = [:]
            for member in object["metric"]?.objectValue ?? [:] { labels[member.key] = member.value.stringValue }
            return (labels, value)
        }
    }

    /// The value of a query answered by one series, 0 when none (a counter never incremented).
    public func value(_ expression: String) throws -> Double {
        try query(expression).first?.value ?? 0
    }

    deinit {
        process.send(signal: SIGTERM)
        if process.wait(timeout: .seconds(10)) == nil { process.send(signal: SIGKILL) }
    }
}
