"""The PostgreSQL server the tests use: found from the environment, skipped (or failed in CI)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlsplit

import pytest

__all__ = [
    "Cluster",
    "consumer_store",
    "fresh_schema_uri",
    "pg_server_uri",
    "terminate_other_sessions",
    "throwaway_cluster",
    "truncate",
]

_ROOT = Path(__file__).resolve().parents[1]


def pg_server_uri() -> str:
    """``COMPAT_TEST_PG_URI``, with psycopg importable; else skip (fail when ``CI=true``)."""
    uri = os.environ.get("COMPAT_TEST_PG_URI", "")
    reason = ""
    if not uri:
        reason = 'no PostgreSQL server: set COMPAT_TEST_PG_URI (eval "$(.ci/pg-start)")'
    else:
        try:
            import psycopg  # noqa: F401
        except ImportError:
            reason = "psycopg is not installed: pip install 'dashscope-compat[postgres]'"
    if reason:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must run the PostgreSQL tests: {reason}")
        pytest.skip(reason)
    return uri


def _skip_or_fail(reason: str) -> None:
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI must run the PostgreSQL tests: {reason}")
    pytest.skip(reason)


@dataclass(frozen=True)
class Cluster:
    """A server of the test's own (``throwaway_cluster``), stopped and started at will."""

    uri: str
    dir: Path

    def stop(self) -> None:
        """Stop the server (``pg_ctl -m fast``: sessions are terminated, as in a restart)."""
        self._ctl("-m", "fast", "stop")

    def start(self) -> None:
        """Start it again on the same port."""
        port = urlsplit(self.uri).port
        options = f"-h 127.0.0.1 -p {port} -k {self.dir}"
        self._ctl("-l", str(self.dir / "log"), "-o", options, "start")

    def _ctl(self, *args: str) -> None:
        found = shutil.which("pg_ctl")
        bin_dir = os.environ.get("PG_BIN") or (os.path.dirname(found) if found else "")
        # As root, .ci/pg-start made the cluster belong to an unprivileged user.
        runner = ["runuser", "-u", "compatci", "--"] if os.geteuid() == 0 else []
        pg_ctl = os.path.join(bin_dir, "pg_ctl")
        data = str(self.dir / "data")
        subprocess.run([*runner, pg_ctl, "-D", data, "-w", *args], check=True, timeout=60)


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    """A new PostgreSQL cluster (``.ci/pg-start``), removed afterwards (``.ci/pg-stop``).

    For tests that stop the server; skipped without ``initdb``/``pg_ctl`` or psycopg (failed
    in CI, where the PostgreSQL tests must run).
    """
    try:
        import psycopg  # noqa: F401
    except ImportError:
        _skip_or_fail("psycopg is not installed: pip install 'dashscope-compat[postgres]'")
    started = subprocess.run(
        [str(_ROOT / ".ci" / "pg-start")], capture_output=True, text=True, timeout=120
    )
    if started.returncode != 0:
        _skip_or_fail(f"no throwaway PostgreSQL cluster: {started.stderr.strip()}")
    env = dict(re.findall(r"(\w+)=(\S+)", started.stdout))
    cluster = Cluster(env["COMPAT_TEST_PG_URI"], Path(env["PG_CI_DIR"]))
    try:
        yield cluster
    finally:
        from compat.store import postgres

        for store in list(postgres._open_stores):
            if store.uri.startswith(cluster.uri):
                store.close()
        subprocess.run([str(_ROOT / ".ci" / "pg-stop"), str(cluster.dir)], timeout=60)


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


def terminate_other_sessions(uri: str) -> int:
    """End every client session of the database but this one; return once they are all gone."""
    import psycopg

    others = (
        "FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND backend_type = 'client backend'"
    )
    with psycopg.connect(uri, autocommit=True) as admin:
        row = admin.execute(f"SELECT count(pg_terminate_backend(pid)) {others}").fetchone()
        deadline = time.monotonic() + 30
        while admin.execute(f"SELECT count(*) {others}").fetchone() != (0,):
            assert time.monotonic() < deadline, "the terminated sessions are still there"
            time.sleep(0.01)
    return int(row[0]) if row else 0
