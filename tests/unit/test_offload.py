"""Store calls from the event loop: inline for the memory store, else in order, off the loop."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from pathlib import Path
from typing import Any

import pytest

from compat.backends.responses.offload import StoreCalls, inline_spec, off_loop
from compat.store import Store, open_store

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
