import Foundation
import LLMDTesting
import Testing

/// `make stress` in its short form: each part of scripts/stress.py, smaller, on the
/// binaries under test. It checks losses, unanswered lines and the documented bounds;
/// latencies it reports only, as debug binaries beside other tests cannot be timed.
@Suite("Stress, short form")
struct StressTests {
    @Test("bad lines, descriptor exhaustion, publish floods, partial lines, kill -9 mid-turn and a full disk: nothing lost, all answered, within bounds")
    func quick() throws {
        let script = sourceRoot + "/scripts/stress.py"
        let result = try run("/usr/bin/env", ["python3", script, binDirectory, "--quick"], timeout: .seconds(300))
        #expect(result.status == 0 && !result.signalled, "\(result.standardOutput)\n\(result.standardError)")
    }
}
