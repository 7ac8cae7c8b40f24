"""A LangChain app that calls the fixture itself, its runs published into llmd by
llmd.langchain.LlmdCallbackHandler.

Usage: langchain_reporting_check.py FIXTURE_BASE_URL PROTOCOL_SOCKET SCOPE

Runs the tutorial's three turns of a ConversationChain with a ConversationBufferMemory
over a streaming ChatOpenAI pointed straight at the fixture, inside get_openai_callback,
with two callbacks: LlmdCallbackHandler (counting reported usage to SCOPE) and a handler
that records LangChain's own run tree. Then one call that fails (the fixture answers 400), and one with llmd's socket absent.
Prints the run tree LangChain saw and get_openai_callback's totals, as JSON, for
PythonClientTests.swift to hold against llmd's journal and ledger.
"""
import json
import sys
import warnings

from langchain_core.callbacks import BaseCallbackHandler
from langchain_openai import ChatOpenAI

from llmd.langchain import LlmdCallbackHandler

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    from langchain_community.callbacks import get_openai_callback
    from langchain_classic.chains import ConversationChain
    from langchain_classic.memory import ConversationBufferMemory

TUTORIAL = ["Hi there!", "I'm doing well! Just having a conversation with an AI.", "Tell me about yourself."]


class RunTree(BaseCallbackHandler):
    """LangChain's runs as its callbacks see them: run id -> the events and the parent."""

    def __init__(self):
        self.runs = {}

    def record(self, event, run_id, parent_run_id):
        run = self.runs.setdefault(str(run_id), {"events": [], "parent": str(parent_run_id) if parent_run_id else None})
        run["events"].append(event)

    def on_chain_start(self, serialized, inputs, *, run_id, parent_run_id=None, **kwargs):
        self.record("chain_start", run_id, parent_run_id)

    def on_chain_end(self, outputs, *, run_id, parent_run_id=None, **kwargs):
        self.record("chain_end", run_id, parent_run_id)

    def on_chain_error(self, error, *, run_id, parent_run_id=None, **kwargs):
        self.record("chain_error", run_id, parent_run_id)

    def on_chat_model_start(self, serialized, messages, *, run_id, parent_run_id=None, **kwargs):
        self.record("chat_model_start", run_id, parent_run_id)

    def on_llm_new_token(self, token, *, run_id, parent_run_id=None, **kwargs):
        self.record("llm_new_token", run_id, parent_run_id)

    def on_llm_end(self, response, *, run_id, parent_run_id=None, **kwargs):
        self.record("llm_end", run_id, parent_run_id)

    def on_llm_error(self, error, *, run_id, parent_run_id=None, **kwargs):
        self.record("llm_error", run_id, parent_run_id)

    def on_text(self, text, *, run_id, parent_run_id=None, **kwargs):
        self.record("text", run_id, parent_run_id)


def main():
    base_url, socket_path, scope = sys.argv[1:4]
    tree = RunTree()
    reporter = LlmdCallbackHandler(socket_path, scopes=[scope], session="langchain-app")
    chat = ChatOpenAI(model="gpt-4o-mini", base_url=base_url, api_key="sk-test-fixture", streaming=True,
                      stream_usage=True, max_retries=0)
    chain = ConversationChain(llm=chat, memory=ConversationBufferMemory(), verbose=False)
    with get_openai_callback() as cb:
        replies = [chain.invoke({"input": text}, config={"callbacks": [tree, reporter]})["response"] for text in TUTORIAL]
    failing = ChatOpenAI(model="fixture/400", base_url=base_url, api_key="sk-test-fixture", max_retries=0)
    try:
        failing.invoke("this fails", config={"callbacks": [tree, reporter]})
        failed = False
    except Exception:  # the SDK's BadRequestError: what it is does not matter here
        failed = True
    reporter.close()
    # With llmd away the app goes on; the handler counts what it could not publish.
    away = LlmdCallbackHandler(socket_path + ".absent")
    answered = chat.invoke("llmd is away", config={"callbacks": [away]}).content
    print(json.dumps({
        "replies": replies,
        "failed": failed,
        "runs": tree.runs,
        "dropped": reporter.dropped,
        "away": {"answered": answered, "dropped": away.dropped},
        "openai_callback": {"successful_requests": cb.successful_requests, "prompt_tokens": cb.prompt_tokens,
                            "completion_tokens": cb.completion_tokens, "total_tokens": cb.total_tokens,
                            "total_cost": cb.total_cost},
    }))


main()
