/// The tiktoken encodings llmd can count with.
///
/// The raw value is tiktoken's name for the encoding, which is also the stem of its vocabulary
/// file.
public enum Encoding: String, Sendable, CaseIterable {
    /// GPT-4, GPT-3.5 Turbo and the text-embedding-3 models.
    case cl100k_base
    /// GPT-4o, GPT-4.1, GPT-5 and the o-series reasoning models.
    case o200k_base

    /// The vocabulary's file name, as tiktoken publishes it: `cl100k_base.tiktoken`.
    public var fileName: String { rawValue + ".tiktoken" }

    /// The special tokens tiktoken defines for the encoding (tiktoken_ext/openai_public.py).
    public var specialTokens: [(text: String, token: Int)] {
        switch self {
        case .cl100k_base:
            return [
                ("<|endoftext|>", 100_257), ("<|fim_prefix|>", 100_258), ("<|fim_middle|>", 100_259),
                ("<|fim_suffix|>", 100_260), ("<|endofprompt|>", 100_276),
            ]
        case .o200k_base:
            return [("<|endoftext|>", 199_999), ("<|endofprompt|>", 200_018)]
        }
    }

    /// How many ordinary tokens the vocabulary file holds: a cheap check that a file belongs
    /// to this encoding.
    var ordinaryTokenCount: Int {
        switch self {
        case .cl100k_base: return 100_256
        case .o200k_base: return 199_998
        }
    }

    /// The encoding tiktoken picks for `model`, or nil when tiktoken does not know the model
    /// or maps it to an encoding llmd does not ship (p50k_base, r50k_base, gpt2, o200k_harmony).
    ///
    /// A provider prefix such as `openai/` or `azure/` is ignored: only the last path component
    /// names the model.
    public init?(model: String) {
        let name = model.split(separator: "/", omittingEmptySubsequences: false).last.map(String.init) ?? model
        let tiktokenName =
            Self.encodingOfModel[name]
            ?? Self.encodingOfModelPrefix.first { name.hasPrefix($0.prefix) }?.encoding
        guard let tiktokenName, let encoding = Encoding(rawValue: tiktokenName) else { return nil }
        self = encoding
    }

    /// tiktoken/model.py's MODEL_TO_ENCODING, verbatim.
    private static let encodingOfModel: [String: String] = [
        // reasoning
        "o1": "o200k_base", "o3": "o200k_base", "o4-mini": "o200k_base",
        // chat
        "gpt-5": "o200k_base", "gpt-4.1": "o200k_base", "gpt-4o": "o200k_base",
        "gpt-4": "cl100k_base", "gpt-3.5-turbo": "cl100k_base", "gpt-3.5": "cl100k_base",
        "gpt-35-turbo": "cl100k_base",
        // base
        "davinci-002": "cl100k_base", "babbage-002": "cl100k_base",
        // embeddings
        "text-embedding-ada-002": "cl100k_base", "text-embedding-3-small": "cl100k_base",
        "text-embedding-3-large": "cl100k_base",
        // deprecated text, code, edit and embedding models
        "text-davinci-003": "p50k_base", "text-davinci-002": "p50k_base", "text-davinci-001": "r50k_base",
        "text-curie-001": "r50k_base", "text-babbage-001": "r50k_base", "text-ada-001": "r50k_base",
        "davinci": "r50k_base", "curie": "r50k_base", "babbage": "r50k_base", "ada": "r50k_base",
        "code-davinci-002": "p50k_base", "code-davinci-001": "p50k_base", "code-cushman-002": "p50k_base",
        "code-cushman-001": "p50k_base", "davinci-codex": "p50k_base", "cushman-codex": "p50k_base",
        "text-davinci-edit-001": "p50k_edit", "code-davinci-edit-001": "p50k_edit",
        "text-similarity-davinci-001": "r50k_base", "text-similarity-curie-001": "r50k_base",
        "text-similarity-babbage-001": "r50k_base", "text-similarity-ada-001": "r50k_base",
        "text-search-davinci-doc-001": "r50k_base", "text-search-curie-doc-001": "r50k_base",
        "text-search-babbage-doc-001": "r50k_base", "text-search-ada-doc-001": "r50k_base",
        "code-search-babbage-code-001": "r50k_base", "code-search-ada-code-001": "r50k_base",
        // open source
        "gpt2": "gpt2", "gpt-2": "gpt2",
    ]

    /// tiktoken/model.py's MODEL_PREFIX_TO_ENCODING, verbatim and in its order: the first
    /// matching prefix wins (`ft:gpt-4o` before `ft:gpt-4`).
    private static let encodingOfModelPrefix: [(prefix: String, encoding: String)] = [
        ("o1-", "o200k_base"), ("o3-", "o200k_base"), ("o4-mini-", "o200k_base"),
        // chat
        ("gpt-5", "o200k_base"), ("gpt-4.5-", "o200k_base"), ("gpt-4.1-", "o200k_base"),
        ("chatgpt-4o-", "o200k_base"), ("gpt-4o-", "o200k_base"), ("gpt-4-", "cl100k_base"),
        ("gpt-3.5-turbo-", "cl100k_base"), ("gpt-35-turbo-", "cl100k_base"), ("gpt-oss-", "o200k_harmony"),
        // fine-tuned
        ("ft:gpt-4o", "o200k_base"), ("ft:gpt-4", "cl100k_base"), ("ft:gpt-3.5-turbo", "cl100k_base"),
        ("ft:davinci-002", "cl100k_base"), ("ft:babbage-002", "cl100k_base"),
    ]
}
