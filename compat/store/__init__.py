"""State for the Responses backend: the `Store` protocol, its stores, and `open_store`.

The PostgreSQL store (`compat.store.postgres`) is imported only when a `postgresql://` spec is
opened: psycopg is the optional `dashscope-compat[postgres]` extra.
"""

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
    "is_postgres_uri",
    "open_store",
    "transition",
]

_FILE_NAME = "compat.sqlite3"
_PG_SCHEMES = ("postgresql://", "postgres://")
_PG_MISSING = (
    "COMPAT_STORE={uri} needs the PostgreSQL store, whose dependency (psycopg 3) is not "
    "installed: pip install 'dashscope-compat[postgres]'"
)


def is_postgres_uri(spec: str | os.PathLike[str]) -> bool:
    """Whether `spec` names a PostgreSQL database (a libpq URI) rather than a file."""
    return isinstance(spec, str) and spec.lower().startswith(_PG_SCHEMES)


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
    """`"memory"` gives a MemoryStore, a `postgresql://` (or `postgres://`) URI a PostgresStore,
    anything else is a file path for an SQLiteStore.

    A URI is libpq's: credentials may come from it or from libpq's environment (PGPASSWORD,
    ~/.pgpass, ...). Without the `postgres` extra it raises ConfigurationError. For a file, `~` is
    expanded; missing parent directories are created private to the user (0700), and a
    new store file is too (0600).
    """
    if spec == "memory":
        return MemoryStore()
    if is_postgres_uri(spec):
        return _open_postgres(str(spec))
    if not os.fspath(spec):
        raise ValueError("empty store spec: give a file path or 'memory'")
    path = Path(spec).expanduser()
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"{path.parent}: cannot create the store's directory: {exc}") from exc
    return SQLiteStore(path)


def _open_postgres(uri: str) -> Store:
    try:
        from .postgres import PostgresStore
    except ImportError as exc:
        from urllib.parse import urlsplit

        from compat.errors import ConfigurationError

        # The URI may carry credentials: name only the scheme, host and database.
        parts = urlsplit(uri)
        shown = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}{parts.path}"
        raise ConfigurationError(_PG_MISSING.format(uri=shown)) from exc
    return PostgresStore(uri)
