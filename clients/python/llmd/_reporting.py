"""LangChain's runs into llmd: a callback handler that publishes an app's own runs."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Dict, List, Optional, Sequence
from uuid import UUID

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import BaseMessage
from langchain_core.outputs import LLMResult

from ._client import Client, JSONObject, LlmdError

__all__ = ["LlmdCallbackHandler"]

logger = logging.getLogger("llmd.langchain")

#: llmd's roles for LangChain's message types.
ROLES = {"human": "user", "ai": "assistant", "system": "system", "tool": "tool", "function": "function"}


def jsonable(value: Any) -> Any:
    """``value`` as JSON can carry it: messages as llmd's ``{role, content}``, pydantic
    models dumped, anything else unknown as its ``str``."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, BaseMessage):
        return message_json(value)
    if isinstance(value, dict):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(item) for item in value]
    dump = getattr(value, "model_dump", None)
    if callable(dump):
        return jsonable(dump())
    return str(value)


def message_json(message: BaseMessage) -> JSONObject:
    content = message.content if isinstance(message.content, str) else jsonable(message.content)
    return {"role": ROLES.get(message.type, message.type), "content": content}


def error_json(error: BaseException) -> JSONObject:
    """An exception as llmd's error objects read: a dotted code, a message, a detail."""
    return {"code": "external.error", "message": str(error) or type(error).__name__,
            "detail": {"exception": type(error).__name__}}


class LlmdCallbackHandler(BaseCallbackHandler):
    """Publishes a LangChain app's runs into llmd: pass it as a callback, and its chains,
    model calls, tokens, usage and errors appear in llmd's event stream (``llmctl events``,
    subscribers, handlers) beside llmd's own runs, with LangChain's run ids, marked
    ``data.external.source`` ``"langchain"``; each model call's reported usage lands in
    llmd's ledger as ``source: "reported"`` (``llmctl usage``), counted to ``scopes``.

    Each callback is one ``run.event`` request, answered before the app goes on, so
    events keep their order and blocking subscribers hold the app as they hold llmd's
    own runs. When llmd is not running, the app is not stopped: the handler logs once,
    drops events, and connects again at most once a second.

    Args:
        path: llmd's socket; else found as llmctl finds it.
        session: a label for the events and ledger rows.
        scopes: scope ids the reported usage counts to.
        provider: the provider's name in the ledger when LangChain does not say one.
    """

    raise_error = False
    run_inline = True

    def __init__(
        self,
        path: Optional[str] = None,
        *,
        session: Optional[str] = None,
        scopes: Optional[Sequence[str]] = None,
        provider: Optional[str] = None,
    ) -> None:
        self.path = path
        self.session = session
        self.scopes = list(scopes or [])
        self.provider = provider
        #: Events not published because llmd could not be reached.
        self.dropped = 0
        self._client: Optional[Client] = None
        self._lock = threading.Lock()
        self._next_connect = 0.0
        self._warned = False
        #: The model and provider of each model run, until it ends.
        self._models: Dict[UUID, JSONObject] = {}

    # Publishing.

    def _publish(
        self,
        event: str,
        data: JSONObject,
        run_id: UUID,
        parent_run_id: Optional[UUID],
        tags: Optional[List[str]] = None,
        metadata: Optional[Dict[str, Any]] = None,
        usage: bool = False,
    ) -> Optional[JSONObject]:
        params: JSONObject = {}
        if parent_run_id is not None:
            params["parent_run_id"] = str(parent_run_id)
        if tags:
            params["tags"] = list(tags)
        if metadata:
            params["metadata"] = jsonable(metadata)
        if self.session is not None:
            params["session"] = self.session
        if usage and self.scopes:
            params["scopes"] = self.scopes
        with self._lock:
            client = self._connected()
            if client is None:
                self.dropped += 1
                return None
            try:
                return client.run_event(event, str(run_id), data, source="langchain", **params)
            except LlmdError as error:
                if error.code.startswith("client."):
                    self._lost(client, error)
                    self.dropped += 1
                    return None
                raise
            except OSError as error:
                self._lost(client, error)
                self.dropped += 1
                return None

    def _connected(self) -> Optional[Client]:
        if self._client is not None:
            return self._client
        now = time.monotonic()
        if now < self._next_connect:
            return None
        try:
            self._client = Client(self.path)
            self._warned = False
        except (LlmdError, OSError) as error:
            self._next_connect = now + 1.0
            if not self._warned:
                self._warned = True
                logger.warning("llmd is not reachable (%s): LangChain's events are dropped until it is", error)
        return self._client

    def _lost(self, client: Client, error: Exception) -> None:
        client.close()
        self._client = None
        self._next_connect = time.monotonic() + 1.0
        if not self._warned:
            self._warned = True
            logger.warning("lost llmd (%s): LangChain's events are dropped until it is back", error)

    def close(self) -> None:
        """Closes the connection to llmd."""
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None

    # Chains.

    def on_chain_start(
        self, serialized: Optional[Dict[str, Any]], inputs: Dict[str, Any], *, run_id: UUID,
        parent_run_id: Optional[UUID] = None, tags: Optional[List[str]] = None,
        metadata: Optional[Dict[str, Any]] = None, **kwargs: Any,
    ) -> None:
        name = kwargs.get("name") or (serialized or {}).get("name") or ((serialized or {}).get("id") or ["chain"])[-1]
        self._publish("chain_start", {"name": name, "inputs": jsonable(inputs)}, run_id, parent_run_id, tags, metadata)

    def on_chain_end(
        self, outputs: Dict[str, Any], *, run_id: UUID, parent_run_id: Optional[UUID] = None, **kwargs: Any
    ) -> None:
        self._publish("chain_end", {"outputs": jsonable(outputs)}, run_id, parent_run_id)

    def on_chain_error(
        self, error: BaseException, *, run_id: UUID, parent_run_id: Optional[UUID] = None, **kwargs: Any
    ) -> None:
        self._publish("chain_error", {"error": error_json(error)}, run_id, parent_run_id)

    def on_text(self, text: str, *, run_id: UUID, parent_run_id: Optional[UUID] = None, **kwargs: Any) -> None:
        self._publish("text", {"text": text}, run_id, parent_run_id)

    # Model calls.

    def _start(
        self, serialized: Optional[Dict[str, Any]], metadata: Optional[Dict[str, Any]], run_id: UUID,
        kwargs: Dict[str, Any],
    ) -> JSONObject:
        """A model run's start: its model and provider, from LangChain's ``ls_*`` metadata
        or the invocation parameters, kept for its end."""
        invocation = kwargs.get("invocation_params") or {}
        meta = metadata or {}
        model = meta.get("ls_model_name") or invocation.get("model") or invocation.get("model_name") or "unknown"
        provider = meta.get("ls_provider") or self.provider or ((serialized or {}).get("id") or ["", "", "langchain"])[2]
        data: JSONObject = {"model": model, "provider": provider, "stream": bool(invocation.get("stream")),
                            "invocation_params": jsonable(invocation)}
        self._models[run_id] = {"model": model, "provider": provider}
        return data

    def on_chat_model_start(
        self, serialized: Dict[str, Any], messages: List[List[BaseMessage]], *, run_id: UUID,
        parent_run_id: Optional[UUID] = None, tags: Optional[List[str]] = None,
        metadata: Optional[Dict[str, Any]] = None, **kwargs: Any,
    ) -> None:
        data = self._start(serialized, metadata, run_id, kwargs)
        data["messages"] = [message_json(message) for message in (messages[0] if messages else [])]
        self._publish("chat_model_start", data, run_id, parent_run_id, tags, metadata)

    def on_llm_start(
        self, serialized: Dict[str, Any], prompts: List[str], *, run_id: UUID,
        parent_run_id: Optional[UUID] = None, tags: Optional[List[str]] = None,
        metadata: Optional[Dict[str, Any]] = None, **kwargs: Any,
    ) -> None:
        data = self._start(serialized, metadata, run_id, kwargs)
        data["prompts"] = list(prompts)
        self._publish("llm_start", data, run_id, parent_run_id, tags, metadata)

    def on_llm_new_token(
        self, token: Any, *, run_id: UUID, parent_run_id: Optional[UUID] = None, **kwargs: Any
    ) -> None:
        self._publish("llm_new_token", {"token": token if isinstance(token, str) else str(token)}, run_id, parent_run_id)

    def on_llm_end(
        self, response: LLMResult, *, run_id: UUID, parent_run_id: Optional[UUID] = None, **kwargs: Any
    ) -> None:
        started = self._models.pop(run_id, {})
        generation = response.generations[0][0] if response.generations and response.generations[0] else None
        output = response.llm_output or {}
        data: JSONObject = {
            "text": generation.text if generation is not None else "",
            "model": output.get("model_name") or started.get("model", "unknown"),
            "provider": started.get("provider", self.provider or "langchain"),
        }
        info = generation.generation_info if generation is not None else None
        if info and info.get("finish_reason"):
            data["finish_reason"] = info["finish_reason"]
        usage = reported_usage(response)
        if usage is not None:
            data["usage"] = usage
        self._publish("llm_end", data, run_id, parent_run_id, usage=usage is not None)

    def on_llm_error(
        self, error: BaseException, *, run_id: UUID, parent_run_id: Optional[UUID] = None, **kwargs: Any
    ) -> None:
        self._models.pop(run_id, None)
        self._publish("llm_error", {"error": error_json(error)}, run_id, parent_run_id)

    def on_retry(self, retry_state: Any, *, run_id: UUID, parent_run_id: Optional[UUID] = None, **kwargs: Any) -> None:
        outcome = getattr(retry_state, "outcome", None)
        failure = outcome.exception() if outcome is not None and outcome.failed else None
        data: JSONObject = {"attempt": int(getattr(retry_state, "attempt_number", 0))}
        if failure is not None:
            data["error"] = error_json(failure)
        self._publish("retry", data, run_id, parent_run_id)


def reported_usage(response: LLMResult) -> Optional[JSONObject]:
    """The tokens a model call reported: ``llm_output["token_usage"]`` (OpenAI's shape), or
    the message's ``usage_metadata`` (LangChain's own, which streamed chat calls carry)."""
    usage = (response.llm_output or {}).get("token_usage")
    if isinstance(usage, dict) and "prompt_tokens" in usage and "completion_tokens" in usage:
        reported: JSONObject = {"prompt_tokens": int(usage["prompt_tokens"]),
                                "completion_tokens": int(usage["completion_tokens"])}
        cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
        reasoning = (usage.get("completion_tokens_details") or {}).get("reasoning_tokens")
    else:
        generation = response.generations[0][0] if response.generations and response.generations[0] else None
        metadata = getattr(getattr(generation, "message", None), "usage_metadata", None)
        if not metadata:
            return None
        reported = {"prompt_tokens": int(metadata["input_tokens"]), "completion_tokens": int(metadata["output_tokens"])}
        cached = (metadata.get("input_token_details") or {}).get("cache_read")
        reasoning = (metadata.get("output_token_details") or {}).get("reasoning")
    if cached:
        reported["cached_prompt_tokens"] = int(cached)
    if reasoning:
        reported["reasoning_tokens"] = int(reasoning)
    return reported
