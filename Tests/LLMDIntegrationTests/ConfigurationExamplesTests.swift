import Foundation
import LLMDTesting
import Testing

/// Every configuration example the project shows loads as llmd would load it, so an
/// example cannot drift from what the daemon accepts.
@Suite("Configuration examples")
struct ConfigurationExamplesTests {
    /// Runs `llmd --check-config` on `text` as a file of its own.
    private func check(_ text: String, offline: Bool = true) throws -> (ProcessResult, path: String) {
        let directory = try TemporaryDirectory()
        let path = try directory.write("llmd.conf", text)
        let arguments = ["--check-config", "--config", path] + (offline ? ["--offline"] : [])
        return (try run(binDirectory + "/llmd", arguments), path)
    }

    private func expectLoads(_ text: String, _ origin: String, offline: Bool = true) throws {
        let (result, path) = try check(text, offline: offline)
        #expect(result.status == 0, "\(origin) does not load: \(result.standardError)")
        #expect(result.standardError.isEmpty, "\(origin) loads with warnings: \(result.standardError)")
        #expect(result.standardOutput == "\(path): configuration OK\n", "\(origin)")
    }

    @Test("README.md's, etc/llmd.conf and the man pages' configuration examples load with llmd --check-config")
    func examples() throws {
        var checked: [String] = []
        var skipped: [String] = []

        let readme = try String(contentsOfFile: sourceRoot + "/README.md", encoding: .utf8)
        for block in MarkdownBlock.all(in: readme) where block.language == "ini" {
            let origin = "README.md:\(block.line)"
            if let reason = block.skipReason {
                skipped.append("\(origin) (\(reason))")
                continue
            }
            try expectLoads(block.lines.joined(separator: "\n") + "\n", origin)
            checked.append(origin)
        }

        // The shipped example, also against this machine: it names nothing it must have.
        let example = try String(contentsOfFile: sourceRoot + "/etc/llmd.conf", encoding: .utf8)
        try expectLoads(example, "etc/llmd.conf")
        try expectLoads(example, "etc/llmd.conf", offline: false)
        checked.append("etc/llmd.conf")

        let pages = try FileManager.default.contentsOfDirectory(atPath: sourceRoot + "/man").sorted()
            .filter { $0.range(of: #"\.[1578]$"#, options: .regularExpression) != nil }
        #expect(pages.count == 4)
        for page in pages {
            for example in try ManPageExample.all(inPage: sourceRoot + "/man/" + page) {
                let origin = "\(example.page):\(example.line)" + (example.file.map { " (\($0))" } ?? "")
                if !example.otherSections.isEmpty {
                    #expect(!example.isLLMDConfiguration, "\(origin) mixes llmd.conf with \(example.otherSections)")
                    skipped.append("\(origin) (not llmd.conf: \(example.otherSections.joined(separator: ", ")))")
                    continue
                }
                try expectLoads(example.text, origin)
                checked.append(origin)
            }
        }
        print("configuration examples loaded: \(checked.joined(separator: ", "))")
        print("configuration examples not loaded: \(skipped.joined(separator: ", "))")
        #expect(checked.count >= 14, "the examples were found: \(checked)")
    }

    @Test("--offline judges the files alone: a missing group or key file is then no error, a bad value still is")
    func offline() throws {
        let text = """
            [Daemon]
            SocketGroup=no-such-group-llmd

            [Provider openai]
            APIKeyFile=/nonexistent/openai.key
            APIKeyEnvironment=LLMD_NO_SUCH_VARIABLE
            """
        #expect(try check(text, offline: false).0.status == 78)
        #expect(try check(text).0.status == 0)
        let bad = try check("[Daemon]\nMaxLineBytes=12\n").0
        #expect(bad.status == 78 && bad.standardError.contains("MaxLineBytes="))
        #expect(try run(binDirectory + "/llmd", ["--offline"]).status == 64, "only with --check-config")
    }
}
