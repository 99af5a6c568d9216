"""SQLite store: the durable default, safe for many threads and several processes on one host."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

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

__all__ = ["MIGRATIONS", "SQLiteStore", "lock_times", "time_locks"]

_T = TypeVar("_T")


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

# A re-put keeps its seq (and so its place in lists); meta NULL keeps the stored meta.
# seq = MAX + 1 may reuse the seq of a just-deleted newest record, which still sorts after
# every live record, so list order stays insertion order.
_UPSERT = """
INSERT INTO records (kind, id, parent_id, created_at, seq, data, meta)
VALUES (:kind, :id, :parent_id, :created_at,
        (SELECT COALESCE(MAX(seq), 0) + 1 FROM records), :data, COALESCE(:meta, '{}'))
ON CONFLICT (kind, id) DO UPDATE SET
    parent_id = excluded.parent_id,
    created_at = excluded.created_at,
    data = excluded.data,
    meta = COALESCE(:meta, records.meta)
"""

_SELECT = "SELECT data, meta FROM records WHERE kind = ? AND id = ?"

# SQLITE_BUSY and SQLITE_LOCKED (and their extended codes) all read like this.
_BUSY_MESSAGES = ("database is locked", "database table is locked", "database is busy")


#: Write-lock timing, off unless asked for (benchmarks/concurrency.py): while it is None a
#: transaction pays one global read. Each entry is (wait, hold) in seconds: wait from asking
#: for the write lock to holding SQLite's (this process's lock, then SQLite's busy handler),
#: hold from there to the end of COMMIT or ROLLBACK.
_lock_times: list[tuple[float, float]] | None = (
    [] if os.environ.get("COMPAT_SQLITE_TIMING") else None
)


def time_locks(on: bool = True) -> None:
    """Start (afresh) or stop recording write-lock times in this process.

    ``COMPAT_SQLITE_TIMING=1`` in the environment starts it at import, e.g. in child processes.
    """
    global _lock_times
    _lock_times = [] if on else None


def lock_times() -> list[tuple[float, float]]:
    """The (wait, hold) seconds of each write transaction since recording started."""
    return list(_lock_times or [])


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _create_private(path: Path) -> None:
    """Create the database file readable by its owner only; SQLite gives -wal/-shm its mode."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StoreError(f"{path}: cannot open the store file: {exc}") from exc
    os.close(fd)


#: Every open store, so that a forked child can give each a fresh connection pool.
_open_stores: weakref.WeakSet[SQLiteStore] = weakref.WeakSet()
#: Connections a forked child inherited: kept alive, never used or closed (see _after_fork).
_inherited: list[sqlite3.Connection] = []


def _after_fork_in_child() -> None:
    for store in list(_open_stores):
        store._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class _SQLiteTx:
    """A ``Tx`` on one connection inside ``BEGIN IMMEDIATE`` (the file's write lock is held)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def get(self, kind: Kind, id: str) -> Record | None:
        check_kind(kind)
        row = self.conn.execute(_SELECT, (kind, id)).fetchone()
        return None if row is None else decode(row[0], row[1])

    def put(self, kind: Kind, data: dict[str, Any], meta: dict[str, Any] | None = None) -> None:
        self.conn.execute(_UPSERT, encode(kind, data, meta)._asdict())

    def delete(self, kind: Kind, id: str) -> bool:
        check_kind(kind)
        conn = self.conn
        if kind == "thread":
            conn.execute(
                "DELETE FROM records WHERE kind = 'step' AND parent_id IN "
                "(SELECT id FROM records WHERE kind = 'run' AND parent_id = ?)",
                (id,),
            )
            conn.execute(
                "DELETE FROM records WHERE kind IN ('message', 'run') AND parent_id = ?", (id,)
            )
        elif kind == "run":
            conn.execute("DELETE FROM records WHERE kind = 'step' AND parent_id = ?", (id,))
        cursor = conn.execute("DELETE FROM records WHERE kind = ? AND id = ?", (kind, id))
        return cursor.rowcount > 0

    def children(self, kind: Kind, parent_id: str) -> list[Record]:
        check_kind(kind)
        rows = self.conn.execute(
            "SELECT data, meta FROM records WHERE kind = ? AND parent_id = ? "
            "ORDER BY created_at, seq",
            (kind, parent_id),
        )
        return [decode(data, meta) for data, meta in rows]

    def now_ms(self) -> int:
        return _now_ms()


class SQLiteStore(TransitionMixin):
    """A `Store` in one SQLite file (WAL journal, synchronous=NORMAL).

    Connections come from a small pool, so each is used by one thread at a time and threads
    that come and go do not leak them. Writes in this process queue on a lock before taking
    SQLite's write lock with `BEGIN IMMEDIATE`, which keeps the 32-threads-at-once case off
    SQLite's sleep-and-poll busy handler; other processes wait on that handler (`busy_timeout`).
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 10.0) -> None:
        if os.fspath(path) == ":memory:":
            raise ValueError("':memory:' would give each connection its own database; use 'memory'")
        self.path = Path(path)
        self._busy_timeout = busy_timeout
        self._pool_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._idle: list[sqlite3.Connection] = []
        self._closed = False
        _create_private(self.path)
        _open_stores.add(self)
        try:
            with self._connection() as conn:
                # The journal mode is stored in the file; setting it once per open is enough.
                self._retry_busy(lambda: conn.execute("PRAGMA journal_mode=WAL").fetchall())
            self._migrate()
        except BaseException:
            self.close()
            raise

    def __repr__(self) -> str:
        return f"SQLiteStore({str(self.path)!r})"

    # -- the Store protocol ------------------------------------------------------------------

    def put(self, kind: Kind, data: dict[str, Any], meta: dict[str, Any] | None = None) -> None:
        self.put_many([(kind, data, meta)])

    def put_many(self, items: Sequence[tuple[Kind, dict[str, Any], dict[str, Any] | None]]) -> None:
        # Serialise before taking the lock: a bad item fails early and the lock is held briefly.
        rows = [encode(kind, data, meta)._asdict() for kind, data, meta in items]
        if not rows:
            return
        with self._transaction() as conn:
            conn.executemany(_UPSERT, rows)

    def get(self, kind: Kind, id: str) -> Record | None:
        check_kind(kind)
        with self._connection() as conn:
            row = conn.execute(_SELECT, (kind, id)).fetchone()
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
        scope = "kind = ?"
        scope_args: tuple[Any, ...] = (kind,)
        if parent_id is not None and kind in PARENT_FIELD:
            scope += " AND parent_id = ?"
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
                f"(SELECT created_at, seq FROM records WHERE {scope} AND id = ?)"
            )
            args += [*scope_args, cursor]
        direction = "DESC" if win.reads_descending else "ASC"
        sql = (
            f"SELECT data FROM records WHERE {' AND '.join(where)} "
            f"ORDER BY created_at {direction}, seq {direction} LIMIT ?"
        )
        args.append(win.limit + 1)
        with self._connection() as conn:
            texts = [text for (text,) in conn.execute(sql, args)]
        return win.page(texts)

    def update(self, kind: Kind, id: str, fn: Callable[[Record], Record | None]) -> Record | None:
        check_kind(kind)
        with self.transaction() as tx:
            return apply_update(tx, kind, id, fn)

    @contextmanager
    def transaction(self) -> Iterator[_SQLiteTx]:
        with self._transaction() as conn:
            yield _SQLiteTx(conn)

    def close(self) -> None:
        with self._pool_lock:
            self._closed = True
            idle, self._idle = self._idle, []
        # Connections in use right now are closed by _release when their call finishes.
        for conn in idle:
            conn.close()

    # -- connections and transactions --------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions; every BEGIN here is explicit.
        # check_same_thread=False: the pool hands a connection to one thread at a time.
        conn = sqlite3.connect(
            self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute("PRAGMA synchronous=NORMAL")
        except BaseException:
            conn.close()
            raise
        return conn

    def _acquire(self) -> sqlite3.Connection:
        with self._pool_lock:
            if self._closed:
                raise StoreError(f"{self!r} is closed")
            if self._idle:
                return self._idle.pop()
        return self._connect()

    def _release(self, conn: sqlite3.Connection) -> None:
        with self._pool_lock:
            # A connection left inside a transaction (a failed ROLLBACK) is not reused.
            if not self._closed and not conn.in_transaction:
                self._idle.append(conn)
                return
        conn.close()

    @contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        """A pooled connection; sqlite3 errors come out as StoreError."""
        try:
            conn = self._acquire()
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from exc
        try:
            yield conn
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from exc
        finally:
            self._release(conn)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction holding both this process's write lock and SQLite's."""
        times = _lock_times
        asked = time.monotonic() if times is not None else 0.0
        with self._write_lock, self._connection() as conn:
            self._retry_busy(lambda: conn.execute("BEGIN IMMEDIATE"))
            held = time.monotonic() if times is not None else 0.0
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
            finally:
                if times is not None:
                    times.append((held - asked, time.monotonic() - held))

    def _retry_busy(self, op: Callable[[], _T]) -> _T:
        """Run `op`, retrying with backoff while SQLite reports the database busy.

        The busy_timeout handler covers most waits; this covers the few places SQLite returns
        SQLITE_BUSY without consulting it (e.g. two processes setting up a new file at once).
        """
        deadline = time.monotonic() + self._busy_timeout
        delay = 0.001
        while True:
            try:
                return op()
            except sqlite3.OperationalError as exc:
                if not any(m in str(exc) for m in _BUSY_MESSAGES):
                    raise
                if time.monotonic() >= deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def _after_fork_in_child(self) -> None:
        """A forked child must not use its parent's connections: start a fresh pool.

        The inherited connections are kept referenced, never closed: closing one in the child
        could checkpoint or remove the WAL the parent is still using.
        """
        self._pool_lock = threading.Lock()
        self._write_lock = threading.Lock()
        _inherited.extend(self._idle)
        self._idle = []

    def _migrate(self) -> None:
        """Run the migrations this file has not seen; BEGIN IMMEDIATE makes racing opens queue."""
        with self._transaction() as conn:
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations "
                "(name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)"
            )
            done = {name for (name,) in conn.execute("SELECT name FROM schema_migrations")}
            unknown = done - {migration.__name__ for migration in MIGRATIONS}
            if unknown:
                raise StoreError(
                    f"{self.path} was written by a newer compat (schema migrations "
                    f"{', '.join(sorted(unknown))} are unknown to this one): upgrade compat, "
                    "or point COMPAT_STORE at another file"
                )
            for migration in MIGRATIONS:
                if migration.__name__ not in done:
                    migration(conn)
                    conn.execute(
                        "INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)",
                        (migration.__name__, _now_ms()),
                    )
