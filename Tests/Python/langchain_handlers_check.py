"""LangChain's own callback handlers fed by llmd's events (llmd.langchain), held against the
same handlers attached to LangChain's own chain.

Usage: langchain_handlers_check.py PROTOCOL_SOCKET FIXTURE_BASE_URL MODEL

The tutorial's three turns (langchain_check.TUTORIAL) run against the same fixture twice:
natively, through langchain-classic's ConversationChain with a ConversationBufferMemory and
a streaming ChatOpenAI, the handlers given to each invoke; and as three turns of an llmd
session with buffer memory and the conversation prompt style, the handlers fed live by
run_handlers on a blocking subscription. The session is then replayed from the journal to
fresh handlers, by run_handlers and by arun_handlers. Each time StdOutCallbackHandler and
FileCallbackHandler must write the very bytes they wrote natively, and a token recorder and
an AsyncCallbackHandler (which sleeps in on_llm_start and on_llm_end) must receive the same
calls in the same order, with the same run tree. Handlers that ignore LLM callbacks, that
fail, and that fail with raise_error are held against LangChain's own treatment of them, and
so are a completion model's turn, a model that refuses the key and one that calls a tool;
a retried call and a published event are held against the events themselves. Prints a JSON summary for
Tests/LLMDIntegrationTests/PythonLibraryTests.swift.
"""
import asyncio
import contextlib
import io
import json
import logging
import os
import sys
import tempfile
import threading
import time
import uuid
import warnings

import llmd
from langchain_check import TUTORIAL
from langchain_core.callbacks import AsyncCallbackHandler, BaseCallbackHandler, FileCallbackHandler, StdOutCallbackHandler
from langchain_openai import ChatOpenAI, OpenAI
from llmd.langchain import HANDLED_TYPES, arun_handlers, run_handlers

with warnings.catch_warnings():
    # The tutorial's chain and memory are langchain-classic's, deprecated there.
    warnings.simplefilter("ignore", DeprecationWarning)
    from langchain_classic.chains import ConversationChain
    from langchain_classic.memory import ConversationBufferMemory

# How long the asynchronous handler sleeps in on_llm_start and on_llm_end: long enough to
# see a blocked turn wait, short beside llmd's AckTimeoutSec= of 5 seconds.
PAUSE = 0.25


class Calls:
    """Calls as a handler received them, with each run named by the order of its first
    appearance instead of its id, so that two runs of the same chain compare equal when
    their calls and the shape of their run tree are the same."""

    def __init__(self):
        self.calls = []
        self._runs = {}

    def add(self, method, run_id, parent_run_id, *facts):
        self.calls.append([method, self._run(run_id), self._run(parent_run_id), *facts])

    def _run(self, run_id):
        return None if run_id is None else self._runs.setdefault(run_id, len(self._runs))


class TokenRecorder(BaseCallbackHandler):
    """A handler of tokens only, as a program that shows a reply as it streams has."""

    def __init__(self):
        self.record = Calls()

    def on_llm_new_token(self, token, *, chunk=None, run_id, parent_run_id=None, tags=None, **kwargs):
        message = getattr(chunk, "message", None)
        self.record.add(
            "on_llm_new_token", run_id, parent_run_id, token, type(chunk).__name__,
            getattr(message, "content", None), getattr(message, "id", None) == f"lc_run--{run_id}", tags)


class SlowAsyncRecorder(AsyncCallbackHandler):
    """An asynchronous handler without on_chat_model_start, so LangChain falls back to its
    on_llm_start, which, like its on_llm_end, takes a while."""

    def __init__(self):
        self.record = Calls()

    async def on_chain_start(self, serialized, inputs, *, run_id, parent_run_id=None, tags=None, metadata=None, **kwargs):
        self.record.add("on_chain_start", run_id, parent_run_id, serialized, inputs, kwargs.get("name"), tags)

    async def on_text(self, text, *, run_id, parent_run_id=None, **kwargs):
        self.record.add("on_text", run_id, parent_run_id, text, kwargs)

    async def on_llm_start(self, serialized, prompts, *, run_id, parent_run_id=None, tags=None, **kwargs):
        await asyncio.sleep(PAUSE)
        self.record.add("on_llm_start", run_id, parent_run_id, prompts, tags)

    async def on_llm_end(self, response, *, run_id, parent_run_id=None, tags=None, **kwargs):
        await asyncio.sleep(PAUSE)
        generation = response.generations[0][0]
        message = getattr(generation, "message", None)
        self.record.add(
            "on_llm_end", run_id, parent_run_id, type(generation).__name__, generation.text,
            generation.generation_info, getattr(message, "usage_metadata", None), tags)

    async def on_chain_end(self, outputs, *, run_id, parent_run_id=None, tags=None, **kwargs):
        self.record.add("on_chain_end", run_id, parent_run_id, outputs, tags)


class ChainRecorder(BaseCallbackHandler):
    """Records what it receives of a chain's steps; with ignore_llm, the model's are
    LangChain's to hold back."""

    def __init__(self, ignore_llm=False):
        self.record = Calls()
        self.errors = []
        self._ignore_llm = ignore_llm

    @property
    def ignore_llm(self):
        return self._ignore_llm

    def on_chain_start(self, serialized, inputs, *, run_id, parent_run_id=None, **kwargs):
        self.record.add("on_chain_start", run_id, parent_run_id, inputs)

    def on_text(self, text, *, run_id, parent_run_id=None, **kwargs):
        self.record.add("on_text", run_id, parent_run_id, text)

    def on_llm_start(self, serialized, prompts, *, run_id, parent_run_id=None, **kwargs):
        self.record.add("on_llm_start", run_id, parent_run_id, prompts)

    def on_llm_new_token(self, token, *, run_id, parent_run_id=None, **kwargs):
        self.record.add("on_llm_new_token", run_id, parent_run_id, token)

    def on_llm_end(self, response, *, run_id, parent_run_id=None, **kwargs):
        self.record.add("on_llm_end", run_id, parent_run_id, response.generations[0][0].text)

    def on_chain_end(self, outputs, *, run_id, parent_run_id=None, **kwargs):
        self.record.add("on_chain_end", run_id, parent_run_id, outputs)

    def on_llm_error(self, error, *, run_id, parent_run_id=None, **kwargs):
        # The errors are the clients' own: openai's natively, LlmdError from llmd.
        self.record.add("on_llm_error", run_id, parent_run_id)
        self.errors.append(error)

    def on_chain_error(self, error, *, run_id, parent_run_id=None, **kwargs):
        self.record.add("on_chain_error", run_id, parent_run_id)
        self.errors.append(error)


class RetryRecorder(BaseCallbackHandler):
    """What on_retry and on_custom_event receive."""

    def __init__(self):
        self.retries = []
        self.custom = []

    def on_retry(self, retry_state, *, run_id, parent_run_id=None, **kwargs):
        self.retries.append((retry_state, run_id, parent_run_id))

    def on_custom_event(self, name, data, *, run_id, tags=None, metadata=None, **kwargs):
        self.custom.append((name, data, run_id, tags, metadata))


class ToolRecorder(BaseCallbackHandler):
    """What a model's tool calls look like to a handler: the streamed pieces, and the calls
    of the whole reply."""

    def __init__(self):
        self.pieces = []
        self.ends = []

    def on_llm_new_token(self, token, *, chunk=None, **kwargs):
        if chunk.message.tool_call_chunks:
            self.pieces.append((token, chunk.message.tool_call_chunks))

    def on_llm_end(self, response, **kwargs):
        generation = response.generations[0][0]
        message = generation.message
        self.ends.append((message.tool_calls, message.invalid_tool_calls, generation.generation_info))


class FailingHandler(BaseCallbackHandler):
    """Fails as each chain starts."""

    def __init__(self, raise_error):
        self.raise_error = raise_error

    def on_chain_start(self, serialized, inputs, **kwargs):
        raise RuntimeError(f"no chain may start: {inputs['input']}")


class LangChainWarnings(logging.Handler):
    """What langchain-core logs about failing handlers."""

    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


class Observed:
    """What one run of the tutorial left with its handlers: StdOutCallbackHandler's output,
    FileCallbackHandler's file, and the recorders' calls."""

    def __init__(self, directory, name):
        self.path = os.path.join(directory, name + ".log")
        self.stdout = io.StringIO()
        self.tokens = TokenRecorder()
        self.slow = SlowAsyncRecorder()
        self.file_text = None

    @contextlib.contextmanager
    def handlers(self):
        """The four handlers, while stdout is captured and the file open."""
        with contextlib.redirect_stdout(self.stdout), FileCallbackHandler(self.path, mode="w") as file_handler:
            yield [StdOutCallbackHandler(), file_handler, self.tokens, self.slow]
        with open(self.path, encoding="utf-8") as written:
            self.file_text = written.read()


def chat_openai(base_url, model):
    return ChatOpenAI(model=model, base_url=base_url, api_key="unused", max_retries=0, streaming=True, stream_usage=True)


def native(llm, handlers, turns=TUTORIAL):
    """The tutorial's turns through LangChain's own chain on `llm`, `handlers` on each."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        chain = ConversationChain(llm=llm, memory=ConversationBufferMemory())
    return [chain.invoke({"input": text}, config={"callbacks": handlers})["response"] for text in turns]


def turns_ended(count):
    """An `until` for run_handlers: True once `count` top-level chains have ended."""
    ended = []

    def until(event):
        if event["event"] == "chain_end" and event["parent_run_id"] is None:
            ended.append(event["run_id"])
        return len(ended) == count

    return until


def through_llmd(client, session, model, handlers):
    """The tutorial's three turns as turns of `session`, with `handlers` fed live by
    run_handlers on a blocking subscription, in a thread of its own; each turn's replies
    and how long it took."""
    subscribed = threading.Event()
    outcome = {}

    def feed():
        try:
            outcome["handled"] = run_handlers(
                client, handlers, session=session, blocking=True,
                until=turns_ended(len(TUTORIAL)), on_subscribed=lambda _: subscribed.set())
        except BaseException as error:  # noqa: BLE001 - re-raised by the main thread
            outcome["error"] = error
            subscribed.set()

    feeder = threading.Thread(target=feed, daemon=True)
    feeder.start()
    assert subscribed.wait(10) and "error" not in outcome, outcome
    replies, durations = [], []
    for text in TUTORIAL:
        started = time.monotonic()
        reply = client.send(session, text, model=model, memory="buffer", prompt_style="conversation")
        durations.append(time.monotonic() - started)
        replies.append(reply.text)
    feeder.join(30)
    assert not feeder.is_alive(), "run_handlers did not see the last turn end"
    if "error" in outcome:
        raise outcome["error"]
    return replies, durations, outcome["handled"]


def replayed(client, session, handlers, **params):
    return run_handlers(client, handlers, session=session, since=0, live=False, **params)


def areplayed(path, session, handlers):
    async def replay():
        async with await llmd.AsyncClient.connect(path) as aclient:
            return await arun_handlers(aclient, handlers, session=session, since=0, live=False)

    return asyncio.run(replay())


def assert_same(expected, observed, label):
    assert observed.stdout.getvalue() == expected.stdout.getvalue(), \
        f"{label}: StdOutCallbackHandler wrote\n{observed.stdout.getvalue()!r}\nnatively\n{expected.stdout.getvalue()!r}"
    assert observed.file_text == expected.file_text, \
        f"{label}: FileCallbackHandler wrote\n{observed.file_text!r}\nnatively\n{expected.file_text!r}"
    assert observed.slow.record.calls == expected.slow.record.calls, \
        f"{label}: the asynchronous handler got\n{observed.slow.record.calls}\nnatively\n{expected.slow.record.calls}"
    tokens, native_tokens = observed.tokens.record.calls, texted(expected.tokens.record.calls)
    assert tokens == native_tokens, f"{label}: tokens\n{tokens}\nnatively\n{native_tokens}"


def texted(calls):
    """The calls but those of tokens without text. langchain-openai also calls
    on_llm_new_token with "" for the chunks of a stream that have none (the one with
    finish_reason, the usage chunk, and its last-chunk marker); llmd publishes no token
    event for these."""
    return [call for call in calls if call[0] != "on_llm_new_token" or call[3] != ""]


def journal_waits(client, session):
    """For each model run of `session`, the time from its chat_model_start to its first
    token, as the journal's timestamps say, in seconds."""
    starts, firsts = {}, {}
    for event in client.subscribe(["chat_model_start", "llm_new_token"], session, 0, live=False):
        run = event["run_id"]
        if event["event"] == "chat_model_start":
            starts[run] = event["ts"]
        else:
            firsts.setdefault(run, event["ts"])
    return [(firsts[run] - starts[run]) / 1e6 for run in starts]


def check_tutorial(client, path, base_url, model, directory):
    """The four handlers natively, live through llmd, replayed, and replayed on asyncio."""
    session = "tutorial"
    expected = Observed(directory, "native")
    with expected.handlers() as handlers:
        native_replies = native(chat_openai(base_url, model), handlers)

    live = Observed(directory, "live")
    with live.handlers() as handlers:
        replies, durations, live_handled = through_llmd(client, session, model, handlers)
    assert replies == native_replies, (replies, native_replies)
    assert_same(expected, live, "live")
    # The turns waited for the slow handler: its on_llm_start before the model was called,
    # its on_llm_end before the turn ended.
    assert min(durations) >= 2 * PAUSE, durations
    waits = journal_waits(client, session)
    assert len(waits) == len(TUTORIAL) and min(waits) >= PAUSE, waits

    again = Observed(directory, "replay")
    with again.handlers() as handlers:
        replay_handled = replayed(client, session, handlers)
    assert_same(expected, again, "replay")

    asynchronously = Observed(directory, "async")
    with asynchronously.handlers() as handlers:
        async_handled = areplayed(path, session, handlers)
    assert_same(expected, asynchronously, "async replay")

    return {
        "replies": replies,
        "turn_seconds": durations,
        "model_waits": waits,
        "handled": {"live": live_handled, "replay": replay_handled, "async": async_handled},
        "stdout": live.stdout.getvalue(),
        "file": live.file_text,
        "tokens": len(live.tokens.record.calls),
        "native_empty_tokens": len(expected.tokens.record.calls) - len(texted(expected.tokens.record.calls)),
        "slow_calls": [call[0] for call in live.slow.record.calls],
        "usage": [call[6] for call in live.slow.record.calls if call[0] == "on_llm_end"],
    }


def check_completions(client, directory, base_url):
    """A completion model (the completions endpoint): the handlers as LangChain's OpenAI
    LLM, streaming, hands them a ConversationChain's turn."""
    model = "gpt-3.5-turbo-instruct"
    expected = Observed(directory, "native-completions")
    with expected.handlers() as handlers:
        native(OpenAI(model=model, base_url=base_url, api_key="unused", max_retries=0, streaming=True), handlers, TUTORIAL[:1])
    client.send("completions", TUTORIAL[0], model=model, prompt_style="conversation")
    observed = Observed(directory, "completions")
    with observed.handlers() as handlers:
        replayed(client, "completions", handlers)
    assert_same(expected, observed, "completions")
    assert {call[4] for call in observed.tokens.record.calls} == {"GenerationChunk"}, observed.tokens.record.calls
    return {"completion_tokens": len(observed.tokens.record.calls)}


def check_handler_flags(client, base_url, model):
    """ignore_llm, a failing handler, and one with raise_error, natively and replayed."""
    session = "tutorial"
    # ignore_llm: LangChain holds back the model's callbacks, and on_llm_start too, which a
    # handler without on_chat_model_start would get in its place.
    native_ignoring, ignoring = ChainRecorder(ignore_llm=True), ChainRecorder(ignore_llm=True)
    native(chat_openai(base_url, model), [native_ignoring])
    replayed(client, session, [ignoring])
    assert ignoring.record.calls == native_ignoring.record.calls, (ignoring.record.calls, native_ignoring.record.calls)
    assert {call[0] for call in ignoring.record.calls} == {"on_chain_start", "on_text", "on_chain_end"}

    # A failing handler without raise_error is logged, as LangChain logs it, and the other
    # handlers go on.
    logged = LangChainWarnings()
    logging.getLogger("langchain_core.callbacks.manager").addHandler(logged)
    native_after, after = ChainRecorder(), ChainRecorder()
    native(chat_openai(base_url, model), [FailingHandler(raise_error=False), native_after])
    native_logged, logged.messages = logged.messages, []
    replayed(client, session, [FailingHandler(raise_error=False), after])
    assert after.record.calls == texted(native_after.record.calls)
    replay_logged = list(logged.messages)
    assert replay_logged == native_logged and len(replay_logged) == len(TUTORIAL), (replay_logged, native_logged)

    # With raise_error, its exception ends the chain natively and run_handlers here.
    failures = []
    for run in (lambda handlers: native(chat_openai(base_url, model), handlers), lambda handlers: replayed(client, session, handlers)):
        try:
            run([FailingHandler(raise_error=True)])
        except RuntimeError as error:
            failures.append(str(error))
    assert failures == [f"no chain may start: {TUTORIAL[0]}"] * 2, failures
    return {"ignore_llm_calls": len(ignoring.record.calls), "logged": replay_logged, "raised": failures[1]}


def check_errors(client, base_url, model):
    """A model that refuses the key: the same calls of the same runs natively, each client
    with its own exception."""
    native_failed, failed = ChainRecorder(), ChainRecorder()
    with contextlib.suppress(Exception):
        native(chat_openai(base_url, model + "/401"), [native_failed], TUTORIAL[:1])
    with contextlib.suppress(llmd.LlmdError):
        client.send("refused", TUTORIAL[0], model=model + "/401", prompt_style="conversation")
    replayed(client, "refused", [failed])
    assert failed.record.calls == native_failed.record.calls, (failed.record.calls, native_failed.record.calls)
    assert [call[0] for call in failed.record.calls][-2:] == ["on_llm_error", "on_chain_error"], failed.record.calls
    assert [error.code for error in failed.errors] == ["upstream.unauthorized"] * 2, failed.errors
    return {
        "llmd_errors": [type(error).__name__ for error in failed.errors],
        "native_errors": [type(error).__name__ for error in native_failed.errors],
    }


WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


def check_tool_calls(client, base_url, model):
    """A model that calls a tool, streamed: the same pieces and the same calls as
    ChatOpenAI with the tool bound hands its handlers."""
    question = "What is the weather in Paris?"
    native_tools, tools = ToolRecorder(), ToolRecorder()
    chat_openai(base_url, model + "/tools").bind_tools([WEATHER]).invoke(question, config={"callbacks": [native_tools]})
    client.complete(question, model=model + "/tools", extra={"tools": [WEATHER]}, stream=True, session="tools")
    replayed(client, "tools", [tools])
    assert tools.pieces == native_tools.pieces and len(tools.pieces) == 3, (tools.pieces, native_tools.pieces)
    assert tools.ends == native_tools.ends, (tools.ends, native_tools.ends)
    ((calls, _, _),) = tools.ends
    assert calls == [{"name": "get_weather", "args": {"city": "Paris"}, "id": "call_fx1", "type": "tool_call"}], calls
    return {"tool_calls": calls}


def check_retry_and_custom(client, model):
    """A retried call and a published event. LangChain's chains make neither through
    ChatOpenAI, so what the handler receives is held against the events themselves."""
    retried = client.send("retried", TUTORIAL[0], model=model + "/500-then-ok:1")
    client.publish("progress", {"step": 1}, session="retried", run_id="step-1", tags=["steps"])
    recorder = RetryRecorder()
    replayed(client, "retried", [recorder])
    ((state, run_id, parent_run_id),) = recorder.retries
    (retry_event,) = list(client.subscribe(["retry"], "retried", 0, live=False))
    assert str(run_id) == retry_event["run_id"] and str(parent_run_id) == retried.run_id, (run_id, retry_event, retried)
    assert state.attempt_number == 1 and state.outcome.failed, state
    assert state.outcome.exception().code == "upstream.server_error", state.outcome.exception()
    assert state.next_action.sleep == state.upcoming_sleep == state.idle_for == retry_event["data"]["delay_ms"] / 1000
    ((name, data, custom_run, tags, metadata),) = recorder.custom
    assert (name, data, tags, metadata) == ("progress", {"step": 1}, ["steps"], {}), recorder.custom
    # publish took a run id that is no UUID; LangChain's handlers get a stable one.
    assert custom_run == uuid.uuid5(uuid.NAMESPACE_URL, "llmd:run:step-1"), custom_run
    return {"retry": {"attempt": state.attempt_number, "sleep": state.next_action.sleep}}


def main():
    path, base_url, model = sys.argv[1:4]
    client = llmd.Client(path)
    summary = check_tutorial(client, path, base_url, model, tempfile.mkdtemp())
    summary.update(check_completions(client, tempfile.mkdtemp(), base_url))
    summary.update(check_handler_flags(client, base_url, model))
    summary.update(check_errors(client, base_url, model))
    summary.update(check_tool_calls(client, base_url, model))
    summary.update(check_retry_and_custom(client, model))
    summary["handled_types"] = list(HANDLED_TYPES)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
