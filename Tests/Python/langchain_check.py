"""LangChain's ChatOpenAI against llmd's HTTP API, over http.sock, watched by a subscriber.

Usage: langchain_check.py HTTP_SOCKET PROTOCOL_SOCKET MODEL SCOPE

Subscribes to llmd's events on the protocol socket first, then makes LangChain calls
counted to SCOPE with the X-LLMD-Scope header: two whole (invoke, a conversation), three
streamed (a concurrent batch, .stream()) and the tutorial's three turns of a
ConversationChain with a ConversationBufferMemory, inside LangChain's two usage callbacks:
get_openai_callback (from langchain-community, what most programs count with) and
get_usage_metadata_callback (its successor in langchain-core). Checks that the subscriber
saw every reply, each streamed one token by token, .stream()'s in the very pieces
LangChain received, and prints both callbacks' totals as JSON for PythonClientTests.swift
to compare with the scope's.
"""
import json
import socket
import sys
import threading
import warnings

import httpx2
from langchain_core.callbacks import BaseCallbackHandler, get_usage_metadata_callback
from langchain_core.messages import AIMessage, HumanMessage, SystemMessage
from langchain_openai import ChatOpenAI

with warnings.catch_warnings():
    # langchain-community warns on import that it is being sunset; its callback is still
    # what programs written for LangChain count their usage with. The tutorial's chain and
    # memory are langchain-classic's now, deprecated there too.
    warnings.simplefilter("ignore", DeprecationWarning)
    from langchain_community.callbacks import get_openai_callback
    from langchain_classic.chains import ConversationChain
    from langchain_classic.memory import ConversationBufferMemory

# The tutorial's three turns of a ConversationChain with a ConversationBufferMemory.
TUTORIAL = ["Hi there!", "I'm doing well! Just having a conversation with an AI.", "Tell me about yourself."]


class Subscriber(threading.Thread):
    """A client of llmd's protocol socket, subscribed to its runs: by chain (the run whose
    id the HTTP response carries), the model's tokens in order and its whole reply."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.connection = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.connection.connect(path)
        self.lines = self.connection.makefile("r", encoding="utf-8")
        self.tokens = {}
        self.replies = {}
        self.ended = []
        self.ready = threading.Event()
        self.changed = threading.Condition()

    def run(self):
        request = {"id": 1, "method": "subscribe", "params": {"types": ["llm_new_token", "llm_end", "chain_end"]}}
        self.connection.sendall((json.dumps(request) + "\n").encode())
        for line in self.lines:
            message = json.loads(line)
            if message.get("type") == "error":
                raise SystemExit(f"subscribe failed: {message}")
            if message.get("type") == "ready":
                self.ready.set()
            if message.get("type") != "event":
                continue
            with self.changed:
                event, chain = message["event"], message["parent_run_id"]
                if event == "llm_new_token":
                    self.tokens.setdefault(chain, []).append(message["data"]["token"])
                elif event == "llm_end":
                    self.replies[chain] = message["data"]["text"]
                elif event == "chain_end":
                    self.ended.append(message["run_id"])
                self.changed.notify_all()

    def wait_for_chains(self, count, timeout=10):
        """Each chain's reply and tokens, once `count` chains have ended."""
        with self.changed:
            assert self.changed.wait_for(lambda: len(self.ended) >= count, timeout), \
                f"the subscriber saw {len(self.ended)} chains end, not {count}"
            return {self.replies[run]: (run, self.tokens.get(run, [])) for run in self.ended}


class StreamedTokens(BaseCallbackHandler):
    """What LangChain's own callbacks receive of a streamed reply, piece by piece."""

    def __init__(self):
        self.pieces = []

    def on_llm_new_token(self, token, **kwargs):
        if token:
            self.pieces.append(token)


def main():
    http_socket, protocol_socket, model, scope = sys.argv[1:5]
    subscriber = Subscriber(protocol_socket)
    subscriber.start()
    assert subscriber.ready.wait(10), "no ready marker from llmd"

    chat = ChatOpenAI(
        model=model, base_url="http://llmd/v1", api_key="unused", max_retries=0, stream_usage=True,
        default_headers={"X-LLMD-Scope": scope},
        http_client=httpx2.Client(transport=httpx2.HTTPTransport(uds=http_socket)))
    streamed = StreamedTokens()
    with get_openai_callback() as openai_callback, get_usage_metadata_callback() as usage_callback:
        whole = [chat.invoke("What is llmd?"), chat.invoke([
            SystemMessage("You answer in one line."), HumanMessage("Name a colour."),
            AIMessage("Blue."), HumanMessage("And another one?")])]
        batch = chat.batch(["First of a batch", "Second of a batch"], stream=True)
        pieces = [chunk.content for chunk in chat.stream("Stream this reply", config={"callbacks": [streamed]})]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # Streamed, so that every token of the tutorial's replies goes past the subscriber.
            conversation = ConversationChain(llm=chat.model_copy(update={"streaming": True}), memory=ConversationBufferMemory())
        turns = [conversation.invoke({"input": text})["response"] for text in TUTORIAL]
    # The memory is LangChain's: the last turn's prompt held the first two exchanges.
    assert TUTORIAL[0] in turns[2] and TUTORIAL[1] in turns[2], turns[2]
    texts = [reply.content for reply in whole + batch] + ["".join(pieces)]

    seen = subscriber.wait_for_chains(len(texts) + len(turns))
    assert sorted(seen) == sorted(texts + turns), f"the subscriber saw {sorted(seen)}, LangChain got {texts + turns}"
    for reply in whole:
        # A whole response's id is its chain's: chatcmpl- and the run's id.
        assert reply.response_metadata["id"] == "chatcmpl-" + seen[reply.content][0], (reply, seen)
    for text in texts[len(whole):] + turns:
        assert "".join(seen[text][1]) == text, f"streamed {text!r}, the subscriber's tokens {seen[text][1]}"
    assert seen[texts[-1]][1] == streamed.pieces == [piece for piece in pieces if piece], (seen, streamed.pieces, pieces)

    print(json.dumps({
        "texts": texts,
        "conversation": turns,
        "chains": [seen[text][0] for text in texts + turns],
        "streamed_pieces": streamed.pieces,
        "subscriber_tokens": sum(len(tokens) for _, tokens in seen.values()),
        "openai_callback": {
            "successful_requests": openai_callback.successful_requests,
            "prompt_tokens": openai_callback.prompt_tokens,
            "completion_tokens": openai_callback.completion_tokens,
            "total_tokens": openai_callback.total_tokens,
            "total_cost": openai_callback.total_cost,
        },
        "usage_metadata": usage_callback.usage_metadata,
    }))


if __name__ == "__main__":
    main()
