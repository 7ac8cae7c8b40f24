import LLMDCore
import LLMDMemory
import LLMDTokenizer
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Token counters by model, over tokenizers loaded once per encoding on first use.
///
/// A model whose encoding is known (tiktoken's mapping, or `[Model NAME] Encoding=`) is
/// counted exactly; any other is counted with `cl100k_base` and marked inexact; without
/// vocabulary files, counts are the byte estimate, marked inexact too.
final class TokenCounters: Sendable {
    /// Where the `.tiktoken` files are looked for, first match wins.
    let directories: [String]
    private let tokenizers = Mutex<[Encoding: Tokenizer]>([:])
    private let missing = Mutex<Set<Encoding>>([])
    private let logger: Logger

    /// - Parameter configured: `VocabularyDirectory=`; else `$LLMD_VOCAB_DIR`, then
    ///   `share/llmd` beside the binary's directory (where `make install` puts them), then
    ///   `/usr/share/llmd`.
    init(configured: String?, logger: Logger) {
        if let configured {
            directories = [configured]
        } else {
            let fromEnvironment = getenv("LLMD_VOCAB_DIR").map { String(cString: $0) }.flatMap { $0.isEmpty ? nil : $0 }
            directories = (fromEnvironment.map { [$0] } ?? []) + [Self.installedDataDirectory, "/usr/share/llmd"].compactMap { $0 }
        }
        self.logger = logger
    }

    /// `PREFIX/share/llmd` for a binary in `PREFIX/bin`.
    private static var installedDataDirectory: String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard length > 0 else { return nil }
        let executable = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        let binDirectory = executable.split(separator: "/", omittingEmptySubsequences: false).dropLast()
        return binDirectory.dropLast().joined(separator: "/") + "/share/llmd"
    }

    func counter(model: String, models: [ModelConfiguration]) -> TokenCounter {
        guard let (tokenizer, isExact) = tokenizer(model: model, models: models) else { return .estimate }
        return TokenCounter(tokenizer: tokenizer, isExact: isExact)
    }

    /// The tokenizer of `model`'s encoding (`[Model NAME] Encoding=`, else tiktoken's
    /// mapping), or `cl100k_base` as a stand-in (not exact); nil without vocabularies.
    func tokenizer(model: String, models: [ModelConfiguration]) -> (Tokenizer, isExact: Bool)? {
        let configured = models.first { $0.name == model }?.encoding.flatMap(Encoding.init(rawValue:))
        if let encoding = configured ?? Encoding(model: model), let tokenizer = tokenizer(encoding) { return (tokenizer, true) }
        return tokenizer(.cl100k_base).map { ($0, false) }
    }

    func tokenizer(_ encoding: Encoding) -> Tokenizer? {
        if let loaded = tokenizers.withLock({ $0[encoding] }) { return loaded }
        if missing.withLock({ $0.contains(encoding) }) { return nil }
        for directory in directories {
            let path = directory + "/" + encoding.fileName
            guard access(path, R_OK) == 0 else { continue }
            do {
                let tokenizer = try Tokenizer(encoding: encoding, vocabularyFile: path)
                return tokenizers.withLock { loaded in
                    if let other = loaded[encoding] { return other }
                    loaded[encoding] = tokenizer
                    return tokenizer
                }
            } catch {
                logger.warning("cannot load \(path): \(error); token counts are estimates")
            }
        }
        let first = missing.withLock { $0.insert(encoding).inserted }
        if first {
            logger.warning(
                "no \(encoding.fileName) in \(directories.joined(separator: ", ")); token counts are estimates")
        }
        return nil
    }
}
