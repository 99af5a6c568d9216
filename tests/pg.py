"""The PostgreSQL server the tests use: found from the environment, skipped (or failed in CI)."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from urllib.parse import quote

import pytest

__all__ = ["consumer_store", "fresh_schema_uri", "pg_server_uri", "truncate"]


def pg_server_uri() -> str:
    """``COMPAT_TEST_PG_URI``, with psycopg importable; else skip (fail when ``CI=true``)."""
    uri = os.environ.get("COMPAT_TEST_PG_URI", "")
    reason = ""
    if not uri:
        reason = 'no PostgreSQL server: set COMPAT_TEST_PG_URI (eval "$(.ci/pg-start)")'
    else:
        try:
            import psycopg  # noqa: F401
            import psycopg_pool  # noqa: F401
        except ImportError:
            reason = "psycopg is not installed: pip install 'dashscope-compat[postgres]'"
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the PostgreSQL tests: {reason}")
        pytest.skip(reason)
    return uri


def with_search_path(uri: str, schema: str) -> str:
    """`uri` with libpq's ``options`` setting the default schema."""
    sep = "&" if "?" in uri else "?"
    return f"{uri}{sep}options={quote(f'-csearch_path={schema}')}"


@contextlib.contextmanager
def fresh_schema_uri(server: str, schema: str) -> Iterator[str]:
    """A URI on a new, empty schema; afterwards its stores are closed and the schema dropped.

    compat keeps the stores it opened (one per spec) for the process's life: closing those
    on this test's own URI gives their connections back to the server.
    """
    import psycopg

    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
    uri = with_search_path(server, schema)
    try:
        yield uri
    finally:
        from compat.store import postgres

        for store in list(postgres._open_stores):
            if store.uri == uri:
                store.close()
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')


def truncate(uri: str) -> None:
    """Empty the store's records (the schema and its migrations stay)."""
    import psycopg

    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute("TRUNCATE compat_records")


def consumer_store() -> str:
    """The store the consumer tests configure: ``COMPAT_TEST_STORE``, else ``memory``.

    ``nox -s tests-postgres`` sets it to a PostgreSQL URI; the database is emptied here so that
    each test starts from no records, as it does on a new memory store.
    """
    spec = os.environ.get("COMPAT_TEST_STORE") or "memory"
    if spec.startswith(("postgresql://", "postgres://")):
        import psycopg

        # Not migrated yet (no table): the first open creates it empty.
        with contextlib.suppress(psycopg.errors.UndefinedTable):
            truncate(spec)
    return spec
