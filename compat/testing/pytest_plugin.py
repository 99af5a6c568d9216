"""pytest plugin (entry point ``pytest11: compat``): the ``compat_emulator`` fixture.

One emulator serves the whole session; each test gets it freshly ``reset()`` and with
``DASHSCOPE_HTTP_BASE_URL``, ``COMPAT_RESPONSES_BASE_URL`` and ``DASHSCOPE_API_KEY`` set for the
test, and ``COMPAT_STORE=memory`` unless the environment already names a store, so that a
migration test never writes into the user's real store (``compat.configure(store=...)`` still
wins over both). If ``dashscope`` is already imported (it reads those variables only at
import), its ``base_http_api_url`` and ``api_key`` are pointed at the emulator for the test too.
Loading the plugin imports nothing beyond pytest; the emulator is imported on first use.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from compat.testing.server import Emulator

__all__ = ["compat_emulator"]


@pytest.fixture(scope="session")
def _compat_emulator_server() -> Iterator[Emulator]:
    from compat.testing.server import Emulator

    with Emulator() as emulator:
        yield emulator


@pytest.fixture
def compat_emulator(_compat_emulator_server: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    """A running :class:`~compat.testing.Emulator`, empty, with the environment pointing at it
    (and ``COMPAT_STORE=memory`` unless set)."""
    emulator = _compat_emulator_server
    emulator.reset()
    for name, value in emulator.env().items():
        monkeypatch.setenv(name, value)
    if not os.environ.get("COMPAT_STORE"):
        monkeypatch.setenv("COMPAT_STORE", "memory")
    dashscope = sys.modules.get("dashscope")
    if dashscope is not None:
        monkeypatch.setattr(dashscope, "base_http_api_url", emulator.assistants_base_url)
        monkeypatch.setattr(dashscope, "api_key", emulator.api_key)
    return emulator
