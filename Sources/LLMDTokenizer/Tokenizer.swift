import Glibc

/// Which special tokens `Tokenizer.encode` recognises in text.
public enum AllowedSpecialTokens: Sendable, Hashable {
    /// All of the encoding's special tokens: tiktoken's `allowed_special="all"`.
    case all
    /// Only these, by text (`"<|endoftext|>"`); others are encoded as ordinary text.
    case only(Set<String>)
}

/// One message of a chat request, for `Tokenizer.countChat`.
public struct ChatMessage: Sendable, Hashable {
    public var role: String
    public var content: String
    /// The optional participant name (`"name"` in OpenAI's API), which costs tokens too.
    public var name: String?

    public init(role: String, content: String, name: String? = nil) {
        self.role = role
        self.content = content
        self.name = name
    }
}

/// tiktoken's byte-level BPE for one encoding, giving the same token ids as tiktoken.
///
/// Immutable once loaded, so one instance serves every thread. Loading takes tens of
/// milliseconds; keep the instance.
public final class Tokenizer: Sendable {
    public let encoding: Encoding
    private let vocabulary: Vocabulary
    private let scalarFlags: ScalarFlagTable
    private let specialTokens: [SpecialToken]

    private struct SpecialToken: Sendable {
        var text: String
        var bytes: [UInt8]
        var token: UInt32
    }

    /// Loads the encoding's vocabulary from a `.tiktoken` file such as `cl100k_base.tiktoken`.
    ///
    /// - Throws: `TokenizerError.vocabularyMissing` and the other vocabulary errors, whose
    ///   messages say where to get the file.
    public init(encoding: Encoding, vocabularyFile path: String) throws(TokenizerError) {
        self.encoding = encoding
        self.vocabulary = try Vocabulary(contentsOf: path, encoding: encoding)
        self.scalarFlags = ScalarFlagTable.shared
        self.specialTokens = encoding.specialTokens.map {
            SpecialToken(text: $0.text, bytes: Array($0.text.utf8), token: UInt32($0.token))
        }
    }

    /// The tokens of `text`, with special-token text such as `<|endoftext|>` encoded as
    /// ordinary text: tiktoken's `encode_ordinary`.
    public func encodeOrdinary(_ text: String) -> [Int] {
        var tokens = TokenList()
        encode(text, recognising: [], into: &tokens)
        return tokens.tokens
    }

    /// The tokens of `text`, with the allowed special tokens' text encoded as those tokens:
    /// tiktoken's `encode(text, allowed_special=…)`.
    ///
    /// Unlike tiktoken's `encode`, text of special tokens that are not allowed is not an
    /// error: it is encoded as ordinary text.
    public func encode(_ text: String, allowedSpecial: AllowedSpecialTokens) -> [Int] {
        var tokens = TokenList()
        encode(text, recognising: specialTokens(allowedSpecial), into: &tokens)
        return tokens.tokens
    }

    /// How many tokens `encodeOrdinary(text)` returns, without building the array.
    public func count(_ text: String) -> Int {
        var count = TokenCount()
        encode(text, recognising: [], into: &count)
        return count.count
    }

    /// The bytes of `tokens`, which are UTF-8 only when the tokens end on a character boundary.
    ///
    /// - Throws: `TokenizerError.unknownToken` for an id that is neither ordinary nor special.
    public func decode(_ tokens: [Int]) throws(TokenizerError) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(tokens.count * 4)
        for token in tokens {
            if let ordinary = vocabulary.bytes(ofToken: token) {
                bytes.append(contentsOf: ordinary)
            } else if let special = specialTokens.first(where: { Int($0.token) == token }) {
                bytes.append(contentsOf: special.bytes)
            } else {
                throw .unknownToken(token)
            }
        }
        return bytes
    }

    /// The prompt tokens a chat request uses, by the OpenAI cookbook's `num_tokens_from_messages`
    /// ("How to count tokens with tiktoken") for gpt-3.5-turbo-0613 and later models.
    ///
    /// Each message costs 3 tokens of framing plus its role, content and name (a name adds
    /// 1 more), and the reply is primed with 3. Special-token text counts as ordinary text,
    /// as the API treats it in messages.
    public func countChat(_ messages: [ChatMessage]) -> Int {
        var total = 3
        for message in messages {
            total += 3 + count(message.role) + count(message.content)
            if let name = message.name { total += count(name) + 1 }
        }
        return total
    }

    private func specialTokens(_ allowed: AllowedSpecialTokens) -> [SpecialToken] {
        switch allowed {
        case .all: return specialTokens
        case .only(let texts): return specialTokens.filter { texts.contains($0.text) }
        }
    }

    /// Encodes the text between special tokens piece by piece, and the special tokens as
    /// themselves.
    private func encode<Sink: TokenSink>(_ text: String, recognising specials: [SpecialToken], into sink: inout Sink) {
        var text = text
        text.withUTF8 { utf8 in
            guard let base = utf8.baseAddress, !utf8.isEmpty else { return }
            vocabulary.withView { vocabulary in
                scalarFlags.withView { blockOfHighBits, flags in
                    var encoder = SegmentEncoder(
                        text: base, count: utf8.count, encoding: encoding, vocabulary: vocabulary,
                        blockOfHighBits: blockOfHighBits, flags: flags)
                    var segmentStart = 0
                    while true {
                        let special = Self.firstSpecialToken(specials, in: utf8, from: segmentStart)
                        encoder.encode(from: segmentStart, to: special?.start ?? utf8.count, into: &sink)
                        guard let special else { break }
                        sink.append(special.token)
                        segmentStart = special.start + special.length
                    }
                }
            }
        }
    }

    /// The leftmost occurrence of any of `specials` at or after `start`.
    private static func firstSpecialToken(
        _ specials: [SpecialToken], in text: UnsafeBufferPointer<UInt8>, from start: Int
    ) -> (start: Int, length: Int, token: UInt32)? {
        guard !specials.isEmpty, let base = text.baseAddress else { return nil }
        var position = start
        // Every special token starts with "<|".
        while position < text.count, let found = memchr(base + position, 0x3C, text.count - position) {
            let candidate = base.distance(to: found.assumingMemoryBound(to: UInt8.self))
            for special in specials where special.bytes.count <= text.count - candidate {
                let matches = special.bytes.withUnsafeBufferPointer {
                    memcmp($0.baseAddress!, base + candidate, $0.count) == 0
                }
                if matches { return (candidate, special.bytes.count, special.token) }
            }
            position = candidate + 1
        }
        return nil
    }
}

/// Splits one stretch of text without special tokens into pieces and encodes each.
private struct SegmentEncoder {
    let text: UnsafePointer<UInt8>
    let count: Int
    let encoding: Encoding
    let vocabulary: VocabularyView
    let blockOfHighBits: UnsafePointer<UInt16>
    let flags: UnsafePointer<UInt8>
    /// Scratch for merging, kept across pieces.
    var parts: [UInt64] = []

    init(
        text: UnsafePointer<UInt8>, count: Int, encoding: Encoding, vocabulary: VocabularyView,
        blockOfHighBits: UnsafePointer<UInt16>, flags: UnsafePointer<UInt8>
    ) {
        self.text = text
        self.count = count
        self.encoding = encoding
        self.vocabulary = vocabulary
        self.blockOfHighBits = blockOfHighBits
        self.flags = flags
    }

    mutating func encode<Sink: TokenSink>(from start: Int, to end: Int, into sink: inout Sink) {
        let scanner = PieceScanner(text: text, end: end, blockOfHighBits: blockOfHighBits, flags: flags)
        var pieceStart = start
        switch encoding {
        case .cl100k_base:
            while pieceStart < end {
                let pieceEnd = scanner.cl100kPieceEnd(from: pieceStart)
                encodePiece(from: pieceStart, to: pieceEnd, into: &sink)
                pieceStart = pieceEnd
            }
        case .o200k_base:
            while pieceStart < end {
                let pieceEnd = scanner.o200kPieceEnd(from: pieceStart)
                encodePiece(from: pieceStart, to: pieceEnd, into: &sink)
                pieceStart = pieceEnd
            }
        }
    }

    /// A piece that is a token is that token (most are); the rest is merged pair by pair.
    @inline(__always)
    private mutating func encodePiece<Sink: TokenSink>(from start: Int, to end: Int, into sink: inout Sink) {
        let rank = vocabulary.rank(of: text + start, length: end - start, readable: count - start)
        if rank != noRank {
            sink.append(rank)
        } else {
            vocabulary.mergePairs(text + start, count: end - start, readable: count - start, parts: &parts, into: &sink)
        }
    }
}
