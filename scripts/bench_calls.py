#!/usr/bin/env python3
"""llmd LLM-call benchmarks against the OpenAI-compatible fixture server on loopback.

1. 256 concurrent streaming calls: all must complete with the right text; the daemon's
   peak thread count and peak RSS are sampled meanwhile.
2. One 2,000-token stream with no server delay: `llmctl send` against `curl -N` straight
   to the fixture, both run by hyperfine in the same run; and the daemon's CPU time per
   token, from the scheduler's nanosecond counters of all its threads.
3. Time to first token through the daemon against a direct HTTP request, same run.
"""
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import http.client
import resource

from benchlib import concurrently, cpu_ns, start_daemon, start_fixture, stop_daemon

BIN = sys.argv[1]
RESULTS = sys.argv[2] if len(sys.argv) > 2 else "bench-results"
KEY = "sk-bench-not-a-secret"
os.makedirs(RESULTS, exist_ok=True)
report = {}


def start_llmd(work, port):
    key = os.path.join(work, "key")
    with open(key, "w") as f:
        f.write(KEY + "\n")
    os.chmod(key, 0o600)
    proc, sock, _, _ = start_daemon(
        BIN, work, f"[Daemon]\nDefaultProvider=local\n[Provider local]\nBaseURL=http://127.0.0.1:{port}/v1\n"
        f"APIKeyFile={key}\nDefaultModel=fixture\n")
    return proc, sock


class Client:
    """One connection to llmd, speaking protocol v1."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
        self.file = self.sock.makefile("rb")
        self.file.readline()  # hello

    def complete(self, request_id, params, first_token=None):
        self.sock.sendall(json.dumps({"id": request_id, "method": "complete", "params": params}).encode() + b"\n")
        while True:
            message = json.loads(self.file.readline())
            if message["type"] == "event" and first_token is not None and first_token[0] is None:
                first_token[0] = time.perf_counter()
            if message["type"] in ("reply", "error") and message.get("id") == request_id:
                return message

    def close(self):
        self.sock.close()


def concurrent_calls(sock, pid, count=256, tokens=50):
    expected = "".join(f"t{i} " for i in range(tokens))
    results = [None] * count

    def one(index):
        client = Client(sock)
        try:
            results[index] = client.complete(index, {"model": f"fixture/tokens:{tokens}", "prompt": f"call {index}"})
        finally:
            client.close()

    elapsed, peak = concurrently(pid, count, one)
    correct = sum(1 for r in results if r and r["type"] == "reply" and r["result"]["text"] == expected)
    return correct, elapsed, peak


def hyperfine(commands, runs=20):
    out = os.path.join(RESULTS, "hyperfine-calls.json")
    subprocess.run(["hyperfine", "-N", "--runs", str(runs), "--warmup", "3", "--export-json", out, "--style", "none"]
                   + commands, check=True, stdout=subprocess.DEVNULL)
    with open(out) as f:
        return [r["median"] * 1000 for r in json.load(f)["results"]]


def curl_cpu_per_token(port, work, tokens=20000):
    """CPU of `curl -N` itself receiving one long stream (startup amortised): the cost of
    merely reading the same SSE stream through libcurl on this machine, for scale."""
    body = os.path.join(work, "long.json")
    with open(body, "w") as f:
        json.dump({"model": f"fixture/tokens:{tokens}", "stream": True, "messages": [{"role": "user", "content": "x"}]}, f)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(["curl", "-sN", "-o", "/dev/null", "-H", f"Authorization: Bearer {KEY}", "--data-binary", f"@{body}",
                    f"http://127.0.0.1:{port}/v1/chat/completions"], check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) * 1e6 / tokens


def ttft_direct(port, runs=50):
    """Like llmd, a kept-alive connection, so both sides pay the same setup: none."""
    samples = []
    body = json.dumps({"model": "fixture", "stream": True, "messages": [{"role": "user", "content": "hello"}]})
    connection = http.client.HTTPConnection("127.0.0.1", port)
    for _ in range(runs):
        start = time.perf_counter()
        connection.request("POST", "/v1/chat/completions", body,
                           {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
        response = connection.getresponse()
        while True:
            line = response.readline()
            if line.startswith(b"data: {"):
                samples.append((time.perf_counter() - start) * 1000)
                break
        response.read()  # drain the rest so the connection can be reused
    connection.close()
    return statistics.median(samples)


def ttft_daemon(sock, runs=50):
    samples = []
    client = Client(sock)
    for i in range(runs):
        first = [None]
        start = time.perf_counter()
        client.complete(i, {"messages": [{"role": "user", "content": "hello"}]}, first)
        samples.append((first[0] - start) * 1000)
    client.close()
    return statistics.median(samples)


fixture, port = start_fixture()
with tempfile.TemporaryDirectory(prefix="llmd-bench-") as work:
    daemon, sock = start_llmd(work, port)
    try:
        correct, elapsed, peak = concurrent_calls(sock, daemon.pid)
        report["concurrent_calls"] = 256
        report["concurrent_correct"] = correct
        report["concurrent_seconds"] = round(elapsed, 2)
        report["peak_threads"] = peak["threads"]
        report["peak_rss_mib"] = round(peak["rss_kib"] / 1024, 1)

        body = os.path.join(work, "body.json")
        with open(body, "w") as f:
            json.dump({"model": "fixture/tokens:2000", "stream": True, "stream_options": {"include_usage": True},
                       "messages": [{"role": "user", "content": "x"}]}, f)
        cpu_before = cpu_ns(daemon.pid)
        curl_ms, llmctl_ms = hyperfine([
            f"curl -sN -H 'Authorization: Bearer {KEY}' -H 'Content-Type: application/json' "
            f"--data-binary @{body} http://127.0.0.1:{port}/v1/chat/completions",
            f"{BIN}/llmctl send --socket {sock} -m fixture/tokens:2000 x",
        ])
        cpu_after = cpu_ns(daemon.pid)
        streams = 20 + 3  # hyperfine runs plus warm-ups through llmctl
        report["stream_2000_curl_ms"] = round(curl_ms, 1)
        report["stream_2000_llmctl_ms"] = round(llmctl_ms, 1)
        report["stream_2000_ratio"] = round(llmctl_ms / curl_ms, 3)
        report["daemon_cpu_us_per_token"] = round((cpu_after - cpu_before) / 1000 / (streams * 2000), 2)
        report["curl_cpu_us_per_token"] = round(curl_cpu_per_token(port, work), 2)

        direct = ttft_direct(port)
        through = ttft_daemon(sock)
        report["ttft_direct_ms"] = round(direct, 3)
        report["ttft_daemon_ms"] = round(through, 3)
        report["ttft_added_ms"] = round(through - direct, 3)
    finally:
        stop_daemon(daemon)
        fixture.terminate()

with open(os.path.join(RESULTS, "calls.json"), "w") as f:
    json.dump(report, f, indent=2)

print("llmd LLM-call benchmarks (fixture server on loopback; medians)")
print(f"  256 concurrent streams: {report['concurrent_correct']}/256 correct in {report['concurrent_seconds']} s; "
      f"peak threads {report['peak_threads']}, peak RSS {report['peak_rss_mib']} MiB (target <= 150 MiB)")
print(f"  2,000-token stream: llmctl send {report['stream_2000_llmctl_ms']} ms vs curl -N {report['stream_2000_curl_ms']} ms, "
      f"ratio {report['stream_2000_ratio']} (target <= 1.10)")
print(f"  daemon CPU per token: {report['daemon_cpu_us_per_token']} us (target <= 5 us); "
      f"curl -N alone reading a stream: {report['curl_cpu_us_per_token']} us per token")
print(f"  time to first token: {report['ttft_daemon_ms']} ms through llmd vs {report['ttft_direct_ms']} ms direct, "
      f"added {report['ttft_added_ms']} ms (target <= 1 ms)")
print(f"  (raw numbers in {RESULTS}/calls.json)")
