#!/usr/bin/env python3
"""Events per second one Python subscriber takes, through llmd's Python library and beside
the raw socket, in one run.

A journal of EVENTS events (the tokens of streamed calls to the fixture) is replayed
(`subscribe` with `since: 0`, up to the ready marker) to each reader in turn, alternating
rounds, so every reader gets the same events from the same daemon:
- the raw socket: lines read, and lines read and parsed with json.loads (what any client
  must at least do);
- llmd.Client.subscribe, the iterator;
- llmd.AsyncClient.subscribe, the async iterator;
- llmd.langchain.run_handlers dispatching to a LangChain handler that does nothing, its
  callbacks called with LangChain's argument shapes.
Then a profile of the iterator and of the dispatch says where a subscriber's time goes.

Run with the venv's Python (`make venv`): the dispatch needs langchain-core.
"""
import asyncio
import cProfile
import io
import json
import os
import pstats
import socket
import statistics
import sys
import tempfile
import time

from benchlib import start_daemon, start_fixture, stop_daemon

import llmd
from langchain_core.callbacks import BaseCallbackHandler
from llmd.langchain import run_handlers

BIN = sys.argv[1]
RESULTS = sys.argv[2] if len(sys.argv) > 2 else "bench-results"
EVENTS_PER_CALL = 20_000
CALLS = 5
ROUNDS = 3
os.makedirs(RESULTS, exist_ok=True)


def raw(path, parse):
    connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    connection.connect(path)
    lines = connection.makefile("rb")
    lines.readline()
    connection.sendall(b'{"id":1,"method":"subscribe","params":{"since":0}}\n')
    count = 0
    for line in lines:
        if parse:
            message = json.loads(line)
            kind = message["type"]
        else:
            kind = "ready" if line.startswith(b'{"type":"ready"') else "event" if line.startswith(b'{"type":"event"') else ""
        if kind == "ready":
            break
        count += kind == "event"
    connection.close()
    return count


def iterator(path):
    with llmd.Client(path).subscribe(since=0, live=False) as events:
        return sum(1 for _ in events)


def async_iterator(path):
    async def run():
        client = await llmd.AsyncClient.connect(path)
        subscription = await client.subscribe(since=0, live=False)
        count = 0
        async for _ in subscription:
            count += 1
        await subscription.close()
        await client.close()
        return count

    return asyncio.run(run())


class Nothing(BaseCallbackHandler):
    """A handler that does nothing with what it is called with: the dispatch's own cost."""

    def on_llm_new_token(self, token, **kwargs):
        pass


def dispatch(path):
    client = llmd.Client(path)
    try:
        return run_handlers(client, [Nothing()], since=0, live=False, types=None)
    finally:
        client.close()


READERS = {
    "raw_lines": lambda path: raw(path, parse=False),
    "raw_json": lambda path: raw(path, parse=True),
    "iterator": iterator,
    "async_iterator": async_iterator,
    "langchain_dispatch": dispatch,
}


def profile(reader, path):
    """The functions a reader's time goes to, by own time, as lines."""
    profiler = cProfile.Profile()
    profiler.enable()
    reader(path)
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(8)
    return [line.rstrip() for line in text.getvalue().splitlines() if line.strip()][-9:]


report = {"events": 0}
fixture, port = start_fixture()
with tempfile.TemporaryDirectory(prefix="llmd-bench-") as work:
    key = os.path.join(work, "key")
    with open(key, "w") as f:
        f.write("sk-bench-not-a-secret\n")
    os.chmod(key, 0o600)
    daemon, sock, _, _ = start_daemon(
        BIN, work, f"[Daemon]\nDefaultProvider=local\n[Provider local]\nBaseURL=http://127.0.0.1:{port}/v1\n"
        f"APIKeyFile={key}\nDefaultModel=fixture\n")
    try:
        client = llmd.Client(sock)
        for _ in range(CALLS):
            client.complete("x", model=f"fixture/tokens:{EVENTS_PER_CALL}")
        client.close()
        rates = {name: [] for name in READERS}
        for _ in range(ROUNDS):
            for name, reader in READERS.items():
                start = time.perf_counter()
                count = reader(sock)
                rates[name].append(count / (time.perf_counter() - start))
                report["events"] = count
        for name, samples in rates.items():
            report[f"{name}_events_per_s"] = round(statistics.median(samples))
        report["profile_iterator"] = profile(iterator, sock)
        report["profile_dispatch"] = profile(dispatch, sock)
    finally:
        stop_daemon(daemon)
        fixture.terminate()

with open(os.path.join(RESULTS, "python.json"), "w") as f:
    json.dump(report, f, indent=2)
raw_json = report["raw_json_events_per_s"]
print(f"One Python subscriber, {report['events']:,} events replayed from the journal (medians of {ROUNDS}):")
print(f"  raw socket: {report['raw_lines_events_per_s']:,}/s reading lines, {raw_json:,}/s parsing them too")
for name, label in (("iterator", "llmd.Client.subscribe"), ("async_iterator", "llmd.AsyncClient.subscribe")):
    rate = report[f"{name}_events_per_s"]
    print(f"  {label}: {rate:,}/s ({rate / raw_json:.2f} of the parsed raw read)")
rate = report["langchain_dispatch_events_per_s"]
print(f"  llmd.langchain.run_handlers to a handler that does nothing: {rate:,}/s ({rate / raw_json:.2f})")
for name in ("iterator", "dispatch"):
    print(f"  where the {name}'s time goes (own time):")
    for line in report[f"profile_{name}"]:
        print("    " + line)
