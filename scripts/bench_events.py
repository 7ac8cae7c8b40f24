#!/usr/bin/env python3
"""llmd event fan-out against Redis pub/sub, measured in the same run.

1. Fan-out, the issue's measure: one session turn streams TOKENS tokens from an
   OpenAI-compatible fixture server with no delay between them, as fast as it is read,
   to 1, 16 and 256 subscribers. Measured: events delivered per second (all subscribers
   together) and the latency from the daemon receiving a token (the event's `ts`) to a
   subscriber reading it, p50 and p99 over every event delivered.
   Baseline: the same fixture stream relayed into redis-server (Unix socket) by a C relay
   that stamps each token on arrival and PUBLISHes it at once, padded to the size of
   llmd's event line, to the same number of subscribers.
   The fixture is `fanout serve`, the Python test fixture's token scenarios in C, byte
   for byte: the Python server took one of the two cores and set the pace for either bus.
   The turn's caller takes no request callbacks (`"events": false`, as `llmctl chat`
   does), so the subscribers are every receiver on either side.
   Each count runs RUNS times, llmd and Redis alternating; reported are the run with the
   median rate, and the medians of the runs' p50 and p99. Beside them, the CPU time each
   side spent per token: llmd's (all threads), and redis-server's plus the relay's.
2. The same at fixed rates (PACED: 30,000, 10,000 and 1,000 tokens a second, the last a
   fast model's): the latency each bus adds below its capacity. At 30,000 the fixture,
   writing each token alone over loopback TCP, takes most of a core by itself.
3. The same from the Python test fixture (Tests/Fixtures/openai_fixture.py) as fast as it
   streams, PYTHON_RUNS times: the pace is the fixture's (about 80,000 tokens a second),
   and it takes one of the two cores, leaving the other to the bus and its readers.
4. Capacity: the same with no fixture to wait for: llmd's offline provider with no delay
   against a C publisher pipelining PUBLISH into Redis as fast as it takes them.
5. A stalled subscriber (never reads) beside 16 readers, flat out: their delivered rate
   against 16 readers alone, medians of STALL_PAIRS alternating runs each.
6. Journal cost: the daemon's CPU time per event with Journal=yes minus Journal=no, for
   one subscriber, flat out, from the scheduler's counters of all its threads; medians
   of five alternating runs each.

Subscribers, relay, publisher and (but in 3) fixture are scripts/fanout.c, so the reader
side is the same native code for llmd and for Redis and neither is measured through a slow
client.
"""
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile

from benchlib import Client, cpu_ns, start_daemon, start_fixture, stop_daemon, wait_for_path

BIN = sys.argv[1]
RESULTS = sys.argv[2] if len(sys.argv) > 2 else "bench-results"
TOKENS = 10000
RUNS = 5
STALL_PAIRS = 8
# Alternating runs streamed from the Python test fixture.
PYTHON_RUNS = 3
# Fixed rates: (tokens per second, tokens per run, alternating runs).
PACED = ((30000, 10000, 5), (10000, 10000, 5), (1000, 2000, 1))
COUNTS = (1, 16, 256)
os.makedirs(RESULTS, exist_ok=True)
HERE = os.path.dirname(os.path.abspath(__file__))
FANOUT = os.path.join(os.path.abspath(RESULTS), "fanout")
report = {}


def build_fanout():
    # clang comes with every Swift toolchain; cc is the fallback.
    compiler = shutil.which("clang") or shutil.which("cc")
    subprocess.run([compiler, "-O2", "-o", FANOUT, os.path.join(HERE, "fanout.c")], check=True)


class Subscribers:
    """`fanout subscribe`: connected and confirmed on creation, results on `finish`."""

    def __init__(self, kind, sock, readers, tokens, stalled=0):
        self.proc = subprocess.Popen([FANOUT, "subscribe", kind, sock, str(readers), str(stalled), str(tokens)],
                                     stdout=subprocess.PIPE, text=True)
        if self.proc.stdout.readline().strip() != "ready":
            raise RuntimeError(f"{kind} subscribers did not get ready")

    def finish(self):
        result = json.loads(self.proc.stdout.readline())
        self.proc.wait()
        seconds = max(result["seconds"], 1e-6)
        return {
            "delivered": result["delivered"],
            "events_per_s": round(result["delivered"] / seconds),
            "p50_ms": round(result["p50_us"] / 1000, 3),
            "p99_ms": round(result["p99_us"] / 1000, 3),
            "max_ms": round(result["max_us"] / 1000, 3),
            "message_bytes": result["message_bytes"],
        }


# --- llmd -------------------------------------------------------------------------


def fixture_model(tokens, interval_us):
    return f"fixture/tokens:{tokens}:{interval_us}" if interval_us else f"fixture/tokens:{tokens}"


def llmd_fanout(readers, fixture_port=None, tokens=TOKENS, interval_us=0, stalled=0, journal=True):
    """`readers` subscribers to a run of `tokens` from the fixture, or from the offline provider."""
    work = tempfile.mkdtemp(prefix="llmd-bench-events-")
    reply = " ".join(f"w{i}" for i in range(tokens))
    config = (f"[Provider fake]\nReply={reply}\nTokenDelayMSec=0\n"
              f"[Events]\nJournal={'yes' if journal else 'no'}\n")
    if fixture_port:
        key = os.path.join(work, "key")
        with open(key, "w") as f:
            f.write("sk-bench-not-a-secret\n")
        os.chmod(key, 0o600)
        config += (f"[Provider local]\nBaseURL=http://127.0.0.1:{fixture_port}/v1\nAPIKeyFile={key}\n"
                   f"DefaultModel={fixture_model(tokens, interval_us)}\n")
    proc, sock, _, sockdir = start_daemon(BIN, work, config)
    try:
        group = Subscribers("llmd", sock, readers, tokens, stalled)
        cpu_before = cpu_ns(proc.pid)
        # The caller is a session turn that, like `llmctl chat`, takes no request callbacks:
        # the subscribers are every receiver on either side (the relay has no caller either).
        caller = Client(sock)
        caller.call("send", {"session": "bench", "text": "go", "events": False,
                             "settings": {"provider": "local" if fixture_port else "fake"}})
        caller.close()
        result = group.finish()
        result["server_cpu_ns"] = cpu_ns(proc.pid) - cpu_before
        return result
    finally:
        stop_daemon(proc)
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(sockdir, ignore_errors=True)


# --- Redis ------------------------------------------------------------------------


def redis_fanout(readers, message_bytes, fixture_port=None, tokens=TOKENS, interval_us=0):
    """The same through redis-server; `server_cpu_ns` is Redis's and the relay's (or publisher's)."""
    work = tempfile.mkdtemp(prefix="llmd-bench-redis-")
    sock = os.path.join(work, "redis.sock")
    proc = subprocess.Popen(
        ["redis-server", "--port", "0", "--unixsocket", sock, "--save", "", "--appendonly", "no",
         "--client-output-buffer-limit", "pubsub 0 0 0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_path(sock)
    try:
        group = Subscribers("redis", sock, readers, tokens)
        # A RESP message adds about 40 bytes of framing around the payload.
        payload = str(max(32, message_bytes - 40))
        redis_before, children_before = cpu_ns(proc.pid), children_cpu_ns()
        if fixture_port:
            subprocess.run([FANOUT, "relay", str(fixture_port), fixture_model(tokens, interval_us), str(tokens), sock,
                            payload], check=True)
        else:
            subprocess.run([FANOUT, "publish", sock, str(tokens), payload], check=True)
        # Read before the subscribers are waited for, which would count them as well.
        feeder_cpu_ns = children_cpu_ns() - children_before
        result = group.finish()
        result["server_cpu_ns"] = cpu_ns(proc.pid) - redis_before + feeder_cpu_ns
        return result
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(work, ignore_errors=True)


def children_cpu_ns():
    """CPU time of this script's children that were waited for: read around the relay or
    publisher, before the subscribers' process is."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return int((usage.ru_utime + usage.ru_stime) * 1e9)


def median_run(runs):
    """The run with the median rate, with every run's rate beside it, and the median of
    the runs' latency percentiles: at a fixed rate every run has the same rate, and one
    run's p99 is one hiccup of the machine's more or less."""
    ordered = sorted(runs, key=lambda run: run["events_per_s"])
    middle = dict(ordered[len(ordered) // 2])
    middle["runs_events_per_s"] = [run["events_per_s"] for run in runs]
    for percentile in ("p50_ms", "p99_ms"):
        middle[f"runs_{percentile}"] = [run[percentile] for run in runs]
        middle[percentile] = statistics.median(middle[f"runs_{percentile}"])
    return middle


def table(title, prefix):
    print(title)
    print(f"  {'subscribers':>11} {'llmd ev/s':>11} {'redis ev/s':>11} {'ratio':>6} "
          f"{'llmd p50/p99 ms':>17} {'redis p50/p99 ms':>17} {'CPU us/token llmd/redis':>24}")
    for count in COUNTS:
        ours, theirs = report[f"{prefix}llmd_{count}"], report[f"{prefix}redis_{count}"]
        ratio = ours["events_per_s"] / max(theirs["events_per_s"], 1)
        report[f"{prefix}ratio_{count}"] = round(ratio, 3)
        tokens = ours["delivered"] / count
        cpu = f"{ours['server_cpu_ns'] / 1000 / tokens:.1f}/{theirs['server_cpu_ns'] / 1000 / tokens:.1f}"
        print(f"  {count:>11} {ours['events_per_s']:>11} {theirs['events_per_s']:>11} {ratio:>6.2f} "
              f"{ours['p50_ms']:>8}/{ours['p99_ms']:<8} {theirs['p50_ms']:>8}/{theirs['p99_ms']:<8} {cpu:>24}")


def compare(prefix, runs, fixture_port=None, **stream):
    """llmd and Redis at each subscriber count, `runs` alternating pairs; the median run of each."""
    for count in COUNTS:
        ours, theirs = [], []
        for _ in range(runs):
            ours.append(llmd_fanout(count, fixture_port=fixture_port, **stream))
            theirs.append(redis_fanout(count, ours[-1]["message_bytes"], fixture_port=fixture_port, **stream))
        report[f"{prefix}llmd_{count}"] = median_run(ours)
        report[f"{prefix}redis_{count}"] = median_run(theirs)


def main():
    build_fanout()
    # `fanout serve`: the fixture's token scenarios, byte for byte, at a C server's pace.
    fixture, port = start_fixture([FANOUT, "serve"])
    try:
        # Flat-out rates move with what else runs on the machine's two cores: medians of
        # alternating runs.
        compare("", RUNS, fixture_port=port)
        for rate, tokens, runs in PACED:
            compare(f"paced{rate}_", runs, fixture_port=port, tokens=tokens, interval_us=round(1e6 / rate))
    finally:
        fixture.terminate()
    # The test fixture itself, as fast as it streams: the Python server sets the pace, and
    # takes one of the two cores.
    python_fixture, python_port = start_fixture()
    try:
        compare("python_", PYTHON_RUNS, fixture_port=python_port)
    finally:
        python_fixture.terminate()
    compare("flat_", RUNS)
    # Flat-out rates scatter by 15% from run to run: alternating pairs, compared by median.
    alone, beside = [], []
    for _ in range(STALL_PAIRS):
        alone.append(llmd_fanout(16)["events_per_s"])
        beside.append(llmd_fanout(16, stalled=1)["events_per_s"])
    report["flat_16_alone_events_per_s"] = alone
    report["flat_16_beside_stalled_events_per_s"] = beside
    with_journal, without_journal = [], []
    for _ in range(5):
        with_journal.append(llmd_fanout(1, journal=True)["server_cpu_ns"])
        without_journal.append(llmd_fanout(1, journal=False)["server_cpu_ns"])
    # Each token is one event; the session turn adds six more (session_created, chain_start,
    # chat_model_start, llm_end, usage_recorded, chain_end).
    events = TOKENS + 6
    report["journal_cpu_us_per_event"] = round(
        (statistics.median(with_journal) - statistics.median(without_journal)) / 1000 / events, 2)
    report["daemon_cpu_us_per_event_with_journal"] = round(statistics.median(with_journal) / 1000 / events, 2)

    print(f"Event fan-out ({TOKENS} tokens per run unless said; Redis pub/sub baseline in the same run; every event timed;"
          f" CPU is llmd's, or redis-server's and the relay's)")
    table(f"  streamed from the fixture server (C), no delay, median of {RUNS} alternating runs"
          " (target: rate >= Redis, p99 <= 1 ms at 16):", "")
    for rate, tokens, runs in PACED:
        table(f"  streamed from the fixture server at {rate} tokens/s ({tokens} tokens), median of {runs}:",
              f"paced{rate}_")
    table(f"  streamed from the Python test fixture as fast as it streams (it takes a core), median of {PYTHON_RUNS}:",
          "python_")
    table(f"  flat out: offline provider vs a pipelining Redis publisher (capacity), median of {RUNS}:", "flat_")
    stalled = statistics.median(beside) / statistics.median(alone)
    report["stalled_ratio"] = round(stalled, 3)
    print(f"  16 readers beside a stalled subscriber, flat out: {stalled:.2f} of their rate alone, medians of {STALL_PAIRS} "
          f"(target >= 0.95); alone {min(alone)}-{max(alone)}, beside {min(beside)}-{max(beside)} events/s")
    print(f"  journal: {report['journal_cpu_us_per_event']} us of daemon CPU per event, medians of 5 with and without "
          f"({report['daemon_cpu_us_per_event_with_journal']} us per event in all)")
    with open(os.path.join(RESULTS, "events.json"), "w") as f:
        json.dump(report, f, indent=2)
    print(f"  (raw numbers in {RESULTS}/events.json)")

main()
