"""The SQLite store's schema: its migrations, oldest first, and how a file gets them."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

from .base import StoreError

__all__ = ["MIGRATIONS", "apply_migrations"]


def m001_records(conn: sqlite3.Connection) -> None:
    """One table for every kind; `seq` orders records that share a `created_at`."""
    conn.execute(
        """
        CREATE TABLE records (
            kind TEXT NOT NULL,
            id TEXT NOT NULL,
            parent_id TEXT,
            created_at INTEGER NOT NULL,
            seq INTEGER NOT NULL,
            data TEXT NOT NULL,
            meta TEXT NOT NULL,
            PRIMARY KEY (kind, id)
        )
        """
    )
    # Unique, and indexed so that MAX(seq) for the next insert is a lookup, not a scan.
    conn.execute("CREATE UNIQUE INDEX records_seq ON records (seq)")
    conn.execute("CREATE INDEX records_list ON records (kind, parent_id, created_at, seq)")


# Schema changes, oldest first. Append only: a migration that has shipped is never edited,
# renamed or reordered. Each runs once per file and is recorded by name in schema_migrations.
MIGRATIONS: list[Callable[[sqlite3.Connection], None]] = [m001_records]


def apply_migrations(conn: sqlite3.Connection, path: Path) -> None:
    """Create the tables of the migrations ``conn``'s file has not seen (in its transaction)."""
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations "
        "(name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)"
    )
    done = {name for (name,) in conn.execute("SELECT name FROM schema_migrations")}
    unknown = done - {migration.__name__ for migration in MIGRATIONS}
    if unknown:
        raise StoreError(
            f"{path} was written by a newer compat (schema migrations "
            f"{', '.join(sorted(unknown))} are unknown to this one): upgrade compat, "
            "or point COMPAT_STORE at another file"
        )
    for migration in MIGRATIONS:
        if migration.__name__ not in done:
            migration(conn)
            conn.execute(
                "INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)",
                (migration.__name__, time.time_ns() // 1_000_000),
            )
