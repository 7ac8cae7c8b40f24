"""llmd's Python library across a daemon restart: subscriptions resume from their last event.

Usage: llmd_resume_check.py PROTOCOL_SOCKET STAGE_FILE

Subscribes to every event twice, through llmd.Client (an iterator) and llmd.AsyncClient
(an async iterator), then makes a call and writes "restart" to STAGE_FILE once both saw
its chain end. The test then restarts the daemon and makes a call of its own. Once both
subscriptions saw that second chain end, prints a JSON summary: each one's seqs and
reconnects, for Tests/LLMDIntegrationTests/PythonLibraryTests.swift to hold against the
journal. Also checks that a subscription to a daemon that does not come back raises
client.connection_closed, once the test has stopped it for good.
"""

import asyncio
import json
import sys
import threading

import llmd

path, stage = sys.argv[1], sys.argv[2]
TIMEOUT = 60


def collect(events, seen, ends, wanted):
    """Appends `events`' seqs to `seen` until `wanted` chain ends came."""
    for event in events:
        seen.append(event["seq"])
        if event["event"] == "chain_end":
            ends.append(event["seq"])
            if len(ends) == wanted:
                return


client = llmd.Client(path)
synchronous = client.subscribe(since=0, reconnect_timeout=TIMEOUT)
sync_seen, sync_ends = [], []
async_seen, async_ends = [], []
async_ready = threading.Event()
async_state = {}


def asynchronous():
    async def run():
        aclient = await llmd.AsyncClient.connect(path)
        subscription = await aclient.subscribe(since=0, reconnect_timeout=TIMEOUT)
        async_ready.set()
        async for event in subscription:
            async_seen.append(event["seq"])
            if event["event"] == "chain_end":
                async_ends.append(event["seq"])
                if len(async_ends) == 2:
                    break
        async_state["reconnects"] = subscription.reconnects
        await subscription.close()
        await aclient.close()

    asyncio.run(run())


worker = threading.Thread(target=asynchronous)
worker.start()
assert async_ready.wait(TIMEOUT)
client.complete("before the restart")
client.close()
collect(synchronous, sync_seen, sync_ends, 1)
while len(async_ends) < 1:
    worker.join(0.05)
with open(stage, "w") as f:
    f.write("restart\n")

collect(synchronous, sync_seen, sync_ends, 2)
worker.join(TIMEOUT)
assert not worker.is_alive(), "the asynchronous subscription did not see the second call"
reconnects = synchronous.reconnects
synchronous.close()

# A subscription whose daemon stays away gives up after its timeout, with a named error.
gone = llmd.Client(path).subscribe(reconnect_timeout=1.5)
with open(stage, "w") as f:
    f.write("stop\n")
try:
    for _ in gone:
        pass
    gave_up = None
except llmd.LlmdError as error:
    gave_up = error.code

print(json.dumps({
    "sync": {"seqs": sync_seen, "reconnects": reconnects},
    "async": {"seqs": async_seen, "reconnects": async_state.get("reconnects")},
    "gave_up": gave_up,
}))
