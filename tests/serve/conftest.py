"""The proxy in-process: ``compat serve``'s app on uvicorn in a thread, upstream the emulator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

import compat
from compat.testing import Emulator

dashscope = pytest.importorskip("dashscope")
pytest.importorskip("uvicorn")

from compat.serve.server import BackgroundServer  # noqa: E402


@pytest.fixture
def proxy(compat_emulator: Emulator, tmp_path: Path) -> Iterator[BackgroundServer]:
    """A running proxy on the responses backend (a fresh SQLite store), upstream the emulator."""
    compat.configure(backend="responses", store=str(tmp_path / "store.db"))
    server = BackgroundServer().start()
    try:
        yield server
    finally:
        server.stop()
        compat.configure(reset=True)


@pytest.fixture
def raw_dashscope() -> Any:
    """The dashscope SDK itself, as legacy code imports it (no compat in the call path)."""
    return SimpleNamespace(
        Assistants=dashscope.Assistants,
        Threads=dashscope.Threads,
        Messages=dashscope.Messages,
        Runs=dashscope.Runs,
        Steps=dashscope.Steps,
    )
