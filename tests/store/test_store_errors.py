"""Every exception the stores' database libraries can raise becomes ``StoreError`` at one point.

``compat.store.base.store_errors`` is that point: the PostgreSQL store runs every statement
and connection inside it (the SQLite store maps ``sqlite3.Error`` in its own
connection helper). The tests walk the libraries' exception classes, as
``tests/consumer/test_upstream_edges.py`` walks the openai client's.
"""

from __future__ import annotations

import inspect
import sqlite3
from types import ModuleType

import pytest

from compat import lifecycle
from compat.store import RunGone, StoreError
from compat.store.base import lower_error, store_errors


def _classes(*modules: ModuleType) -> list[type[BaseException]]:
    found = {
        obj
        for module in modules
        for _, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, BaseException) and obj.__module__.split(".")[0] in _LIBRARIES
    }
    return sorted(found, key=lambda c: f"{c.__module__}.{c.__qualname__}")


_LIBRARIES = {"sqlite3", "psycopg"}


def _instance(cls: type[BaseException]) -> BaseException:
    try:
        return cls("the library's message")
    except TypeError:
        exc = cls.__new__(cls)
        BaseException.__init__(exc, "the library's message")
        return exc


def _psycopg_classes() -> list[type[BaseException]]:
    try:
        import psycopg
        import psycopg.errors
    except ImportError:
        return []
    # Rollback is not a failure: code raises it to roll a transaction block back on purpose.
    return [c for c in _classes(psycopg, psycopg.errors) if c is not psycopg.Rollback]


SQLITE = _classes(sqlite3)
PSYCOPG = _psycopg_classes()


def test_the_walk_finds_the_libraries_exceptions() -> None:
    names = {c.__name__ for c in SQLITE}
    assert {"OperationalError", "IntegrityError", "DatabaseError", "Warning"} <= names
    if PSYCOPG:  # hundreds of server errors
        assert len(PSYCOPG) > 200
        names = {c.__name__ for c in PSYCOPG}
        assert {"OperationalError", "AdminShutdown", "DiskFull", "PipelineAborted"} <= names


@pytest.mark.parametrize("cls", SQLITE + PSYCOPG, ids=lambda c: f"{c.__module__}.{c.__qualname__}")
def test_no_exception_of_a_database_library_escapes_unmapped(cls: type[BaseException]) -> None:
    exc = _instance(cls)
    assert lower_error(exc)
    with pytest.raises(StoreError) as caught, store_errors("postgresql://u:***@db/app"):
        raise exc
    assert caught.value.__cause__ is exc
    assert str(caught.value) == "postgresql://u:***@db/app: the library's message"


@pytest.mark.parametrize(
    "exc",
    [
        lifecycle.IllegalMove("completed", "cancel"),
        RunGone("run_1"),
        ValueError("order must be 'asc' or 'desc'"),
        KeyError("x"),
        StoreError("already mapped"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_what_is_not_a_library_failure_passes_through(exc: BaseException) -> None:
    with pytest.raises(type(exc)) as caught, store_errors("s.sqlite3"):
        raise exc
    assert caught.value is exc


def test_psycopg_rollback_is_not_mapped() -> None:
    psycopg = pytest.importorskip("psycopg")
    with pytest.raises(psycopg.Rollback), store_errors("db"):
        raise psycopg.Rollback()


def test_a_library_message_on_several_lines_is_one_line() -> None:
    with pytest.raises(StoreError, match=r"^db: connection failed: refused$"), store_errors("db"):
        raise sqlite3.OperationalError("connection failed:\n  refused\n")
