#!/usr/bin/env bash
# Runs every benchmark against the release binaries in BINDIR (the Python one with the
# venv `make venv` makes, for llmd and langchain-core).
set -euo pipefail
bin=${1:?usage: bench.sh BINDIR}
cd "$(dirname "$0")/.."
python3 scripts/bench.py "$bin" bench-results
python3 scripts/bench_calls.py "$bin" bench-results
python3 scripts/bench_http.py "$bin" bench-results
python3 scripts/bench_events.py "$bin" bench-results
python3 scripts/bench_sessions.py "$bin" bench-results
python3 scripts/bench_tokenizer.py "$bin" bench-results
python3 scripts/bench_usage.py "$bin" bench-results
python3 scripts/bench_metrics.py "$bin" bench-results
.build/venv/bin/python scripts/bench_python.py "$bin" bench-results
