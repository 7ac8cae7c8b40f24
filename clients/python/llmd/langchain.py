"""llmd and LangChain, both ways: LangChain's own callback handlers fed by llmd's events
(``run_handlers``), and a LangChain app's own runs published into llmd
(``LlmdCallbackHandler``, see its docstring).

    from langchain_core.callbacks import StdOutCallbackHandler
    import llmd
    from llmd.langchain import run_handlers

    run_handlers(llmd.Client(), [StdOutCallbackHandler()], session="trip")

Each event of llmd's runs becomes the call LangChain's callback manager makes for the same
step of a chain (see "Event types" in llmd-protocol(7)), made through langchain-core's own
``CallbackManager`` and run managers, so that the handlers' ``ignore_*`` properties,
``raise_error``, ``run_inline``, the ``on_chat_model_start`` to ``on_llm_start`` fallback and
the logging of a failing handler are LangChain's, exactly:

=================  ==========================================================================
llmd event         handler call
=================  ==========================================================================
chain_start        ``on_chain_start(None, inputs, name=...)``, as langchain-classic's
                   ``Chain.invoke`` calls it: chains pass no serialized form
chain_end          ``on_chain_end(outputs)``
chain_error        ``on_chain_error(LlmdError)``
chat_model_start   ``on_chat_model_start(serialized, [[BaseMessage, ...]], invocation_params=...,
                   options=..., name=None, batch_size=1)``, or ``on_llm_start`` with the
                   messages rendered by ``get_buffer_string`` for handlers without it
llm_start          ``on_llm_start(serialized, prompts, ...)``
llm_new_token      ``on_llm_new_token(token, chunk=ChatGenerationChunk(...))``, the pieces
                   of tool calls as its message's ``tool_call_chunks``, as langchain-openai
                   makes them; a ``GenerationChunk`` for a completions call
llm_end            ``on_llm_end(LLMResult)``, its message with ``usage_metadata`` and
                   ``tool_calls``, and ``llm_output={"token_usage": {...}, "model_name": ...}``
llm_error          ``on_llm_error(LlmdError, response=LLMResult)`` with the partial reply
retry              ``on_retry(tenacity.RetryCallState)``: the failed attempt's number and
                   error, the pause before the next (llmd's retries are not tenacity's)
text               ``on_text(text, ...)``; a titled text as ``LLMChain`` shows its prompt:
                   ``on_text("Prompt after formatting:\\n" + <the prompt in green>, end="\\n")``
custom             ``on_custom_event(name, data)``
=================  ==========================================================================

Every call carries the event's run: ``run_id`` and ``parent_run_id`` as UUIDs (a run id
``publish`` was given that is no UUID as ``uuid5(NAMESPACE_URL, "llmd:run:" + id)``),
``tags``, and for the starts ``metadata``. The serialized form of a model is ``{"lc": 1, "type":
"not_implemented", "id": ["llmd", provider], "name": provider}``: llmd's model is no
LangChain class that could be loaded again. A model run's ``metadata`` adds LangChain's
``ls_provider``, ``ls_model_name`` and ``ls_model_type`` (and ``ls_temperature``,
``ls_max_tokens``, ``ls_stop`` when the call gives them) to the event's own.

Events without a LangChain callback (``usage_recorded``, ``memory_updated``, the session
events…) are passed over. This module needs langchain-core; the rest of the package does not.
"""

from __future__ import annotations

import functools
import logging
import time
import uuid
from typing import Any, Callable, Dict, List, Optional, Sequence, Set, Tuple, Union

from langchain_core.callbacks import (
    AsyncCallbackManager,
    AsyncCallbackManagerForChainRun,
    AsyncCallbackManagerForLLMRun,
    BaseCallbackHandler,
    CallbackManager,
    CallbackManagerForChainRun,
    CallbackManagerForLLMRun,
)
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    ChatMessage,
    InvalidToolCall,
    ToolCall,
    ToolCallChunk,
    UsageMetadata,
    convert_to_messages,
)
from langchain_core.messages.tool import tool_call_chunk
from langchain_core.output_parsers.openai_tools import make_invalid_tool_call, parse_tool_call
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, Generation, GenerationChunk, LLMResult
from langchain_core.utils.input import get_colored_text
from tenacity import Future, RetryAction, RetryCallState, Retrying

from ._async import AsyncClient, AsyncSubscription
from ._client import Client, JSONObject, LlmdError, Subscription
from ._reporting import LlmdCallbackHandler

__all__ = ["HANDLED_TYPES", "HandlerDispatcher", "LlmdCallbackHandler", "arun_handlers", "run_handlers"]

#: The event types that have a LangChain callback; what ``run_handlers`` subscribes to.
HANDLED_TYPES = (
    "chain_start",
    "chain_end",
    "chain_error",
    "chat_model_start",
    "llm_start",
    "llm_new_token",
    "llm_end",
    "llm_error",
    "retry",
    "text",
    "custom",
)

# llmd never holds a run for these (llmd-protocol(7), subscribe).
_UNBLOCKABLE = frozenset({"llm_new_token", "lagged", "ack_timeout"})

_LOGGER = logging.getLogger(__name__)

# What langchain-openai's completions model tells of a piece and a reply: llmd asks for no
# logprobs, and a piece's finish_reason is unknown until the end.
_COMPLETION_CHUNK_INFO: JSONObject = {"finish_reason": None, "logprobs": None}

Handlers = Sequence[BaseCallbackHandler]


class _Call:
    """One call of LangChain's callback managers that an event stands for: ``method`` of
    the manager of the event's run, of kind ``manager`` (a run's start, or a custom event),
    ``chain`` or ``llm``."""

    __slots__ = ("kind", "method", "args", "kwargs", "metadata")

    def __init__(
        self, kind: str, method: str, *args: Any, metadata: Optional[JSONObject] = None, **kwargs: Any
    ) -> None:
        self.kind = kind
        self.method = method
        self.args = args
        self.kwargs = kwargs
        self.metadata = metadata


class HandlerDispatcher:
    """Calls LangChain callback handlers for llmd events, one event at a time, as
    LangChain's callback manager calls them for the same steps of a chain.

    ``dispatch`` makes the calls synchronously, through ``CallbackManager``: an
    ``AsyncCallbackHandler``'s coroutines run to their end on an event loop of their own
    before it returns, and their exceptions are logged, never raised, as when a chain is
    run with ``invoke``. ``adispatch`` awaits them through ``AsyncCallbackManager``, on
    the running loop, with synchronous handlers in the loop's executor unless they are
    ``run_inline``, as ``ainvoke`` does. An exception of a handler whose ``raise_error``
    is true propagates out of either; another is logged by langchain-core and the other
    handlers go on.

    The dispatcher remembers, from a model run's start to its end, whether it is a
    completions call (its tokens are ``GenerationChunk``s) and the time its retries slept.
    """

    def __init__(self, handlers: Handlers) -> None:
        self.handlers: List[BaseCallbackHandler] = list(handlers)
        self._completion_runs: Set[str] = set()
        self._slept: Dict[str, float] = {}

    def dispatch(self, event: JSONObject) -> bool:
        """Makes the handler calls ``event`` stands for; False when it has none."""
        call = self._call(event)
        if call is None:
            return False
        getattr(self._manager(call, event, asynchronous=False), call.method)(*call.args, **call.kwargs)
        return True

    async def adispatch(self, event: JSONObject) -> bool:
        """``dispatch``, awaiting asynchronous handlers on the running loop."""
        call = self._call(event)
        if call is None:
            return False
        await getattr(self._manager(call, event, asynchronous=True), call.method)(*call.args, **call.kwargs)
        return True

    def _manager(self, call: _Call, event: JSONObject, asynchronous: bool) -> Any:
        """The callback manager, or run manager, LangChain would hold for the event's run."""
        parent = _uuid(event.get("parent_run_id"))
        tags = [str(tag) for tag in event.get("tags") or []]
        metadata = dict(event.get("metadata") or {})
        if call.metadata:
            metadata.update(call.metadata)
        if call.kind == "manager":
            manager_type = AsyncCallbackManager if asynchronous else CallbackManager
            return manager_type(
                self.handlers,
                self.handlers,
                parent,
                tags=tags,
                inheritable_tags=tags,
                metadata=metadata,
                inheritable_metadata=metadata,
            )
        run_type: Any
        if call.kind == "chain":
            run_type = AsyncCallbackManagerForChainRun if asynchronous else CallbackManagerForChainRun
        else:
            run_type = AsyncCallbackManagerForLLMRun if asynchronous else CallbackManagerForLLMRun
        return run_type(
            run_id=_run_id(event),
            handlers=self.handlers,
            inheritable_handlers=self.handlers,
            parent_run_id=parent,
            tags=tags,
            inheritable_tags=tags,
            metadata=metadata,
            inheritable_metadata=metadata,
        )

    def _call(self, event: JSONObject) -> Optional[_Call]:
        kind = event.get("event")
        data: JSONObject = event.get("data") or {}
        run = str(event.get("run_id") or "")
        if kind == "chain_start":
            return _Call("manager", "on_chain_start", None, data.get("inputs") or {}, run_id=_run_id(event), name=data.get("name"))
        if kind == "chain_end":
            return _Call("chain", "on_chain_end", data.get("outputs") or {})
        if kind == "chain_error":
            return _Call("chain", "on_chain_error", _error(data))
        if kind == "chat_model_start":
            messages = [_message(message) for message in data.get("messages") or []]
            return _model_start(event, data, "on_chat_model_start", [messages], "chat")
        if kind == "llm_start":
            completions = not data.get("from_chat_model")
            if completions:
                self._completion_runs.add(run)
            prompts = [str(prompt) for prompt in data.get("prompts") or []]
            return _model_start(event, data, "on_llm_start", prompts, "llm" if completions else "chat")
        if kind == "llm_new_token":
            token = str(data.get("token", ""))
            chunk: Union[GenerationChunk, ChatGenerationChunk]
            if run in self._completion_runs:
                chunk = GenerationChunk(text=token, generation_info=dict(_COMPLETION_CHUNK_INFO))
            else:
                chunk = ChatGenerationChunk(message=_message_chunk(run, token, data.get("tool_calls")))
            return _Call("llm", "on_llm_new_token", token, chunk=chunk)
        if kind == "llm_end":
            return _Call("llm", "on_llm_end", _result(run, data, self._end(run)))
        if kind == "llm_error":
            completions = self._end(run)
            partial = str(data.get("partial_text") or "")
            generations = [[_generation(run, partial, {}, completions)]] if partial else []
            return _Call("llm", "on_llm_error", _error(data), response=LLMResult(generations=generations))
        if kind == "retry":
            return _Call("llm", "on_retry", self._retry_state(run, data))
        if kind == "text":
            text = str(data.get("text", ""))
            title = data.get("title")
            if title is None:
                return _Call("chain", "on_text", text)
            # LLMChain.prep_prompts: its title, the prompt in green, a newline after; its
            # verbose flag is that of a chain made without verbose=True.
            return _Call("chain", "on_text", f"{title}:\n" + get_colored_text(text, "green"), end="\n", verbose=False)
        if kind == "custom":
            return _Call("manager", "on_custom_event", str(data.get("name", "")), data.get("data"), run_id=_run_id(event))
        if kind in ("lagged", "ack_timeout"):
            _LOGGER.warning("llmd: %s %s", kind, data)
        return None

    def _end(self, run: str) -> bool:
        """Forgets a model run that ended; whether it was a completions call."""
        self._slept.pop(run, None)
        completions = run in self._completion_runs
        self._completion_runs.discard(run)
        return completions

    def _retry_state(self, run: str, data: JSONObject) -> RetryCallState:
        """What tenacity's ``before_sleep`` hands LangChain's ``on_retry``: the failed
        attempt's number and its error as the outcome, the pause before the next one as
        ``next_action``/``upcoming_sleep``, and the run's pauses so far, this one included,
        as ``idle_for``. llmd's retry policy is its own, not tenacity's: ``retry_object`` is
        a default ``Retrying`` and ``fn`` is None."""
        delay = float(data.get("delay_ms", 0)) / 1000
        self._slept[run] = self._slept.get(run, 0.0) + delay
        attempt = int(data.get("attempt", 1))
        state = RetryCallState(Retrying(), None, (), {})
        state.attempt_number = attempt
        state.outcome = Future.construct(attempt, _error(data), True)
        state.outcome_timestamp = time.monotonic()
        state.upcoming_sleep = delay
        state.next_action = RetryAction(delay)
        state.idle_for = self._slept[run]
        return state


def _model_start(event: JSONObject, data: JSONObject, method: str, inputs: Any, model_type: str) -> _Call:
    """A model run's start, with what BaseChatModel.generate and BaseLLM.generate pass."""
    provider = str(data.get("provider", ""))
    model = str(data.get("model", ""))
    params: JSONObject = dict(data.get("invocation_params") or {})
    invocation = {**params, "model": model, "model_name": model, "stream": bool(data.get("stream"))}
    metadata: JSONObject = {"ls_provider": provider, "ls_model_name": model, "ls_model_type": model_type}
    for name in ("temperature", "max_tokens", "stop"):
        if name in params:
            metadata["ls_" + name] = params[name]
    serialized = {"lc": 1, "type": "not_implemented", "id": ["llmd", provider], "name": provider}
    return _Call(
        "manager",
        method,
        serialized,
        inputs,
        metadata=metadata,
        run_id=_run_id(event),
        invocation_params=invocation,
        options={"stop": params.get("stop")},
        name=None,
        batch_size=1,
    )


def _run_id(event: JSONObject) -> uuid.UUID:
    run = _uuid(event.get("run_id"))
    if run is None:
        raise LlmdError("client.bad_message", f"an event without a run id: {event!r}")
    return run


def _uuid(value: Any) -> Optional[uuid.UUID]:
    """A run id as LangChain's UUID. ``publish`` takes any string as a run id: one that is
    no UUID becomes the same name-based UUID each time, so the tree holds together."""
    if not value:
        return None
    return _parsed_uuid(str(value))


@functools.lru_cache(maxsize=1024)
def _parsed_uuid(value: str) -> uuid.UUID:
    # Cached: a stream's every token names the same two runs, and parsing them was the
    # dispatch's largest cost.
    try:
        return uuid.UUID(value)
    except ValueError:
        return uuid.uuid5(uuid.NAMESPACE_URL, "llmd:run:" + value)


def _error(data: JSONObject) -> LlmdError:
    return LlmdError.from_reply(data.get("error") or {})


def _message(message: JSONObject) -> BaseMessage:
    """A message of llmd's (``role``, ``content``, and OpenAI's ``tool_calls``,
    ``tool_call_id``, ``name`` when present) as LangChain's message of that role; a role
    LangChain does not know as a ``ChatMessage``, which ``get_buffer_string`` renders with
    the role as it is, as llmd does."""
    fields = {**message, "content": message.get("content") or ""}
    try:
        return convert_to_messages([fields])[0]
    except (ValueError, KeyError, TypeError):
        return ChatMessage(role=str(message.get("role", "")), content=str(fields["content"]))


def _message_chunk(run: str, token: str, raw_tool_calls: Any) -> AIMessageChunk:
    """A streamed piece as langchain-openai makes it: the run's id as the message's,
    and the tool calls' pieces as ``tool_call_chunks``."""
    if not raw_tool_calls:
        return AIMessageChunk(content=token, id=f"lc_run--{run}")
    chunks: List[ToolCallChunk] = [
        tool_call_chunk(
            name=(piece.get("function") or {}).get("name"),
            args=(piece.get("function") or {}).get("arguments"),
            id=piece.get("id"),
            index=piece.get("index"),
        )
        for piece in raw_tool_calls
    ]
    return AIMessageChunk(
        content=token,
        id=f"lc_run--{run}",
        additional_kwargs={"tool_calls": raw_tool_calls},
        tool_call_chunks=chunks,
    )


def _result(run: str, data: JSONObject, completions: bool) -> LLMResult:
    """``llm_end``'s data as the LLMResult LangChain's model hands ``on_llm_end``."""
    usage: JSONObject = data.get("usage") or {}
    model = str(data.get("model", ""))
    token_usage = {
        "prompt_tokens": int(usage.get("prompt_tokens", 0)),
        "completion_tokens": int(usage.get("completion_tokens", 0)),
        "total_tokens": int(usage.get("total_tokens", 0)),
        "prompt_tokens_details": {"cached_tokens": int(usage.get("cached_prompt_tokens", 0))},
        "completion_tokens_details": {"reasoning_tokens": int(usage.get("reasoning_tokens", 0))},
    }
    generation = _generation(run, str(data.get("text", "")), data, completions)
    return LLMResult(generations=[[generation]], llm_output={"token_usage": token_usage, "model_name": model})


def _generation(run: str, text: str, data: JSONObject, completions: bool) -> Generation:
    finish: JSONObject = {"finish_reason": data["finish_reason"]} if data.get("finish_reason") else {}
    if completions:
        return Generation(text=text, generation_info={**_COMPLETION_CHUNK_INFO, **finish})
    # As langchain-openai's last chunk gives them: the finish reason and the model's name.
    info: JSONObject = {**finish, "model_name": data["model"]} if "model" in data else finish
    fields: JSONObject = {"response_metadata": info}
    usage = data.get("usage")
    if usage:
        fields["usage_metadata"] = UsageMetadata(
            input_tokens=int(usage.get("prompt_tokens", 0)),
            output_tokens=int(usage.get("completion_tokens", 0)),
            total_tokens=int(usage.get("total_tokens", 0)),
            input_token_details={"cache_read": int(usage.get("cached_prompt_tokens", 0))},
            output_token_details={"reasoning": int(usage.get("reasoning_tokens", 0))},
        )
    raw_tool_calls = data.get("tool_calls")
    if raw_tool_calls:
        fields["additional_kwargs"] = {"tool_calls": raw_tool_calls}
        fields["tool_calls"], fields["invalid_tool_calls"] = _tool_calls(raw_tool_calls)
    message = AIMessage(content=text, id=f"lc_run--{run}", **fields)
    return ChatGeneration(message=message, generation_info=info or None)


def _tool_calls(raw_tool_calls: List[JSONObject]) -> Tuple[List[ToolCall], List[InvalidToolCall]]:
    """OpenAI's ``tool_calls`` as langchain-openai reads a whole response's: those whose
    arguments are not JSON are invalid calls."""
    calls: List[ToolCall] = []
    invalid: List[InvalidToolCall] = []
    for raw in raw_tool_calls:
        try:
            parsed = parse_tool_call(raw, return_id=True)
        except Exception as error:  # langchain-openai's own catch-all here
            invalid.append(make_invalid_tool_call(raw, str(error)))
            continue
        if parsed is not None:
            calls.append(ToolCall(name=parsed["name"], args=parsed["args"], id=parsed.get("id"), type="tool_call"))
    return calls, invalid


def _subscription_plan(
    handlers: Handlers, types: Optional[Sequence[str]], blocking: bool
) -> Tuple["HandlerDispatcher", List[str], List[str]]:
    """What both runners start from: the dispatcher, the types to subscribe to (every
    handled one by default) and, when blocking, those the subscription blocks on (tokens
    cannot block)."""
    wanted = list(types) if types is not None else list(HANDLED_TYPES)
    blocked = [kind for kind in wanted if kind not in _UNBLOCKABLE] if blocking else []
    return HandlerDispatcher(handlers), wanted, blocked


def run_handlers(
    client: Client,
    handlers: Handlers,
    *,
    session: Union[str, Sequence[str], None] = None,
    types: Optional[Sequence[str]] = None,
    since: Optional[int] = None,
    live: bool = True,
    blocking: bool = False,
    until: Optional[Callable[[JSONObject], bool]] = None,
    on_subscribed: Optional[Callable[[Subscription], None]] = None,
    **filters: Any,
) -> int:
    """Feeds LangChain callback handlers with llmd's events until the subscription ends;
    the number of events handed to them.

    Subscribes through ``client`` (on a connection of its own) to ``types``, by default
    every type in ``HANDLED_TYPES``, of ``session`` (a name or names; every session and
    none without it), replaying first the journal's events after ``since`` (0 for all it
    keeps), and dispatches each event with a ``HandlerDispatcher``.

    Args:
        live: False to stop after the replay, at the ready marker.
        blocking: make llmd's runs wait for the handlers: the subscription blocks on its
            types (``llm_new_token`` cannot block: a slow token handler falls behind the
            stream instead of slowing it), and each live event is acknowledged only once
            every handler has returned, as LangChain waits for its handlers, asynchronous
            ones included. A handler slower than ``AckTimeoutSec=`` (llmd.conf(5)) lets
            the run go on; the ``ack_timeout`` that follows is logged.
        until: called with each event once it is handled; True ends the run.
        on_subscribed: called with the subscription once llmd has accepted it, before
            any event: events published from then on reach the handlers. ``close()`` it,
            from any thread, to end the run.
        filters: the other parameters of ``subscribe`` (``tags``, ``run_id``,
            ``since_time``, ``on_lag``).

    Raises:
        Exception: what a handler whose ``raise_error`` is true raised; the subscription is
            closed, which releases a run waiting for it.
        LlmdError: when llmd refuses the subscription.
    """
    dispatcher, wanted, blocked = _subscription_plan(handlers, types, blocking)
    handled = 0
    with client.subscribe(wanted, session, since, live=live, blocking=blocked or None, **filters) as subscription:
        if on_subscribed is not None:
            on_subscribed(subscription)
        for event in subscription:
            dispatcher.dispatch(event)
            handled += 1
            # Replayed events held no run; the ready marker ends the replay.
            if event.get("event") in blocked and subscription.ready_seq is not None:
                subscription.ack(event)
            if until is not None and until(event):
                break
    return handled


async def arun_handlers(
    client: AsyncClient,
    handlers: Handlers,
    *,
    session: Union[str, Sequence[str], None] = None,
    types: Optional[Sequence[str]] = None,
    since: Optional[int] = None,
    live: bool = True,
    blocking: bool = False,
    until: Optional[Callable[[JSONObject], bool]] = None,
    on_subscribed: Optional[Callable[[AsyncSubscription], None]] = None,
    **filters: Any,
) -> int:
    """``run_handlers`` on asyncio: the handlers are awaited on the running loop, as
    ``AsyncCallbackManager`` awaits them (``HandlerDispatcher.adispatch``), and
    ``on_subscribed`` receives the ``AsyncSubscription``."""
    dispatcher, wanted, blocked = _subscription_plan(handlers, types, blocking)
    handled = 0
    subscription = await client.subscribe(wanted, session, since, live=live, blocking=blocked or None, **filters)
    async with subscription:
        if on_subscribed is not None:
            on_subscribed(subscription)
        async for event in subscription:
            await dispatcher.adispatch(event)
            handled += 1
            if event.get("event") in blocked and subscription.ready_seq is not None:
                await subscription.ack(event)
            if until is not None and until(event):
                break
    return handled
