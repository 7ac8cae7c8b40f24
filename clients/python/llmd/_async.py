"""The asyncio client of llmd's protocol."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
from typing import Any, AsyncIterator, Awaitable, Callable, List, Optional, Sequence, Union

from ._client import (
    JSONObject,
    LlmdError,
    Reply,
    ScopeCallback,
    Scopes,
    _answer,
    _Backoff,
    _complete_params,
    _resumed_params,
    _scope_params,
    _scopes,
    _send_params,
    _subscribe_params,
    _token_events,
    check_greeting,
    socket_path,
)

__all__ = ["AsyncClient", "AsyncSubscription", "async_subscribe"]


class _AsyncConnection:
    def __init__(self, path: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.path = path
        self.reader = reader
        self.writer = writer
        self.greeting: JSONObject = {}
        self.ids = itertools.count(1)

    @classmethod
    async def open(cls, path: str, timeout: Optional[float]) -> "_AsyncConnection":
        reader, writer = await asyncio.open_unix_connection(path, limit=1 << 22)
        connection = cls(path, reader, writer)
        try:
            line = await asyncio.wait_for(reader.readline(), timeout)
        except (asyncio.TimeoutError, OSError) as error:
            writer.close()
            raise LlmdError("client.not_llmd", f"{path} sent no greeting: it is not llmd's socket ({error!r})")
        try:
            connection.greeting = check_greeting(line, path)
        except LlmdError:
            writer.close()
            raise
        return connection

    async def write(self, message: JSONObject) -> None:
        self.writer.write(json.dumps(message).encode() + b"\n")
        await self.writer.drain()

    async def read(self) -> JSONObject:
        line = await self.reader.readline()
        if not line:
            raise LlmdError("client.connection_closed", f"llmd closed the connection on {self.path}")
        message = json.loads(line)
        if not isinstance(message, dict):
            raise LlmdError("client.bad_message", f"llmd sent a line that is not an object: {line!r}")
        return message

    async def close(self) -> None:
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except OSError:
            pass


class AsyncSubscription:
    """``Client.subscribe``'s asyncio counterpart: ``async for event in subscription``.
    Stops at the ready marker with ``live=False``; ``await ack(event)`` for blocking
    subscriptions; ``await close()`` ends it (or use ``async with``). A live one resumes
    after a daemon restart from its last event, as ``Subscription`` does."""

    def __init__(
        self, connect: Callable[[], Awaitable[_AsyncConnection]], params: JSONObject, live: bool, reconnect_timeout: float
    ) -> None:
        self._connect = connect
        self._params = params
        self.live = live
        self.reconnect_timeout = reconnect_timeout
        self.reconnects = 0
        self.number = 0
        self.cursor = 0
        self.last_seq: Optional[int] = None
        self.ready_seq: Optional[int] = None
        self._done = False
        self._pending: List[JSONObject] = []

    async def _start(self) -> None:
        self._connection = await self._connect()
        result = await self._subscribe(self._params)
        self.cursor = int(result.get("cursor") or 0)

    async def _subscribe(self, params: JSONObject) -> JSONObject:
        await self._connection.write({"id": 0, "method": "subscribe", "params": params})
        while True:
            message = await self._connection.read()
            if message.get("id") == 0 and message.get("type") == "error":
                await self._connection.close()
                raise LlmdError.from_reply(message.get("error") or {})
            if message.get("id") == 0 and message.get("type") == "reply":
                result = message.get("result") or {}
                self.number = int(result["subscription"])
                return result if isinstance(result, dict) else {}
            self._pending.append(message)

    def __aiter__(self) -> "AsyncSubscription":
        return self

    async def __anext__(self) -> JSONObject:
        while not self._done:
            message = await self._read()
            if message is None:
                break
            if message.get("type") == "ready":
                self.ready_seq = message.get("seq")
                if not self.live:
                    self._done = True
            elif message.get("type") == "event":
                seq = message.get("seq")
                if isinstance(seq, int) and seq > 0:
                    self.last_seq = seq
                return message
        raise StopAsyncIteration

    async def _read(self) -> Optional[JSONObject]:
        while not self._pending:
            try:
                return await self._connection.read()
            except (LlmdError, OSError) as error:
                if self._done or not self.live or self.reconnect_timeout <= 0:
                    self._done = True
                    return None
                try:
                    await self._resume(error)
                except LlmdError:
                    self._done = True
                    raise
        return self._pending.pop(0)

    async def _resume(self, cause: Exception) -> None:
        await self._connection.close()
        backoff = _Backoff(self.reconnect_timeout, self.last_seq, cause)
        while True:
            try:
                self._connection = await self._connect()
                break
            except (LlmdError, OSError) as error:
                await asyncio.sleep(backoff.pause(error))
        params = _resumed_params(self._params, self.last_seq, self.cursor)
        await self._subscribe(params)
        self.reconnects += 1

    async def ack(self, event: JSONObject) -> bool:
        """Acknowledges a blocked-on event; True if the daemon owed it."""
        await self._connection.write(
            {"id": "ack", "method": "ack", "params": {"subscription": self.number, "seq": int(event["seq"])}}
        )
        while True:
            message = await self._connection.read()
            if message.get("id") == "ack" and message.get("type") in ("reply", "error"):
                if message["type"] == "error":
                    raise LlmdError.from_reply(message.get("error") or {})
                return bool((message.get("result") or {}).get("acknowledged"))
            self._pending.append(message)

    async def close(self) -> None:
        """Ends the subscription by closing its connection."""
        self._done = True
        await self._connection.close()

    async def __aenter__(self) -> "AsyncSubscription":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class AsyncClient:
    """An asyncio client of llmd's protocol; ``await AsyncClient.connect(path)``.

    It has ``call``, ``send``, ``complete``, ``scope`` and ``subscribe`` as ``Client`` has them;
    requests on one client are made one at a time (a lock serialises them).
    """

    def __init__(self, connection: _AsyncConnection, timeout: Optional[float]) -> None:
        self._connection = connection
        self.path = connection.path
        self.timeout = timeout
        self._lock = asyncio.Lock()
        self._scopes: List[str] = []

    @classmethod
    async def connect(cls, path: Optional[str] = None, timeout: Optional[float] = 10.0) -> "AsyncClient":
        """Connects to the socket ``path``, else the one ``socket_path()`` finds."""
        resolved = socket_path(path)
        return cls(await _AsyncConnection.open(resolved, timeout), timeout)

    @property
    def greeting(self) -> JSONObject:
        """The daemon's greeting."""
        return self._connection.greeting

    async def close(self) -> None:
        """Closes the connection."""
        await self._connection.close()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def call(
        self, method: str, params: Optional[JSONObject] = None, on_event: Optional[Callable[[JSONObject], None]] = None
    ) -> JSONObject:
        """Calls ``method``; its result. ``on_event`` receives the request's events."""
        async with self._lock:
            request_id = next(self._connection.ids)
            await self._connection.write({"id": request_id, "method": method, "params": params or {}})
            while True:
                result = _answer(await self._connection.read(), request_id, on_event)
                if result is not None:
                    return result

    async def send(
        self,
        session: str,
        text: str,
        *,
        on_token: Optional[Callable[[str], None]] = None,
        scopes: Scopes = None,
        stream: Optional[bool] = None,
        **settings: Any,
    ) -> Reply:
        """One turn of ``session``, with the arguments of ``Client.send``."""
        params = _send_params(session, text, stream, settings, _scopes(scopes, self._scopes))
        return Reply.from_json(await self.call("send", params, _token_events(on_token)))

    async def complete(
        self,
        text: Optional[str] = None,
        *,
        messages: Optional[List[JSONObject]] = None,
        prompt: Optional[str] = None,
        on_token: Optional[Callable[[str], None]] = None,
        scopes: Scopes = None,
        **params: Any,
    ) -> Reply:
        """One LLM call, with the arguments of ``Client.complete``."""
        params = _complete_params(text, messages, prompt, params, _scopes(scopes, self._scopes))
        return Reply.from_json(await self.call("complete", params, _token_events(on_token)))

    @contextlib.asynccontextmanager
    async def scope(self, name: Optional[str] = None, **budget: Any) -> AsyncIterator[ScopeCallback]:
        """``Client.scope`` for asyncio: ``async with client.scope("trip") as cb:``
        counts the calls made through this client inside the block to a scope, and
        fills ``cb``'s totals when it ends. Calls made concurrently on the client from
        other tasks inside the block count to it too."""
        parent = self._scopes[-1] if self._scopes else None
        began = await self.call("scope.begin", _scope_params(name, parent, budget))
        callback = ScopeCallback(scope=str(began["scope"]), name=name)
        self._scopes.append(callback.scope)
        try:
            yield callback
        finally:
            self._scopes.remove(callback.scope)
            callback._fill(await self.call("scope.end", {"scope": callback.scope}))

    async def subscribe(
        self,
        types: Optional[Sequence[str]] = None,
        session: Union[str, Sequence[str], None] = None,
        since: Optional[int] = None,
        *,
        live: bool = True,
        blocking: Optional[Sequence[str]] = None,
        reconnect_timeout: float = 30.0,
        **params: Any,
    ) -> AsyncSubscription:
        """Subscribes on a connection of its own, as ``Client.subscribe`` does."""
        path, timeout = self.path, self.timeout
        subscription = AsyncSubscription(
            lambda: _AsyncConnection.open(path, timeout), _subscribe_params(types, session, since, blocking, params), live,
            reconnect_timeout)
        await subscription._start()
        return subscription


async def async_subscribe(path: Optional[str] = None, **params: Any) -> AsyncIterator[JSONObject]:
    """Events as an async generator, on a connection of its own: the arguments of
    ``AsyncClient.subscribe``, and ``path``, the socket."""
    client = await AsyncClient.connect(path)
    try:
        subscription = await client.subscribe(**params)
        try:
            async for event in subscription:
                yield event
        finally:
            await subscription.close()
    finally:
        await client.close()


