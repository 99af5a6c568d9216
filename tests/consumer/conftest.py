"""Consumer suite: legacy-style programs run through compat and through raw dashscope.

The backend under test comes from ``COMPAT_BACKEND`` (the nox matrix sets it); without it,
every available backend is tested. The reference is always the real dashscope SDK talking
to the emulator's Assistant API, driven by the same scenarios.
"""

from __future__ import annotations

import asyncio
import inspect
import os
from collections.abc import AsyncIterator, Iterator
from types import SimpleNamespace
from typing import Any

import pytest

import compat
from compat import aio
from compat.testing import Emulator
from tests.pg import consumer_store

dashscope = pytest.importorskip("dashscope")

BACKENDS = ("assistants", "responses")


def _selected_backends() -> tuple[str, ...]:
    chosen = os.environ.get("COMPAT_BACKEND")
    return (chosen,) if chosen else BACKENDS


@pytest.fixture(params=_selected_backends())
def backend(request: pytest.FixtureRequest, compat_emulator: Emulator) -> Iterator[str]:
    """compat configured for one backend against the emulator (memory store)."""
    compat.configure(backend=request.param, store=consumer_store())
    yield request.param
    compat.configure(reset=True)


@pytest.fixture
def apis(backend: str, compat_emulator: Emulator, facade: Any) -> dict[str, Any]:
    """The two implementations a legacy program can import from."""
    direct = SimpleNamespace(
        Assistants=dashscope.Assistants,
        Threads=dashscope.Threads,
        Messages=dashscope.Messages,
        Runs=dashscope.Runs,
        Steps=dashscope.Steps,
    )
    return {"dashscope": direct, "compat": facade}


class AsyncBridge:
    """A facade whose calls run ``compat.aio``'s coroutines on one event loop, to completion.

    The consumer programs are sync legacy code; through this bridge the same programs drive
    the async facade, so every consumer test of the sync facade has an async twin that must
    observe the same transcript. Streams come back as sync iterators over the async ones.
    """

    def __init__(self, module: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        for name in ("Assistants", "Threads", "Messages", "Runs", "Steps"):
            setattr(self, name, _BridgedClass(getattr(module, name), loop))


class _BridgedClass:
    def __init__(self, cls: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._cls = cls
        self._loop = loop

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._cls, name)
        if not inspect.iscoroutinefunction(method):
            return method

        def call(*args: Any, **kwargs: Any) -> Any:
            result = self._loop.run_until_complete(method(*args, **kwargs))
            if isinstance(result, AsyncIterator):
                return _BridgedStream(result, self._loop)
            return result

        return call


class _BridgedStream:
    def __init__(self, items: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._items = items
        self._loop = loop

    def __iter__(self) -> _BridgedStream:
        return self

    def __next__(self) -> Any:
        try:
            return self._loop.run_until_complete(self._items.__anext__())
        except StopAsyncIteration:
            raise StopIteration from None

    def close(self) -> None:
        self._loop.run_until_complete(self._items.aclose())


@pytest.fixture(params=["sync", "aio"])
def facade(request: pytest.FixtureRequest) -> Iterator[Any]:
    """compat's sync facade, or ``compat.aio`` driven through an ``AsyncBridge``."""
    if request.param == "sync":
        yield compat
        return
    loop = asyncio.new_event_loop()
    try:
        yield AsyncBridge(aio, loop)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()
