import LLMDCore
import LLMDMemory
import LLMDProtocol
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

    /// - Parameters:
    ///   - configured: `VocabularyDirectory=`, the only place looked in when set.
    ///   - environment: looks up `LLMD_VOCAB_DIR`, `XDG_DATA_HOME` and `HOME`.
    ///   - executable: the daemon's binary, whose `../share/llmd` is where `make install`
    ///     and `make build` put the files.
    init(
        configured: String?, environment: (String) -> String? = SocketLocation.processEnvironment,
        executable: String? = TokenCounters.executablePath, logger: Logger
    ) {
        directories = Self.searchPath(configured: configured, environment: environment, executable: executable)
        self.logger = logger
    }

    /// Where the vocabularies are looked for: `VocabularyDirectory=` alone when set; else
    /// `$LLMD_VOCAB_DIR`, `share/llmd` beside the binary's directory (an installed prefix or
    /// the build tree), the user's `$XDG_DATA_HOME/llmd`, then `/usr/local/share/llmd` and
    /// `/usr/share/llmd`, each once.
    static func searchPath(configured: String?, environment: (String) -> String?, executable: String?) -> [String] {
        if let configured { return [configured] }
        func set(_ name: String) -> String? { environment(name).flatMap { $0.isEmpty ? nil : $0 } }
        let beside = executable.map { path in
            path.split(separator: "/", omittingEmptySubsequences: false).dropLast(2).joined(separator: "/") + "/share/llmd"
        }
        let dataHome = set("XDG_DATA_HOME").flatMap { $0.hasPrefix("/") ? $0 : nil } ?? set("HOME").map { $0 + "/.local/share" }
        var seen: Set<String> = []
        return [set("LLMD_VOCAB_DIR"), beside, dataHome.map { $0 + "/llmd" }, "/usr/local/share/llmd", "/usr/share/llmd"]
            .compactMap { $0 }.filter { seen.insert($0).inserted }
    }

    /// This process's binary, symbolic links resolved.
    static var executablePath: String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard length > 0 else { return nil }
        return String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// What to do about missing vocabularies, for the log and for `tokens.count`'s reply.
    var missingVocabularyHint: String {
        "for exact counts put tiktoken's cl100k_base.tiktoken and o200k_base.tiktoken in one of these directories "
            + "(llmd's source tree fetches them: scripts/fetch-tiktoken-vocab.sh DIR) or set VocabularyDirectory= "
            + "in llmd.conf(5)"
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
                "no \(encoding.fileName) in \(directories.joined(separator: ", ")); token counts are estimates; \(missingVocabularyHint)")
        }
        return nil
    }
}
