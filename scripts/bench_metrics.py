#!/usr/bin/env python3
"""Scrape time of llmd's `/metrics` with 50 models x 4 providers of series.

Four providers (all the fixture server on loopback) and fifty priced models, each pair
called once, streamed, so every labelled family (requests, durations, first tokens,
tokens by kind, cost) has 200 series; then `GET /metrics` on `http.sock`, timed from the
client, with the daemon's own CPU time per scrape from its threads' counters.
"""
import json
import os
import re
import socket
import statistics
import sys
import tempfile
import time

from benchlib import Client, cpu_ns, start_daemon, start_fixture, stop_daemon

BIN = sys.argv[1]
RESULTS = sys.argv[2] if len(sys.argv) > 2 else "bench-results"
PROVIDERS, MODELS, SCRAPES = 4, 50, 200
os.makedirs(RESULTS, exist_ok=True)


def config(port, key):
    text = "[Daemon]\nDefaultProvider=p0\n"
    for p in range(PROVIDERS):
        text += f"[Provider p{p}]\nBaseURL=http://127.0.0.1:{port}/v1\nAPIKeyFile={key}\nDefaultModel=m00\n"
    for m in range(MODELS):
        text += f"[Model m{m:02d}]\nInputPrice=1\nOutputPrice=2\n"
    return text


def scrape(path):
    """One GET /metrics on a new connection, read to its Content-Length: (seconds, body)."""
    started = time.perf_counter()
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)
        sock.connect(path)
        sock.sendall(b"GET /metrics HTTP/1.1\r\nHost: llmd\r\n\r\n")
        response = b""
        while b"\r\n\r\n" not in response:
            response += sock.recv(1 << 16)
        head, _, body = response.partition(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
        while len(body) < length:
            body += sock.recv(1 << 16)
    elapsed = time.perf_counter() - started
    assert head.startswith(b"HTTP/1.1 200"), head
    return elapsed, body


fixture, port = start_fixture()
work = tempfile.mkdtemp(prefix="llmd-bench-metrics-")
key = os.path.join(work, "key")
with open(key, "w") as f:
    f.write("sk-bench-not-a-secret\n")
os.chmod(key, 0o600)
proc, sock, _, sockdir = start_daemon(BIN, work, config(port, key))
try:
    client = Client(sock)
    for p in range(PROVIDERS):
        for m in range(MODELS):
            client.call("complete", {"provider": f"p{p}", "model": f"m{m:02d}", "text": "hello", "stream": True})
    http_sock = os.path.join(sockdir, "http.sock")
    _, body = scrape(http_sock)
    lines = [line for line in body.decode().split("\n") if line and not line.startswith("#")]
    requests = [line for line in lines if line.startswith("llmd_requests_total{")]
    assert len(requests) == PROVIDERS * MODELS, f"{len(requests)} request series"
    for _ in range(10):
        scrape(http_sock)  # warm-up
    cpu_before = cpu_ns(proc.pid)
    times = [scrape(http_sock)[0] for _ in range(SCRAPES)]
    cpu_after = cpu_ns(proc.pid)
finally:
    stop_daemon(proc)
    fixture.terminate()

report = {
    "providers": PROVIDERS, "models": MODELS, "series": len(lines), "bytes": len(body),
    "scrape_median_ms": round(statistics.median(times) * 1000, 2),
    "scrape_p90_ms": round(sorted(times)[int(SCRAPES * 0.9)] * 1000, 2),
    "daemon_cpu_ms_per_scrape": round((cpu_after - cpu_before) / 1e6 / SCRAPES, 2),
}
with open(os.path.join(RESULTS, "metrics.json"), "w") as f:
    json.dump(report, f, indent=2)
print(f"llmd /metrics with {MODELS} models x {PROVIDERS} providers: {report['series']} series, {report['bytes']} bytes; "
      f"scrape {report['scrape_median_ms']} ms median, {report['scrape_p90_ms']} ms p90 (client side, {SCRAPES} scrapes); "
      f"daemon CPU {report['daemon_cpu_ms_per_scrape']} ms per scrape")
print(f"  (raw numbers in {RESULTS}/metrics.json)")
