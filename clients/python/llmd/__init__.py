"""A client of llmd's protocol: sessions, LLM calls, usage, scopes and events, over
llmd's Unix socket, with nothing but the standard library.

    import llmd
    with llmd.Client() as client:
        reply = client.send("trip", "Hello", on_token=print)
        print(reply.text, reply.usage.total_tokens)

See llmd-protocol(7) for the protocol itself. ``llmd.langchain``, which needs
langchain-core, feeds LangChain callback handlers with llmd's events.
"""

from ._async import AsyncClient, AsyncSubscription, async_subscribe
from ._client import (
    PROTOCOL_VERSION,
    Client,
    LlmdError,
    Reply,
    ScopeCallback,
    Subscription,
    Totals,
    Usage,
    socket_path,
)

__all__ = [
    "PROTOCOL_VERSION",
    "AsyncClient",
    "AsyncSubscription",
    "Client",
    "LlmdError",
    "Reply",
    "ScopeCallback",
    "Subscription",
    "Totals",
    "Usage",
    "async_subscribe",
    "socket_path",
]
__version__ = "0.1.0"
