#!/usr/bin/env python3
"""llmd's usage ledger: what recording a call costs, and `llmctl usage` over a million rows.

Usage: scripts/bench_usage.py BINDIR [RESULTS_DIR]

The daemon's state directory is made under RESULTS_DIR, so the database sits on the disk
the results do (not a tmpfs /tmp), and is removed at the end.

1. Ledger insert: 1,000 `complete` calls to the offline provider (`stream: false`, each
   counted to two scopes), one at a time. Measured: `record_us` from each reply, the
   daemon's own timing of the call's ledger write (one SQLite transaction, WAL,
   synchronous=FULL: one fsync; the row, its two scope links, the budgets' accounting).
   Baseline, same run, same directory: Python's sqlite3, WAL, synchronous=FULL, one
   transaction inserting one 17-column row into a table with the same two indexes. The
   two alternate in blocks of 100, so a busy disk hits both alike.
2. 1,000,000 ledger rows (1,000 sessions, 6 models, 90 days, every tenth row in a
   scope), written straight into the daemon's sessions.db while it is stopped. Measured,
   with the daemon restarted: `llmctl usage` (total), `--by day`, `--by model`,
   `--by session`, `-s NAME` and `--scope ID`, wall time per command (hyperfine when
   installed), against the same SQL run by Python's sqlite3 on the same file (the cost of
   the query alone), and `llmctl ping` (the cost of a round trip alone).
"""
import json
import os
import shutil
import sqlite3
import statistics
import sys
import tempfile
import time

from benchlib import Client, Lcg, command_medians, filesystem, spread, start_daemon, stop_daemon

BIN = sys.argv[1]
RESULTS = sys.argv[2] if len(sys.argv) > 2 else "bench-results"
CALLS = 1000
BLOCK = 100
ROWS = 1_000_000
RUNS = 10
os.makedirs(RESULTS, exist_ok=True)


class SqliteBaseline:
    """One ledger-like row per fsync'd transaction."""

    def __init__(self, path):
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute("CREATE TABLE rows (id INTEGER PRIMARY KEY, time INTEGER, session_id INTEGER, session TEXT, "
                        "turn_id INTEGER, run_id TEXT, parent_run_id TEXT, provider TEXT, model TEXT, a INTEGER, "
                        "b INTEGER, c INTEGER, d INTEGER, source TEXT, exact INTEGER, cost INTEGER, status TEXT)")
        self.db.execute("CREATE INDEX rows_time ON rows(time)")
        self.db.execute("CREATE INDEX rows_session ON rows(session_id, time)")
        self.count = 0

    def insert(self):
        self.count += 1
        start = time.perf_counter_ns()
        self.db.execute("BEGIN")
        self.db.execute("INSERT INTO rows VALUES (NULL, ?, NULL, NULL, NULL, ?, ?, 'fake', 'fake', 9, 8, 0, 0, "
                        "'estimated', 0, 0, 'completed')", (time.time_ns() // 1000, f"run-{self.count}", "parent"))
        self.db.execute("COMMIT")
        return (time.perf_counter_ns() - start) / 1000


def ledger_inserts(work):
    proc, sock, state, sockdir = start_daemon(BIN, work, timings=True)
    try:
        client = Client(sock)
        outer = client.call("scope.begin", {"name": "bench"})[0]["scope"]
        inner = client.call("scope.begin", {"parent": outer})[0]["scope"]
        baseline = SqliteBaseline(os.path.join(state, "baseline.db"))
        params = {"provider": "fake", "stream": False, "scopes": [inner],
                  "messages": [{"role": "user", "content": "what does a call cost?"}]}
        for _ in range(5):
            client.call("complete", params)
            baseline.insert()
        llmd, base, end_to_end = [], [], []
        for _ in range(CALLS // BLOCK):
            for _ in range(BLOCK):
                start = time.perf_counter_ns()
                result = client.call("complete", params)[0]
                end_to_end.append((time.perf_counter_ns() - start) / 1000)
                llmd.append(result["record_us"])
            base.extend(baseline.insert() for _ in range(BLOCK))
        totals = client.call("scope.end", {"scope": outer})[0]["totals"]
        assert totals["requests"] == CALLS + 5, totals
        return {
            "filesystem": filesystem(state),
            "llmd_record_ms": spread(llmd, 1000),
            "baseline_insert_ms": spread(base, 1000),
            "ratio_p50": round(statistics.median(llmd) / statistics.median(base), 2),
            "complete_end_to_end_ms": spread(end_to_end, 1000),
        }
    finally:
        stop_daemon(proc)
        shutil.rmtree(sockdir, ignore_errors=True)


def fill_ledger(path):
    """ROWS rows in the daemon's own schema, as a year of a busy machine might leave them."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("BEGIN")
    # A session records when it took its name since schema 3; older releases, measured against
    # this one, have no such column.
    named = "named" in {column[1] for column in db.execute("PRAGMA table_info(sessions)")}
    insert_session = (
        "INSERT INTO sessions (name, created, updated, settings, named) VALUES (?, 0, 0, '{}', 0)" if named
        else "INSERT INTO sessions (name, created, updated, settings) VALUES (?, 0, 0, '{}')")
    for i in range(1000):
        db.execute(insert_session, (f"s{i}",))
    db.execute("INSERT INTO scopes (id, name, created) VALUES ('bench-scope', 'bench', 0)")
    models = ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "o3", "llama3:8b", "fake"]
    random = Lcg(6)
    start = int(time.time() * 1e6) - 90 * 86_400_000_000
    step = 90 * 86_400_000_000 // ROWS
    rows = []
    for i in range(ROWS):
        session = random.below(1000)
        model = models[random.below(len(models))]
        prompt, completion = 50 + random.below(2000), 10 + random.below(500)
        cost = None if model == "llama3:8b" else prompt * 2_500_000 + completion * 10_000_000
        rows.append((start + i * step, session + 1, f"s{session}", f"run-{i}", model, prompt, completion, cost))
        if len(rows) == 50_000:
            insert(db, rows)
            rows = []
    insert(db, rows)
    db.execute("INSERT INTO usage_scopes (scope_id, usage_id) SELECT 'bench-scope', id FROM usage WHERE id % 10 = 0")
    db.execute("COMMIT")
    db.close()


def insert(db, rows):
    db.executemany(
        "INSERT INTO usage (time, session_id, session, turn_id, run_id, parent_run_id, provider, model, prompt_tokens, "
        "completion_tokens, cached_tokens, reasoning_tokens, source, exact, cost, status) "
        "VALUES (?, ?, ?, NULL, ?, NULL, 'openai', ?, ?, ?, 0, 0, 'provider', 1, ?, 'completed')", rows)


# The SQL each command runs (UsageLedger.swift), for the baseline.
TOTALS = ("count(*), coalesce(sum(u.prompt_tokens), 0), coalesce(sum(u.completion_tokens), 0), "
          "coalesce(sum(u.cached_tokens), 0), coalesce(sum(u.reasoning_tokens), 0), coalesce(sum(u.cost), 0), "
          "count(*) - count(u.cost), coalesce(sum(u.source = 'estimated'), 0)")
QUERIES = {
    "total": ([], [f"SELECT {TOTALS} FROM usage u"]),
    "by day": (["--by", "day"], [
        f"SELECT date(min(u.time) / 1000000, 'unixepoch'), NULL, NULL, {TOTALS} FROM usage u "
        "GROUP BY +u.time / 86400000000 ORDER BY 1"]),
    "by model": (["--by", "model"], [f"SELECT u.model, NULL, NULL, {TOTALS} FROM usage u GROUP BY +u.model ORDER BY 1"]),
    "by session": (["--by", "session"], [
        f"SELECT coalesce(s.name, d.name, g.label, ''), d.deleted, d.id IS NOT NULL, g.* FROM (SELECT {TOTALS}, "
        "u.session_id AS id, max(u.session) AS label "
        "FROM usage u GROUP BY +u.session_id, CASE WHEN u.session_id IS NULL THEN u.session END) g "
        "LEFT JOIN sessions s ON s.id = g.id LEFT JOIN deleted_sessions d ON d.id = g.id ORDER BY 1, 3, 2 DESC"]),
    "one session": (["-s", "s7"], [f"SELECT {TOTALS} FROM usage u WHERE u.session_id = 8"]),
    "one scope": (["--scope", "bench-scope"], [
        f"SELECT {TOTALS} FROM usage u WHERE u.id IN (SELECT usage_id FROM usage_scopes WHERE scope_id = 'bench-scope')"]),
}


def sql_median_ms(path, statements):
    db = sqlite3.connect(path)
    samples = []
    for run in range(RUNS + 2):
        start = time.perf_counter()
        for statement in statements:
            db.execute(statement).fetchall()
        if run >= 2:
            samples.append((time.perf_counter() - start) * 1000)
    db.close()
    return statistics.median(samples)


def usage_queries(work):
    proc, sock, state, sockdir = start_daemon(BIN, work)
    stop_daemon(proc)
    shutil.rmtree(sockdir, ignore_errors=True)
    path = os.path.join(state, "sessions.db")
    started = time.perf_counter()
    fill_ledger(path)
    out = {"rows": ROWS, "fill_seconds": round(time.perf_counter() - started, 1),
           "db_mib": round(sum(os.path.getsize(os.path.join(state, f)) for f in os.listdir(state)
                               if f.startswith("sessions.db")) / 2**20, 1)}
    proc, sock, state, sockdir = start_daemon(BIN, work)
    try:
        llmctl = os.path.join(BIN, "llmctl")
        commands = [f"{llmctl} ping --socket {sock}"] + [
            " ".join([llmctl, "usage", "--socket", sock] + arguments) for arguments, _ in QUERIES.values()]
        out["cli_timer"], medians = command_medians(commands, RUNS, os.path.join(RESULTS, "hyperfine-usage.json"))
        out["llmctl_ping_ms"] = round(medians[0], 2)
        out["queries"] = {}
        for (name, (_, statements)), llmctl_ms in zip(QUERIES.items(), medians[1:]):
            sql_ms = sql_median_ms(path, statements)
            out["queries"][name] = {"llmctl_ms": round(llmctl_ms, 1), "sqlite_ms": round(sql_ms, 1),
                                    "ratio": round(llmctl_ms / sql_ms, 2)}
    finally:
        stop_daemon(proc)
        shutil.rmtree(sockdir, ignore_errors=True)
    return out


def main():
    report = {}
    for name, measure in (("ledger_insert", ledger_inserts), ("usage_queries", usage_queries)):
        work = tempfile.mkdtemp(prefix=f"usage-{name}-", dir=RESULTS)
        try:
            report[name] = measure(work)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    with open(os.path.join(RESULTS, "usage.json"), "w") as f:
        json.dump(report, f, indent=2)
    i, q = report["ledger_insert"], report["usage_queries"]
    print("usage ledger:")
    print(f"  ledger write per call (record_us, {CALLS} calls, on {i['filesystem']['type']}): "
          f"p50 {i['llmd_record_ms']['p50']} ms, p99 {i['llmd_record_ms']['p99']} ms; sqlite3 one-row transaction "
          f"p50 {i['baseline_insert_ms']['p50']} ms, p99 {i['baseline_insert_ms']['p99']} ms; ratio p50 {i['ratio_p50']}")
    print(f"  complete call end to end (offline provider): p50 {i['complete_end_to_end_ms']['p50']} ms")
    print(f"  {q['rows']:,} rows ({q['db_mib']} MiB, filled in {q['fill_seconds']} s); llmctl ping {q['llmctl_ping_ms']} ms")
    for name, numbers in q["queries"].items():
        print(f"    llmctl usage {name}: {numbers['llmctl_ms']} ms vs the SQL alone {numbers['sqlite_ms']} ms "
              f"(ratio {numbers['ratio']})")


if __name__ == "__main__":
    main()
