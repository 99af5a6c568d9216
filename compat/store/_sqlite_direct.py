"""SQLite calls that keep the GIL: the SQLite store's write connection, bound with ctypes.

The ``sqlite3`` module releases the GIL around every step of every statement. A reader wants
that; a writer holding the store's write lock does not: after each step it must win the GIL
back, and while other threads are busy (32 streams being parsed) that takes one turn of the
GIL, often tens of milliseconds, during which the lock stays held and every other writer
queues, and each woken writer waits for its own turn again (measured with 32 streams: holds of
0.4 ms, waits of 250 ms at p95). Called through ``ctypes.PyDLL`` the same SQLite keeps the GIL
for each call, so a write transaction runs from BEGIN to COMMIT without another thread of the
process running in the middle, as the memory store's transactions do.

Only the SQLite library that the ``sqlite3`` module itself uses is bound: it is looked up
through the ``_sqlite3`` extension module and its version checked. Two copies of SQLite in one
process must not open the same file (their POSIX locks would not see each other). Where that
library cannot be found (Windows, PyPy, a build that links SQLite in without exporting it)
``load()`` returns None and the store writes through the ``sqlite3`` module.

Closing, which may checkpoint the WAL into the file, goes through a second binding of the same
library that releases the GIL. No call waits for a lock: ``try_begin`` returns at once.
"""

from __future__ import annotations

import ctypes
import functools
import os
import sqlite3
import weakref
from collections.abc import Sequence
from typing import Any

__all__ = ["Api", "DirectConnection", "load"]

_OK, _ROW, _DONE = 0, 100, 101
_BUSY, _CONSTRAINT = 5, 19
_INTEGER, _NULL = 1, 5
_OPEN_READWRITE = 0x00000002
_STATIC = None  # SQLite reads bound text where it stands (kept alive until the reset)
_P = ctypes.c_void_p
_WAL_HOOK = ctypes.CFUNCTYPE(ctypes.c_int, _P, _P, ctypes.c_char_p, ctypes.c_int)

#: A text parameter is a ``str``, or its UTF-8 (``bytes``, or ``bytearray`` for a long one).
Params = Sequence[str | bytes | bytearray | int | None]

_SIGNATURES: dict[str, tuple[Any, list[Any]]] = {
    "sqlite3_libversion_number": (ctypes.c_int, []),
    "sqlite3_threadsafe": (ctypes.c_int, []),
    "sqlite3_open_v2": (ctypes.c_int, [ctypes.c_char_p, ctypes.POINTER(_P), ctypes.c_int, _P]),
    "sqlite3_close_v2": (ctypes.c_int, [_P]),
    "sqlite3_errmsg": (ctypes.c_char_p, [_P]),
    "sqlite3_extended_errcode": (ctypes.c_int, [_P]),
    "sqlite3_busy_timeout": (ctypes.c_int, [_P, ctypes.c_int]),
    "sqlite3_get_autocommit": (ctypes.c_int, [_P]),
    "sqlite3_changes": (ctypes.c_int, [_P]),
    "sqlite3_wal_hook": (_P, [_P, _WAL_HOOK, _P]),
    "sqlite3_prepare_v2": (
        ctypes.c_int,
        [_P, ctypes.c_char_p, ctypes.c_int, ctypes.POINTER(_P), _P],
    ),
    "sqlite3_step": (ctypes.c_int, [_P]),
    "sqlite3_reset": (ctypes.c_int, [_P]),
    "sqlite3_clear_bindings": (ctypes.c_int, [_P]),
    "sqlite3_finalize": (ctypes.c_int, [_P]),
    "sqlite3_bind_text": (ctypes.c_int, [_P, ctypes.c_int, ctypes.c_char_p, ctypes.c_int, _P]),
    "sqlite3_bind_int64": (ctypes.c_int, [_P, ctypes.c_int, ctypes.c_int64]),
    "sqlite3_bind_null": (ctypes.c_int, [_P, ctypes.c_int]),
    "sqlite3_column_count": (ctypes.c_int, [_P]),
    "sqlite3_column_type": (ctypes.c_int, [_P, ctypes.c_int]),
    "sqlite3_column_int64": (ctypes.c_int64, [_P, ctypes.c_int]),
    "sqlite3_column_blob": (_P, [_P, ctypes.c_int]),
    "sqlite3_column_bytes": (ctypes.c_int, [_P, ctypes.c_int]),
}


class Api:
    """The SQLite library of the ``sqlite3`` module, twice: keeping the GIL, and releasing it."""

    def __init__(self, path: str) -> None:
        self.keep = ctypes.PyDLL(path)
        self.wait = ctypes.CDLL(path)
        for lib in (self.keep, self.wait):
            for name, (restype, argtypes) in _SIGNATURES.items():
                function = getattr(lib, name)  # AttributeError: not exported here
                function.restype, function.argtypes = restype, argtypes


@functools.cache
def load() -> Api | None:
    """The binding, or None where the ``sqlite3`` module's own SQLite cannot be reached."""
    try:
        import _sqlite3

        path = _sqlite3.__file__
        if path is None or not path.endswith((".so", ".dylib", ".pyd")):
            return None
        api = Api(path)
    except (ImportError, OSError, AttributeError):
        return None
    major, minor, patch = sqlite3.sqlite_version_info
    if api.keep.sqlite3_libversion_number() != major * 1_000_000 + minor * 1000 + patch:
        return None  # another copy than the one sqlite3 runs on
    if not api.keep.sqlite3_threadsafe():
        return None
    return api


def _close(api: Api, db: Any, statements: dict[str, Any], _hook: Any) -> None:
    if not db:
        return
    for stmt in statements.values():
        api.keep.sqlite3_finalize(stmt)
    statements.clear()
    api.wait.sqlite3_close_v2(db)


class DirectConnection:
    """One SQLite connection whose calls keep the GIL (see the module docstring).

    Used by one thread at a time (the store's write lock). Errors are the ``sqlite3``
    module's exception types with SQLite's messages.
    """

    utf8 = True  # text given as UTF-8 is bound as text

    def __init__(self, api: Api, path: str) -> None:
        self._api = api
        self._statements: dict[str, Any] = {}
        frames = self._frames = [0]

        def on_wal(_arg: Any, _db: Any, _name: bytes, count: int) -> int:
            frames[0] = count
            return _OK

        self._hook = _WAL_HOOK(on_wal)  # referenced: SQLite keeps only the pointer
        self._db = _P()
        rc = api.wait.sqlite3_open_v2(
            os.fsencode(path), ctypes.byref(self._db), _OPEN_READWRITE, None
        )
        # Closed by close(), or when the connection is dropped unclosed. Not at exit: the store
        # closes there what no thread is using (a daemon thread may still be writing).
        self._closer = weakref.finalize(self, _close, api, self._db, self._statements, self._hook)
        self._closer.atexit = False
        if rc != _OK:
            message = self._error_message() if self._db else f"cannot open (code {rc})"
            self.close()
            raise sqlite3.OperationalError(message)
        try:
            api.keep.sqlite3_wal_hook(self._db, self._hook, None)  # also ends autocheckpoints
            self.execute("PRAGMA synchronous=NORMAL")
        except BaseException:
            self.close()
            raise

    @property
    def wal_frames(self) -> int:
        """Frames in the WAL after the last commit (the WAL hook's count)."""
        return self._frames[0]

    # -- statements -------------------------------------------------------------------------

    def query(self, sql: str, params: Params = ()) -> list[tuple[Any, ...]]:
        """Run ``sql`` to its end; its rows (text, integer or NULL columns)."""
        api = self._api.keep
        stmt = self._statement(sql)
        bound: list[Any] = []  # what the bindings point into, alive until they are cleared
        try:
            self._bind(stmt, params, bound)
            rows: list[tuple[Any, ...]] = []
            while True:
                rc = api.sqlite3_step(stmt)
                if rc == _DONE:
                    return rows
                if rc != _ROW:
                    raise self._error(rc)
                rows.append(self._row(stmt))
        finally:
            api.sqlite3_reset(stmt)
            api.sqlite3_clear_bindings(stmt)

    def run(self, sql: str, params: Params = ()) -> int:
        """Run a statement that returns no rows; how many rows it changed."""
        self.query(sql, params)
        return int(self._api.keep.sqlite3_changes(self._db))

    def execute(self, sql: str) -> None:
        """Run one statement without parameters (BEGIN, COMMIT, PRAGMA, ...); prepared once."""
        api = self._api.keep
        stmt = self._statement(sql)
        try:
            while (rc := api.sqlite3_step(stmt)) == _ROW:
                pass
            if rc != _DONE:
                raise self._error(rc)
        finally:
            api.sqlite3_reset(stmt)

    # -- transactions -----------------------------------------------------------------------

    def try_begin(self) -> bool:
        """``BEGIN IMMEDIATE`` without waiting: False if another connection holds the lock."""
        try:
            self.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            if self._api.keep.sqlite3_extended_errcode(self._db) & 0xFF == _BUSY:
                return False
            raise
        return True

    @property
    def in_transaction(self) -> bool:
        return not self._api.keep.sqlite3_get_autocommit(self._db)

    def close(self) -> None:
        """Finalize the statements and close (GIL released: the last close checkpoints)."""
        self._db = _P()
        # Detached and called here: a finalizer is no longer called once the interpreter exits.
        found = self._closer.detach()
        if found is not None:
            _, close, args, _ = found
            close(*args)

    # -- helpers ----------------------------------------------------------------------------

    def _statement(self, sql: str) -> Any:
        stmt = self._statements.get(sql)
        if stmt is None:
            stmt = _P()
            api = self._api.keep
            rc = api.sqlite3_prepare_v2(self._db, sql.encode(), -1, ctypes.byref(stmt), None)
            if rc != _OK:
                raise self._error(rc)
            self._statements[sql] = stmt
        return stmt

    def _bind(self, stmt: Any, params: Params, bound: list[Any]) -> None:
        """Bind ``params``; text is bound where it stands (not copied by SQLite): what it
        points into is appended to ``bound``, to be kept until the bindings are cleared."""
        api = self._api.keep
        for index, value in enumerate(params, 1):
            if value is None:
                rc = api.sqlite3_bind_null(stmt, index)
            elif isinstance(value, int):
                rc = api.sqlite3_bind_int64(stmt, index, value)
            else:
                data: Any
                if isinstance(value, str):
                    data = value.encode()
                elif isinstance(value, bytearray) and value:
                    data = (ctypes.c_char * len(value)).from_buffer(value)
                else:
                    data = bytes(value)  # bytes: itself
                bound.append(data)
                rc = api.sqlite3_bind_text(stmt, index, data, len(data), _STATIC)
            if rc != _OK:
                raise self._error(rc)

    def _row(self, stmt: Any) -> tuple[Any, ...]:
        api = self._api.keep
        row: list[Any] = []
        for column in range(api.sqlite3_column_count(stmt)):
            kind = api.sqlite3_column_type(stmt, column)
            if kind == _INTEGER:
                row.append(api.sqlite3_column_int64(stmt, column))
            elif kind == _NULL:
                row.append(None)
            else:  # TEXT: the store keeps no REAL or BLOB values
                start = api.sqlite3_column_blob(stmt, column)  # first, then its size
                size = api.sqlite3_column_bytes(stmt, column)
                row.append(ctypes.string_at(start, size).decode() if size else "")
        return tuple(row)

    def _error_message(self) -> str:
        message = self._api.keep.sqlite3_errmsg(self._db)
        return message.decode(errors="replace") if message else "unknown SQLite error"

    def _error(self, rc: int) -> sqlite3.Error:
        message = self._error_message()
        if rc & 0xFF == _CONSTRAINT:
            return sqlite3.IntegrityError(message)
        return sqlite3.OperationalError(message)
