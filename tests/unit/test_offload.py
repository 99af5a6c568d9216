"""Store calls from the event loop: inline for the memory store and for SQLite when no lock is in
the way, else in order, off the loop."""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compat.backends.responses.offload import StoreCalls, inline_spec, off_loop, on_loop_or_off
from compat.store import Store, open_store
from compat.store.sqlite import SQLiteStore

WHO: contextvars.ContextVar[str] = contextvars.ContextVar("who", default="nobody")


@pytest.fixture
def sqlite(tmp_path: Path) -> Any:
    store = open_store(str(tmp_path / "store.db"))
    yield store
    store.close()


def _where() -> tuple[bool, str]:
    return threading.current_thread() is threading.main_thread(), WHO.get()


def test_the_memory_store_is_called_inline_and_others_off_the_loop(sqlite: Store) -> None:
    async def main() -> tuple[Any, Any]:
        WHO.set("caller")
        return await StoreCalls(open_store("memory"))(_where), await StoreCalls(sqlite)(_where)

    assert asyncio.run(main()) == ((True, "caller"), (False, "caller"))
    assert inline_spec("memory") and not inline_spec(None) and not inline_spec("x.db")


def test_arguments_pass_through_whatever_their_names_and_errors_are_raised() -> None:
    def page(fn: str, *, after: str, before: str | None = None) -> tuple[str, str, str | None]:
        return fn, after, before

    def broken() -> None:
        raise LookupError("gone")

    async def main() -> Any:
        with pytest.raises(LookupError, match="gone"):
            await off_loop(broken)
        return await off_loop(page, "f", after="a")

    assert asyncio.run(main()) == ("f", "a", None)


def test_a_cancel_neither_stops_a_call_nor_lets_the_next_overtake_it(sqlite: Store) -> None:
    order: list[str] = []
    gate = threading.Event()

    def first() -> None:
        assert gate.wait(30)
        order.append("first")

    async def main() -> None:
        calls = StoreCalls(sqlite)
        task = asyncio.create_task(calls(first))
        await asyncio.sleep(0)  # one loop turn: the task has submitted its call
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        second = asyncio.create_task(calls(order.append, "second"))
        await asyncio.sleep(0)  # submitted while the first call is still blocked
        gate.set()
        await second

    asyncio.run(main())
    assert order == ["first", "second"]


@contextlib.contextmanager
def _write_lock_held_elsewhere(store: SQLiteStore) -> Iterator[None]:
    """SQLite's write lock on ``store``'s file, held by another process until the block ends."""
    hold = (
        "import sqlite3, sys\n"
        "conn = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "conn.execute('BEGIN IMMEDIATE')\n"
        "print('held', flush=True)\n"
        "sys.stdin.readline()\n"
        "conn.execute('ROLLBACK')\n"
    )
    with subprocess.Popen(
        [sys.executable, "-c", hold, str(store.path)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        assert process.stdin is not None and process.stdout is not None
        try:
            assert process.stdout.readline() == "held\n"
            yield
        finally:
            process.stdin.close()  # the child reads EOF, rolls back and exits
            assert process.wait(30) == 0


def _opened(store: Store) -> SQLiteStore:
    """``store`` with its write connection open (the first write opens it, off the loop)."""
    assert isinstance(store, SQLiteStore) and store.direct
    store.put("thread", {"id": "thread_0", "created_at": 1})
    return store


def _put(store: Store, n: int) -> bool:
    store.put("thread", {"id": f"thread_{n}", "created_at": 1})
    return threading.current_thread() is threading.main_thread()


def test_sqlite_calls_run_inline_when_no_lock_is_in_the_way(sqlite: Store) -> None:
    store = _opened(sqlite)

    async def main() -> list[tuple[bool, str] | bool]:
        WHO.set("caller")
        calls = StoreCalls(store)
        return [await calls(_where), await calls(_put, store, 1), await calls(_where)]

    assert asyncio.run(main()) == [(True, "caller"), True, (True, "caller")]
    assert store.get("thread", "thread_1") is not None


def test_a_write_lock_held_by_another_process_sends_the_call_off_the_loop(
    sqlite: Store,
) -> None:
    # The call meets the lock: it waits in the pool while the loop keeps running, and it is
    # made once the other process lets go.
    store = _opened(sqlite)
    deferred: list[object] = []
    with _write_lock_held_elsewhere(store), store.held_at_once(deferred.append) as held:
        assert held is False
    with store.held_at_once(deferred.append) as held:
        assert held is True  # free again
    assert deferred == []  # the WAL is short: no checkpoint asked for

    async def main() -> bool:
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.001)
                ticks += 1

        tick = asyncio.create_task(ticker())
        with _write_lock_held_elsewhere(store):
            write = asyncio.create_task(StoreCalls(store)(_put, store, 2))
            for _ in range(3000):  # the loop ticks on while the write waits for the lock
                await asyncio.sleep(0.001)
                if ticks >= 50:
                    break
            assert ticks >= 50 and not write.done()
        on_loop = await asyncio.wait_for(write, 30)
        tick.cancel()
        return on_loop

    assert asyncio.run(main()) is False
    assert store.get("thread", "thread_2") is not None


def test_an_inline_call_never_overtakes_the_streams_pooled_call(sqlite: Store) -> None:
    # The first call met the lock and went to the pool; the lock is free by the second call,
    # which still waits for the first, in the pool, rather than run on the loop before it.
    store = _opened(sqlite)
    order: list[tuple[str, bool]] = []
    started, gate = threading.Event(), threading.Event()

    def first() -> None:
        started.set()
        assert gate.wait(30)
        _put(store, 3)
        order.append(("first", threading.current_thread() is threading.main_thread()))

    def second() -> None:
        order.append(("second", _put(store, 4)))

    async def main() -> None:
        calls = StoreCalls(store)
        with _write_lock_held_elsewhere(store):
            one = asyncio.create_task(calls(first))
            assert await asyncio.to_thread(started.wait, 30)
        two = asyncio.create_task(calls(second))
        for _ in range(20):  # the second call has been made, its place taken
            await asyncio.sleep(0)
        gate.set()
        await asyncio.wait_for(asyncio.gather(one, two), 30)

    asyncio.run(main())
    assert order == [("first", False), ("second", False)]


def test_an_inline_call_commits_what_separate_transactions_would(sqlite: Store) -> None:
    # Inside one held write transaction: reads see the writes before them, and a failed
    # transaction is undone alone.
    store = _opened(sqlite)

    def calls() -> str | None:
        store.put("thread", {"id": "thread_5", "created_at": 1})
        with pytest.raises(LookupError), store.transaction() as tx:
            tx.put("thread", {"id": "thread_6", "created_at": 1})
            raise LookupError("undone")
        seen = store.get("thread", "thread_5")
        return None if seen is None else seen.data["id"]

    with store.held_at_once(lambda fn: None) as held:
        assert held
        assert calls() == "thread_5"
    assert store.get("thread", "thread_5") is not None and store.get("thread", "thread_6") is None


def test_a_facade_call_runs_on_the_loop_only_when_its_store_is_open_and_free(
    sqlite: Store,
) -> None:
    store = _opened(sqlite)

    async def main() -> list[bool]:
        where = [
            await on_loop_or_off(None, _put, store, 7),
            await on_loop_or_off(store, _put, store, 8),
        ]
        with _write_lock_held_elsewhere(store):
            blocked = asyncio.create_task(on_loop_or_off(store, _put, store, 9))
            await asyncio.sleep(0.01)
            assert not blocked.done()  # waiting in the pool for the other process
        return [*where, await asyncio.wait_for(blocked, 30)]

    assert asyncio.run(main()) == [False, True, False]
