#!/usr/bin/env python3
"""Tokenizer throughput: LLMDTokenizer against Python's tiktoken, in the same run.

Usage: scripts/bench_tokenizer.py BINDIR [RESULTS_DIR]

BINDIR holds the release TokenizerBenchmark
(`swift build -c release --product TokenizerBenchmark`). Both sides encode the same
deterministic ~8 MB text (prose, code, CJK, emoji) with encode_ordinary on one thread, best of
REPEAT runs, vocabulary loading excluded. The token counts must agree, or the script fails.
Vocabularies come from $LLMD_VOCAB_DIR (default .build-vocab), fetched if missing.
With RESULTS_DIR, the figures are also written to RESULTS_DIR/tokenizer.json.
"""
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time

from benchlib import Lcg

REPEAT = 5
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENCODINGS = ["cl100k_base", "o200k_base"]


WORDS = (
    "the of and to in is that it was for on are as with his they at be this from have or by one had "
    "not but what all were when we there can an your which their said if do will each about how up out "
    "them then she many some so these would other into has more her two like him see time could no make "
    "than first been its who now people my made over did down only way find use may water long little "
    "very after words called just where most know tokenizer daemon throughput latency configuration "
    "Kubernetes PostgreSQL HTTP/2 JSON-RPC re-entrant well-known don't it's we'll they've I'm"
).split()
CODE_LINES = [
    "func encode(_ text: String) -> [Int] {",
    "    guard let value = table[key] else { return nil }",
    "\tfor (index, item) in items.enumerated() where item.isValid {",
    "        result.append(contentsOf: buffer[start..<end])",
    "def handle_request(self, request: dict) -> Response:",
    "    if not request.get(\"id\"):  # missing id",
    "        raise ValueError(f\"bad request: {request!r}\")",
    "    return {\"status\": 200, \"items\": [1, 2, 3], \"ok\": True}",
    "}",
    "",
    "#include <stdio.h>",
    "int main(int argc, char **argv) { printf(\"%d\\n\", argc); return 0; }",
    "SELECT id, name FROM users WHERE created_at > '2024-01-01' ORDER BY id DESC;",
    "    let timeout = Duration.milliseconds(1_500) // 1.5 s",
]
CJK_SENTENCES = [
    "数据库连接失败，请稍后重试。", "今天天气很好，我们去公园散步吧。", "東京は晴れです。明日は雨が降るでしょう。",
    "この文章はトークナイザーのテストです。", "한국어 문장도 포함되어 있습니다.", "人工智能正在改变世界。",
]
EMOJI = ["👍", "👋🏽", "👩‍💻", "🇫🇷", "❤️‍🔥", "😀", "🚀", "✅", "🎉"]
OTHER = ["Привет, как дела? ", "مرحبا بالعالم ", "नमस्ते दुनिया ", "Ελληνικά κείμενα ", "café naïve résumé "]


def benchmark_text(target_bytes=8_000_000):
    lcg = Lcg(7)
    parts, size = [], 0
    while size < target_bytes:
        kind = lcg.below(100)
        if kind < 50:
            sentence = " ".join(lcg.choice(WORDS) for _ in range(5 + lcg.below(20)))
            part = sentence[0].upper() + sentence[1:] + lcg.choice([". ", "? ", "! ", ".\n\n", ", "])
        elif kind < 80:
            part = "\n".join(lcg.choice(CODE_LINES) for _ in range(1 + lcg.below(8))) + "\n"
        elif kind < 92:
            part = "".join(lcg.choice(CJK_SENTENCES) for _ in range(1 + lcg.below(4)))
        else:
            part = lcg.choice(OTHER) + lcg.choice(EMOJI) + " "
        parts.append(part)
        size += len(part.encode("utf-8"))
    return "".join(parts)


def tiktoken_encoding(name, vocab_dir):
    import tiktoken
    from tiktoken.load import load_tiktoken_bpe
    from tiktoken_ext import openai_public

    original = openai_public.load_tiktoken_bpe
    openai_public.load_tiktoken_bpe = lambda _url, expected_hash=None: load_tiktoken_bpe(
        f"{vocab_dir}/{name}.tiktoken", expected_hash
    )
    try:
        return tiktoken.Encoding(**getattr(openai_public, name)())
    finally:
        openai_public.load_tiktoken_bpe = original


def measure_tiktoken(name, vocab_dir, text):
    encoding = tiktoken_encoding(name, vocab_dir)
    encoding.encode_ordinary("warm up")
    fastest, tokens = float("inf"), 0
    for _ in range(REPEAT):
        start = time.perf_counter()
        tokens = len(encoding.encode_ordinary(text))
        fastest = min(fastest, time.perf_counter() - start)
    return tokens, fastest


def measure_swift(bin_dir, name, vocab_dir, text_path):
    output = subprocess.run(
        [f"{bin_dir}/TokenizerBenchmark", "--vocab-dir", vocab_dir, "--encoding", name,
         "--file", text_path, "--repeat", str(REPEAT)],
        check=True, capture_output=True, text=True).stdout
    result = json.loads(output)
    return result["tokens"], result["seconds"]


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    bin_dir = sys.argv[1]
    vocab_dir = os.environ.get("LLMD_VOCAB_DIR") or os.path.join(ROOT, ".build-vocab")
    subprocess.run([os.path.join(ROOT, "scripts/fetch-tiktoken-vocab.sh"), vocab_dir], check=True)
    if importlib.util.find_spec("tiktoken") is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "tiktoken"], check=True)

    text = benchmark_text()
    size = len(text.encode("utf-8"))
    rows = []
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", suffix=".txt") as text_file:
        text_file.write(text)
        text_file.flush()
        for name in ENCODINGS:
            python_tokens, python_seconds = measure_tiktoken(name, vocab_dir, text)
            swift_tokens, swift_seconds = measure_swift(bin_dir, name, vocab_dir, text_file.name)
            if swift_tokens != python_tokens:
                sys.exit(f"{name}: LLMDTokenizer made {swift_tokens} tokens, tiktoken {python_tokens}")
            rows.append({
                "encoding": name, "bytes": size, "tokens": swift_tokens,
                "tiktoken_mb_per_s": size / python_seconds / 1e6,
                "llmd_mb_per_s": size / swift_seconds / 1e6,
                "ratio": python_seconds / swift_seconds,
            })

    print(f"tokenizer throughput, {size / 1e6:.1f} MB mixed text, one thread, best of {REPEAT}")
    print(f"{'encoding':<12} {'tokens':>10} {'tiktoken MB/s':>14} {'llmd MB/s':>10} {'llmd/tiktoken':>14}")
    for row in rows:
        print(f"{row['encoding']:<12} {row['tokens']:>10} {row['tiktoken_mb_per_s']:>14.1f} "
              f"{row['llmd_mb_per_s']:>10.1f} {row['ratio']:>13.2f}x")
    if len(sys.argv) == 3:
        os.makedirs(sys.argv[2], exist_ok=True)
        with open(os.path.join(sys.argv[2], "tokenizer.json"), "w") as out:
            json.dump(rows, out, indent=2)


if __name__ == "__main__":
    main()
