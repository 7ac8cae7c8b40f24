#!/usr/bin/env python3
"""llmd sessions: durable turn commits and a store of 1,000 sessions x 20 turns.

Usage: scripts/bench_sessions.py BINDIR [RESULTS_DIR]

The daemon runs with an empty config, so turns go to the offline `fake` provider
(`stream: false`: no token delay, no network). State directories are made under
RESULTS_DIR, so the database sits on the disk the results do (not a tmpfs /tmp),
and are removed at the end.

1. Turn commit latency: 1,000 turns on one session, one connection, one at a time.
   Measured: `commit_us` from each reply (the daemon's own timing of the turn's one
   SQLite transaction, WAL, synchronous=FULL: one fsync), p50/p99/max; and the turn as
   the client sees it, send to reply, p50/p99.
   Baseline, same run, same directory: Python's sqlite3 with journal_mode=WAL and
   synchronous=FULL, 1,000 transactions each inserting two ~100-byte message rows and
   updating one counter row, p50/p99. The two alternate in blocks of 100, so a noisy
   neighbour or a busy disk hits both alike.
2. 1,000 sessions x 20 turns through a fresh daemon, by 8 client connections on their
   own threads (each takes every 8th session, its turns one after another). Measured:
   the populate rate (turns/s) and the commit latency under that load; then the daemon's
   RSS (VmRSS) and peak (VmHWM) against its idle RSS at start; sessions.db + -wal + -shm
   while running and after a clean stop, and bytes per turn; `llmctl sessions` against
   `llmctl ping` (hyperfine, 20 runs each, same run; timed in Python without hyperfine);
   `session.list` against `status` over one raw socket connection, p50 of 20.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

from benchlib import Client, command_medians, filesystem, spread, start_daemon, status_field, stop_daemon

BIN = sys.argv[1]
RESULTS = sys.argv[2] if len(sys.argv) > 2 else "bench-results"
TURNS = 1000
BLOCK = 100
SESSIONS = 1000
TURNS_PER_SESSION = 20
CONNECTIONS = 8
RUNS = 20
os.makedirs(RESULTS, exist_ok=True)
report = {}


# --- 1. Turn commit latency -------------------------------------------------------


class SqliteBaseline:
    """What a turn's commit must do at least: two message rows and a counter, one fsync'd transaction."""

    def __init__(self, path):
        import sqlite3

        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("CREATE TABLE counters (id INTEGER PRIMARY KEY, turns INTEGER NOT NULL, updated INTEGER)")
        self.db.execute("CREATE TABLE messages (id INTEGER PRIMARY KEY, session_id INTEGER, role TEXT, content TEXT)")
        self.db.execute("INSERT INTO counters VALUES (1, 0, 0)")
        self.version = sqlite3.sqlite_version
        self.count = 0

    def commit(self):
        """µs for one BEGIN..COMMIT."""
        self.count += 1
        user = f"turn {self.count}: " + "u" * 90
        assistant = f"turn {self.count}: " + "a" * 90
        start = time.perf_counter_ns()
        self.db.execute("BEGIN")
        self.db.execute("INSERT INTO messages (session_id, role, content) VALUES (1, 'user', ?)", (user,))
        self.db.execute("INSERT INTO messages (session_id, role, content) VALUES (1, 'assistant', ?)", (assistant,))
        self.db.execute("UPDATE counters SET turns = turns + 1, updated = ? WHERE id = 1", (self.count,))
        self.db.execute("COMMIT")
        return (time.perf_counter_ns() - start) / 1000

    def close(self):
        self.db.close()


def commit_latency():
    work = tempfile.mkdtemp(prefix="sessions-commit-", dir=RESULTS)
    fs = filesystem(work)
    try:
        return measure_commits(work, fs)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure_commits(work, fs):
    proc, sock, state, sockdir = start_daemon(BIN, work, timings=True)
    try:
        baseline = SqliteBaseline(os.path.join(state, "baseline.db"))
        client = Client(sock)
        for i in range(5):  # warm-up: the session's creation, the first pages, the first fsyncs
            client.send("latency", f"warm-up {i}")
            baseline.commit()
        commits, turns, base = [], [], []
        for block in range(TURNS // BLOCK):
            for i in range(BLOCK):
                start = time.perf_counter_ns()
                result = client.send("latency", f"message number {block * BLOCK + i}: hello")
                turns.append((time.perf_counter_ns() - start) / 1000)
                commits.append(result["commit_us"])
            for _ in range(BLOCK):
                base.append(baseline.commit())
        last_turn = result["turn"]
        client.close()
        baseline.close()
    finally:
        stop_daemon(proc)
        shutil.rmtree(sockdir, ignore_errors=True)
    llmd, sqlite = spread(commits, 1000), spread(base, 1000)
    return {
        "filesystem": fs,
        "python_sqlite_version": baseline.version,
        "last_turn_number": last_turn,
        "llmd_commit_ms": llmd,
        "baseline_commit_ms": sqlite,
        "ratio_p50": round(llmd["p50"] / sqlite["p50"], 3),
        "ratio_p99": round(llmd["p99"] / sqlite["p99"], 3),
        # The turn's transaction also moves the in-memory window, which grows with the session.
        "llmd_commit_first_100_p50_ms": round(statistics.median(commits[:100]) / 1000, 3),
        "llmd_commit_last_100_p50_ms": round(statistics.median(commits[-100:]) / 1000, 3),
        "turn_end_to_end_ms": spread(turns, 1000),
        # Default memory is an unbounded buffer: later turns carry longer histories.
        "turn_end_to_end_first_100_p50_ms": round(statistics.median(turns[:100]) / 1000, 3),
        "turn_end_to_end_last_100_p50_ms": round(statistics.median(turns[-100:]) / 1000, 3),
    }


# --- 2. 1,000 sessions x 20 turns -------------------------------------------------


def populate(sock):
    """Every session's turns, 8 connections on their own threads; the commit_us of each turn."""
    commits = [[] for _ in range(CONNECTIONS)]
    failures = []

    def worker(index):
        try:
            client = Client(sock)
            for session in range(index, SESSIONS, CONNECTIONS):
                name = f"s{session:04d}"
                for turn in range(TURNS_PER_SESSION):
                    result = client.send(name, f"turn {turn} of session {name}: hello")
                    commits[index].append(result["commit_us"])
            client.close()
        except Exception as error:  # reported below, not lost in a thread
            failures.append(repr(error))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(CONNECTIONS)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - start
    if failures:
        raise RuntimeError(f"populating failed: {failures[0]}")
    return elapsed, [c for per in commits for c in per]


def sizes(state):
    files = {}
    for suffix in ("", "-wal", "-shm"):
        path = os.path.join(state, "sessions.db" + suffix)
        files["sessions.db" + suffix] = os.path.getsize(path) if os.path.exists(path) else 0
    files["total"] = sum(files.values())
    return files


def other_files(state):
    """Everything else the daemon keeps in its state directory (the event journal), for context."""
    return {name: os.path.getsize(os.path.join(state, name)) for name in sorted(os.listdir(state))
            if not name.startswith("sessions.db") and name != "baseline.db"
            and os.path.isfile(os.path.join(state, name))}


def raw_latency(sock, method):
    """Median ms of `method` over one connection, and the size of its reply line."""
    client = Client(sock)
    client.call(method)  # warm-up
    samples = []
    for _ in range(RUNS):
        start = time.perf_counter()
        result, size = client.call(method)
        samples.append((time.perf_counter() - start) * 1000)
    client.close()
    return statistics.median(samples), size, result


def many_sessions():
    work = tempfile.mkdtemp(prefix="sessions-store-", dir=RESULTS)
    try:
        return measure_store(work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def measure_store(work):
    proc, sock, state, sockdir = start_daemon(BIN, work, timings=True)
    out = {}
    try:
        out["idle_rss_mib"] = round(status_field(proc.pid, "VmRSS") / 1024, 1)
        elapsed, commits = populate(sock)
        turns = SESSIONS * TURNS_PER_SESSION
        out["populate_seconds"] = round(elapsed, 2)
        out["populate_turns_per_s"] = round(turns / elapsed, 1)
        out["populate_commit_ms"] = spread(commits, 1000)
        out["rss_mib"] = round(status_field(proc.pid, "VmRSS") / 1024, 1)
        out["peak_rss_mib"] = round(status_field(proc.pid, "VmHWM") / 1024, 1)
        out["db_bytes_running"] = sizes(state)

        out["cli_timer"], (ping_ms, sessions_ms) = command_medians(
            [f"{BIN}/llmctl ping --socket {sock}", f"{BIN}/llmctl sessions --socket {sock}"], RUNS,
            os.path.join(RESULTS, "hyperfine-sessions.json"))
        out["llmctl_ping_ms"] = round(ping_ms, 3)
        out["llmctl_sessions_ms"] = round(sessions_ms, 3)
        out["llmctl_sessions_ratio"] = round(sessions_ms / ping_ms, 3)
        lines = subprocess.run([f"{BIN}/llmctl", "sessions", "--socket", sock], capture_output=True, text=True,
                               check=True).stdout.count("\n")
        out["llmctl_sessions_rows"] = lines - 1  # less the header

        status_ms, _, _ = raw_latency(sock, "status")
        list_ms, list_bytes, listed = raw_latency(sock, "session.list")
        stored = sum(s["turns"] for s in listed["sessions"])
        if len(listed["sessions"]) != SESSIONS or stored != turns:
            raise RuntimeError(f"expected {SESSIONS} sessions and {turns} turns, "
                               f"session.list has {len(listed['sessions'])} and {stored}")
        out["raw_status_ms"] = round(status_ms, 3)
        out["raw_session_list_ms"] = round(list_ms, 3)
        out["raw_session_list_ratio"] = round(list_ms / status_ms, 3)
        out["session_list_reply_bytes"] = list_bytes
        out["rss_after_listing_mib"] = round(status_field(proc.pid, "VmRSS") / 1024, 1)
        out["peak_rss_after_listing_mib"] = round(status_field(proc.pid, "VmHWM") / 1024, 1)
    finally:
        code = stop_daemon(proc)
        shutil.rmtree(sockdir, ignore_errors=True)
    out["daemon_exit_status"] = code
    out["db_bytes_after_stop"] = sizes(state)
    out["bytes_per_turn_running"] = round(out["db_bytes_running"]["total"] / turns)
    out["bytes_per_turn_after_stop"] = round(out["db_bytes_after_stop"]["total"] / turns)
    out["other_state_files_bytes"] = other_files(state)
    return out


def mib(n):
    return f"{n / 1048576:.1f} MiB"


def kib(n):
    return f"{n / 1024:.0f} KiB"


def main():
    began = time.perf_counter()
    report["commit"] = commit_latency()
    report["store"] = many_sessions()
    report["seconds"] = round(time.perf_counter() - began, 1)
    with open(os.path.join(RESULTS, "sessions.json"), "w") as f:
        json.dump(report, f, indent=2)

    c, s = report["commit"], report["store"]
    fs = c["filesystem"]
    print(f"Sessions (fake provider; state on {fs['type']} at {fs['mount']}; baselines measured in the same run)")
    print(f"  turn commit, {TURNS} turns on one session (WAL, synchronous=FULL):")
    print(f"    {'':>24} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for label, key in (("llmd commit_us", "llmd_commit_ms"), (f"sqlite3 {c['python_sqlite_version']} baseline", "baseline_commit_ms"),
                       ("llmd turn, end to end", "turn_end_to_end_ms")):
        row = c[key]
        print(f"    {label:>24} {row['p50']:>8} {row['p99']:>8} {row['max']:>8}")
    print(f"    ratio llmd/baseline: p50 {c['ratio_p50']}, p99 {c['ratio_p99']}")
    print(f"    llmd commit p50, first 100 turns {c['llmd_commit_first_100_p50_ms']} ms, "
          f"last 100 {c['llmd_commit_last_100_p50_ms']} ms")
    print(f"    end to end p50, first 100 turns {c['turn_end_to_end_first_100_p50_ms']} ms, "
          f"last 100 {c['turn_end_to_end_last_100_p50_ms']} ms (buffer memory grows)")
    pc = s["populate_commit_ms"]
    print(f"  {SESSIONS} sessions x {TURNS_PER_SESSION} turns over {CONNECTIONS} connections: "
          f"{s['populate_seconds']} s, {s['populate_turns_per_s']} turns/s; "
          f"commit p50 {pc['p50']} ms, p99 {pc['p99']} ms under that load")
    print(f"    daemon RSS {s['rss_mib']} MiB, peak {s['peak_rss_mib']} MiB (idle at start {s['idle_rss_mib']} MiB); "
          f"after listing {s['rss_after_listing_mib']} MiB, peak {s['peak_rss_after_listing_mib']} MiB")
    r, a = s["db_bytes_running"], s["db_bytes_after_stop"]
    print(f"    database while running: {mib(r['total'])} (db {mib(r['sessions.db'])}, wal {mib(r['sessions.db-wal'])}, "
          f"shm {kib(r['sessions.db-shm'])}), {s['bytes_per_turn_running']} bytes/turn")
    print(f"    database after stop:    {mib(a['total'])} (db {mib(a['sessions.db'])}, wal {mib(a['sessions.db-wal'])}, "
          f"shm {kib(a['sessions.db-shm'])}), {s['bytes_per_turn_after_stop']} bytes/turn")
    others = ", ".join(f"{name} {mib(size)}" for name, size in s["other_state_files_bytes"].items())
    print(f"    beside it in the state directory: {others or 'nothing'} (the event journal, on by default)")
    print(f"    llmctl sessions ({s['llmctl_sessions_rows']} rows) {s['llmctl_sessions_ms']} ms vs llmctl ping "
          f"{s['llmctl_ping_ms']} ms, ratio {s['llmctl_sessions_ratio']} ({s['cli_timer']}, median of {RUNS})")
    print(f"    session.list on the socket {s['raw_session_list_ms']} ms ({s['session_list_reply_bytes']} bytes) "
          f"vs status {s['raw_status_ms']} ms, ratio {s['raw_session_list_ratio']} (median of {RUNS})")
    print(f"  whole run {report['seconds']} s (raw numbers in {RESULTS}/sessions.json)")


main()
