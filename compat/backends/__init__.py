"""The backend seam: one protocol, two implementations, chosen by ``COMPAT_BACKEND``.

Rule: plain JSON-like dicts cross this seam, in both directions, with one exception. A backend
never returns an SDK object; the facade turns the dicts into ``compat.types`` objects. The
exception is streams: they are iterators of ``(event, data)`` items already typed as
``types.convert_stream_item`` types them, whose ``close()`` releases the upstream connection.
A stream is the per-event hot path, and typing there lets the responses backend build each text
delta's objects directly instead of building a dict first and the objects from it.

Backends are imported lazily, so ``import compat`` imports neither SDK.
"""

from __future__ import annotations

import importlib
import importlib.util
import threading
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass, field
from typing import Any, Protocol

from compat._config import Settings
from compat.errors import ConfigurationError

__all__ = [
    "JSON",
    "AsyncStreamItems",
    "Backend",
    "CallOptions",
    "Reply",
    "StreamItems",
    "error_stream",
    "get_backend",
]

JSON = dict[str, Any]
#: Typed items: ``(event, compat.types object)``, or ``(event, dict)`` where dashscope keeps one.
StreamItems = Iterator[tuple[str | None, Any]]
#: The same items for ``compat.aio`` (``CallOptions.asynchronous``).
AsyncStreamItems = AsyncIterator[tuple[str | None, Any]]
#: A non-streamed call answers one object; a streamed one an iterator of (event, data) items.
#: With ``CallOptions.asynchronous``, a call that needs the network answers an awaitable of
#: its reply (and streams are async iterators).
Reply = JSON | StreamItems | AsyncStreamItems | Awaitable[Any]


def error_stream(error: JSON) -> StreamItems:
    """A stream whose one item is ``(None, error)``, as dashscope streams an HTTP error.

    A generator, not a list iterator, so that ``close()`` works on it as on every stream.
    """
    yield None, error


@dataclass(frozen=True)
class CallOptions:
    """Per-call options every facade method accepts (``workspace``, ``api_key``, ``**kwargs``)."""

    settings: Settings
    workspace: str | None = None
    api_key: str | None = field(default=None, repr=False)  # never shown: a repr may be logged
    extra: JSON = field(default_factory=dict)
    #: called by ``compat.aio``: network calls answer awaitables (see ``Reply``)
    asynchronous: bool = False


class Backend(Protocol):
    """What the facade needs from a backend; method arguments are the facade's, as dicts."""

    name: str

    # assistants
    def create_assistant(self, params: JSON, opts: CallOptions) -> JSON: ...
    def retrieve_assistant(self, assistant_id: str, opts: CallOptions) -> JSON: ...
    def list_assistants(self, query: JSON, opts: CallOptions) -> JSON: ...
    def update_assistant(self, assistant_id: str, params: JSON, opts: CallOptions) -> JSON: ...
    def delete_assistant(self, assistant_id: str, opts: CallOptions) -> JSON: ...

    # threads
    def create_thread(self, params: JSON, opts: CallOptions) -> JSON: ...
    def retrieve_thread(self, thread_id: str, opts: CallOptions) -> JSON: ...
    def update_thread(self, thread_id: str, params: JSON, opts: CallOptions) -> JSON: ...
    def delete_thread(self, thread_id: str, opts: CallOptions) -> JSON: ...

    # messages
    def create_message(self, thread_id: str, params: JSON, opts: CallOptions) -> JSON: ...
    def retrieve_message(self, thread_id: str, message_id: str, opts: CallOptions) -> JSON: ...
    def list_messages(self, thread_id: str, query: JSON, opts: CallOptions) -> JSON: ...
    def update_message(
        self, thread_id: str, message_id: str, params: JSON, opts: CallOptions
    ) -> JSON: ...

    # runs
    def create_run(self, thread_id: str, params: JSON, opts: CallOptions) -> Reply: ...
    def create_thread_and_run(self, params: JSON, opts: CallOptions) -> Reply: ...
    def retrieve_run(self, thread_id: str, run_id: str, opts: CallOptions) -> JSON: ...
    def list_runs(self, thread_id: str, query: JSON, opts: CallOptions) -> JSON: ...
    def update_run(self, thread_id: str, run_id: str, params: JSON, opts: CallOptions) -> JSON: ...
    def cancel_run(self, thread_id: str, run_id: str, opts: CallOptions) -> JSON: ...
    def submit_tool_outputs(
        self, thread_id: str, run_id: str, params: JSON, opts: CallOptions
    ) -> Reply: ...
    def wait_run(
        self, thread_id: str, run_id: str, timeout_seconds: float, opts: CallOptions
    ) -> JSON: ...

    # steps
    def list_steps(self, thread_id: str, run_id: str, query: JSON, opts: CallOptions) -> JSON: ...
    def retrieve_step(
        self, thread_id: str, run_id: str, step_id: str, opts: CallOptions
    ) -> JSON: ...


# backend name -> (module, class, the SDK it needs, the extra that installs it)
# The responses backend needs no SDK: its own stdlib clients, sync (_http) and async (_http_async).
_REGISTRY: dict[str, tuple[str, str, str | None, str]] = {
    "responses": ("compat.backends.responses.backend", "ResponsesBackend", None, "responses"),
    "assistants": ("compat.backends.assistants", "AssistantsBackend", "dashscope", "assistants"),
    "shadow": ("compat.backends.shadow", "ShadowBackend", "dashscope", "all"),
}
_instances: dict[str, Backend] = {}
_lock = threading.Lock()


def built_backend(name: str) -> Backend | None:
    """The backend instance for ``name`` if a call built it already (None: not yet)."""
    return _instances.get(name)


def get_backend(settings: Settings) -> Backend:
    """The backend instance for ``settings.backend``, imported and built on first use."""
    name = settings.backend
    backend = _instances.get(name)
    if backend is not None:
        return backend
    with _lock:
        backend = _instances.get(name)
        if backend is None:
            module_name, class_name, sdk, extra = _REGISTRY[name]
            if sdk is not None and importlib.util.find_spec(sdk) is None:
                raise ConfigurationError(
                    f"the {name!r} backend needs the {sdk} package, which is not installed: "
                    f"pip install 'dashscope-compat[{extra}]'"
                )
            module = importlib.import_module(module_name)
            backend = getattr(module, class_name)()
            _instances[name] = backend
    return backend
