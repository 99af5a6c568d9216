"""compat for asyncio: the facade's classes with coroutines, streams as async iterators.

::

    from compat.aio import Assistants, Threads, Messages, Runs, Steps

    stream = await Runs.create(thread.id, assistant_id=assistant.id, stream=True)
    async for event, data in stream:
        ...
    await stream.aclose()   # mid-stream: the run is cancelled, as with close()

Every classmethod of ``compat``'s facade is here with the same parameters (its signature and
argument checks are the sync method's own), returning the same types. On the ``responses``
backend runs use compat's own asyncio HTTP client on the event loop (``backends.responses.
upstream_async``; no SDK), with the same translator, history and run lifecycle as the sync
facade (no thread per call); store calls are local: inline for the in-memory store, and for
SQLite when its write lock is free at once, else off the loop in a small thread pool
(``backends.responses.offload``). What a call does on the loop
waits for its turn (``backends.responses.turns``): many calls started at once share the loop's
passes with its timers and streams rather than hold it until all are done. On the
``assistants`` backend (dashscope has no async API for threads) each call runs the sync call
in a worker thread, and a stream's items are read in worker threads too.
``Runs.convert_stream_object`` does no I/O and stays a plain function.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, cast

from compat import _facade, _facade_runs
from compat import types as t
from compat._config import Settings, current_settings
from compat.backends import built_backend
from compat.backends.responses.offload import inline_spec, on_loop_or_off
from compat.backends.responses.turns import take_turn
from compat.store import Store

__all__ = ["Assistants", "Messages", "Runs", "Steps", "Threads"]

#: Methods whose awaited reply is a run (the others answer typed objects already).
_RUN_REPLIES = frozenset(
    {"create", "call", "create_thread_and_run", "create_and_run", "submit_tool_outputs", "wait"}
)
_PLAIN = frozenset({"convert_stream_object"})


def _coroutine(name: str, method: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(method)
    async def call(*args: Any, **kwargs: Any) -> Any:
        settings = current_settings()
        if settings.backend != "responses":
            reply = await asyncio.to_thread(method, *args, **kwargs)
            return _threaded(reply) if isinstance(reply, Iterator) else reply
        token = _facade.ASYNCHRONOUS.set(True)
        try:
            if inline_spec(settings.store):
                await take_turn()  # the call's store part, on the loop: in its turn
                reply = method(*args, **kwargs)
            else:  # the call's store part, off the loop unless it needs no wait (SQLite's
                # write lock free now); a run's network part comes back
                reply = await on_loop_or_off(_opened_store(settings), method, *args, **kwargs)
        finally:
            _facade.ASYNCHRONOUS.reset(token)
        if inspect.isawaitable(reply):
            if not inline_spec(settings.store):
                await take_turn()  # a run's request, sent from the loop
            reply = await reply
            if isinstance(reply, dict) and name in _RUN_REPLIES:
                reply = t.Run.from_dict(reply)
        if isinstance(reply, Iterator):  # an error as a stream: its one item, asynchronously
            return _at_once(reply)
        return reply

    return call


def _opened_store(settings: Settings) -> Store | None:
    """The store the call will use, if open already (opening one waits: off the loop)."""
    opened = getattr(built_backend(settings.backend), "opened_store", None)
    return None if opened is None else cast("Store | None", opened(settings))


async def _at_once(items: Iterator[Any]) -> AsyncIterator[Any]:
    try:
        for item in items:
            yield item
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            close()


async def _threaded(items: Iterator[Any]) -> AsyncIterator[Any]:
    """A sync stream whose reads block (the assistants backend), read in worker threads."""
    done = object()
    try:
        while True:
            item = await asyncio.to_thread(next, items, done)
            if item is done:
                return
            yield item
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            await asyncio.to_thread(close)


def _mirror(cls: type) -> type:
    """The async twin of a facade class: every public classmethod as a coroutine."""
    namespace: dict[str, Any] = {"__doc__": f"``compat.{cls.__name__}`` for asyncio."}
    for name, member in vars(cls).items():
        if name.startswith("_") or not isinstance(member, classmethod):
            continue
        method = getattr(cls, name)
        if name in _PLAIN:
            namespace[name] = staticmethod(method)
        else:
            namespace[name] = staticmethod(_coroutine(name, method))
    namespace["__module__"] = __name__
    return type(cls.__name__, (), namespace)


Assistants = _mirror(_facade.Assistants)
Threads = _mirror(_facade.Threads)
Messages = _mirror(_facade_runs.Messages)
Runs = _mirror(_facade_runs.Runs)
Steps = _mirror(_facade_runs.Steps)
