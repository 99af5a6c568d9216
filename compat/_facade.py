"""The public classes: ``Assistants``, ``Threads``, ``Messages``, ``Runs``, ``Steps``.

Every classmethod has the name, the positional / keyword-only split and the defaults of its
dashscope 2.0.2 counterpart (a test compares them), validates its arguments the way dashscope
does (same exception names and messages), then hands plain dicts to the backend chosen by the
current settings and types what comes back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any

from compat import types as t
from compat._config import current_settings
from compat.backends import JSON, CallOptions, get_backend
from compat.errors import InputRequired, InvalidParameter, ModelRequired

__all__ = ["Assistants", "Threads"]

Stream = Iterator[tuple[str | None, Any]]
# Aliases, because inside the classes `list` names the `list` classmethod.
Tools = list[JSON] | None
FileIds = list[str] | None
ToolOutputs = list[JSON]


#: Set by ``compat.aio`` around a call: network calls answer awaitables (``CallOptions``).
ASYNCHRONOUS: ContextVar[bool] = ContextVar("compat_asynchronous", default=False)


def _options(workspace: str | None, api_key: str | None, kwargs: JSON) -> tuple[Any, CallOptions]:
    settings = current_settings()
    opts = CallOptions(settings, workspace, api_key, kwargs, asynchronous=ASYNCHRONOUS.get())
    return get_backend(settings), opts


def _typed(kind: Callable[..., Any], reply: Any) -> Any:
    """A reply object typed as ``kind``; a stream is typed by its backend already."""
    if isinstance(reply, dict):
        return kind.from_dict(reply)  # type: ignore[attr-defined]
    return reply


def _query(limit: int | None, order: str | None, after: str | None, before: str | None) -> JSON:
    if limit is not None and limit < 0:
        raise InvalidParameter("limit should >= 0")
    return {"limit": limit, "order": order, "after": after, "before": before}


class Assistants:
    """Assistants: ``create``/``call``, ``retrieve``/``get``, ``list``, ``update``, ``delete``."""

    @classmethod
    def call(
        cls,
        *,
        model: str,
        name: str | None = None,
        description: str | None = None,
        instructions: str | None = None,
        tools: Tools = None,
        file_ids: FileIds = [],  # noqa: B006 - dashscope's default, never mutated
        metadata: JSON | None = None,
        workspace: str | None = None,
        api_key: str | None = None,
        **kwargs: Any,
    ) -> t.Assistant:
        """Alias of ``create`` (dashscope's ``call`` forwards sampling parameters in kwargs)."""
        return cls.create(
            model=model,
            name=name,
            description=description,
            instructions=instructions,
            tools=tools,
            file_ids=file_ids,
            metadata=metadata,
            workspace=workspace,
            api_key=api_key,
            **kwargs,
        )

    @classmethod
    def create(
        cls,
        *,
        model: str,
        name: str | None = None,
        description: str | None = None,
        instructions: str | None = None,
        tools: Tools = None,
        file_ids: FileIds = [],  # noqa: B006
        metadata: JSON | None = None,
        workspace: str | None = None,
        api_key: str | None = None,
        top_p: float | None = None,
        top_k: int | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        **kwargs: Any,
    ) -> t.Assistant:
        if not model:
            raise ModelRequired("Model is required!")
        params = {
            "model": model,
            "name": name,
            "description": description,
            "instructions": instructions,
            "tools": tools,
            "file_ids": file_ids,
            "metadata": metadata,
            "top_p": top_p,
            "top_k": top_k,
            "temperature": temperature,
            "max_tokens": max_tokens,
        }
        backend, opts = _options(workspace, api_key, kwargs)
        return t.Assistant.from_dict(backend.create_assistant(params, opts))

    @classmethod
    def retrieve(
        cls,
        assistant_id: str,
        *,
        workspace: str | None = None,
        api_key: str | None = None,
        **kwargs: Any,
    ) -> t.Assistant:
        if not assistant_id:
            raise ModelRequired("assistant_id is required!")
        backend, opts = _options(workspace, api_key, kwargs)
        return t.Assistant.from_dict(backend.retrieve_assistant(assistant_id, opts))

    @classmethod
    def get(
        cls,
        assistant_id: str,
        *,
        workspace: str | None = None,
        api_key: str | None = None,
        **kwargs: Any,
    ) -> t.Assistant:
        return cls.retrieve(assistant_id, workspace=workspace, api_key=api_key, **kwargs)

    @classmethod
    def list(
        cls,
        *,
        limit: int | None = None,
        order: str | None = None,
        after: str | None = None,
        before: str | None = None,
        workspace: str | None = None,
        api_key: str | None = None,
        **kwargs: Any,
    ) -> t.AssistantList:
        query = _query(limit, order, after, before)
        backend, opts = _options(workspace, api_key, kwargs)
        return t.AssistantList.from_dict(backend.list_assistants(query, opts))

    @classmethod
    def update(
        cls,
        assistant_id: str,
        *,
        model: str | None = None,
        name: str | None = None,
        description: str | None = None,
        instructions: str | None = None,
        tools: Tools = None,
        file_ids: FileIds = [],  # noqa: B006
        metadata: JSON | None = None,
        workspace: str | None = None,
        api_key: str | None = None,
        top_p: float | None = None,
        top_k: int | None = None,
        temperature: float | None = None,
        max_tokens: int | None = None,
        **kwargs: Any,
    ) -> t.Assistant:
        if not assistant_id:
            raise ModelRequired("assistant_id is required!")
        params = {
            "model": model,
            "name": name,
            "description": description,
            "instructions": instructions,
            "tools": tools,
            "file_ids": file_ids,
            "metadata": metadata,
            "top_p": top_p,
            "top_k": top_k,
            "temperature": temperature,
            "max_tokens": max_tokens,
        }
        backend, opts = _options(workspace, api_key, kwargs)
        return t.Assistant.from_dict(backend.update_assistant(assistant_id, params, opts))

    @classmethod
    def delete(
        cls,
        assistant_id: str,
        *,
        workspace: str | None = None,
        api_key: str | None = None,
        **kwargs: Any,
    ) -> t.DeleteResponse:
        if not assistant_id:
            raise ModelRequired("assistant_id is required!")
        backend, opts = _options(workspace, api_key, kwargs)
        return t.DeleteResponse.from_dict(backend.delete_assistant(assistant_id, opts))


class Threads:
    """Threads: create/call, retrieve/get, update, delete, create_and_run."""

    @classmethod
    def call(
        cls,
        *,
        messages: Tools = None,
        metadata: JSON | None = None,
        workspace: str | None = None,
        api_key: str | None = None,
        **kwargs: Any,
    ) -> t.Thread:
        return cls.create(
            messages=messages, metadata=metadata, workspace=workspace, api_key=api_key, **kwargs
        )

    @classmethod
    def create(
        cls,
        *,
        messages: Tools = None,
        metadata: JSON | None = None,
        workspace: str | None = None,
        api_key: str | None = None,
        **kwargs: Any,
    ) -> t.Thread:
        backend, opts = _options(workspace, api_key, kwargs)
        params = {"messages": messages, "metadata": metadata}
        return t.Thread.from_dict(backend.create_thread(params, opts))

    @classmethod
    def get(
        cls,
        thread_id: str,
        *,
        workspace: str | None = None,
        api_key: str | None = None,
        **kwargs: Any,
    ) -> t.Thread:
        return cls.retrieve(thread_id, workspace=workspace, api_key=api_key, **kwargs)

    @classmethod
    def retrieve(
        cls,
        thread_id: str,
        *,
        workspace: str | None = None,
        api_key: str | None = None,
        **kwargs: Any,
    ) -> t.Thread:
        if not thread_id:
            raise InputRequired("thread_id is required!")
        backend, opts = _options(workspace, api_key, kwargs)
        return t.Thread.from_dict(backend.retrieve_thread(thread_id, opts))

    @classmethod
    def update(
        cls,
        thread_id: str,
        *,
        metadata: JSON | None = None,
        workspace: str | None = None,
        api_key: str | None = None,
        **kwargs: Any,
    ) -> t.Thread:
        if not thread_id:
            raise InputRequired("thread_id is required!")
        backend, opts = _options(workspace, api_key, kwargs)
        return t.Thread.from_dict(backend.update_thread(thread_id, {"metadata": metadata}, opts))

    @classmethod
    def delete(
        cls,
        thread_id: str,
        *,
        workspace: str | None = None,
        api_key: str | None = None,
        **kwargs: Any,
    ) -> t.DeleteResponse:
        if not thread_id:
            raise InputRequired("thread_id is required!")
        backend, opts = _options(workspace, api_key, kwargs)
        return t.DeleteResponse.from_dict(backend.delete_thread(thread_id, opts))

    @classmethod
    def create_and_run(
        cls,
        *,
        assistant_id: str,
        thread: JSON | None = None,
        model: str | None = None,
        instructions: str | None = None,
        additional_instructions: str | None = None,
        tools: Tools = None,
        metadata: JSON | None = None,
        workspace: str | None = None,
        api_key: str | None = None,
        **kwargs: Any,
    ) -> t.Run:
        """Create a thread and run it (not streamed; ``Runs.create_thread_and_run`` streams)."""
        if not assistant_id:
            raise InputRequired("assistant_id is required")
        params = {
            "assistant_id": assistant_id,
            "thread": thread,
            "model": model,
            "instructions": instructions,
            "additional_instructions": additional_instructions,
            "tools": tools,
            "metadata": metadata,
        }
        backend, opts = _options(workspace, api_key, kwargs)
        return _typed(t.Run, backend.create_thread_and_run(params, opts))  # type: ignore[no-any-return]
