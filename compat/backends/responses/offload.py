"""Store calls made from an event loop (``compat.aio``): off the loop when the store does I/O.

The in-memory store answers in microseconds and is called inline, in the loop's turn
(``turns``). SQLite and PostgreSQL calls
run in a small pool of threads shared by the process (``MAX_WORKERS``), so a slow disk or
database holds a worker thread, never the loop. The calls go through unchanged: the logic is
the sync code's, only where it runs differs.

``StoreCalls`` serves one stream: its calls run one at a time, in the order they were made,
whatever happens to the task awaiting them. A cancel can neither stop a call that has begun nor
let a later call (the cancel's own write) overtake an earlier one still running.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import os
import threading
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from compat.backends.responses.turns import take_turn
from compat.store import Store
from compat.store.memory import MemoryStore

__all__ = ["MAX_WORKERS", "StoreCalls", "inline_spec", "off_loop"]

#: Threads for store calls. A store serialises its writes anyway (SQLite's write lock), so a
#: few threads keep the loop free without piling up connections.
MAX_WORKERS = 4

_T = TypeVar("_T")
_P = ParamSpec("_P")

_pool: concurrent.futures.ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def inline_spec(spec: str | None) -> bool:
    """The store a ``COMPAT_STORE`` spec names is called inline (``memory``)."""
    return spec == "memory"


async def off_loop(fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
    """``fn(*args, **kwargs)`` in the store pool, with the caller's context variables."""
    future = _submit(None, functools.partial(fn, *args, **kwargs))
    return await _result(future)


class StoreCalls:
    """One stream's store calls: inline for the in-memory store, else in order, off the loop."""

    def __init__(self, store: Store) -> None:
        self.inline = isinstance(store, MemoryStore)
        self._last: concurrent.futures.Future[Any] | None = None

    async def __call__(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        if self.inline:
            try:
                await take_turn()
            except asyncio.CancelledError:  # a cancel skips no call (an abort, a cleanup)
                fn(*args, **kwargs)
                raise
            return fn(*args, **kwargs)
        future = self._last = _submit(self._last, functools.partial(fn, *args, **kwargs))
        return await _result(future)


def _submit(
    after: concurrent.futures.Future[Any] | None, fn: Callable[[], _T]
) -> concurrent.futures.Future[_T]:
    """Queue ``fn()`` in the pool, to start once ``after`` (an earlier call) has ended.

    The pool takes calls in submission order, so ``after`` has a thread of its own (or is done)
    by the time this call's thread waits for it: no call waits on one that cannot start.
    """
    context = contextvars.copy_context()

    def call() -> _T:
        if after is not None:
            concurrent.futures.wait((after,))
        return context.run(fn)

    try:
        return _executor().submit(call)
    except RuntimeError:  # no new threads at interpreter exit: the call runs here, inline
        done: concurrent.futures.Future[_T] = concurrent.futures.Future()
        try:
            done.set_result(call())
        except BaseException as exc:
            done.set_exception(exc)
        return done


async def _result(future: concurrent.futures.Future[_T]) -> _T:
    """The call's result; a cancel of the awaiting task leaves the call running to its end."""
    waiting = asyncio.wrap_future(future)
    waiting.add_done_callback(_retrieve)
    return await asyncio.shield(waiting)


def _retrieve(future: asyncio.Future[Any]) -> None:
    """Mark an outcome nobody awaits any more (after a cancel) as seen: no warning at exit."""
    if not future.cancelled():
        future.exception()


def _executor() -> concurrent.futures.ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = concurrent.futures.ThreadPoolExecutor(
                MAX_WORKERS, thread_name_prefix="compat-store"
            )
        return _pool


def _after_fork_in_child() -> None:
    """A forked child has none of the parent's threads: it starts a pool of its own."""
    global _pool, _pool_lock
    _pool, _pool_lock = None, threading.Lock()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
