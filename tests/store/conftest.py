"""The store conformance suite's stores: memory, SQLite, and PostgreSQL when a server is given.

PostgreSQL comes from ``COMPAT_TEST_PG_URI`` (``.ci/pg-start`` starts a throwaway server and
sets it). Without it the PostgreSQL cases skip with the reason, except in CI (``CI=true``),
where they fail: there the suite must run on all three stores. Each test gets its own schema
(``search_path`` in the URI), so tests never see each other's records and nothing is left.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from compat.store import MemoryStore, SQLiteStore, Store
from tests.pg import fresh_schema_uri, pg_server_uri

__all__ = ["STORES", "make_store"]

STORES = [
    "memory",
    "sqlite",
    "sqlite-module",  # writes through the sqlite3 module (where the direct writer is missing)
    pytest.param("postgresql", marks=pytest.mark.postgres),
]


@pytest.fixture
def pg_uri() -> Iterator[str]:
    """A URI whose default schema is new and empty; dropped after the test."""
    with fresh_schema_uri(pg_server_uri(), f"t_{uuid.uuid4().hex[:12]}") as uri:
        yield uri


def make_store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    """A new, empty store of `kind`."""
    if kind == "memory":
        return MemoryStore()
    if kind.startswith("sqlite"):
        return SQLiteStore(tmp_path / "s.sqlite3", direct=kind == "sqlite")
    from compat.store.postgres import PostgresStore

    uri: str = request.getfixturevalue("pg_uri")
    return PostgresStore(uri)


@pytest.fixture(params=STORES)
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


@pytest.fixture
def store(store_kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[Store]:
    s = make_store(store_kind, tmp_path, request)
    yield s
    s.close()
