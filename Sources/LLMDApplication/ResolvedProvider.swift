import LLMDCore
import LLMDProtocol

#if canImport(Glibc)
import Glibc
#endif

extension LoadedConfiguration {
    /// The providers a configuration yields: those configured, `openai` from
    /// `$OPENAI_API_KEY` unless configured, and the offline `fake` unless configured.
    /// Keys are read now, so a missing variable or an unreadable file is reported at start
    /// and on reload, with the line that names it.
    ///
    /// - Parameter checkingSystem: false reads no file and requires no variable.
    static func resolveProviders(
        _ configuration: DaemonConfiguration, environment: (String) -> String?, mainPath: String, checkingSystem: Bool = true
    ) -> (providers: [ResolvedProvider], defaultProvider: String, diagnostics: [ConfigDiagnostic]) {
        var providers: [ProviderConfiguration] = configuration.providers
        if !providers.contains(where: { $0.name == "openai" }), let openai = ProviderConfiguration.fromEnvironment(environment) {
            providers.append(openai)
        }
        if !providers.contains(where: { $0.name == "fake" }) { providers.append(.builtInFake) }

        var diagnostics: [ConfigDiagnostic] = []
        func location(_ provider: ProviderConfiguration, _ key: String) -> SourceLocation {
            configuration.locations["Provider \(provider.name).\(key)"] ?? SourceLocation(file: mainPath, line: 0)
        }
        let resolved = providers.map { original -> ResolvedProvider in
            guard checkingSystem else { return ResolvedProvider(configuration: original, apiKey: nil) }
            var provider = original
            if let file = provider.fakeReplyFile {
                switch readLines(file) {
                case .success(let replies): provider.fakeReplies += replies
                case .failure(let failure):
                    diagnostics.append(
                        ConfigDiagnostic(.error, at: location(provider, "ReplyFile"), "ReplyFile=\(file): \(failure.message)"))
                }
            }
            var key: APIKey?
            if let file = provider.apiKeyFile {
                let (secret, problem) = readKeyFile(file)
                key = secret.map(APIKey.init)
                if let problem {
                    diagnostics.append(ConfigDiagnostic(problem.severity, at: location(provider, "APIKeyFile"), problem.message))
                }
            } else if let variable = provider.apiKeyEnvironment {
                if let secret = environment(variable).map(\.trimmingWhitespace), !secret.isEmpty {
                    if let problem = APIKey.problem(secret) {
                        diagnostics.append(
                            ConfigDiagnostic(
                                .error, at: location(provider, "APIKeyEnvironment"),
                                "APIKeyEnvironment=\(variable): the key \(problem)"))
                    } else {
                        key = APIKey(secret)
                    }
                } else {
                    diagnostics.append(
                        ConfigDiagnostic(
                            .error, at: location(provider, "APIKeyEnvironment"),
                            "APIKeyEnvironment=\(variable): the variable is not set in llmd's environment"))
                }
            }
            return ResolvedProvider(configuration: provider, apiKey: key)
        }

        let defaultProvider = configuration.defaultProvider
            ?? (resolved.contains { $0.name == "openai" } ? "openai" : "fake")
        if !resolved.contains(where: { $0.name == defaultProvider }) {
            diagnostics.append(
                ConfigDiagnostic(
                    .error, at: configuration.locations["DefaultProvider"] ?? SourceLocation(file: mainPath, line: 0),
                    "DefaultProvider=\(defaultProvider): no such provider; known: "
                        + resolved.map(\.name).joined(separator: ", ")))
        }
        for alias in configuration.aliases {
            guard let provider = alias.provider, !resolved.contains(where: { $0.name == provider }) else { continue }
            diagnostics.append(
                ConfigDiagnostic(
                    .error,
                    at: configuration.locations["Alias \(alias.name).Provider"] ?? SourceLocation(file: mainPath, line: 0),
                    "[Alias \(alias.name)] Provider=\(provider): no such provider; known: "
                        + resolved.map(\.name).joined(separator: ", ")))
        }
        return (resolved, defaultProvider, diagnostics)
    }

    /// The non-empty lines of a text file, or why they cannot be had.
    private static func readLines(_ path: String) -> Result<[String], ReadFailure> {
        guard let file = fopen(path, "r") else { return .failure(ReadFailure(message: String(cString: strerror(errno)))) }
        defer { fclose(file) }
        var lines: [String] = []
        var buffer = [CChar](repeating: 0, count: 65536)
        while fgets(&buffer, Int32(buffer.count), file) != nil {
            var line = Substring(String(cString: buffer)).unicodeScalars
            while let last = line.last, last == "\n" || last == "\r" { line.removeLast() }
            if !line.isEmpty { lines.append(String(line)) }
        }
        return lines.isEmpty ? .failure(ReadFailure(message: "no replies in the file")) : .success(lines)
    }

    private struct ReadFailure: Error {
        var message: String
    }

    /// Reads a key file: its first line, trimmed. A file others may read is refused (no
    /// key); one its group may read is used, with a warning.
    private static func readKeyFile(_ path: String) -> (String?, (severity: ConfigDiagnostic.Severity, message: String)?) {
        func failure(_ message: String) -> (String?, (severity: ConfigDiagnostic.Severity, message: String)?) {
            (nil, (.error, "APIKeyFile=\(path): \(message)"))
        }
        var info = stat()
        guard stat(path, &info) == 0 else { return failure(String(cString: strerror(errno))) }
        let mode = String(info.st_mode & 0o777, radix: 8)
        if info.st_mode & S_IROTH != 0 {
            return failure("readable by everyone (mode \(mode)); refusing it: chmod 600 it")
        }
        guard let file = fopen(path, "r") else { return failure(String(cString: strerror(errno))) }
        defer { fclose(file) }
        var buffer = [CChar](repeating: 0, count: 4096)
        let line = fgets(&buffer, Int32(buffer.count), file) != nil ? String(cString: buffer) : ""
        let secret = line.trimmingWhitespace
        guard !secret.isEmpty else { return failure("the file is empty") }
        if let problem = APIKey.problem(secret) { return failure("the key \(problem)") }
        if info.st_mode & S_IRGRP != 0 {
            return (secret, (.warning, "APIKeyFile=\(path) is readable by its group (mode \(mode)); consider chmod 600"))
        }
        return (secret, nil)
    }
}

extension String {
    /// Without leading and trailing spaces, tabs, carriage returns and line feeds, taken
    /// as scalars: a file written on Windows ends its line in "\r\n", one Character.
    fileprivate var trimmingWhitespace: String {
        let blank: (Unicode.Scalar) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" || $0 == "\n" }
        var scalars = Substring(self).unicodeScalars
        while let last = scalars.last, blank(last) { scalars.removeLast() }
        while let first = scalars.first, blank(first) { scalars.removeFirst() }
        return String(scalars)
    }
}
