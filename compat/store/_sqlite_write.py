"""The SQLite store's write side: the write connection and the transactions (``Tx``) on it.

The write connection is a ``DirectConnection`` (SQLite called without releasing the GIL, see
``_sqlite_direct``) or, where that is not available, a ``sqlite3`` module connection. Both
answer the same few calls; ``begin`` takes SQLite's write lock, polling while another
connection (another process) holds it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol

from ._utf8 import dumps_utf8
from .base import Kind, Record, check_kind, decode, dumps, index_fields

__all__ = [
    "BUSY_MESSAGES",
    "SELECT",
    "UPSERT",
    "ModuleWriter",
    "Params",
    "SQLiteTx",
    "Writer",
    "begin",
    "upsert_params",
]

#: Text is a ``str``, or its UTF-8 (for a writer whose ``utf8`` is true).
Params = Sequence[str | bytes | bytearray | int | None]

# A re-put keeps its seq (and so its place in lists); meta NULL keeps the stored meta.
# seq = MAX + 1 may reuse the seq of a just-deleted newest record, which still sorts after
# every live record, so list order stays insertion order. Parameters: kind, id, parent_id,
# created_at, data, meta, meta (see upsert_params).
UPSERT = """
INSERT INTO records (kind, id, parent_id, created_at, seq, data, meta)
VALUES (?, ?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM records), ?, COALESCE(?, '{}'))
ON CONFLICT (kind, id) DO UPDATE SET
    parent_id = excluded.parent_id,
    created_at = excluded.created_at,
    data = excluded.data,
    meta = COALESCE(?, records.meta)
"""

SELECT = "SELECT data, meta FROM records WHERE kind = ? AND id = ?"
# The record's status, picked out by SQLite (the JSON text never reaches Python).
SELECT_STATUS = "SELECT json_extract(data, '$.status') FROM records WHERE kind = ? AND id = ?"

# SQLITE_BUSY and SQLITE_LOCKED (and their extended codes) all read like this.
BUSY_MESSAGES = ("database is locked", "database table is locked", "database is busy")

#: How long a writer sleeps between tries while another process holds SQLite's write lock:
#: the first sleep, doubled after each try, up to the last.
POLL_FIRST, POLL_MAX = 0.0001, 0.001


def upsert_params(
    kind: Kind, data: dict[str, Any], meta: dict[str, Any] | None, utf8: bool = False
) -> Params:
    """UPSERT's parameters for one record (validated and serialised here).

    ``utf8``: the JSON as UTF-8 (``_utf8.dumps_utf8``: a long text is encoded once, straight
    into the parameter), for a writer that binds it as it stands.
    """
    rid, parent_id, created_at = index_fields(kind, data)
    dump: Callable[[dict[str, Any]], str | bytes | bytearray] = dumps_utf8 if utf8 else dumps
    stored_meta = None if meta is None else dump(meta)
    return (kind, rid, parent_id, created_at, dump(data), stored_meta, stored_meta)


class Writer(Protocol):
    """The store's write connection: a ``DirectConnection``, or ``ModuleWriter``.

    ``utf8``: it binds text given as UTF-8 (``bytes``/``bytearray``) as text, where it stands.
    """

    utf8: bool

    @property
    def wal_frames(self) -> int: ...

    def query(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]: ...

    def run(self, sql: str, params: Params = ()) -> int: ...

    def execute(self, sql: str) -> None: ...

    def try_begin(self) -> bool: ...

    @property
    def in_transaction(self) -> bool: ...

    def close(self) -> None: ...


class ModuleWriter:
    """The write connection through the ``sqlite3`` module (where ``DirectConnection`` is not)."""

    wal_frames = 0  # SQLite checkpoints on its own here (autocheckpoint)
    utf8 = False  # the sqlite3 module binds bytes as a BLOB

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn  # opened with timeout=0: ``begin`` does the waiting

    def query(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        return self.conn.execute(sql, params).fetchall()

    def run(self, sql: str, params: Params = ()) -> int:
        return self.conn.execute(sql, params).rowcount

    def execute(self, sql: str) -> None:
        self.conn.execute(sql)

    def try_begin(self) -> bool:
        try:
            self.conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if any(m in str(exc) for m in BUSY_MESSAGES):
                return False
            raise
        return True

    @property
    def in_transaction(self) -> bool:
        return self.conn.in_transaction

    def close(self) -> None:
        self.conn.close()


class SQLiteTx:
    """A ``Tx`` on the write connection inside ``BEGIN IMMEDIATE`` (the file's write lock held)."""

    def __init__(self, writer: Writer) -> None:
        self.writer = writer

    def get(self, kind: Kind, id: str) -> Record | None:
        check_kind(kind)
        rows = self.writer.query(SELECT, (kind, id))
        return decode(rows[0][0], rows[0][1]) if rows else None

    def status(self, kind: Kind, id: str) -> str | None:
        check_kind(kind)
        rows = self.writer.query(SELECT_STATUS, (kind, id))
        status = rows[0][0] if rows else None
        return status if isinstance(status, str) else None

    def put(self, kind: Kind, data: dict[str, Any], meta: dict[str, Any] | None = None) -> None:
        writer = self.writer
        writer.run(UPSERT, upsert_params(kind, data, meta, writer.utf8))

    def delete(self, kind: Kind, id: str) -> bool:
        check_kind(kind)
        run = self.writer.run
        if kind == "thread":
            run(
                "DELETE FROM records WHERE kind = 'step' AND parent_id IN "
                "(SELECT id FROM records WHERE kind = 'run' AND parent_id = ?)",
                (id,),
            )
            run("DELETE FROM records WHERE kind IN ('message', 'run') AND parent_id = ?", (id,))
        elif kind == "run":
            run("DELETE FROM records WHERE kind = 'step' AND parent_id = ?", (id,))
        return run("DELETE FROM records WHERE kind = ? AND id = ?", (kind, id)) > 0

    def children(self, kind: Kind, parent_id: str) -> list[Record]:
        check_kind(kind)
        rows = self.writer.query(
            "SELECT data, meta FROM records WHERE kind = ? AND parent_id = ? "
            "ORDER BY created_at, seq",
            (kind, parent_id),
        )
        return [decode(data, meta) for data, meta in rows]

    def now_ms(self) -> int:
        return time.time_ns() // 1_000_000


def begin(writer: Writer, timeout: float) -> None:
    """``BEGIN IMMEDIATE`` on ``writer``, trying again while another connection holds the lock.

    Only another process (or another program) can hold it here: this process's writers take
    turns on the store's turnstile first. A try never waits, so the lock is only ever taken by
    a running thread; between tries the thread sleeps briefly (``POLL_FIRST`` doubling up to
    ``POLL_MAX``), unlike SQLite's busy handler, whose sleeps grow to 100 ms. A writer that
    has not had the lock after ``timeout`` seconds gives up: "database is locked".
    """
    if writer.try_begin():
        return
    deadline = time.monotonic() + timeout
    delay = POLL_FIRST
    while True:
        time.sleep(delay)
        if writer.try_begin():
            return
        if time.monotonic() >= deadline:
            raise sqlite3.OperationalError("database is locked")
        delay = min(delay * 2, POLL_MAX)
