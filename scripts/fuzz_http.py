#!/usr/bin/env python3
"""Schemathesis against the live HTTP API, from docs/openapi.json, bounded in examples.

Starts llmd (BINDIR/llmd) with its TCP listener on a free loopback port and a key, runs
`schemathesis run` with every check but positive_data_acceptance (the document cannot
state the semantic rules llmd also applies, such as a session turn's final message being
the user's), and then checks that the daemon still answers. Exits non-zero on any
failure. Usage: fuzz_http.py BINDIR SCHEMATHESIS [EXAMPLES]
"""
import os
import socket
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from benchlib import start_daemon, stop_daemon  # noqa: E402

BIN, SCHEMATHESIS = sys.argv[1], sys.argv[2]
EXAMPLES = sys.argv[3] if len(sys.argv) > 3 else "100"
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

probe = socket.socket()
probe.bind(("127.0.0.1", 0))
port = probe.getsockname()[1]
probe.close()

with tempfile.TemporaryDirectory(prefix="llmd-fuzz-") as work:
    daemon, sock, _, _ = start_daemon(BIN, work, f"[HTTP]\nListen=127.0.0.1:{port}\n")
    try:
        key = subprocess.run([os.path.join(BIN, "llmctl"), "key", "create", "fuzz", "--socket", sock],
                             check=True, capture_output=True, text=True).stdout.strip()
        fuzzed = subprocess.run(
            [SCHEMATHESIS, "run", os.path.join(ROOT, "docs", "openapi.json"), "--url", f"http://127.0.0.1:{port}",
             "-H", f"Authorization: Bearer {key}", "-n", EXAMPLES, "--exclude-checks", "positive_data_acceptance"])
        alive = subprocess.run([os.path.join(BIN, "llmctl"), "ping", "--socket", sock], capture_output=True, text=True)
        if alive.returncode != 0:
            print("llmd stopped answering after the fuzzing run", file=sys.stderr)
            sys.exit(1)
    finally:
        status = stop_daemon(daemon)
    if status != 0:
        print(f"llmd exited {status} at the end", file=sys.stderr)
        sys.exit(1)
    sys.exit(fuzzed.returncode)
