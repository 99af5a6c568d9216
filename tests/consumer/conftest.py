"""Consumer suite: legacy-style programs run through compat and through raw dashscope.

The backend under test comes from ``COMPAT_BACKEND`` (the nox matrix sets it); without it,
every available backend is tested. The reference is always the real dashscope SDK talking
to the emulator's Assistant API, driven by the same scenarios.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

import compat
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
def apis(backend: str, compat_emulator: Emulator) -> dict[str, Any]:
    """The two implementations a legacy program can import from."""
    direct = SimpleNamespace(
        Assistants=dashscope.Assistants,
        Threads=dashscope.Threads,
        Messages=dashscope.Messages,
        Runs=dashscope.Runs,
        Steps=dashscope.Steps,
    )
    return {"dashscope": direct, "compat": compat}
