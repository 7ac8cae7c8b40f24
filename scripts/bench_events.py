#!/usr/bin/env python3
"""llmd event fan-out against Redis pub/sub, measured in the same run.

1. Fan-out: one run streams TOKENS tokens as fast as the offline provider allows (no
   delay between tokens) to 1, 16 and 256 subscribers. Measured: events delivered per
   second (all subscribers together) and the latency from the daemon stamping an event
   (`ts`, when it received the token) to a subscriber reading it, p50 and p99.
   Baseline: redis-server on a Unix socket, the same subscriber counts, the same message
   size and count, a publisher pipelining PUBLISH as fast as it can.
2. A stalled subscriber (never reads) beside 16 readers: their delivered rate against 16
   readers alone.
3. Journal cost: the daemon's CPU time per event with Journal=yes minus Journal=no, for
   one subscriber, from the scheduler's counters of all its threads.

Subscribers run in one process on epoll and only count lines and pick `ts` out with a
regular expression, so the reader side is the same cheap code for llmd and for Redis.
"""
import json
import os
import re
import selectors
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import cpu_ns, wait_for_path

BIN = sys.argv[1]
RESULTS = sys.argv[2] if len(sys.argv) > 2 else "bench-results"
TOKENS = 4000
os.makedirs(RESULTS, exist_ok=True)
TS = re.compile(rb'"ts":(\d+)')
report = {}


def now_us():
    return time.time_ns() // 1000


class Readers:
    """Subscriber sockets read on one epoll loop: line counts and latency samples."""

    def __init__(self, sockets, expected_each, separator):
        self.sockets = sockets
        self.expected = expected_each
        self.separator = separator
        self.counts = {s.fileno(): 0 for s in sockets}
        # The end of each socket's last read: a separator longer than a byte (Redis's) may
        # be split across two reads, and must still be counted, once.
        self.tails = {s.fileno(): b"" for s in sockets}
        self.latencies = []

    def run(self, timeout=120):
        selector = selectors.DefaultSelector()
        for s in self.sockets:
            s.setblocking(False)
            selector.register(s, selectors.EVENT_READ)
        done = 0
        first = last = None
        deadline = time.time() + timeout
        while done < len(self.sockets) and time.time() < deadline:
            for key, _ in selector.select(timeout=1):
                s = key.fileobj
                try:
                    chunk = s.recv(1 << 20)
                except BlockingIOError:
                    continue
                if not chunk:
                    selector.unregister(s)
                    done += 1
                    continue
                arrived = now_us()
                first = first or arrived
                last = arrived
                joined = self.tails[s.fileno()] + chunk
                count = joined.count(self.separator)
                self.tails[s.fileno()] = joined[-(len(self.separator) - 1):] if len(self.separator) > 1 else b""
                before = self.counts[s.fileno()]
                self.counts[s.fileno()] = before + count
                # One latency sample per read keeps the reader cheap and unbiased by fan-out;
                # only from complete messages, as a read may end inside one.
                complete = chunk[:chunk.rfind(self.separator)] if self.separator != b"\n" else chunk[:chunk.rfind(b"\n")]
                stamps = TS.findall(complete)
                if stamps:
                    self.latencies.append(arrived - int(stamps[-1]))
                if before < self.expected <= before + count:
                    selector.unregister(s)
                    done += 1
        return first, last

    @property
    def delivered(self):
        return sum(min(c, self.expected) for c in self.counts.values())


def summary(delivered, first, last, latencies):
    seconds = max((last or 0) - (first or 0), 1) / 1e6
    latencies = sorted(latencies) or [0]
    return {
        "delivered": delivered,
        "events_per_s": round(delivered / seconds),
        "p50_ms": round(latencies[len(latencies) // 2] / 1000, 3),
        "p99_ms": round(latencies[int(len(latencies) * 0.99)] / 1000, 3),
    }


# --- llmd -------------------------------------------------------------------------


def start_llmd(work, journal=True):
    reply = " ".join(f"w{i}" for i in range(TOKENS))
    config = os.path.join(work, "llmd.conf")
    with open(config, "w") as f:
        f.write(f"[Provider fake]\nReply={reply}\nTokenDelayMSec=0\n[Events]\nJournal={'yes' if journal else 'no'}\n")
    sock = os.path.join(work, "llmd.sock")
    proc = subprocess.Popen(
        [os.path.join(BIN, "llmd"), "--config", config, "--socket", sock, "--state-dir", os.path.join(work, "state")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_path(sock)
    return proc, sock


def llmd_subscriber(sock, types=None):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    s.recv(4096)  # hello
    params = {"types": types} if types else {}
    s.sendall(json.dumps({"id": 1, "method": "subscribe", "params": params}).encode() + b"\n")
    buffered = b""
    while b'"type":"ready"' not in buffered:
        buffered += s.recv(65536)
    return s


def llmd_call(sock):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock)
    s.recv(4096)
    s.sendall(b'{"id":1,"method":"complete","params":{"messages":[{"role":"user","content":"go"}]}}\n')
    return s


def llmd_fanout(subscribers, stalled=0, journal=True):
    work = tempfile.mkdtemp(prefix="llmd-bench-events-")
    proc, sock = start_llmd(work, journal)
    try:
        readers = [llmd_subscriber(sock, ["llm_new_token"]) for _ in range(subscribers)]
        idle = [llmd_subscriber(sock, ["llm_new_token"]) for _ in range(stalled)]
        cpu_before = cpu_ns(proc.pid)
        caller = llmd_call(sock)
        group = Readers(readers, TOKENS, b"\n")
        first, last = group.run()
        cpu = cpu_ns(proc.pid) - cpu_before
        caller.close()
        for s in readers + idle:
            s.close()
        result = summary(group.delivered, first, last, group.latencies)
        result["daemon_cpu_ns"] = cpu
        return result
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(work, ignore_errors=True)


# --- Redis ------------------------------------------------------------------------


def start_redis(work):
    sock = os.path.join(work, "redis.sock")
    proc = subprocess.Popen(
        ["redis-server", "--port", "0", "--unixsocket", sock, "--save", "", "--appendonly", "no",
         "--client-output-buffer-limit", "pubsub 0 0 0"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_path(sock)
    return proc, sock


def redis_fanout(subscribers, message_size):
    work = tempfile.mkdtemp(prefix="llmd-bench-redis-")
    proc, sock = start_redis(work)
    try:
        readers = []
        for _ in range(subscribers):
            s = socket.socket(socket.AF_UNIX)
            s.connect(sock)
            s.sendall(b"*2\r\n$9\r\nSUBSCRIBE\r\n$6\r\ntokens\r\n")
            s.recv(4096)
            readers.append(s)
        publisher = socket.socket(socket.AF_UNIX)
        publisher.connect(sock)
        padding = b"x" * max(0, message_size - 40)
        group = Readers(readers, TOKENS, b"$7\r\nmessage\r\n")
        # Publish from a child process so the readers' loop and the publisher run side by side.
        pid = os.fork()
        if pid == 0:
            batch = []
            for i in range(TOKENS):
                payload = b'{"ts":%d,"p":"%s"}' % (now_us(), padding)
                batch.append(b"*3\r\n$7\r\nPUBLISH\r\n$6\r\ntokens\r\n$%d\r\n%s\r\n" % (len(payload), payload))
                if len(batch) == 16:
                    publisher.sendall(b"".join(batch))
                    batch = []
            publisher.sendall(b"".join(batch))
            os._exit(0)
        first, last = group.run()
        os.waitpid(pid, 0)
        for s in readers:
            s.close()
        return summary(group.delivered, first, last, group.latencies)
    finally:
        proc.terminate()
        proc.wait()
        shutil.rmtree(work, ignore_errors=True)


def main():
    # The size of one llm_new_token line as a subscriber receives it, for Redis's payloads.
    message_size = 330
    for count in (1, 16, 256):
        report[f"llmd_{count}"] = llmd_fanout(count)
        report[f"redis_{count}"] = redis_fanout(count, message_size)
    report["llmd_16_plus_stalled"] = llmd_fanout(16, stalled=1)
    with_journal = llmd_fanout(1, journal=True)
    without_journal = llmd_fanout(1, journal=False)
    # Each token is one event; the chain adds four more.
    events = TOKENS + 4
    report["journal_cpu_us_per_event"] = round(
        (with_journal["daemon_cpu_ns"] - without_journal["daemon_cpu_ns"]) / 1000 / events, 2)
    report["daemon_cpu_us_per_event_with_journal"] = round(with_journal["daemon_cpu_ns"] / 1000 / events, 2)

    with open(os.path.join(RESULTS, "events.json"), "w") as f:
        json.dump(report, f, indent=2)
    print("Event fan-out (one run of %d tokens; Redis pub/sub baseline in the same run)" % TOKENS)
    print(f"  {'subscribers':>11} {'llmd ev/s':>11} {'redis ev/s':>11} {'ratio':>6} {'llmd p50/p99 ms':>17} {'redis p50/p99 ms':>17}")
    for count in (1, 16, 256):
        ours, theirs = report[f"llmd_{count}"], report[f"redis_{count}"]
        ratio = ours["events_per_s"] / max(theirs["events_per_s"], 1)
        print(f"  {count:>11} {ours['events_per_s']:>11} {theirs['events_per_s']:>11} {ratio:>6.2f} "
              f"{ours['p50_ms']:>8}/{ours['p99_ms']:<8} {theirs['p50_ms']:>8}/{theirs['p99_ms']:<8}")
    stalled = report["llmd_16_plus_stalled"]["events_per_s"] / max(report["llmd_16"]["events_per_s"], 1)
    print(f"  16 readers beside a stalled subscriber: {stalled:.2f} of their rate alone (target >= 0.95)")
    print(f"  journal: {report['journal_cpu_us_per_event']} us of daemon CPU per event "
          f"({report['daemon_cpu_us_per_event_with_journal']} us per event in all)")


main()
