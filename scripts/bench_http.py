#!/usr/bin/env python3
"""The OpenAI-compatible HTTP API against the protocol socket and the upstream directly.

Against the OpenAI-compatible fixture on loopback, in one run:
1. Time to first token, medians of 50 kept-alive requests: straight to the fixture,
   through llmd's protocol socket (`complete`), through llmd's HTTP API (http.sock).
2. The daemon's CPU per streamed token, from the scheduler's counters of all its threads,
   over the same number of 2,000-token streams through each of llmd's two doors: at a
   fixed 30,000 tokens/s, where the target is judged (as fan-out latency is), and flat
   out, where the Python fixture is the bottleneck and how the scheduler interleaves it
   with the daemon decides how many tokens each write carries (reported, not judged).
3. 256 concurrent streaming HTTP clients: all must get the right text; peak RSS sampled.
4. When LITELLM is the path of a `litellm` executable (`make bench-deps` installs one in
   .build/bench-venv), LiteLLM's proxy in front of the same fixture, with the same
   clients: requests per second and added latency, beside llmd's.
"""
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import concurrently, cpu_ns, start_daemon, start_fixture, stop_daemon, wait_for_path

BIN = sys.argv[1]
RESULTS = sys.argv[2] if len(sys.argv) > 2 else "bench-results"
KEY = "sk-bench-not-a-secret"
os.makedirs(RESULTS, exist_ok=True)
report = {}


class UnixHTTPConnection(http.client.HTTPConnection):
    """http.client over a Unix socket: what an httpx `uds=` transport does."""

    def __init__(self, path):
        super().__init__("llmd")
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def chat(model, content="hello", stream=True):
    return json.dumps({"model": model, "stream": stream, "messages": [{"role": "user", "content": content}]})


def first_token_ms(connection, body, headers, runs=50):
    """Median time to the first content chunk over one kept-alive connection."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        connection.request("POST", "/v1/chat/completions", body, headers)
        response = connection.getresponse()
        while True:
            line = response.readline()
            if line.startswith(b"data: {") and b'"content"' in line:
                samples.append((time.perf_counter() - start) * 1000)
                break
            if not line:
                raise RuntimeError("the stream ended before its first token")
        response.read()
    return statistics.median(samples)


def protocol_first_token_ms(sock, runs=50):
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(sock)
    lines = client.makefile("rb")
    lines.readline()  # hello
    samples = []
    for i in range(runs):
        start = time.perf_counter()
        request = {"id": i, "method": "complete", "params": {"messages": [{"role": "user", "content": "hello"}]}}
        client.sendall(json.dumps(request).encode() + b"\n")
        first = None
        while True:
            message = json.loads(lines.readline())
            if first is None and message.get("type") == "event" and message.get("event") == "llm_new_token":
                first = time.perf_counter()
            if message.get("type") in ("reply", "error") and message.get("id") == i:
                break
        samples.append((first - start) * 1000)
    client.close()
    return statistics.median(samples)


def stream_http(path, tokens, count, model=None):
    connection = UnixHTTPConnection(path)
    for _ in range(count):
        connection.request("POST", "/v1/chat/completions", chat(model or f"fixture/tokens:{tokens}"),
                           {"Content-Type": "application/json"})
        body = connection.getresponse().read()
        assert body.rstrip().endswith(b"data: [DONE]"), body[-200:]
    connection.close()


def stream_protocol(sock, tokens, count, model=None):
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(sock)
    lines = client.makefile("rb")
    lines.readline()
    for i in range(count):
        request = {"id": i, "method": "complete",
                   "params": {"model": model or f"fixture/tokens:{tokens}", "messages": [{"role": "user", "content": "x"}]}}
        client.sendall(json.dumps(request).encode() + b"\n")
        while True:
            message = json.loads(lines.readline())
            if message.get("type") in ("reply", "error") and message.get("id") == i:
                assert message["type"] == "reply", message
                break
    client.close()


def concurrent_http(path, pid, count=256, tokens=50):
    expected = "".join(f"t{i} " for i in range(tokens))
    correct = [0]
    lock = threading.Lock()
    def one(index):
        connection = UnixHTTPConnection(path)
        connection.request("POST", "/v1/chat/completions", chat(f"fixture/tokens:{tokens}", f"call {index}"),
                           {"Content-Type": "application/json"})
        text = ""
        for line in connection.getresponse().read().split(b"\n"):
            if line.startswith(b"data: {"):
                choices = json.loads(line[6:]).get("choices") or [{}]
                text += choices[0].get("delta", {}).get("content") or ""
        connection.close()
        if text == expected:
            with lock:
                correct[0] += 1

    elapsed, peak = concurrently(pid, count, one)
    return correct[0], elapsed, peak["rss_kib"]


def throughput(connect, headers, seconds=3.0, clients=8):
    """Whole (non-streamed) requests per second from `clients` kept-alive connections, and their median latency."""
    body = chat("fixture", stream=False)
    latencies = []
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds

    def one():
        connection = connect()
        mine = []
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            connection.request("POST", "/v1/chat/completions", body, headers)
            response = connection.getresponse()
            response.read()
            assert response.status == 200, response.status
            mine.append((time.perf_counter() - start) * 1000)
        connection.close()
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=one) for _ in range(clients)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if not latencies:  # a client that failed leaves none: say so rather than fail on an empty median
        raise RuntimeError("no request succeeded")
    return len(latencies) / seconds, statistics.median(latencies)


fixture, port = start_fixture()
auth = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
with tempfile.TemporaryDirectory(prefix="llmd-bench-") as work:
    key = os.path.join(work, "key")
    with open(key, "w") as f:
        f.write(KEY + "\n")
    os.chmod(key, 0o600)
    daemon, sock, _, _ = start_daemon(
        BIN, work, f"[Daemon]\nDefaultProvider=local\n[Provider local]\nBaseURL=http://127.0.0.1:{port}/v1\n"
        f"APIKeyFile={key}\nDefaultModel=fixture\n")
    http_sock = os.path.join(os.path.dirname(sock), "http.sock")
    wait_for_path(http_sock)
    try:
        report["ttft_direct_ms"] = round(first_token_ms(http.client.HTTPConnection("127.0.0.1", port), chat("fixture"), auth), 3)
        report["ttft_socket_ms"] = round(protocol_first_token_ms(sock), 3)
        report["ttft_http_ms"] = round(first_token_ms(UnixHTTPConnection(http_sock), chat("fixture"), auth), 3)
        report["ttft_http_added_ms"] = round(report["ttft_http_ms"] - report["ttft_direct_ms"], 3)

        # Alternating rounds, so drifts of the machine (frequency, other load) fall on both doors alike.
        rounds, streams, tokens = 8, 2, 2000
        stream_protocol(sock, tokens, 1)
        stream_http(http_sock, tokens, 1)
        for pace, name in ((f":{1_000_000 // 30_000}", "30k"), ("", "flat_out")):
            model = f"fixture/tokens:{tokens}{pace}"
            spent = {"socket": 0, "http": 0}
            for _ in range(rounds):
                for door, run in (("socket", lambda: stream_protocol(sock, tokens, streams, model)),
                                  ("http", lambda: stream_http(http_sock, tokens, streams, model))):
                    before = cpu_ns(daemon.pid)
                    run()
                    spent[door] += cpu_ns(daemon.pid) - before
            per_token = {door: spent[door] / 1000 / (rounds * streams * tokens) for door in spent}
            report[f"cpu_us_per_token_socket_{name}"] = round(per_token["socket"], 2)
            report[f"cpu_us_per_token_http_{name}"] = round(per_token["http"], 2)
            report[f"cpu_ratio_http_to_socket_{name}"] = round(per_token["http"] / per_token["socket"], 3)

        correct, elapsed, rss = concurrent_http(http_sock, daemon.pid)
        report["concurrent_http_correct"] = correct
        report["concurrent_http_seconds"] = round(elapsed, 2)
        report["concurrent_http_peak_rss_mib"] = round(rss / 1024, 1)

        direct_rate, direct_ms = throughput(lambda: http.client.HTTPConnection("127.0.0.1", port), auth)
        llmd_rate, llmd_ms = throughput(lambda: UnixHTTPConnection(http_sock), auth)
        report["direct_requests_per_s"], report["direct_latency_ms"] = round(direct_rate), round(direct_ms, 3)
        report["llmd_requests_per_s"], report["llmd_added_ms"] = round(llmd_rate), round(llmd_ms - direct_ms, 3)
        litellm = os.environ.get("LITELLM")
        if litellm and os.path.exists(litellm):
            lport = port + 1 if port < 65000 else port - 1
            config = os.path.join(work, "litellm.yaml")
            with open(config, "w") as f:
                f.write(f"model_list:\n  - model_name: fixture\n    litellm_params:\n      model: openai/fixture\n"
                        f"      api_base: http://127.0.0.1:{port}/v1\n      api_key: {KEY}\n")
            # The proxy wants a master key, which its clients then send: the same bearer key.
            proxy = subprocess.Popen([litellm, "--config", config, "--port", str(lport), "--num_workers", "1"],
                                     env={**os.environ, "LITELLM_MASTER_KEY": KEY},
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                for _ in range(1200):
                    try:
                        probe = http.client.HTTPConnection("127.0.0.1", lport, timeout=1)
                        probe.request("GET", "/health/liveliness")
                        if probe.getresponse().status == 200:
                            break
                    except OSError:
                        time.sleep(0.1)
                else:
                    raise RuntimeError("LiteLLM's proxy did not start within 2 minutes")
                rate, latency = throughput(lambda: http.client.HTTPConnection("127.0.0.1", lport), auth)
                report["litellm_requests_per_s"], report["litellm_added_ms"] = round(rate), round(latency - direct_ms, 3)
            finally:
                proxy.terminate()
                proxy.wait()
    finally:
        stop_daemon(daemon)
        fixture.terminate()

with open(os.path.join(RESULTS, "http.json"), "w") as f:
    json.dump(report, f, indent=2)

print("llmd's OpenAI-compatible HTTP API (fixture server on loopback; medians)")
print(f"  time to first token: {report['ttft_http_ms']} ms over HTTP, {report['ttft_socket_ms']} ms over the protocol socket, "
      f"{report['ttft_direct_ms']} ms direct; HTTP adds {report['ttft_http_added_ms']} ms (target <= 1 ms)")
print(f"  daemon CPU per streamed token at 30,000 tokens/s: {report['cpu_us_per_token_http_30k']} us over HTTP, "
      f"{report['cpu_us_per_token_socket_30k']} us over the socket, ratio {report['cpu_ratio_http_to_socket_30k']} "
      f"(target <= 1.25)")
print(f"  the same flat out (not judged): {report['cpu_us_per_token_http_flat_out']} us over HTTP, "
      f"{report['cpu_us_per_token_socket_flat_out']} us over the socket, ratio {report['cpu_ratio_http_to_socket_flat_out']}")
print(f"  256 concurrent HTTP streams: {report['concurrent_http_correct']}/256 correct in {report['concurrent_http_seconds']} s, "
      f"peak RSS {report['concurrent_http_peak_rss_mib']} MiB (target <= 150 MiB)")
print(f"  whole requests, 8 clients: {report['llmd_requests_per_s']}/s through llmd (+{report['llmd_added_ms']} ms), "
      f"{report['direct_requests_per_s']}/s direct")
if "litellm_requests_per_s" in report:
    print(f"  LiteLLM's proxy, same clients: {report['litellm_requests_per_s']}/s (+{report['litellm_added_ms']} ms); "
          f"llmd/LiteLLM throughput {report['llmd_requests_per_s'] / max(1, report['litellm_requests_per_s']):.1f}x "
          f"(target >= 10x)")
else:
    print("  LiteLLM's proxy: not measured (set LITELLM to its executable; make bench-deps installs it)")
