"""The PostgreSQL store's connections: a small pool that hands out live connections only.

It has no threads of its own. A connection is opened when a call needs one and none is idle, so
an unreachable server fails that call at once with libpq's reason, and the first call after the
server is back connects again (no reconnection schedule to wait for). An idle connection the
server has closed (a restart, a terminated session, an idle timeout) is noticed before it is
handed out, without a round trip, and replaced.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import select
import threading
import weakref
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg.pq import TransactionStatus

from .base import StoreError

__all__ = ["ConnectionPool"]

Connection = psycopg.Connection[Any]

#: What forked children inherited: kept referenced, never used (see after_fork_in_child).
_inherited: list[Any] = []
#: Every pool, so that connections idle at interpreter exit are closed, not left to the GC.
_pools: weakref.WeakSet[ConnectionPool] = weakref.WeakSet()


def _close_idle_connections() -> None:
    # The pools stay open: a later atexit handler may still use compat (it reconnects).
    for pool in list(_pools):
        pool.close_idle()


atexit.register(_close_idle_connections)


class ConnectionPool:
    """Up to ``max_size`` autocommit connections to ``uri``; safe to use from many threads."""

    def __init__(self, uri: str, name: str, *, max_size: int, timeout: float) -> None:
        self.uri = uri
        self.name = name
        self.max_size = max_size
        #: how long a call waits for a free connection, and for a new one to connect
        self.timeout = timeout
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(max_size)
        self._idle: list[Connection] = []
        self._opened: weakref.WeakSet[Connection] = weakref.WeakSet()
        self._closed = False
        _pools.add(self)

    def connect(self) -> Connection:
        """A new connection, not counted in the pool (the store's first, and the pool's own)."""
        conn = psycopg.connect(self.uri, autocommit=True, connect_timeout=max(2, int(self.timeout)))
        self._opened.add(conn)
        return conn

    @contextlib.contextmanager
    def connection(self) -> Iterator[Connection]:
        """A live connection for the block, given back (or, if unusable, closed) afterwards."""
        if not self._slots.acquire(timeout=self.timeout):
            raise StoreError(
                f"{self.name}: no free connection within {self.timeout:g}s "
                f"(all {self.max_size} are in use)"
            )
        try:
            conn = self._take()
            try:
                yield conn
            finally:
                self._give_back(conn)
        finally:
            self._slots.release()

    def close(self) -> None:
        """Close the idle connections; those in use are closed when given back."""
        with self._lock:
            self._closed = True
        self.close_idle()

    def close_idle(self) -> None:
        """Close the connections nobody uses now (the pool opens new ones as calls need them)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            _discard(conn)

    def _take(self) -> Connection:
        while True:
            with self._lock:
                if self._closed:
                    raise StoreError(f"{self.name}: the store is closed")
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return self.connect()
            if _alive(conn):
                return conn
            _discard(conn)

    def _give_back(self, conn: Connection) -> None:
        # A connection left inside a transaction (a failed ROLLBACK) or broken is not reused.
        if not conn.closed and conn.info.transaction_status == TransactionStatus.IDLE:
            with self._lock:
                if not self._closed:
                    self._idle.append(conn)
                    return
        _discard(conn)

    def after_fork_in_child(self) -> None:
        """A forked child must not use its parent's connections: it starts with none.

        The child's copies of the parent's sockets are pointed at /dev/null rather than closed:
        libpq's goodbye on a socket shared with the parent would end the parent's session.
        (psycopg's finaliser already skips it in a forked child; this also covers an explicit
        close.) The connections are kept referenced so that nothing finalises them in the child.
        """
        self._lock = threading.Lock()
        self._slots = threading.BoundedSemaphore(self.max_size)
        devnull = os.open(os.devnull, os.O_RDWR)
        try:
            for conn in list(self._opened):
                # A closed or broken connection has no socket (its fd may be reused): skip it.
                with contextlib.suppress(psycopg.Error, OSError):
                    if not conn.closed:
                        os.dup2(devnull, conn.fileno())
        finally:
            os.close(devnull)
        _inherited.append(list(self._opened))
        self._idle = []
        self._opened = weakref.WeakSet()


def _alive(conn: Connection) -> bool:
    """Whether an idle connection is still open at the server's end.

    An idle session is sent nothing; a readable socket means the server closed it, its goodbye
    waiting to be read. Costs one ``select``, no round trip.
    """
    if conn.closed or conn.broken:
        return False
    try:
        readable, _, _ = select.select([conn.fileno()], [], [], 0)
    except (OSError, ValueError, psycopg.Error):
        return False
    return not readable


def _discard(conn: Connection) -> None:
    with contextlib.suppress(Exception):
        conn.close()
