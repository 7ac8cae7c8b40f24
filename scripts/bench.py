#!/usr/bin/env python3
"""llmd benchmarks for the foundation: client start-up, daemon start-up, idle memory.

Every figure is printed beside a baseline measured in the same run on the same
machine, and as a ratio to it, so the numbers travel between machines.
"""
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time

BIN = sys.argv[1]
RESULTS = sys.argv[2] if len(sys.argv) > 2 else "bench-results"
os.makedirs(RESULTS, exist_ok=True)
report = {}


def hyperfine_median(commands, runs=50):
    """Median wall time in ms of each command, run without a shell by hyperfine."""
    out = os.path.join(RESULTS, "hyperfine.json")
    subprocess.run(
        ["hyperfine", "-N", "--runs", str(runs), "--warmup", "5", "--export-json", out, "--style", "none"]
        + commands,
        check=True, stdout=subprocess.DEVNULL)
    with open(out) as f:
        return [r["median"] * 1000 for r in json.load(f)["results"]]


def start_daemon(work, notify_path=None):
    config = os.path.join(work, "llmd.conf")
    open(config, "w").close()
    sock = os.path.join(work, "llmd.sock")
    env = {k: v for k, v in os.environ.items() if k not in ("NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID")}
    if notify_path:
        env["NOTIFY_SOCKET"] = notify_path
    # State in the run's own directory: not the user's, nor, as root, /var/lib/llmd.
    state = os.path.join(work, "state")
    proc = subprocess.Popen([f"{BIN}/llmd", "--socket", sock, "--config", config, "--state-dir", state],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return proc, sock


def wait_ready(receiver):
    while True:
        data = receiver.recv(4096)
        if b"READY=1" in data.split(b"\n"):
            return


def exec_to_ready(runs=30):
    """ms from spawning llmd to its READY=1 datagram."""
    samples = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory(prefix="llmd-bench-") as work:
            path = os.path.join(work, "notify")
            receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            receiver.bind(path)
            receiver.settimeout(10)
            start = time.perf_counter()
            proc, _ = start_daemon(work, path)
            wait_ready(receiver)
            samples.append((time.perf_counter() - start) * 1000)
            proc.terminate()
            proc.wait(10)
            receiver.close()
    return statistics.median(samples), max(samples)


def spawn_baseline(runs=30):
    """ms to spawn /bin/true and reap it, the floor under any exec-to-ready figure."""
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(["/bin/true"])
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def threads(pid):
    return len(os.listdir(f"/proc/{pid}/task"))


with tempfile.TemporaryDirectory(prefix="llmd-bench-") as work:
    proc, sock = start_daemon(work)
    for _ in range(200):
        if os.path.exists(sock):
            break
        time.sleep(0.01)
    time.sleep(0.2)

    true_ms, status_ms, ping_ms = hyperfine_median(
        ["/bin/true", f"{BIN}/llmctl status --socket {sock}", f"{BIN}/llmctl ping --socket {sock}"])
    report["llmctl_status_ms"] = round(status_ms, 2)
    report["llmctl_ping_ms"] = round(ping_ms, 2)
    report["bin_true_ms"] = round(true_ms, 2)

    time.sleep(1)
    report["idle_rss_mib"] = round(rss_kib(proc.pid) / 1024, 1)
    report["idle_threads"] = threads(proc.pid)

    # Memory after 100 connected, idle clients: the per-connection cost.
    clients = []
    for _ in range(100):
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.connect(sock)
        c.recv(4096)
        clients.append(c)
    time.sleep(0.5)
    report["rss_100_clients_mib"] = round(rss_kib(proc.pid) / 1024, 1)
    for c in clients:
        c.close()
    proc.terminate()
    proc.wait(10)

ready_median, ready_max = exec_to_ready()
report["exec_to_ready_ms"] = round(ready_median, 2)
report["exec_to_ready_max_ms"] = round(ready_max, 2)
report["spawn_true_ms"] = round(spawn_baseline(), 2)

with open(os.path.join(RESULTS, "foundation.json"), "w") as f:
    json.dump(report, f, indent=2)

def row(name, value, unit, baseline=None, target=None):
    ratio = f"{value / baseline:6.2f}x" if baseline else "       "
    goal = f"target <= {target} {unit}" if target is not None else ""
    verdict = ("ok" if value <= target else "MISSED") if target is not None else ""
    print(f"  {name:<34} {value:9.2f} {unit:<4} {ratio}  {goal:<20} {verdict}")

print("llmd foundation benchmarks (medians; ratios against the baseline in the same run)")
row("/bin/true (baseline)", report["bin_true_ms"], "ms")
row("llmctl status, cold start", report["llmctl_status_ms"], "ms", report["bin_true_ms"], 5)
row("llmctl ping, cold start", report["llmctl_ping_ms"], "ms", report["bin_true_ms"])
row("spawn /bin/true (baseline)", report["spawn_true_ms"], "ms")
row("llmd exec to READY=1", report["exec_to_ready_ms"], "ms", report["spawn_true_ms"], 50)
row("llmd exec to READY=1, worst of 30", report["exec_to_ready_max_ms"], "ms")
row("llmd idle RSS", report["idle_rss_mib"], "MiB", None, 20)
row("llmd RSS with 100 idle clients", report["rss_100_clients_mib"], "MiB")
print(f"  llmd idle threads: {report['idle_threads']}")
print(f"  (raw numbers in {RESULTS}/foundation.json)")
