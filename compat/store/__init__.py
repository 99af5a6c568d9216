"""Local state for the Responses backend: the `Store` protocol, its two stores, and `open_store`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from .base import KINDS, Kind, Page, Record, RunGone, Store, StoreError, Tx, transition
from .memory import MemoryStore
from .sqlite import SQLiteStore

__all__ = [
    "KINDS",
    "Kind",
    "MemoryStore",
    "Page",
    "Record",
    "RunGone",
    "SQLiteStore",
    "Store",
    "StoreError",
    "Tx",
    "default_store_path",
    "open_store",
    "transition",
]

_FILE_NAME = "compat.sqlite3"


def default_store_path() -> Path:
    """`compat.sqlite3` in the user's state directory for this platform (not created here)."""
    home = Path.home()
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or home / "AppData" / "Local")
    elif sys.platform == "darwin":
        base = home / "Library" / "Application Support"
    else:
        # The XDG spec says a relative XDG_STATE_HOME is invalid and must be ignored.
        xdg = os.environ.get("XDG_STATE_HOME", "")
        base = Path(xdg) if os.path.isabs(xdg) else home / ".local" / "state"
    return base / "compat" / _FILE_NAME


def open_store(spec: str | os.PathLike[str]) -> Store:
    """`"memory"` gives a MemoryStore; anything else is a file path for an SQLiteStore.

    `~` is expanded; missing parent directories are created private to the user (0700), and a
    new store file is too (0600).
    """
    if spec == "memory":
        return MemoryStore()
    if not os.fspath(spec):
        raise ValueError("empty store spec: give a file path or 'memory'")
    path = Path(spec).expanduser()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"{path.parent}: cannot create the store's directory: {exc}") from exc
    return SQLiteStore(path)
