"""The emulator's ids and clock: DashScope-shaped, and independent of compat's own helpers."""

from __future__ import annotations

import time
import uuid

__all__ = ["new_id", "now_ms"]


def new_id(prefix: str) -> str:
    """``asst_<32 hex>`` and the like: the length DashScope's ids have (37 for ``asst_``)."""
    return prefix + "_" + uuid.uuid4().hex


def now_ms() -> int:
    """The wall clock in whole milliseconds, the unit of the Assistant API's timestamps."""
    return int(time.time() * 1000)
