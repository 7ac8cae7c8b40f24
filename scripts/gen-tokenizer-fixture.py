#!/usr/bin/env python3
"""Records what Python's tiktoken does, for LLMDTokenizer to match exactly.

Run once after changing the corpus below or upgrading tiktoken, and commit the output:

    pip install tiktoken
    scripts/fetch-tiktoken-vocab.sh .build-vocab
    scripts/gen-tokenizer-fixture.py fixture .build-vocab > Tests/Fixtures/tokenizer_expected.json
    scripts/gen-tokenizer-fixture.py scalar-classes > Sources/LLMDTokenizer/ScalarClassRuns.swift

`fixture` encodes a varied corpus with both encodings (encode_ordinary, and encode with every
special token allowed) and counts the OpenAI cookbook's example chat.

`scalar-classes` writes the Unicode character classes that tiktoken's regex engine (the Rust
regex crate, through fancy-regex) uses for \\p{L}, \\p{N}, \\s, \\p{Lu}… Those tables follow the
Unicode version of that crate, not of Python or of the Swift toolchain, so they are read from
tiktoken itself: an encoding whose pattern is one class and whose tokens are single bytes
returns exactly the bytes of the scalars in that class.
"""

import json
import sys

import tiktoken
from tiktoken.load import load_tiktoken_bpe
from tiktoken_ext import openai_public

from benchlib import Lcg

ENCODINGS = ["cl100k_base", "o200k_base"]


def load_encoding(name, vocab_dir):
    """tiktoken's own definition of `name` (pattern, special tokens), with ranks from vocab_dir."""
    definition = getattr(openai_public, name)
    original = openai_public.load_tiktoken_bpe
    openai_public.load_tiktoken_bpe = lambda _url, expected_hash=None: load_tiktoken_bpe(
        f"{vocab_dir}/{name}.tiktoken", expected_hash
    )
    try:
        return tiktoken.Encoding(**definition())
    finally:
        openai_public.load_tiktoken_bpe = original


FRAGMENTS = [
    "The quick brown fox jumps over the lazy dog. ",
    "    def encode(self, text):\n\t\treturn [t for t in text]\n",
    "I'M SURE WE'LL SEE, DON'T YOU? they've said it's 'quoted' ",
    "数据库连接失败，请稍后重试。東京は晴れです。 ",
    "مرحبا بالعالم، كيف حالك؟ ",
    "नमस्ते दुनिया, क्षत्रिय ज्ञान ",
    "👩‍💻 👍🏽 🇫🇷 ❤️‍🔥 😀😀😀 ",
    "café naïve Ærøskøbing Ångström Straße ",
    "1234567 3.14159 0x1F 1,000,000 ",
    "line one\r\nline two\n\n\nline three   \n",
    "https://example.com/a/b?c=d&e=f // comment\n",
    "{\"key\": [1, 2, 3], \"ok\": true}\n",
    "  \t  mixed \u00a0 spaces\u3000here  ",
    "ΑΒΓ αβγ Привет МИР ",
]


def mixed_text(length):
    """About `length` characters of the fragments above in a fixed shuffled order."""
    lcg = Lcg(20240611)
    parts, size = [], 0
    while size < length:
        fragment = FRAGMENTS[lcg.below(len(FRAGMENTS))]
        parts.append(fragment)
        size += len(fragment)
    return "".join(parts)


CASES = [
    ("empty", ""),
    ("ascii prose", "Hello, world! This is a test of the tokenizer; it should match tiktoken exactly."),
    ("code with indentation", "def add(a, b):\n    return a + b\n\nclass X:\n\tpass\n\t\tif x:\n\t\t\ty = 1\n"),
    ("long whitespace runs", "a" + " " * 40 + "b" + "\t" * 17 + "c" + " \t " * 9 + "\n" * 7 + "d"),
    ("trailing spaces", "trailing spaces   "),
    ("trailing newline and spaces", "end\n   "),
    ("only whitespace", " \t\n\r\n  \u00a0\u2028 "),
    ("crlf mixes", "one\r\ntwo\n\rthree\r\r\n\nfour \r\n five\t\r\n"),
    ("numbers", "1234567 12 123 1234 007 3.14 -42 1e10 ١٢٣٤٥ ⅣⅫ ²³¼ 12abc34"),
    ("contractions lower", "I'm you're he's we've they'll I'd can't 's 'll"),
    ("contractions upper", "I'M YOU'RE HE'S WE'VE THEY'LL I'D DON'T 'S 'LL 'Ve"),
    ("contraction long s", "it'ſ and IT'ſ and 'ſ"),
    ("apostrophes", "'hello' ''' ' s 'x 'sam 'rex rock'n'roll"),
    ("cjk", "数据库连接失败，请稍后重试。日本語のテキストです。한국어 텍스트입니다."),
    ("arabic", "مرحبا بالعالم! هذا اختبار للمحلل اللغوي."),
    ("hindi combining marks", "नमस्ते दुनिया। क्षत्रिय ज्ञान हिन्दी"),
    ("emoji", "Hi 👋 👩‍💻👨‍👩‍👧‍👦 👍🏽👍🏿 🇫🇷🇯🇵 ❤️‍🔥 🏳️‍🌈 😀😀😀"),
    ("accented latin", "café naïve résumé Ærøskøbing Ångström Straße ŒUVRE œuvre Ǆemal ǅemal"),
    ("combining sequences", "e\u0301 a\u0308\u0304 \u0301abc X\u0301Y \u0300\u0301 \u0301'S ABC\u0301DEF"),
    ("mixed case words", "HTTPServer getHTTPResponse XMLHttpRequest iPhone McDonald's ÉCOLE École"),
    ("punctuation runs", "!!! ??? ... --- /// \\\\\\ // /*x*/ ;;\n\n!!\r\n/ //\n/\n"),
    ("special tokens text", "Hello <|endoftext|> world <|fim_prefix|>a<|fim_middle|>b<|fim_suffix|>c<|endofprompt|>"),
    ("special token at edges", "<|endoftext|>  <|endoftext|>\n<|endoftext|>"),
    ("partial special tokens", "<|endoftext| <|endoftext <endoftext|> <|unknown|> <<|endoftext|>>"),
    ("replacement and controls", "\ufffd\ufffd \x00\x01\x1b[31m red \x7f \u200b\u200d\ufeff"),
    ("private use and noncharacters", "\ue000\uf8ff \U000f0000 \ufdd0 \uffff \U0010fffd"),
    ("unusual whitespace", "a\u1680b\u2000c\u2003d\u2009e\u202ff\u205fg\u3000h\x85i\x0bj\x0ck"),
    ("other scripts", "Ελληνικά ქართული Հայերեն ᏣᎳᎩ ꓘ ᚠᚢᚦ 𐌰𐌱𐌲 𓀀𓀁 ꦧꦱꦗꦮ"),
    ("titlecase and modifiers", "ǅ ǈ ǋ ǲ ʰʱʲ ˆˇ ᴬᴮ ꜰ"),
    ("long letter run", "supercalifragilisticexpialidocious" * 40),
    ("long digit run", "31415926535897932384626433832795028841971693993751" * 4),
    ("long mixed run", "aB3" * 300 + "x" * 1000),
    ("20 KB mixed text", mixed_text(20_000)),
]

# The OpenAI cookbook's example conversation ("How to count tokens with tiktoken").
CHAT = [
    {"role": "system", "content": "You are a helpful, pattern-following assistant that translates corporate jargon into plain English."},
    {"role": "system", "name": "example_user", "content": "New synergies will help drive top-line growth."},
    {"role": "system", "name": "example_assistant", "content": "Things working well together will increase revenue."},
    {"role": "system", "name": "example_user", "content": "Let's circle back when we have more bandwidth to touch base on opportunities for increased leverage."},
    {"role": "system", "name": "example_assistant", "content": "Let's talk later when we're less busy about how to do better."},
    {"role": "user", "content": "This late pivot means we don't have time to boil the ocean for the client deliverable."},
]


def chat_tokens(encoding, messages):
    """The cookbook's num_tokens_from_messages for gpt-3.5-turbo-0613 and later models."""
    tokens = 3  # every reply is primed with <|start|>assistant<|message|>
    for message in messages:
        tokens += 3
        for key, value in message.items():
            tokens += len(encoding.encode(value))
            if key == "name":
                tokens += 1
    return tokens


def fixture(vocab_dir):
    encodings = {name: load_encoding(name, vocab_dir) for name in ENCODINGS}
    cases = []
    for name, text in CASES:
        case = {"name": name, "text": text}
        for encoding_name, encoding in encodings.items():
            ordinary = encoding.encode_ordinary(text)
            expected = {"ordinary": ordinary}
            with_special = encoding.encode(text, allowed_special="all")
            if with_special != ordinary:
                expected["allSpecial"] = with_special
            case[encoding_name] = expected
        cases.append(case)
    return {
        "generator": "scripts/gen-tokenizer-fixture.py fixture",
        "tiktoken": tiktoken.__version__,
        "note": "allSpecial (encode with allowed_special='all') is present only where it differs from ordinary",
        "cases": cases,
        "chat": {
            "messages": CHAT,
            "tokens": {name: chat_tokens(encoding, CHAT) for name, encoding in encodings.items()},
        },
    }


# Classes in the order of ScalarClass in Sources/LLMDTokenizer/ScalarClasses.swift; later
# classes overwrite earlier ones, and every scalar not listed is class 0 (other).
SCALAR_CLASSES = [
    (1, r"\s"),
    (2, r"\p{N}"),
    (3, r"[\p{Lu}\p{Lt}]"),
    (4, r"\p{Ll}"),
    (5, r"[\p{Lm}\p{Lo}]"),
    (6, r"\p{M}"),
]


def scalar_classes():
    single_bytes = {bytes([byte]): byte for byte in range(256)}
    scalars = [s for s in range(0x110000) if not 0xD800 <= s <= 0xDFFF]
    everything = "".join(map(chr, scalars))
    classes = [0] * 0x110000
    for value, pattern in SCALAR_CLASSES:
        probe = tiktoken.Encoding(name=f"class{value}", pat_str=pattern, mergeable_ranks=single_bytes, special_tokens={})
        for char in bytes(probe.encode_ordinary(everything)).decode("utf-8"):
            classes[ord(char)] = value
    letters = tiktoken.Encoding(name="letters", pat_str=r"\p{L}", mergeable_ranks=single_bytes, special_tokens={})
    letter_count = len(bytes(letters.encode_ordinary(everything)).decode("utf-8"))
    assert letter_count == sum(1 for c in classes if c in (3, 4, 5)), "\\p{L} is not Lu|Lt|Ll|Lm|Lo"

    runs = [(0, classes[0])]
    for scalar in range(1, 0x110000):
        if classes[scalar] != classes[scalar - 1]:
            runs.append((scalar, classes[scalar]))
    words = [f"0x{start << 3 | value:08X}" for start, value in runs]
    lines = ["    " + ", ".join(words[i : i + 8]) + "," for i in range(0, len(words), 8)]
    return "\n".join(
        [
            "// Generated by `scripts/gen-tokenizer-fixture.py scalar-classes` from tiktoken "
            f"{tiktoken.__version__}; do not edit.",
            "",
            "/// The character class of every Unicode scalar as tiktoken's regex engine sees it, as runs:",
            "/// each entry is `firstScalar << 3 | ScalarClass.rawValue`, in increasing order, and holds",
            "/// until the next entry's first scalar.",
            "let scalarClassRuns: [UInt32] = [",
            *lines,
            "]",
            "",
        ]
    )


def one_case_per_line(document):
    """JSON with each case on its own line, so a change to one case is a one-line diff."""
    compact = lambda value: json.dumps(value, separators=(",", ":"))
    head = {key: value for key, value in document.items() if key != "cases"}
    lines = ["{"] + [f"{compact(key)}:{compact(value)}," for key, value in head.items()]
    lines.append('"cases":[')
    lines.append(",\n".join(compact(case) for case in document["cases"]))
    lines.append("]}")
    return "\n".join(lines) + "\n"


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "fixture":
        sys.stdout.write(one_case_per_line(fixture(sys.argv[2])))
    elif len(sys.argv) == 2 and sys.argv[1] == "scalar-classes":
        sys.stdout.write(scalar_classes())
    else:
        sys.exit(f"usage: {sys.argv[0]} fixture VOCAB_DIR | scalar-classes")


if __name__ == "__main__":
    main()
