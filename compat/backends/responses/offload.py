"""Store calls made from an event loop (``compat.aio``): off the loop when they could wait.

The in-memory store answers in microseconds and is called inline, in the loop's turn
(``turns``). PostgreSQL calls run in a small pool of threads shared by the process
(``MAX_WORKERS``), so a slow database holds a worker thread, never the loop. A SQLite call runs
inline when it can finish without waiting for a lock (``SQLiteStore.held_at_once``: this
process's write lock and SQLite's both free at once, tried, never waited for; checkpoints go to
the pool), else in the pool: another process holding the file's write lock holds a worker
thread. Inline, the loop's thread does not queue for the GIL behind the pool's threads. The
calls go through unchanged: the logic is the sync code's, only where it runs differs.

``StoreCalls`` serves one stream: its calls run one at a time, in the order they were made,
whatever happens to the task awaiting them (a call runs inline only once the previous one has
ended). A cancel can neither stop a call that has begun nor let a later call (the cancel's own
write) overtake an earlier one still running.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import os
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, ParamSpec, TypeVar

from compat.backends.responses.turns import take_turn
from compat.store import Store
from compat.store.memory import MemoryStore

__all__ = ["MAX_WORKERS", "StoreCalls", "at_once_of", "inline_spec", "off_loop", "on_loop_or_off"]

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


#: A store's ``held_at_once`` (``SQLiteStore``): a context manager yielding whether the
#: calls inside it can run without waiting for a lock.
AtOnce = Callable[[Callable[[Callable[[], None]], object]], AbstractContextManager[bool]]


def at_once_of(store: Store | None) -> AtOnce | None:
    """``store``'s ``held_at_once``, if it has one."""
    return getattr(store, "held_at_once", None)


async def on_loop_or_off(
    store: Store | None, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs
) -> _T:
    """``fn(*args, **kwargs)`` in the loop's turn if ``store`` can take it without waiting for
    a lock (``at_once_of``), else as ``off_loop``."""
    at_once = at_once_of(store)
    call = functools.partial(fn, *args, **kwargs)
    if at_once is not None:
        await take_turn()  # a cancel here makes no call: none had begun
        with at_once(_defer) as held:
            if held:
                return call()
    return await _result(_submit(None, call))


class StoreCalls:
    """One stream's store calls, in order: inline for the in-memory store; inline for an
    SQLite store when the call can finish without waiting for a lock (``held_at_once``) and
    no earlier call of the stream is still running; else off the loop."""

    def __init__(self, store: Store) -> None:
        self.inline = isinstance(store, MemoryStore)
        self._at_once = at_once_of(store)
        self._last: concurrent.futures.Future[Any] | None = None

    async def __call__(self, fn: Callable[_P, _T], /, *args: _P.args, **kwargs: _P.kwargs) -> _T:
        if self.inline:
            try:
                await take_turn()
            except asyncio.CancelledError:  # a cancel skips no call (an abort, a cleanup)
                fn(*args, **kwargs)
                raise
            return fn(*args, **kwargs)
        call = functools.partial(fn, *args, **kwargs)
        if self._at_once is not None and self._idle():
            try:
                await take_turn()
            except asyncio.CancelledError:  # a cancel skips no call: it runs in the pool
                self._last = _submit(self._last, call)
                raise
            if self._idle():  # no earlier call of this stream is still running
                with self._at_once(_defer) as held:
                    if held:
                        return call()
        future = self._last = _submit(self._last, call)
        return await _result(future)

    def _idle(self) -> bool:
        return self._last is None or self._last.done()


def _defer(fn: Callable[[], None]) -> None:
    """Run ``fn()`` in the pool, on its own (a checkpoint)."""
    _submit(None, fn).add_done_callback(lambda done: done.exception())


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
