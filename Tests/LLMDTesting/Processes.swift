import Foundation

/// Where the built `llmd` and `llmctl` are: `$LLMD_BIN_DIR`, else beside the test bundle,
/// which `swift build --build-tests` puts in the same directory as the products.
public let binDirectory: String = {
    if let explicit = ProcessInfo.processInfo.environment["LLMD_BIN_DIR"], !explicit.isEmpty { return explicit }
    let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
    var directory = URL(fileURLWithPath: executable).deletingLastPathComponent()
    // The test runner may live inside `llmdPackageTests.xctest/` or beside it.
    while !FileManager.default.fileExists(atPath: directory.appendingPathComponent("llmd").path),
        directory.path != "/"
    {
        directory.deleteLastPathComponent()
    }
    return directory.path
}()

/// What a finished process left behind.
public struct ProcessResult: Sendable {
    public var status: Int32
    public var standardOutput: String
    public var standardError: String
    /// True when the process ended by a signal rather than exit.
    public var signalled: Bool
}

/// Runs a program to completion with a deadline, capturing its output in files.
///
/// - Parameter timeout: after this the process is killed, which the caller sees in `signalled`.
public func run(
    _ executable: String, _ arguments: [String], environment: [String: String]? = nil, timeout: Duration = .seconds(30)
) throws -> ProcessResult {
    let scratch = try TemporaryDirectory()
    let child = try ChildProcess(
        executable, arguments, environment: environment ?? ProcessInfo.processInfo.environment,
        outputPath: scratch.file("out"), errorPath: scratch.file("err"))
    var termination = child.wait(timeout: timeout)
    if termination == nil {
        child.send(signal: SIGKILL)
        termination = child.wait(timeout: .seconds(5))
    }
    let status: Int32
    let signalled: Bool
    switch termination {
    case .exited(let code)?: (status, signalled) = (code, false)
    case .signalled(let signal)?: (status, signalled) = (signal, true)
    case nil: (status, signalled) = (SIGKILL, true)
    }
    return ProcessResult(
        status: status,
        standardOutput: (try? String(contentsOfFile: scratch.file("out"), encoding: .utf8)) ?? "",
        standardError: (try? String(contentsOfFile: scratch.file("err"), encoding: .utf8)) ?? "",
        signalled: signalled)
}

/// Runs `llmctl` with the given arguments.
public func llmctl(_ arguments: [String], environment: [String: String]? = nil) throws -> ProcessResult {
    try run(binDirectory + "/llmctl", arguments, environment: environment)
}

/// Polls `condition` every few milliseconds until it holds or `timeout` passes.
public func waitUntil(timeout: Duration = .seconds(10), _ condition: () throws -> Bool) rethrows -> Bool {
    let deadline = ContinuousClock.now + timeout
    while ContinuousClock.now < deadline {
        if try condition() { return true }
        usleep(5_000)
    }
    return try condition()
}
