"""PostgreSQL store: one set of threads for every worker on every host (the postgres extra).

Imported only when a ``postgresql://`` store is opened: psycopg is an optional dependency.

Round trips are what a store call costs here, so a transaction is pipelined (libpq 14+): its
``BEGIN`` and writes are queued and go out with the next read, and the ``COMMIT`` with the last
writes, so a transaction costs one round trip per read plus one. A transaction's first read also
brings the database's clock back, and a record it read or wrote is served again from memory
(its row is locked by the transaction, so nobody else can have changed it).
"""

from __future__ import annotations

import contextlib
import os
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg.adapt import Dumper
from psycopg.pq import Format, TransactionStatus

from . import _pg_schema
from ._pg_pool import ConnectionPool
from ._utf8 import dumps_utf8
from .base import (
    PARENT_FIELD,
    Kind,
    Page,
    Record,
    TransitionMixin,
    apply_update,
    check_kind,
    decode,
    index_fields,
    store_errors,
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
_LOCKING_SELECT = "SELECT data, meta FROM compat_get(%s, %s)"
# The database's clock, read when the statement runs (not at the transaction's start).
_CLOCK = "SELECT (extract(epoch FROM clock_timestamp()) * 1000)::bigint"
_LOCK_THREAD = "SELECT 1 FROM compat_records WHERE kind = 'thread' AND id = %s FOR UPDATE"
# Tx.status: the locks compat_get takes (the record's thread, then the record), in two
# statements sent together; the server picks the status out of the JSON text.
_LOCK_THREAD_OF = """
SELECT 1 FROM compat_records t WHERE t.kind = 'thread' AND t.id = (
    SELECT CASE WHEN r.kind = 'step' THEN (
        SELECT p.parent_id FROM compat_records p WHERE p.kind = 'run' AND p.id = r.parent_id
    ) ELSE r.parent_id END
    FROM compat_records r WHERE r.kind = %s AND r.id = %s
) FOR UPDATE
"""
# -> (not ->>): the status as JSON, which psycopg decodes (a number stays a number).
_LOCKING_STATUS = (
    "SELECT data::json -> 'status' FROM compat_records WHERE kind = %s AND id = %s FOR UPDATE"
)
_DEFAULT_TIMEOUT = 10.0
#: Pipeline mode needs libpq 14; with an older one every statement waits for its answer.
_PIPELINED = psycopg.Pipeline.is_supported()


class Utf8Text:
    """A ``text`` parameter given as its UTF-8 (``_utf8.dumps_utf8``), sent as it stands.

    psycopg would encode a ``str`` into a UTF-8 copy of its own, then copy that into the
    parameter's buffer; these bytes go to libpq as they are (``_Utf8Dumper``).
    """

    __slots__ = ("utf8",)

    def __init__(self, utf8: bytes | bytearray) -> None:
        self.utf8 = utf8


class _Utf8Dumper(Dumper):
    """Dumps ``Utf8Text`` as a ``text`` parameter in text format: its bytes, not copied."""

    oid = psycopg.adapters.types["text"].oid
    format = Format.TEXT

    def dump(self, obj: Utf8Text) -> bytes | bytearray:
        conn = self.connection
        if conn is not None and conn.info.encoding != "utf-8":  # a client_encoding set otherwise
            return obj.utf8.decode().encode(conn.info.encoding)
        return obj.utf8


#: Registered on psycopg's global map (copied by each connection made after it): the class is
#: compat's own, so no other user of psycopg in the process sees a change.
psycopg.adapters.register_dumper(Utf8Text, _Utf8Dumper)

#: JSON text as read (``str``) or as written (UTF-8).
_Text = str | bytes | bytearray


class _Row(NamedTuple):
    """A record ready to store: index fields pulled out, dicts as UTF-8 JSON."""

    kind: Kind
    id: str
    parent_id: str | None
    created_at: int
    data: Utf8Text
    meta: Utf8Text | None  # None keeps the stored meta


def _encode(kind: Kind, data: dict[str, Any], meta: dict[str, Any] | None) -> _Row:
    """Validate the index fields and serialise the record (a long text encoded once)."""
    rid, parent_id, created_at = index_fields(kind, data)
    stored_meta = None if meta is None else Utf8Text(dumps_utf8(meta))
    return _Row(kind, rid, parent_id, created_at, Utf8Text(dumps_utf8(data)), stored_meta)


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


def uri_timeout(uri: str) -> float:
    """The URI's libpq ``connect_timeout`` (seconds), else 10: how long a call waits for a
    connection before it fails."""
    with contextlib.suppress(psycopg.Error, ValueError):
        value = psycopg.conninfo.conninfo_to_dict(uri).get("connect_timeout")
        if value is not None and float(value) > 0:
            return float(value)
    return _DEFAULT_TIMEOUT


#: Every open store, so that a forked child can give each a fresh pool.
_open_stores: weakref.WeakSet[PostgresStore] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    for store in list(_open_stores):
        store._pool.after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class _PgTx:
    """A ``Tx`` on one connection inside a transaction; ``get`` locks what it reads.

    ``now_ms`` is the database's clock as the transaction's first read saw it (after that read's
    locks were granted), so it costs no round trip of its own.
    """

    def __init__(
        self, conn: psycopg.Connection[Any], store: PostgresStore, pipelined: bool
    ) -> None:
        self.conn = conn
        self.store = store
        self.pipelined = pipelined
        # (kind, id) -> the record's JSON texts as this transaction last read or wrote them
        self._known: dict[tuple[str, str], tuple[_Text, _Text]] = {}
        self._now: int | None = None

    def get(self, kind: Kind, id: str) -> Record | None:
        # compat_get locks the record's thread, then the record (see _pg_schema): the read,
        # the check and the write that follows are atomic, and a missing run's thread is held.
        check_kind(kind)
        known = self._known.get((kind, id))
        if known is not None:
            return decode(*known)
        cursor = self._send(_LOCKING_SELECT, (kind, id))
        clock = self._send(_CLOCK, ()) if self._now is None and self.pipelined else None
        self._wait()
        row = cursor.fetchone()
        if clock is not None:
            self._set_now(clock.fetchone())
        if row is None:
            return None
        self._known[(kind, id)] = (row[0], row[1])
        return decode(row[0], row[1])

    def status(self, kind: Kind, id: str) -> str | None:
        check_kind(kind)
        known = self._known.get((kind, id))
        if known is not None:
            return _status(decode(*known).data)
        if kind in ("message", "run", "step"):
            self._send(_LOCK_THREAD_OF, (kind, id))
        cursor = self._send(_LOCKING_STATUS, (kind, id))
        self._wait()
        row = cursor.fetchone()
        return row[0] if row is not None and isinstance(row[0], str) else None

    def put(self, kind: Kind, data: dict[str, Any], meta: dict[str, Any] | None = None) -> None:
        self._put(_encode(kind, data, meta))

    def _put(self, row: _Row) -> None:
        self._send(_UPSERT, row._asdict())
        key = (row.kind, row.id)
        if row.meta is not None:
            self._known[key] = (row.data.utf8, row.meta.utf8)
        elif key in self._known:
            self._known[key] = (row.data.utf8, self._known[key][1])

    def delete(self, kind: Kind, id: str) -> bool:
        check_kind(kind)
        send = self._send
        # Lock in the same order as get (thread first), then delete children before parents.
        if kind == "thread":
            send(_LOCK_THREAD, (id,))
            send(
                "DELETE FROM compat_records WHERE kind = 'step' AND parent_id IN "
                "(SELECT id FROM compat_records WHERE kind = 'run' AND parent_id = %s)",
                (id,),
            )
            send(
                "DELETE FROM compat_records WHERE kind IN ('message', 'run') AND parent_id = %s",
                (id,),
            )
        elif kind != "assistant":
            if self.get(kind, id) is None:
                return False
            if kind == "run":
                send("DELETE FROM compat_records WHERE kind = 'step' AND parent_id = %s", (id,))
        self._known.clear()  # what hung off the record went with it
        cursor = send(
            "DELETE FROM compat_records WHERE kind = %s AND id = %s RETURNING 1", (kind, id)
        )
        self._wait()
        return cursor.fetchone() is not None

    def children(self, kind: Kind, parent_id: str) -> list[Record]:
        check_kind(kind)
        cursor = self._send(
            "SELECT data, meta FROM compat_records WHERE kind = %s AND parent_id = %s "
            "ORDER BY created_at, seq",
            (kind, parent_id),
        )
        self._wait()
        return [decode(data, meta) for data, meta in cursor.fetchall()]

    def now_ms(self) -> int:
        if self._now is None:
            cursor = self._send(_CLOCK, ())
            self._wait()
            self._set_now(cursor.fetchone())
        assert self._now is not None
        return self._now

    def _set_now(self, row: Any) -> None:
        self._now = now = int(row[0])
        # Keeps the store-level clock's offset fresh at no extra cost (within a round trip).
        self.store._clock_offset = now - time.time_ns() // 1_000_000

    def _send(self, sql: str, args: Any) -> psycopg.Cursor[Any]:
        """Send one statement; pipelined, its answer is read when a fetch (or the end) needs it."""
        store = self.store
        store.statements += 1
        if not self.pipelined:
            store.round_trips += 1
        return self.conn.execute(sql, args)

    def _wait(self) -> None:
        """Count the round trip a fetch (or the pipeline's end) waits for."""
        if self.pipelined:
            self.store.round_trips += 1


class PostgresStore(TransitionMixin):
    """A `Store` in a PostgreSQL database, shared by processes on any number of hosts.

    Connections come from a small pool (``_pg_pool``: autocommit; transactions are explicit).
    The schema is created and migrated on open. A call waits up to ``timeout`` seconds (default:
    the URI's ``connect_timeout``, else 10) for a free connection, or for a new one to connect.

    For the benchmarks and tests: ``statements`` counts the statements sent, ``round_trips``
    the waits for the server's answer, and ``commits`` the write transactions (each waits for
    the server's WAL flush, unless the URI turns synchronous_commit off).
    """

    def __init__(
        self, uri: str, *, max_connections: int = 16, timeout: float | None = None
    ) -> None:
        self.uri = uri
        self.name = display_uri(uri)
        self._pool = ConnectionPool(
            uri,
            self.name,
            max_size=max_connections,
            timeout=uri_timeout(uri) if timeout is None else timeout,
        )
        self.statements = 0
        self.round_trips = 0
        self.commits = 0
        # One connection first: an unreachable server or a refused login is reported at once.
        with store_errors(self.name), self._pool.connect() as conn:
            _pg_schema.migrate(conn, self.name)
            local = time.time_ns() // 1_000_000
            (db,) = conn.execute(_CLOCK).fetchone() or (local,)
            self._clock_offset = int(db) - (local + time.time_ns() // 1_000_000) // 2
        _open_stores.add(self)

    def __repr__(self) -> str:
        return f"PostgresStore({self.name!r})"

    # -- the Store protocol ------------------------------------------------------------------

    def put(self, kind: Kind, data: dict[str, Any], meta: dict[str, Any] | None = None) -> None:
        self.put_many([(kind, data, meta)])

    def put_many(self, items: Sequence[tuple[Kind, dict[str, Any], dict[str, Any] | None]]) -> None:
        rows = [_encode(kind, data, meta) for kind, data, meta in items]
        if not rows:
            return
        if len(rows) == 1:
            self.commits += 1
            with self._connection() as conn:
                self._ask(conn, _UPSERT, rows[0]._asdict(), fetch=False)
            return
        with self.transaction() as tx:
            for row in rows:
                tx._put(row)

    def get(self, kind: Kind, id: str) -> Record | None:
        check_kind(kind)
        with self._connection() as conn:
            row = self._ask(conn, _SELECT, (kind, id))
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
            rows = self._ask(conn, sql, args, fetch="all")
        return win.page([text for (text,) in rows])

    def update(self, kind: Kind, id: str, fn: Callable[[Record], Record | None]) -> Record | None:
        check_kind(kind)
        with self.transaction() as tx:
            return apply_update(tx, kind, id, fn)

    @contextmanager
    def transaction(self) -> Iterator[_PgTx]:
        """One transaction, pipelined: BEGIN and writes travel with the next read, or COMMIT."""
        with self._connection() as conn:
            self.commits += 1
            committed = False
            try:
                with conn.pipeline() if _PIPELINED else contextlib.nullcontext():
                    tx = _PgTx(conn, self, _PIPELINED)
                    tx._send("BEGIN", None)
                    yield tx
                    tx._send("COMMIT", None)
                    tx._wait()  # the pipeline's end waits for every answer
                committed = True
            finally:
                if not committed:
                    _roll_back(conn)

    def now_ms(self) -> int:
        """The database's clock, from the offset last measured (at open, and by ``Tx.now_ms``)."""
        return time.time_ns() // 1_000_000 + self._clock_offset

    def close(self) -> None:
        self._pool.close()

    # -- statements ----------------------------------------------------------------------------

    def _ask(
        self, conn: psycopg.Connection[Any], sql: str, args: Any, *, fetch: bool | str = True
    ) -> Any:
        """One statement, no transaction: its first row (`fetch=True`), all ("all"), or None."""
        self.statements += 1
        self.round_trips += 1
        cursor = conn.execute(sql, args)
        if fetch == "all":
            return cursor.fetchall()
        return cursor.fetchone() if fetch else None

    # -- connections ---------------------------------------------------------------------------

    @contextmanager
    def _connection(self) -> Iterator[psycopg.Connection[Any]]:
        """A live pooled connection; what psycopg raises comes out as StoreError."""
        with store_errors(self.name), self._pool.connection() as conn:
            yield conn


def _status(data: dict[str, Any]) -> str | None:
    status = data.get("status")
    return status if isinstance(status, str) else None


def _roll_back(conn: psycopg.Connection[Any]) -> None:
    """End a failed transaction; a broken connection is left for the pool to discard."""
    if conn.info.transaction_status in (TransactionStatus.INTRANS, TransactionStatus.INERROR):
        with contextlib.suppress(psycopg.Error):
            conn.execute("ROLLBACK")
