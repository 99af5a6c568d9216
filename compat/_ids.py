"""DashScope-style ids and millisecond timestamps (the impure half of ``_objects``)."""

from __future__ import annotations

import time
import uuid

__all__ = ["new_id", "now_ms"]


def new_id(prefix: str) -> str:
    """``<prefix>_<32 hex>``, e.g. ``run_3f...``: the shape DashScope's ids have."""
    return f"{prefix}_{uuid.uuid4().hex}"


def now_ms() -> int:
    """Wall-clock time in integer milliseconds, as DashScope's ``created_at`` values are."""
    return time.time_ns() // 1_000_000
