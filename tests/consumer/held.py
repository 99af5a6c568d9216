"""Helpers of the lifecycle tests: a run the upstream holds active, and bounded waits."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from compat.testing import Failure, Scenario, Text


def stalled(text: str = "Partial answer") -> Scenario:
    """Streams ``text``, then nothing for two minutes: the run stays active until cancelled."""
    return Scenario.of(Text(text), Failure("stall", "stall", mode="stall", seconds=120))


def wait_for(condition: Callable[[], Any], what: str, timeout: float = 60.0) -> Any:
    """Poll ``condition`` until it is truthy (and return it), or fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)
