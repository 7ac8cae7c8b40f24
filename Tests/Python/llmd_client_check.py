"""llmd's own Python library, clients/python, against a real daemon.

Usage: llmd_client_check.py PROTOCOL_SOCKET

Makes calls through llmd.Client and llmd.AsyncClient (a session's turns, a complete, a
scope around them, subscriptions live, replayed and blocking, budgets, counts, errors),
checks what it can itself, and prints a JSON summary that
Tests/LLMDIntegrationTests/PythonLibraryTests.swift holds against the daemon's ledger.
"""

import asyncio
import json
import os
import socket
import sys
import tempfile
import threading
import time

import llmd


def not_llmd_errors():
    """The codes of the errors for sockets that are not llmd's: one that says something
    else, one that says nothing."""
    directory = tempfile.mkdtemp()
    codes = {}
    for kind, greeting in (("http", b"HTTP/1.1 400 Bad Request\r\n\r\n"), ("silent", None)):
        path = os.path.join(directory, kind + ".sock")
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path)
        server.listen(1)

        def serve(server=server, greeting=greeting):
            connection, _ = server.accept()
            if greeting:
                connection.sendall(greeting)
            time.sleep(2)
            connection.close()

        threading.Thread(target=serve, daemon=True).start()
        try:
            llmd.Client(path, timeout=0.5)
            codes[kind] = None
        except llmd.LlmdError as error:
            codes[kind] = error.code
    return codes


def main():
    path = sys.argv[1]
    client = llmd.Client(path)
    assert client.greeting["daemon"] == "llmd" and client.ping()

    # A live subscriber for the session's turns, started before them.
    live = client.subscribe(types=["llm_new_token", "chain_end"], session="trip")
    live_tokens, live_chains = [], []

    def follow():
        for event in live:
            if event["event"] == "llm_new_token":
                live_tokens.append(event["data"]["token"])
            else:
                live_chains.append(event["run_id"])

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()

    replies = []
    streamed = []
    with client.scope("python") as outer:
        pieces = []
        replies.append(client.send("trip", "Hello from Python", on_token=pieces.append, system="Be brief."))
        streamed.append("".join(pieces))
        with client.scope("inner") as inner:
            pieces = []
            replies.append(client.send("trip", "And again", on_token=pieces.append))
            streamed.append("".join(pieces))
        pieces = []
        replies.append(client.complete("One call", on_token=pieces.append, session="label"))
        streamed.append("".join(pieces))
    for reply, text in zip(replies, streamed):
        assert reply.text == text, f"streamed {text!r}, replied {reply.text!r}"
    assert outer.successful_requests == 3 and inner.successful_requests == 1, (outer, inner)
    assert outer.total_tokens == sum(reply.usage.total_tokens for reply in replies), (outer, replies)
    assert inner.total_tokens == replies[1].usage.total_tokens
    shown = client.scope_show(outer.scope)["totals"]
    assert shown["total_tokens"] == outer.total_tokens and shown["requests"] == 3

    deadline = time.time() + 10
    while len(live_chains) < 2 and time.time() < deadline:
        time.sleep(0.05)
    live.close()
    assert live_chains == [replies[0].run_id, replies[1].run_id], (live_chains, replies)
    assert "".join(live_tokens) == streamed[0] + streamed[1]

    # Replay of everything the journal keeps, stopping at the ready marker.
    replayed = [event["event"] for event in client.subscribe(since=0, live=False)]
    assert "chain_start" in replayed and "llm_new_token" in replayed

    # A blocking subscriber: the turn waits for each chain_start's ack.
    blocking = client.subscribe(types=["chain_start"], blocking=["chain_start"])
    acknowledged = []

    def acknowledge():
        for event in blocking:
            time.sleep(0.3)
            acknowledged.append(blocking.ack(event))
            return

    acker = threading.Thread(target=acknowledge, daemon=True)
    acker.start()
    started = time.monotonic()
    replies.append(client.send("other", "Blocked a moment"))
    waited = time.monotonic() - started
    acker.join(5)
    blocking.close()
    assert acknowledged == [True], acknowledged
    assert 0.3 <= waited < 4.5, f"the turn waited {waited:.2f} s for the ack"

    sessions = [session["session"] for session in client.sessions()]
    trip = client.session("trip")
    memory = client.memory("trip")
    usage = client.usage(session="trip")
    by_session = client.usage(by="session")
    budget = client.budget_set(session="trip", max_tokens=100000)
    budgets = client.budget_show(session="trip")
    tokens = client.tokens("hello world", "gpt-4o")

    errors = {}
    try:
        client.session("no-such-session")
    except llmd.LlmdError as error:
        errors["session"] = {"code": error.code, "detail": error.detail}
    try:
        client.complete()
    except llmd.LlmdError as error:
        errors["complete"] = {"code": error.code}
    errors["not_llmd"] = not_llmd_errors()

    async def asynchronous():
        async with await llmd.AsyncClient.connect(path) as aclient:
            pieces = []
            async with aclient.scope("asynchronous") as scope:
                reply = await aclient.complete("Asynchronously", on_token=pieces.append)
            assert "".join(pieces) == reply.text
            subscription = await aclient.subscribe(types=["llm_end"], since=0, live=False)
            ends = [event async for event in subscription]
            await subscription.close()
            generator = [event["event"] async for event in llmd.async_subscribe(path, types=["chain_end"], since=0, live=False)]
            return {"text": reply.text, "run_id": reply.run_id, "llm_ends": len(ends), "chain_ends": len(generator),
                    "scope": {"id": scope.scope, "successful_requests": scope.successful_requests,
                              "total_tokens": scope.total_tokens}}

    async_summary = asyncio.run(asynchronous())
    client.close()

    print(json.dumps({
        "replies": [
            {"text": reply.text, "run_id": reply.run_id, "session": reply.session, "turn": reply.turn,
             "usage": {"prompt_tokens": reply.usage.prompt_tokens, "completion_tokens": reply.usage.completion_tokens,
                       "total_tokens": reply.usage.total_tokens}}
            for reply in replies
        ],
        "scope": {"id": outer.scope, "total_tokens": outer.total_tokens, "prompt_tokens": outer.prompt_tokens,
                  "completion_tokens": outer.completion_tokens, "successful_requests": outer.successful_requests,
                  "total_cost": outer.total_cost},
        "inner_scope": {"id": inner.scope, "successful_requests": inner.successful_requests},
        "live_tokens": len(live_tokens),
        "replayed": len(replayed),
        "waited_for_ack": waited,
        "sessions": sessions,
        "turn_count": trip["turn_count"],
        "memory_messages": len(memory["messages"]),
        "usage_trip": {"requests": usage["total"].requests, "total_tokens": usage["total"].total_tokens},
        "usage_groups": [group.get("key") for group in by_session["groups"]],
        "budget": {"set": budget["budgets"][0]["max_tokens"], "shown": budgets[0]["max_tokens"]},
        "tokens": tokens,
        "errors": errors,
        "async": async_summary,
    }))


if __name__ == "__main__":
    main()
