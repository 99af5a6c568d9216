"""The PostgreSQL store's schema: its migrations, applied once per database under a lock."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from .base import StoreError

__all__ = ["MIGRATIONS", "migrate"]

# Any psycopg connection; typed loosely so that this module imports nothing from psycopg.
Conn = Any


def m001_records(conn: Conn) -> None:
    """One table for every kind; `seq` (an identity) orders records that share a `created_at`."""
    conn.execute(
        """
        CREATE TABLE compat_records (
            kind TEXT NOT NULL,
            id TEXT NOT NULL,
            parent_id TEXT,
            created_at BIGINT NOT NULL,
            seq BIGINT GENERATED ALWAYS AS IDENTITY,
            data TEXT NOT NULL,
            meta TEXT NOT NULL,
            PRIMARY KEY (kind, id)
        )
        """
    )
    conn.execute(
        "CREATE INDEX compat_records_list ON compat_records (kind, parent_id, created_at, seq)"
    )


def m002_locking_get(conn: Conn) -> None:
    """`compat_get(kind, id)`: a transaction's read, locking the record's thread, then the record.

    Every record but an assistant belongs to one thread. Taking that thread's row lock before
    the record's own gives all transactions one lock order (thread, then what hangs off it), so
    a claim (thread, then the active run) and a finishing run (run, then its thread) queue on
    the thread instead of deadlocking. One function keeps it one round trip.
    """
    conn.execute(
        """
        CREATE FUNCTION compat_get(p_kind TEXT, p_id TEXT)
        RETURNS TABLE (data TEXT, meta TEXT) LANGUAGE plpgsql AS $$
        DECLARE
            thread TEXT;
        BEGIN
            IF p_kind IN ('message', 'run') THEN
                SELECT r.parent_id INTO thread FROM compat_records r
                WHERE r.kind = p_kind AND r.id = p_id;
            ELSIF p_kind = 'step' THEN
                SELECT r.parent_id INTO thread FROM compat_records r
                WHERE r.kind = 'run' AND r.id = (
                    SELECT s.parent_id FROM compat_records s WHERE s.kind = 'step' AND s.id = p_id
                );
            END IF;
            IF thread IS NOT NULL THEN
                PERFORM 1 FROM compat_records t WHERE t.kind = 'thread' AND t.id = thread
                FOR UPDATE;
            END IF;
            RETURN QUERY SELECT r.data, r.meta FROM compat_records r
                WHERE r.kind = p_kind AND r.id = p_id FOR UPDATE;
        END
        $$
        """
    )


# Schema changes, oldest first. Append only: a migration that has shipped is never edited,
# renamed or reordered. Each runs once per database and is recorded by name.
MIGRATIONS: list[Callable[[Conn], None]] = [m001_records, m002_locking_get]

# pg_advisory_xact_lock's key: any constant that other applications are unlikely to pick.
_MIGRATION_LOCK = 0x636F6D706174  # "compat"


def migrate(conn: Conn, where: str) -> None:
    """Run the migrations the database has not seen, in one transaction under an advisory lock.

    Two processes opening a new database at once queue on the lock; the second finds every
    migration recorded and does nothing. A migration this compat does not know means a newer
    compat wrote the database: refused, nothing changed.
    """
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_MIGRATION_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS compat_schema_migrations "
            "(name TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)"
        )
        done = {name for (name,) in conn.execute("SELECT name FROM compat_schema_migrations")}
        unknown = done - {migration.__name__ for migration in MIGRATIONS}
        if unknown:
            raise StoreError(
                f"{where} was written by a newer compat (schema migrations "
                f"{', '.join(sorted(unknown))} are unknown to this one): upgrade compat, "
                "or point COMPAT_STORE at another database"
            )
        for migration in MIGRATIONS:
            if migration.__name__ not in done:
                migration(conn)
                conn.execute(
                    "INSERT INTO compat_schema_migrations (name, applied_at) VALUES (%s, %s)",
                    (migration.__name__, time.time_ns() // 1_000_000),
                )
