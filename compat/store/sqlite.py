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

from compat._exit import on_exit

from . import _sqlite_direct
from ._sqlite_lock import Turnstile
from ._sqlite_schema import MIGRATIONS, apply_migrations
from ._sqlite_write import (
    BUSY_MESSAGES,
    SELECT,
    UPSERT,
    ModuleWriter,
    SQLiteTx,
    Writer,
    begin,
    upsert_params,
)
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
    store_errors,
    window,
)

__all__ = ["MIGRATIONS", "SQLiteStore", "lock_times", "time_locks"]

_T = TypeVar("_T")


#: Frames the WAL may grow by before a commit is followed by a checkpoint (SQLite's default
#: autocheckpoint threshold; the direct writer checkpoints itself, outside the locks).
_CHECKPOINT_FRAMES = 1000

#: The write connection's page cache in KiB (SQLite's default: 2000). Plenty for the pages a
#: write transaction touches; a long row's overflow pages (a finished 1.5 MiB answer: ~330)
#: are written out to the WAL as they fill it, rather than all kept in memory beside the row's
#: own copies (at most this much of them stays cached after the commit).
_WRITER_CACHE_KIB = 1024

#: Write-lock timing, off unless asked for (benchmarks/concurrency.py): while it is None a
#: transaction pays one global read. Each entry is (wait, hold) in seconds: wait from asking
#: for the write lock to holding SQLite's (this process's turnstile, then the tries and sleeps
#: while another process holds SQLite's lock), hold from there to the end of COMMIT or ROLLBACK.
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


def _create_private(path: Path) -> None:
    """Create the database file readable by its owner only; SQLite gives -wal/-shm its mode."""
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise StoreError(f"{path}: cannot open the store file: {exc}") from exc
    os.close(fd)


#: Every open store, so that a forked child can give each fresh connections.
_open_stores: weakref.WeakSet[SQLiteStore] = weakref.WeakSet()
#: Connections a forked child inherited: kept alive, never used or closed (see _after_fork).
_inherited: list[object] = []


def _after_fork_in_child() -> None:
    for store in list(_open_stores):
        store._after_fork_in_child()


def _close_at_exit() -> None:
    """Close the connections no thread is using, readers then writer: the last one out folds
    the WAL into the file. Called after every other exit hook (``on_exit(last=True)``), so
    after the non-streamed runs finished at exit made their last writes."""
    for store in list(_open_stores):
        store._close_at_exit()


on_exit(_close_at_exit, last=True)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class SQLiteStore(TransitionMixin):
    """A `Store` in one SQLite file (WAL journal, synchronous=NORMAL).

    Reads use a small pool of connections, so each is used by one thread at a time and threads
    that come and go do not leak them. Writes go through one write connection per process, one
    transaction at a time: a thread takes this process's turnstile, then SQLite's write lock
    (``BEGIN IMMEDIATE``, tried again after short sleeps while another process holds it). The
    write connection calls SQLite without releasing the GIL where it can (``_sqlite_direct``),
    so that no thread holds the write lock while it waits for the GIL. ``direct=False`` (or
    ``COMPAT_SQLITE_DIRECT=0``) writes through the ``sqlite3`` module instead.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        busy_timeout: float = 10.0,
        direct: bool | None = None,
    ) -> None:
        if os.fspath(path) == ":memory:":
            raise ValueError("':memory:' would give each connection its own database; use 'memory'")
        self.path = Path(path)
        self._busy_timeout = busy_timeout
        if direct is None:
            direct = os.environ.get("COMPAT_SQLITE_DIRECT", "1") != "0"
        self._direct = _sqlite_direct.load() if direct else None
        self._pool_lock = threading.Lock()
        self._write_lock = Turnstile()
        self._writer: Writer | None = None
        self._next_checkpoint = _CHECKPOINT_FRAMES
        self._checkpointing = False
        #: the thread holding a write transaction for a whole call (``held_at_once``)
        self._holder: int | None = None
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

    @property
    def direct(self) -> bool:
        """Whether writes call SQLite without releasing the GIL (see the class docstring)."""
        return self._direct is not None

    # -- the Store protocol ------------------------------------------------------------------

    def put(self, kind: Kind, data: dict[str, Any], meta: dict[str, Any] | None = None) -> None:
        self.put_many([(kind, data, meta)])

    def put_many(self, items: Sequence[tuple[Kind, dict[str, Any], dict[str, Any] | None]]) -> None:
        # Serialise before taking the lock: a bad item fails early and the lock is held briefly.
        utf8 = self._direct is not None
        rows = [upsert_params(kind, data, meta, utf8) for kind, data, meta in items]
        if not rows:
            return
        with self._transaction() as writer:
            for row in rows:
                writer.run(UPSERT, row)

    def get(self, kind: Kind, id: str) -> Record | None:
        check_kind(kind)
        if self._holder == threading.get_ident():
            with store_errors(str(self.path)):
                return SQLiteTx(self._held_writer()).get(kind, id)
        with self._connection() as conn:
            row = conn.execute(SELECT, (kind, id)).fetchone()
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
        if self._holder == threading.get_ident():
            with store_errors(str(self.path)):
                rows = self._held_writer().query(sql, args)
            return win.page([text for (text,) in rows])
        with self._connection() as conn:
            texts = [text for (text,) in conn.execute(sql, args)]
        return win.page(texts)

    def update(self, kind: Kind, id: str, fn: Callable[[Record], Record | None]) -> Record | None:
        check_kind(kind)
        with self.transaction() as tx:
            return apply_update(tx, kind, id, fn)

    @contextmanager
    def transaction(self) -> Iterator[SQLiteTx]:
        with self._transaction() as writer:
            yield SQLiteTx(writer)

    def close(self) -> None:
        with self._pool_lock:
            self._closed = True
            idle, self._idle = self._idle, []
        # Connections in use right now are closed by _release when their call finishes, the
        # write connection by the transaction in progress, if there is one.
        for conn in idle:
            conn.close()
        if self._write_lock.acquire(blocking=False):
            try:
                self._close_writer()
            finally:
                self._write_lock.release()

    # -- reads: pooled connections -----------------------------------------------------------

    def _connect(self, timeout: float | None = None) -> sqlite3.Connection:
        # isolation_level=None: no implicit transactions; every BEGIN here is explicit.
        # check_same_thread=False: the pool hands a connection to one thread at a time.
        conn = sqlite3.connect(
            self.path,
            timeout=self._busy_timeout if timeout is None else timeout,
            isolation_level=None,
            check_same_thread=False,
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
        with store_errors(str(self.path)):
            conn = self._acquire()
        try:
            with store_errors(str(self.path)):
                yield conn
        finally:
            self._release(conn)

    # -- writes: one connection, one transaction at a time -------------------------------------

    @contextmanager
    def _locked(self) -> Iterator[None]:
        """This process's turnstile (the write connection is used under it)."""
        self._write_lock.acquire()
        try:
            yield
        finally:
            self._write_lock.release()
            if self._closed:
                self._close_writer_if_free()

    @contextmanager
    def held_at_once(self, defer: Callable[[Callable[[], None]], object]) -> Iterator[bool]:
        """The write lock for this thread's calls inside, if it can be had without waiting.

        Yields False (and holds nothing) unless this process's turnstile and SQLite's write
        lock were both free, the write connection open and direct (``_sqlite_direct``: no
        checkpoint inside COMMIT). Yields True holding both: each transaction inside is a
        savepoint of the held one and reads go through the write connection (they see the
        writes before them), so nothing inside waits for a lock. One COMMIT at the end
        commits what separate transactions would have. A checkpoint the WAL's growth calls
        for goes to ``defer`` (to run elsewhere), never here.
        """
        if self._direct is None or not self._write_lock.acquire(blocking=False):
            yield False
            return
        try:
            writer = self._writer
            try:  # an error here is left to the call's own try, in the pool
                begun = writer is not None and not self._closed and writer.try_begin()
            except sqlite3.Error:
                begun = False
            if not begun or writer is None:
                yield False
                return
            self._holder = threading.get_ident()
            try:
                yield True
            finally:
                self._holder = None
                with store_errors(str(self.path)):
                    try:
                        writer.execute("COMMIT")
                    except BaseException:
                        if writer.in_transaction:
                            self._rollback(writer)
                        raise
        finally:
            self._write_lock.release()
            if self._closed:
                self._close_writer_if_free()
        frames = writer.wal_frames
        if frames >= self._next_checkpoint and not self._checkpointing:
            defer(lambda: self._after_commit(frames))

    def _held_writer(self) -> Writer:
        assert self._writer is not None  # held_at_once holds it open
        return self._writer

    @contextmanager
    def _savepoint(self) -> Iterator[Writer]:
        """A transaction inside the one ``held_at_once`` holds: a savepoint."""
        writer = self._held_writer()
        with store_errors(str(self.path)):
            writer.execute("SAVEPOINT compat_call")
            try:
                yield writer
            except BaseException:
                writer.execute("ROLLBACK TO compat_call")
                writer.execute("RELEASE compat_call")
                raise
            writer.execute("RELEASE compat_call")

    @contextmanager
    def _transaction(self) -> Iterator[Writer]:
        """A write transaction on the write connection: the turnstile, then SQLite's write lock."""
        if self._holder == threading.get_ident():
            with self._savepoint() as inside:
                yield inside
            return
        times = _lock_times
        asked = time.monotonic() if times is not None else 0.0
        writer: Writer | None = None
        with store_errors(str(self.path)), self._locked():
            writer = self._open_writer()
            begin(writer, self._busy_timeout)
            held = time.monotonic() if times is not None else 0.0
            try:
                yield writer
                writer.execute("COMMIT")
            except BaseException:
                if writer.in_transaction:
                    self._rollback(writer)
                raise
            finally:
                if times is not None:
                    times.append((held - asked, time.monotonic() - held))
        if writer is not None and writer.wal_frames:
            self._after_commit(writer.wal_frames)

    def _open_writer(self) -> Writer:
        """The write connection, opened on first use (under the turnstile)."""
        if self._closed:
            raise StoreError(f"{self!r} is closed")
        writer = self._writer
        if writer is None:
            if self._direct is not None:
                writer = _sqlite_direct.DirectConnection(self._direct, str(self.path))
            else:
                writer = ModuleWriter(self._connect(timeout=0.0))
            try:
                writer.execute(f"PRAGMA cache_size=-{_WRITER_CACHE_KIB}")
            except BaseException:
                writer.close()
                raise
            self._writer = writer
        return writer

    def _rollback(self, writer: Writer) -> None:
        try:
            writer.execute("ROLLBACK")
        except sqlite3.Error:
            # Left inside a transaction: never reused (the next write opens a new one).
            self._writer = None
            writer.close()
            raise

    def _close_writer(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()

    def _close_at_exit(self) -> None:
        with self._pool_lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()
        self._close_writer_if_free()

    def _close_writer_if_free(self) -> None:
        if self._write_lock.acquire(blocking=False):
            try:
                self._close_writer()
            finally:
                self._write_lock.release()

    def _after_commit(self, frames: int) -> None:
        """Checkpoint the WAL from a reading connection once it grew by ``_CHECKPOINT_FRAMES``.

        The direct writer does not checkpoint inside COMMIT, which would keep the GIL through
        the file's fsync; this runs outside the write lock, and a PASSIVE checkpoint never
        blocks writers or readers. ``frames`` is the WAL's length after the commit.
        """
        if frames < self._next_checkpoint - _CHECKPOINT_FRAMES:
            self._next_checkpoint = _CHECKPOINT_FRAMES  # the WAL started over
        if frames < self._next_checkpoint or self._checkpointing:
            return
        self._checkpointing = True
        self._next_checkpoint = frames + _CHECKPOINT_FRAMES
        try:
            with self._connection() as conn:
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except StoreError:
            pass  # the next commit over the threshold tries again
        finally:
            self._checkpointing = False

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
                if not any(m in str(exc) for m in BUSY_MESSAGES):
                    raise
                if time.monotonic() >= deadline:
                    raise
            time.sleep(delay)
            delay = min(delay * 2, 0.1)

    def _after_fork_in_child(self) -> None:
        """A forked child must not use its parent's connections or locks: start afresh.

        The inherited connections are kept referenced, never closed: closing one in the child
        could checkpoint or remove the WAL the parent is still using.
        """
        self._pool_lock = threading.Lock()
        self._write_lock = Turnstile()
        _inherited.extend(self._idle)
        self._idle = []
        if self._writer is not None:
            _inherited.append(self._writer)
            self._writer = None
        self._checkpointing = False
        self._holder = None

    def _migrate(self) -> None:
        """Run the migrations this file has not seen; BEGIN IMMEDIATE makes racing opens queue."""
        with self._locked(), self._connection() as conn:
            self._retry_busy(lambda: conn.execute("BEGIN IMMEDIATE"))
            try:
                apply_migrations(conn, self.path)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
