"""The synchronous client of llmd's protocol, its results and its errors."""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import socket
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Union

__all__ = [
    "LlmdError",
    "Usage",
    "Reply",
    "Totals",
    "ScopeCallback",
    "Client",
    "Subscription",
    "socket_path",
    "PROTOCOL_VERSION",
]

#: The protocol version this library speaks.
PROTOCOL_VERSION = 1

SYSTEM_SOCKET = "/run/llmd/llmd.sock"

JSONObject = Dict[str, Any]
TokenCallback = Callable[[str], None]


def socket_path(explicit: Optional[str] = None) -> str:
    """The socket to use, found as llmctl finds it.

    `explicit` wins, then ``$LLMD_SOCKET``; for root, the system instance's
    ``/run/llmd/llmd.sock``; else the user's own daemon,
    ``$XDG_RUNTIME_DIR/llmd/llmd.sock`` (``/run/user/UID`` without the variable),
    when its socket exists, the system instance's when only that one exists, and the
    user's path when neither does.
    """
    if explicit:
        return explicit
    from_environment = os.environ.get("LLMD_SOCKET")
    if from_environment:
        return from_environment
    uid = os.geteuid()
    if uid == 0:
        return SYSTEM_SOCKET
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{uid}"
    user = runtime + "/llmd/llmd.sock"
    if not os.path.exists(user) and os.path.exists(SYSTEM_SOCKET):
        return SYSTEM_SOCKET
    return user


class LlmdError(Exception):
    """An error reply of llmd's, or the client's own failure.

    Attributes:
        code: the dotted error code, such as ``session.not_found`` (see ERROR CODES in
            llmd-protocol(7)); the client's own are ``client.*``: ``client.not_llmd``
            when the socket does not greet as llmd, ``client.connection_closed`` when the
            daemon closed the connection, ``client.unsupported_protocol``.
        message: an English sentence for people.
        detail: facts for programs, ``{}`` when there are none.
    """

    def __init__(self, code: str, message: str, detail: Optional[JSONObject] = None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.detail: JSONObject = detail or {}

    @classmethod
    def from_reply(cls, error: JSONObject) -> "LlmdError":
        """The exception of an error reply's ``error`` member."""
        return cls(str(error.get("code", "")), str(error.get("message", "")), error.get("detail") or {})


@dataclass
class Usage:
    """A call's token counts and cost, as llmd's ledger records them.

    ``cost`` is in US dollars, ``None`` when the model's price is unknown; ``source`` is
    ``provider``, ``estimated`` or ``reported`` (by a program that made the call itself, with
    ``run.event``); ``raw`` is the usage object as the daemon sent it.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_prompt_tokens: int = 0
    reasoning_tokens: int = 0
    source: str = "provider"
    cost: Optional[float] = None
    raw: JSONObject = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, usage: JSONObject) -> "Usage":
        cost = usage.get("cost")
        return cls(
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", 0)),
            total_tokens=int(usage.get("total_tokens", 0)),
            cached_prompt_tokens=int(usage.get("cached_prompt_tokens", 0)),
            reasoning_tokens=int(usage.get("reasoning_tokens", 0)),
            source=str(usage.get("source", "provider")),
            cost=float(cost) if cost is not None else None,
            raw=usage,
        )


@dataclass
class Reply:
    """The result of ``send`` (a session's turn) or ``complete`` (one call).

    ``session`` and ``turn`` are set for ``send`` only. ``raw`` holds the whole result,
    with members this class does not name (``settings``, ``memory``, ``tool_calls``…).
    """

    text: str
    finish_reason: Optional[str]
    model: str
    provider: str
    usage: Usage
    run_id: str
    attempts: int = 1
    duration_ms: int = 0
    session: Optional[str] = None
    turn: Optional[int] = None
    raw: JSONObject = field(default_factory=dict, repr=False)

    @classmethod
    def from_json(cls, result: JSONObject) -> "Reply":
        turn = result.get("turn")
        return cls(
            text=str(result.get("text", "")),
            finish_reason=result.get("finish_reason"),
            model=str(result.get("model", "")),
            provider=str(result.get("provider", "")),
            usage=Usage.from_json(result.get("usage") or {}),
            run_id=str(result.get("run_id", "")),
            attempts=int(result.get("attempts", 1)),
            duration_ms=int(result.get("duration_ms", 0)),
            session=result.get("session"),
            turn=int(turn) if turn is not None else None,
            raw=result,
        )


@dataclass
class Totals:
    """Summed usage, as ``usage`` and scopes report it: ``requests`` calls, their
    tokens, and ``cost`` in US dollars over those whose price is known."""

    requests: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_prompt_tokens: int = 0
    reasoning_tokens: int = 0
    cost: float = 0.0
    unpriced_requests: int = 0
    estimated_requests: int = 0

    @classmethod
    def from_json(cls, totals: JSONObject) -> "Totals":
        return cls(
            requests=int(totals.get("requests", 0)),
            prompt_tokens=int(totals.get("prompt_tokens", 0)),
            completion_tokens=int(totals.get("completion_tokens", 0)),
            total_tokens=int(totals.get("total_tokens", 0)),
            cached_prompt_tokens=int(totals.get("cached_prompt_tokens", 0)),
            reasoning_tokens=int(totals.get("reasoning_tokens", 0)),
            cost=float(totals.get("cost") or 0.0),
            unpriced_requests=int(totals.get("unpriced_requests", 0)),
            estimated_requests=int(totals.get("estimated_requests", 0)),
        )


@dataclass
class ScopeCallback:
    """What ``Client.scope`` yields, like LangChain's ``get_openai_callback()``.

    ``scope`` is the scope's id while the block runs; the totals are filled when it
    ends (and by ``refresh()`` meanwhile), from the daemon's ledger.
    """

    scope: str
    name: Optional[str] = None
    total_tokens: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    successful_requests: int = 0
    total_cost: float = 0.0
    totals: Totals = field(default_factory=Totals)

    def _fill(self, result: JSONObject) -> None:
        self.totals = Totals.from_json(result.get("totals") or {})
        self.total_tokens = self.totals.total_tokens
        self.prompt_tokens = self.totals.prompt_tokens
        self.completion_tokens = self.totals.completion_tokens
        self.successful_requests = self.totals.requests
        self.total_cost = self.totals.cost


class _Connection:
    """One connection to the daemon: greeting checked, lines in and out."""

    def __init__(self, path: str, timeout: Optional[float]) -> None:
        self.path = path
        self.socket = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.socket.settimeout(timeout)
        try:
            self.socket.connect(path)
        except OSError:
            self.socket.close()
            raise
        self.reader = self.socket.makefile("rb")
        self.greeting = check_greeting(self._read_greeting(), path)
        self.ids = itertools.count(1)

    def _read_greeting(self) -> bytes:
        try:
            return self.reader.readline(1 << 20)
        except (socket.timeout, OSError) as error:
            self.close()
            raise LlmdError("client.not_llmd", f"{self.path} sent no greeting: it is not llmd's socket ({error})")

    def write(self, message: JSONObject) -> None:
        self.socket.sendall(json.dumps(message).encode() + b"\n")

    def read(self) -> JSONObject:
        line = self.reader.readline()
        if not line:
            raise LlmdError("client.connection_closed", f"llmd closed the connection on {self.path}")
        message = json.loads(line)
        if not isinstance(message, dict):
            raise LlmdError("client.bad_message", f"llmd sent a line that is not an object: {line!r}")
        return message

    def close(self) -> None:
        # Shut down first: that wakes a thread blocked reading, whose lock close() needs.
        with contextlib.suppress(OSError):
            self.socket.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            self.reader.close()
        with contextlib.suppress(OSError):
            self.socket.close()


def check_greeting(line: bytes, path: str) -> JSONObject:
    """The daemon's greeting parsed, or ``LlmdError("client.not_llmd")`` when the line
    is not llmd's greeting."""
    try:
        greeting = json.loads(line) if line else None
    except ValueError:
        greeting = None
    if not isinstance(greeting, dict) or greeting.get("type") != "hello" or greeting.get("daemon") != "llmd":
        raise LlmdError(
            "client.not_llmd", f"{path} did not greet as llmd does: it is not llmd's socket", {"got": repr(line[:200])}
        )
    if greeting.get("protocol") != PROTOCOL_VERSION:
        raise LlmdError(
            "client.unsupported_protocol",
            f"llmd speaks protocol {greeting.get('protocol')}, this library {PROTOCOL_VERSION}",
            {"protocol": greeting.get("protocol")},
        )
    return greeting


class Subscription:
    """A subscription to llmd's events, on a connection of its own: an iterator of
    event messages (dicts with ``event``, ``seq``, ``session``, ``run_id``, ``data``…,
    as CALLBACK EVENTS in llmd-protocol(7) describes them).

    With ``live=False`` iteration stops at the ready marker, after the replay; else it
    goes on with live events until ``close()``. For a blocking subscription, call
    ``ack(event)`` once an event is handled. Usable as a context manager.

    A live subscription outlives a daemon restart: when the connection ends, it connects
    again (trying more slowly as time passes, for ``reconnect_timeout`` seconds) and
    subscribes again from the last event it gave, so the journal replays what was
    missed meanwhile and no event is lost or given twice. ``reconnects`` counts the
    times. Past the timeout it raises ``LlmdError("client.connection_closed")``. With
    ``reconnect_timeout=0`` iteration just ends with the connection.
    """

    def __init__(
        self, connect: Callable[[], _Connection], params: JSONObject, live: bool, reconnect_timeout: float = 30.0
    ) -> None:
        self._connect = connect
        self._params = params
        self.live = live
        self.reconnect_timeout = reconnect_timeout
        self.reconnects = 0
        self._done = False
        self._pending: List[JSONObject] = []
        #: The seq of the last event iteration gave.
        self.last_seq: Optional[int] = None
        #: The seq of the ready marker, once it arrived.
        self.ready_seq: Optional[int] = None
        self._connection = connect()
        result = self._subscribe(params)
        #: The subscription's number, and the first reply's ``cursor`` and ``oldest_seq``.
        self.number: int = int(result["subscription"])
        self.cursor: int = int(result.get("cursor") or 0)
        self.oldest_seq: Optional[int] = result.get("oldest_seq")

    def _subscribe(self, params: JSONObject) -> JSONObject:
        connection = self._connection
        connection.write({"id": 0, "method": "subscribe", "params": params})
        while True:
            message = connection.read()
            if message.get("type") == "error" and message.get("id") == 0:
                connection.close()
                raise LlmdError.from_reply(message.get("error") or {})
            if message.get("type") == "reply" and message.get("id") == 0:
                result = message.get("result") or {}
                return result if isinstance(result, dict) else {}
            self._pending.append(message)

    def __iter__(self) -> Iterator[JSONObject]:
        return self

    def __next__(self) -> JSONObject:
        while not self._done:
            message = self._read()
            if message is None:
                break
            kind = message.get("type")
            if kind == "ready":
                self.ready_seq = message.get("seq")
                if not self.live:
                    self._done = True
                    break
            elif kind == "event":
                seq = message.get("seq")
                if isinstance(seq, int) and seq > 0:
                    self.last_seq = seq
                return message
        raise StopIteration

    def _read(self) -> Optional[JSONObject]:
        if self._pending:
            return self._pending.pop(0)
        try:
            return self._connection.read()
        except (LlmdError, OSError) as error:
            if self._done or not self.live or self.reconnect_timeout <= 0:
                self._done = True
                return None
            try:
                self._resume(error)
            except LlmdError:
                self._done = True
                raise
            return self._read()

    def _resume(self, cause: Exception) -> None:
        """Connects again and subscribes from the last event given (or from where the
        first subscription began, when none was); raises once the timeout has passed."""
        self._connection.close()
        backoff = _Backoff(self.reconnect_timeout, self.last_seq, cause)
        while True:
            try:
                self._connection = self._connect()
                break
            except (LlmdError, OSError) as error:
                time.sleep(backoff.pause(error))
        params = _resumed_params(self._params, self.last_seq, self.cursor)
        result = self._subscribe(params)
        self.number = int(result["subscription"])
        self.reconnects += 1

    def ack(self, event: JSONObject) -> bool:
        """Acknowledges a blocked-on event: the run that waits for it goes on. True if
        the daemon owed the acknowledgement. Events that arrive before the answer are
        kept for iteration."""
        self._connection.write(
            {"id": "ack", "method": "ack", "params": {"subscription": self.number, "seq": int(event["seq"])}}
        )
        while True:
            message = self._connection.read()
            if message.get("id") == "ack" and message.get("type") in ("reply", "error"):
                if message["type"] == "error":
                    raise LlmdError.from_reply(message.get("error") or {})
                return bool((message.get("result") or {}).get("acknowledged"))
            self._pending.append(message)

    def close(self) -> None:
        """Ends the subscription by closing its connection."""
        self._done = True
        self._connection.close()

    def __enter__(self) -> "Subscription":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


Scopes = Union[str, Sequence[str], None]


class Client:
    """A client of llmd's protocol socket.

    ``Client()`` finds the socket as llmctl does (see ``socket_path``); ``Client(path)``
    uses that one. Requests are made one at a time on one connection; the client is
    not safe to share between threads without a lock of the caller's. Usable as a
    context manager, which closes the connection.

    Every method raises ``LlmdError`` for the daemon's error replies.
    """

    def __init__(self, path: Optional[str] = None, timeout: Optional[float] = None) -> None:
        self.path = socket_path(path)
        self.timeout = timeout
        self._connection = _Connection(self.path, timeout)
        self._scopes: List[str] = []

    @property
    def greeting(self) -> JSONObject:
        """The daemon's greeting: ``protocol``, ``version``, ``pid``, ``max_line_bytes``."""
        return self._connection.greeting

    def close(self) -> None:
        """Closes the connection."""
        self._connection.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # The generic call.

    def call(
        self,
        method: str,
        params: Optional[JSONObject] = None,
        on_event: Optional[Callable[[JSONObject], None]] = None,
    ) -> JSONObject:
        """Calls ``method`` with ``params``; its result object. ``on_event`` receives the
        request's events (request callbacks), in order, before the answer."""
        connection = self._connection
        request_id = next(connection.ids)
        connection.write({"id": request_id, "method": method, "params": params or {}})
        while True:
            result = _answer(connection.read(), request_id, on_event)
            if result is not None:
                return result

    # Calls.

    def send(
        self,
        session: str,
        text: str,
        *,
        on_token: Optional[TokenCallback] = None,
        scopes: Scopes = None,
        stream: Optional[bool] = None,
        **settings: Any,
    ) -> Reply:
        """Runs one turn of ``session`` (created when it does not exist) with ``text``.

        Keyword arguments are the session's settings (``model``, ``provider``,
        ``system``, ``memory``, ``k``…, see Session settings in llmd-protocol(7)),
        changed before the turn and kept; the per-turn parameters ``temperature``,
        ``top_p``, ``max_tokens``, ``stop``, ``seed``, ``extra``, ``tags``, ``metadata``
        and ``detach`` apply to this turn only. ``on_token`` receives each streamed
        piece of the reply.
        """
        params = _send_params(session, text, stream, settings, _scopes(scopes, self._scopes))
        return Reply.from_json(self.call("send", params, _token_events(on_token)))

    def complete(
        self,
        text: Optional[str] = None,
        *,
        messages: Optional[List[JSONObject]] = None,
        prompt: Optional[str] = None,
        on_token: Optional[TokenCallback] = None,
        scopes: Scopes = None,
        **params: Any,
    ) -> Reply:
        """Makes one LLM call, outside any session, with exactly one of ``text``,
        ``messages`` (``[{"role", "content"}]``) and ``prompt``. Other keyword arguments
        are the parameters of ``complete`` (``model``, ``provider``, ``temperature``,
        ``max_tokens``, ``stream``, ``session`` label, ``tags``…)."""
        params = _complete_params(text, messages, prompt, params, _scopes(scopes, self._scopes))
        return Reply.from_json(self.call("complete", params, _token_events(on_token)))

    def tokens(self, text: str, model: Optional[str] = None, **params: Any) -> int:
        """The tokens of ``text`` as ``model``'s encoding counts them (default gpt-4o).
        ``tokens_count`` gives the whole result."""
        return int(self.tokens_count(text, model, **params)["tokens"])

    def tokens_count(self, text: Optional[str] = None, model: Optional[str] = None, **params: Any) -> JSONObject:
        """The result of ``tokens.count``: ``tokens``, ``encoding``, ``exact``, ``model``,
        and ``ids``, ``estimated``, ``vocabulary`` when they apply."""
        if text is not None:
            params["text"] = text
        if model is not None:
            params["model"] = model
        return self.call("tokens.count", params)

    # Sessions.

    def sessions(self) -> List[JSONObject]:
        """Every session, most recently active first: dicts with ``session``, its
        settings and counts, as ``session.list`` describes them."""
        return list(self.call("session.list").get("sessions") or [])

    def session(self, name: str, turns: Optional[int] = None, prompt: bool = False) -> JSONObject:
        """The session ``name`` as ``session.show`` describes it: its settings,
        ``turn_count``, ``recent_turns``, ``busy``, and with ``prompt=True`` the next
        prompt."""
        params: JSONObject = {"session": name}
        if turns is not None:
            params["turns"] = turns
        if prompt:
            params["prompt"] = True
        return self.call("session.show", params)

    def session_create(self, name: str, **settings: Any) -> JSONObject:
        """Creates a session with ``settings``; its description."""
        return self.call("session.create", {"session": name, "settings": settings})

    def session_update(self, name: str, **settings: Any) -> JSONObject:
        """Changes a session's settings; its description with ``changed``."""
        return self.call("session.update", {"session": name, "settings": settings})

    def session_delete(self, name: str) -> None:
        """Deletes a session, its turns, memory and budget."""
        self.call("session.delete", {"session": name})

    def memory(self, name: str) -> JSONObject:
        """What the session's memory holds: ``strategy``, ``summary``, ``messages``,
        ``history``, ``history_text``, ``history_tokens``, ``counted``."""
        return self.call("memory.show", {"session": name})

    # Usage, scopes and budgets.

    def usage(
        self,
        *,
        session: Optional[str] = None,
        scope: Optional[str] = None,
        model: Optional[str] = None,
        since: Optional[int] = None,
        until: Optional[int] = None,
        by: Optional[str] = None,
    ) -> JSONObject:
        """Sums the usage ledger: a dict with ``total``, a ``Totals``, and with ``by``
        (``session``, ``model``, ``provider``, ``day``, ``scope`` or ``source``) ``groups``, dicts
        with ``key`` and the totals' members. ``since``/``until`` are microseconds since
        the epoch."""
        params = {
            name: value
            for name, value in (
                ("session", session), ("scope", scope), ("model", model), ("since", since), ("until", until), ("by", by)
            )
            if value is not None
        }
        result = self.call("usage", params)
        result["total"] = Totals.from_json(result.get("total") or {})
        return result

    def scope_begin(self, name: Optional[str] = None, parent: Optional[str] = None, **budget: Any) -> JSONObject:
        """Begins a scope (``max_tokens``/``max_cost`` give it a budget); its
        description, with ``scope``, its id."""
        return self.call("scope.begin", _scope_params(name, parent, budget))

    def scope_end(self, scope: str) -> JSONObject:
        """Ends a scope; its description, with ``totals``."""
        return self.call("scope.end", {"scope": scope})

    def scope_show(self, scope: str) -> JSONObject:
        """A scope's description, with ``totals``."""
        return self.call("scope.show", {"scope": scope})

    @contextlib.contextmanager
    def scope(self, name: Optional[str] = None, **budget: Any) -> Iterator[ScopeCallback]:
        """Begins a scope, counts the ``send`` and ``complete`` calls made through this
        client inside the block to it (nested ``scope`` blocks nest), ends it, and fills
        the yielded ``ScopeCallback``'s totals, as LangChain's get_openai_callback()::

            with client.scope("trip") as cb:
                client.send("trip", "Hello")
            print(cb.total_tokens, cb.total_cost)
        """
        parent = self._scopes[-1] if self._scopes else None
        began = self.scope_begin(name, parent, **budget)
        callback = ScopeCallback(scope=str(began["scope"]), name=name)
        self._scopes.append(callback.scope)
        try:
            yield callback
        finally:
            self._scopes.pop()
            callback._fill(self.scope_end(callback.scope))

    def budget_set(
        self,
        *,
        session: Optional[str] = None,
        scope: Optional[str] = None,
        daily: bool = False,
        **limits: Any,
    ) -> JSONObject:
        """Sets ``max_tokens`` and/or ``max_cost`` (``None`` removes the limit) of the
        budget of ``session``, ``scope`` or, with ``daily=True``, each day. The result is
        ``budget_show``'s for that budget."""
        params: JSONObject = dict(limits)
        params.update(self._budget(session, scope, daily))
        return self.call("budget.set", params)

    def budget_show(
        self, *, session: Optional[str] = None, scope: Optional[str] = None, daily: bool = False
    ) -> List[JSONObject]:
        """Budgets with their limits and what is spent: dicts with ``kind``, ``day`` /
        ``session`` / ``scope``, ``max_tokens``, ``max_cost``, ``spent``, ``reserved``.
        Without arguments, today's daily budget and every budget set."""
        return list(self.call("budget.show", self._budget(session, scope, daily)).get("budgets") or [])

    @staticmethod
    def _budget(session: Optional[str], scope: Optional[str], daily: bool) -> JSONObject:
        params: JSONObject = {}
        if session is not None:
            params["session"] = session
        if scope is not None:
            params["scope"] = scope
        if daily:
            params["daily"] = True
        return params

    # The daemon.

    def status(self) -> JSONObject:
        """The daemon's ``status``: version, pid, uptime, clients, sessions, load."""
        return self.call("status")

    def ping(self) -> bool:
        """True when the daemon answers."""
        return bool(self.call("ping").get("pong"))

    def publish(self, name: str, data: Any = None, **params: Any) -> JSONObject:
        """Publishes a custom event ``name`` with ``data``; ``seq`` and ``run_id``."""
        params["name"] = name
        if data is not None:
            params["data"] = data
        return self.call("publish", params)

    def run_event(
        self, event: str, run_id: str, data: Optional[JSONObject] = None, *, source: Optional[str] = None, **params: Any
    ) -> JSONObject:
        """Publishes an event of a run this program made itself (``run.event``): ``event``
        one of llmd's run event types, ``run_id`` the run's own id, ``data`` in llmd's shape
        for that type; ``parent_run_id``, ``session``, ``tags``, ``metadata`` and
        ``scopes`` as keyword arguments. An ``llm_end`` whose ``data`` has ``usage`` and
        ``model`` is recorded in the ledger as ``source: "reported"``. The result has
        ``seq``, ``run_id`` and, when a row was recorded, ``usage``.
        ``llmd.langchain.LlmdCallbackHandler`` makes these calls for a LangChain app."""
        params.update(event=event, run_id=run_id)
        if data is not None:
            params["data"] = data
        if source is not None:
            params["source"] = source
        return self.call("run.event", params)

    # Events.

    def subscribe(
        self,
        types: Optional[Sequence[str]] = None,
        session: Union[str, Sequence[str], None] = None,
        since: Optional[int] = None,
        *,
        live: bool = True,
        blocking: Optional[Sequence[str]] = None,
        reconnect_timeout: float = 30.0,
        **params: Any,
    ) -> Subscription:
        """Subscribes to events, on a connection of its own; an iterator of event dicts.

        ``types`` and ``session`` (a name or names) filter; ``since`` (a seq, 0 for all
        the journal keeps) replays past events first. With ``live=False`` iteration ends
        after the replay. ``blocking`` names types whose runs wait for
        ``Subscription.ack(event)``. Other keyword arguments (``tags``, ``run_id``,
        ``since_time``, ``on_lag``) are passed as they are. A live subscription resumes
        after a daemon restart, from its last event, for ``reconnect_timeout`` seconds
        (see ``Subscription``).
        """
        path = self.path
        return Subscription(
            lambda: _Connection(path, None), _subscribe_params(types, session, since, blocking, params), live, reconnect_timeout
        )


# Shared by Client and AsyncClient: what a message means, whatever carried it.


def _answer(message: JSONObject, request_id: Any, on_event: Optional[Callable[[JSONObject], None]]) -> Optional[JSONObject]:
    """The result when ``message`` answers request ``request_id``; None for anything else,
    after handing the request's events to ``on_event``. Raises the request's error."""
    kind = message.get("type")
    if kind == "event" and message.get("request") == request_id:
        if on_event is not None:
            on_event(message)
    elif kind in ("reply", "error") and message.get("id") == request_id:
        if kind == "error":
            raise LlmdError.from_reply(message.get("error") or {})
        result = message.get("result")
        return result if isinstance(result, dict) else {}
    return None


class _Backoff:
    """How a subscription waits for a restarted daemon: ever longer pauses, up to a second,
    until the timeout; then ``LlmdError("client.connection_closed")``."""

    def __init__(self, timeout: float, last_seq: Optional[int], cause: Exception) -> None:
        self.timeout = timeout
        self.deadline = time.monotonic() + timeout
        self.delay = 0.05
        self.last_seq = last_seq
        self.cause = cause

    def pause(self, error: Exception) -> float:
        """The pause before the next try after ``error``; raises once the time is up."""
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise LlmdError(
                "client.connection_closed",
                f"llmd did not come back within {self.timeout:g} s: {error}",
                {"last_seq": self.last_seq, "cause": str(self.cause)},
            ) from error
        pause = min(self.delay, left)
        self.delay = min(self.delay * 2, 1.0)
        return pause


def _resumed_params(params: JSONObject, last_seq: Optional[int], cursor: int) -> JSONObject:
    """A subscription's parameters again, from the last event it gave (or where it began)."""
    resumed = {key: value for key, value in params.items() if key not in ("since", "since_time")}
    resumed["since"] = last_seq if last_seq is not None else cursor
    return resumed


def _scopes(scopes: Scopes, stack: List[str]) -> List[str]:
    """The scopes a call names: those given, and the innermost ``scope`` block's."""
    named = [scopes] if isinstance(scopes, str) else list(scopes or [])
    if stack and stack[-1] not in named:
        named.append(stack[-1])
    return named


def _send_params(
    session: str, text: str, stream: Optional[bool], settings: JSONObject, scopes: List[str]
) -> JSONObject:
    """``send``'s parameters: the per-turn ones by name, the rest as session settings."""
    params: JSONObject = {"session": session, "text": text}
    for name in ("temperature", "top_p", "max_tokens", "stop", "seed", "extra", "tags", "metadata", "detach"):
        if name in settings:
            params[name] = settings.pop(name)
    if stream is not None:
        params["stream"] = stream
    if settings:
        params["settings"] = settings
    if scopes:
        params["scopes"] = scopes
    return params


def _complete_params(
    text: Optional[str], messages: Optional[List[JSONObject]], prompt: Optional[str], params: JSONObject, scopes: List[str]
) -> JSONObject:
    """``complete``'s parameters: exactly one input, and the rest as given."""
    for name, value in (("text", text), ("messages", messages), ("prompt", prompt)):
        if value is not None:
            params[name] = value
    if scopes:
        params["scopes"] = scopes
    return params


def _scope_params(name: Optional[str], parent: Optional[str], budget: JSONObject) -> JSONObject:
    """``scope.begin``'s parameters."""
    params: JSONObject = dict(budget)
    if name is not None:
        params["name"] = name
    if parent is not None:
        params["parent"] = parent
    return params


def _token_events(on_token: Optional[TokenCallback]) -> Optional[Callable[[JSONObject], None]]:
    """An event callback that hands each ``llm_new_token``'s text to ``on_token``."""
    if on_token is None:
        return None

    def on_event(event: JSONObject) -> None:
        if event.get("event") == "llm_new_token":
            on_token(str((event.get("data") or {}).get("token", "")))

    return on_event


def _subscribe_params(
    types: Optional[Sequence[str]],
    session: Union[str, Sequence[str], None],
    since: Optional[int],
    blocking: Optional[Sequence[str]],
    params: JSONObject,
) -> JSONObject:
    """``subscribe``'s parameters from the keyword arguments of ``subscribe``."""
    if types is not None:
        params["types"] = list(types)
    if session is not None:
        params["sessions"] = [session] if isinstance(session, str) else list(session)
    if since is not None:
        params["since"] = since
    if blocking is not None:
        params["blocking"] = list(blocking)
    return params
