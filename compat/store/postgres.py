"""PostgreSQL store: one set of threads for every worker on every host (the postgres extra).

Imported only when a ``postgresql://`` store is opened: psycopg is an optional dependency.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
import psycopg_pool

from . import _pg_schema
from .base import (
    PARENT_FIELD,
    Kind,
    Page,
    Record,
    StoreError,
    TransitionMixin,
    apply_update,
    check_kind,
    decode,
    encode,
    window,
)

__all__ = ["MIGRATIONS", "PostgresStore", "display_uri"]

MIGRATIONS = _pg_schema.MIGRATIONS

# A re-put keeps its seq (and so its place in lists); meta NULL keeps the stored meta.
_UPSERT = """
INSERT INTO compat_records (kind, id, parent_id, created_at, data, meta)
VALUES (%(kind)s, %(id)s, %(parent_id)s, %(created_at)s, %(data)s, COALESCE(%(meta)s, '{}'))
ON CONFLICT (kind, id) DO UPDATE SET
    parent_id = excluded.parent_id,
    created_at = excluded.created_at,
    data = excluded.data,
    meta = COALESCE(%(meta)s, compat_records.meta)
"""
_SELECT = "SELECT data, meta FROM compat_records WHERE kind = %s AND id = %s"
# The database's clock, read at the moment of the call (not the transaction's start).
_CLOCK = "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint"
_LOCK_THREAD = "SELECT 1 FROM compat_records WHERE kind = 'thread' AND id = %s FOR UPDATE"


def display_uri(uri: str) -> str:
    """The URI without its password (in the user part or a ``password=`` parameter)."""
    parts = urlsplit(uri)
    if parts.password is not None:
        host = parts.netloc.rpartition("@")[2]
        parts = parts._replace(netloc=f"{parts.username or ''}:***@{host}")
    if "password" in parts.query.lower():
        query = parse_qsl(parts.query, keep_blank_values=True)
        safe = [(k, "***" if k.lower() == "password" else v) for k, v in query]
        parts = parts._replace(query=urlencode(safe, safe="*"))
    return urlunsplit(parts)


#: Every open store, so that a forked child can give each a fresh pool.
_open_stores: weakref.WeakSet[PostgresStore] = weakref.WeakSet()
#: What a forked child inherited: kept referenced, never used (see _after_fork_in_child).
_inherited: list[Any] = []


def _after_fork_in_child() -> None:
    for store in list(_open_stores):
        store._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class _PgTx:
    """A ``Tx`` on one connection inside a transaction; ``get`` locks what it reads."""

    def __init__(self, conn: psycopg.Connection[Any], store: PostgresStore) -> None:
        self.conn = conn
        self.store = store

    def get(self, kind: Kind, id: str) -> Record | None:
        # compat_get locks the record's thread, then the record (see _pg_schema): the read,
        # the check and the write that follows are atomic, and a missing run's thread is held.
        check_kind(kind)
        row = self.store._run(self.conn, "SELECT data, meta FROM compat_get(%s, %s)", (kind, id))
        return None if row is None else decode(row[0], row[1])

    def put(self, kind: Kind, data: dict[str, Any], meta: dict[str, Any] | None = None) -> None:
        self.store._run(self.conn, _UPSERT, encode(kind, data, meta)._asdict(), fetch=False)

    def delete(self, kind: Kind, id: str) -> bool:
        check_kind(kind)
        run = self.store._run
        conn = self.conn
        # Lock in the same order as get (thread first), then delete children before parents.
        if kind == "thread":
            run(conn, _LOCK_THREAD, (id,))
            run(
                conn,
                "DELETE FROM compat_records WHERE kind = 'step' AND parent_id IN "
                "(SELECT id FROM compat_records WHERE kind = 'run' AND parent_id = %s)",
                (id,),
                fetch=False,
            )
            run(
                conn,
                "DELETE FROM compat_records WHERE kind IN ('message', 'run') AND parent_id = %s",
                (id,),
                fetch=False,
            )
        elif kind != "assistant":
            if self.get(kind, id) is None:
                return False
            if kind == "run":
                run(
                    conn,
                    "DELETE FROM compat_records WHERE kind = 'step' AND parent_id = %s",
                    (id,),
                    fetch=False,
                )
        row = run(
            conn, "DELETE FROM compat_records WHERE kind = %s AND id = %s RETURNING 1", (kind, id)
        )
        return row is not None

    def children(self, kind: Kind, parent_id: str) -> list[Record]:
        check_kind(kind)
        rows = self.store._run(
            self.conn,
            "SELECT data, meta FROM compat_records WHERE kind = %s AND parent_id = %s "
            "ORDER BY created_at, seq",
            (kind, parent_id),
            fetch="all",
        )
        return [decode(data, meta) for data, meta in rows]

    def now_ms(self) -> int:
        row = self.store._run(self.conn, _CLOCK, ())
        assert row is not None
        now = int(row[0])
        # Keeps the store-level clock's offset fresh at no extra cost (within a round trip).
        self.store._clock_offset = now - time.time_ns() // 1_000_000
        return now


class PostgresStore(TransitionMixin):
    """A `Store` in a PostgreSQL database, shared by processes on any number of hosts.

    Connections come from a psycopg_pool pool (autocommit; transactions are explicit). The
    schema is created and migrated on open. `statements` counts the statements sent and
    `commits` the write transactions (each waits for the server's WAL flush, unless the URI
    turns synchronous_commit off), for the benchmarks.
    """

    def __init__(self, uri: str, *, max_connections: int = 16, timeout: float = 10.0) -> None:
        self.uri = uri
        self.name = display_uri(uri)
        self._max = max_connections
        self._timeout = timeout
        self._lock = threading.Lock()
        self._pool: psycopg_pool.ConnectionPool[Any] | None = None
        self._sockets: weakref.WeakSet[psycopg.Connection[Any]] = weakref.WeakSet()
        self._closed = False
        self.statements = 0
        self.commits = 0
        # One direct connection first: an unreachable server or a refused login is reported
        # at once, with libpq's reason, rather than as a pool timeout.
        try:
            with psycopg.connect(
                uri, autocommit=True, connect_timeout=max(1, int(timeout))
            ) as conn:
                _pg_schema.migrate(conn, self.name)
                local = time.time_ns() // 1_000_000
                (db,) = conn.execute(_CLOCK).fetchone() or (local,)
                self._clock_offset = int(db) - (local + time.time_ns() // 1_000_000) // 2
        except psycopg.Error as exc:
            raise StoreError(f"{self.name}: {_reason(exc)}") from exc
        _open_stores.add(self)

    def __repr__(self) -> str:
        return f"PostgresStore({self.name!r})"

    # -- the Store protocol ------------------------------------------------------------------

    def put(self, kind: Kind, data: dict[str, Any], meta: dict[str, Any] | None = None) -> None:
        self.put_many([(kind, data, meta)])

    def put_many(self, items: Sequence[tuple[Kind, dict[str, Any], dict[str, Any] | None]]) -> None:
        rows = [encode(kind, data, meta)._asdict() for kind, data, meta in items]
        if not rows:
            return
        self.commits += 1
        with self._connection() as conn:
            if len(rows) == 1:
                self._run(conn, _UPSERT, rows[0], fetch=False)
                return
            with conn.transaction():
                self.statements += len(rows) + 2
                conn.cursor().executemany(_UPSERT, rows)

    def get(self, kind: Kind, id: str) -> Record | None:
        check_kind(kind)
        with self._connection() as conn:
            row = self._run(conn, _SELECT, (kind, id))
        return None if row is None else decode(row[0], row[1])

    def delete(self, kind: Kind, id: str) -> bool:
        check_kind(kind)
        with self.transaction() as tx:
            return tx.delete(kind, id)

    def list(
        self,
        kind: Kind,
        *,
        parent_id: str | None = None,
        limit: int = 20,
        order: str = "desc",
        after: str | None = None,
        before: str | None = None,
    ) -> Page:
        check_kind(kind)
        win = window(order, limit, after, before)
        scope = "kind = %s"
        scope_args: tuple[Any, ...] = (kind,)
        if parent_id is not None and kind in PARENT_FIELD:
            scope += " AND parent_id = %s"
            scope_args += (parent_id,)
        where, args = [scope], [*scope_args]
        for cursor, later in ((after, True), (before, False)):
            if cursor is None:
                continue
            # A cursor outside the scope makes the subquery empty, the comparison NULL, and
            # the page empty, as the protocol asks. One statement keeps it one snapshot.
            op = ">" if later != win.descending else "<"
            where.append(
                f"(created_at, seq) {op} "
                f"(SELECT created_at, seq FROM compat_records WHERE {scope} AND id = %s)"
            )
            args += [*scope_args, cursor]
        direction = "DESC" if win.reads_descending else "ASC"
        sql = (
            f"SELECT data FROM compat_records WHERE {' AND '.join(where)} "
            f"ORDER BY created_at {direction}, seq {direction} LIMIT %s"
        )
        args.append(win.limit + 1)
        with self._connection() as conn:
            rows = self._run(conn, sql, args, fetch="all")
        return win.page([text for (text,) in rows])

    def update(self, kind: Kind, id: str, fn: Callable[[Record], Record | None]) -> Record | None:
        check_kind(kind)
        with self.transaction() as tx:
            return apply_update(tx, kind, id, fn)

    @contextmanager
    def transaction(self) -> Iterator[_PgTx]:
        with self._connection() as conn:
            self.statements += 2  # BEGIN, COMMIT
            self.commits += 1
            try:
                with conn.transaction():
                    yield _PgTx(conn, self)
            except psycopg.Error as exc:
                raise StoreError(f"{self.name}: {_reason(exc)}") from exc

    def now_ms(self) -> int:
        """The database's clock, from the offset last measured (at open, and by ``Tx.now_ms``)."""
        return time.time_ns() // 1_000_000 + self._clock_offset

    def close(self) -> None:
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()

    # -- connections ---------------------------------------------------------------------------

    def _get_pool(self) -> psycopg_pool.ConnectionPool[Any]:
        with self._lock:
            if self._closed:
                raise StoreError(f"{self!r} is closed")
            if self._pool is None:
                self._pool = psycopg_pool.ConnectionPool(
                    self.uri,
                    min_size=1,
                    max_size=self._max,
                    kwargs={"autocommit": True},
                    configure=self._sockets.add,
                    timeout=self._timeout,
                    name=f"compat-{self.name}",
                    open=True,
                )
            return self._pool

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A pooled connection; psycopg and pool errors come out as StoreError."""
        try:
            with self._get_pool().connection() as conn:
                yield conn
        except psycopg.Error as exc:
            raise StoreError(f"{self.name}: {_reason(exc)}") from exc
        except psycopg_pool.PoolTimeout as exc:
            raise StoreError(
                f"{self.name}: no connection to the database within {self._timeout:g}s ({exc})"
            ) from exc

    def _run(
        self,
        conn: psycopg.Connection[Any],
        sql: str,
        args: Any,
        *,
        fetch: bool | str = True,
    ) -> Any:
        """Execute one statement: its first row (`fetch=True`), all rows ("all"), or nothing."""
        self.statements += 1
        cursor = conn.execute(sql, args)
        if fetch == "all":
            return cursor.fetchall()
        return cursor.fetchone() if fetch else None

    def _after_fork_in_child(self) -> None:
        """A forked child must not use its parent's connections: it starts a fresh pool.

        The child's copies of the parent's sockets are pointed at /dev/null rather than closed:
        libpq's goodbye on a socket shared with the parent would end the parent's session.
        (psycopg's finaliser already skips it in a forked child; this also covers an explicit
        close.) The pool object is kept referenced so that nothing finalises it in the child.
        """
        self._lock = threading.Lock()
        devnull = os.open(os.devnull, os.O_RDWR)
        try:
            for conn in list(self._sockets):
                # A closed or broken connection has no socket (its fd may be reused): skip it.
                with contextlib.suppress(psycopg.Error, OSError):
                    if not conn.closed:
                        os.dup2(devnull, conn.fileno())
        finally:
            os.close(devnull)
        _inherited.append((self._pool, list(self._sockets)))
        self._pool = None
        self._sockets = weakref.WeakSet()


def _reason(exc: BaseException) -> str:
    """psycopg's message on one line."""
    return " ".join(str(exc).split()) or type(exc).__name__
