"""What only the PostgreSQL store has: its schema, locks, pool, fork safety and errors."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest

from compat import lifecycle
from compat.backends.responses.ownership import claim_thread, release_thread
from compat.errors import ConfigurationError
from compat.store import StoreError, open_store
from tests.pg import terminate_other_sessions

pytestmark = pytest.mark.postgres

psycopg = (
    pytest.importorskip("psycopg") if os.environ.get("CI") != "true" else __import__("psycopg")
)

from compat.store import postgres  # noqa: E402
from compat.store.postgres import (  # noqa: E402
    MIGRATIONS,
    PostgresStore,
    display_uri,
    uri_timeout,
)


def race(count: int, work: Callable[[int], None]) -> None:
    """Run `work(i)` on `count` threads released together; re-raise the first failure."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def go(i: int) -> None:
        try:
            barrier.wait(10)
            work(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=go, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    if errors:
        raise errors[0]


def run(n: int, status: str = "queued") -> dict[str, Any]:
    return {
        "id": f"run_{n}",
        "object": "thread.run",
        "created_at": 1_000 + n,
        "thread_id": "thread_1",
        "status": status,
        "metadata": {},
    }


def test_open_store_dispatches_both_schemes(pg_uri: str) -> None:
    for uri in (pg_uri, pg_uri.replace("postgresql://", "postgres://", 1)):
        store = open_store(uri)
        assert isinstance(store, PostgresStore)
        store.close()


def test_racing_opens_migrate_once(pg_uri: str) -> None:
    stores: list[PostgresStore] = []
    race(8, lambda i: stores.append(PostgresStore(pg_uri)))
    for store in stores:
        store.close()
    with psycopg.connect(pg_uri) as conn:
        names = [n for (n,) in conn.execute("SELECT name FROM compat_schema_migrations")]
    assert sorted(names) == sorted(m.__name__ for m in MIGRATIONS)


def test_a_database_written_by_a_newer_compat_is_refused(pg_uri: str) -> None:
    PostgresStore(pg_uri).close()
    with psycopg.connect(pg_uri, autocommit=True) as conn:
        conn.execute(
            "INSERT INTO compat_schema_migrations VALUES ('m999_from_the_future', 0), "
            "('m998_also', 0)"
        )
    with pytest.raises(StoreError, match=r"newer compat.*m998_also, m999_from_the_future"):
        PostgresStore(pg_uri)


def test_claims_on_one_thread_are_serialised_by_the_thread_row(pg_uri: str) -> None:
    # claim_thread reads the thread FOR UPDATE, then inserts the run: of 16 racing claims on
    # an idle thread exactly one is accepted, the others see its run active.
    store = PostgresStore(pg_uri)
    store.put("thread", {"id": "thread_1", "created_at": 1})
    outcomes: list[str | None] = []

    def claim(i: int) -> None:
        with store.transaction() as tx:
            thread = tx.get("thread", "thread_1")
            assert thread is not None
            outcomes.append(
                claim_thread(tx, thread, run(i), {"lease": {"owner": "w", "until": 2**62}})
            )

    race(16, claim)
    assert outcomes.count(None) == 1
    winner = store.get("thread", "thread_1")
    assert winner is not None
    assert store.get("run", winner.meta["active_run_id"]) is not None
    assert len(store.list("run", parent_id="thread_1", limit=100).data) == 1
    store.close()


def test_finishing_and_claiming_in_opposite_orders_do_not_deadlock(pg_uri: str) -> None:
    # A finishing run locks its run, then its thread; a claim locks the thread, then the
    # active run. Tx.get takes the thread's lock first either way, so neither waits on a cycle.
    store = PostgresStore(pg_uri)
    store.put("thread", {"id": "thread_1", "created_at": 1}, {"active_run_id": "run_0"})
    store.put("run", run(0, "in_progress"), {"lease": {"owner": "w", "until": 2**62}})
    refused: list[str | None] = []

    def work(i: int) -> None:
        for _ in range(20):
            if i % 2:
                with store.transaction() as tx:
                    thread = tx.get("thread", "thread_1")
                    assert thread is not None
                    refused.append(claim_thread(tx, thread, run(99), {}) and "refused")
                    raise_back = refused[-1] is None
                    if raise_back:  # undo a claim so that the race goes on
                        release_thread(tx, "thread_1", "run_99")
            else:
                with store.transaction() as tx:
                    tx.get("run", "run_0")
                    release_thread(tx, "thread_1", "not-the-active-run")

    race(8, work)
    assert len(refused) == 80
    store.close()


def test_tx_now_ms_is_the_database_clock(pg_uri: str) -> None:
    store = PostgresStore(pg_uri)
    with psycopg.connect(pg_uri) as conn:
        (before,) = conn.execute(
            "SELECT (extract(epoch FROM clock_timestamp())*1000)::bigint"
        ).fetchone()
        with store.transaction() as tx:
            inside = tx.now_ms()
        (after,) = conn.execute(
            "SELECT (extract(epoch FROM clock_timestamp())*1000)::bigint"
        ).fetchone()
    assert before <= inside <= after
    # The store-level clock is the database's through an offset measured at open.
    assert abs(store.now_ms() - inside) < 60_000
    store.close()


def test_an_unreachable_database_is_a_store_error_without_the_password() -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once the socket closes
    uri = f"postgresql://someone:s3cret@127.0.0.1:{port}/db"
    with pytest.raises(
        StoreError, match=rf"postgresql://someone:\*\*\*@127\.0\.0\.1:{port}/db"
    ) as info:
        open_store(uri)
    assert "s3cret" not in str(info.value)
    assert display_uri("postgresql://h/db") == "postgresql://h/db"
    assert display_uri("postgres://u@h/db?sslmode=require&password=pw") == (
        "postgres://u@h/db?sslmode=require&password=***"
    )


def test_errors_inside_a_transaction_roll_it_back_and_pass_through(pg_uri: str) -> None:
    store = PostgresStore(pg_uri)
    store.put("run", run(1, "completed"))
    with pytest.raises(lifecycle.IllegalMove):
        store.transition("run_1", "cancel")
    with pytest.raises(StoreError, match="division by zero"), store.transaction() as tx:
        tx.put("thread", {"id": "thread_9", "created_at": 1})
        tx.conn.execute("SELECT 1/0")  # type: ignore[attr-defined]
    assert store.get("thread", "thread_9") is None
    store.put("thread", {"id": "thread_9", "created_at": 1})  # the pool's connection is fine
    store.close()


def _counts(store: PostgresStore) -> tuple[int, int, int]:
    return store.statements, store.round_trips, store.commits


def _spent(store: PostgresStore, before: tuple[int, int, int]) -> tuple[int, int, int]:
    statements, round_trips, commits = _counts(store)
    return statements - before[0], round_trips - before[1], commits - before[2]


def test_a_transaction_waits_once_per_read_and_once_to_commit(pg_uri: str) -> None:
    # BEGIN and the writes are pipelined: they go out with the next read or with COMMIT. The
    # first read brings the clock along; a record the transaction holds is not read again.
    store = PostgresStore(pg_uri)
    store.put("thread", {"id": "thread_1", "created_at": 1}, {"k": 1})
    store.put("run", run(1), {})
    before = _counts(store)
    with store.transaction() as tx:
        record = tx.get("run", "run_1")  # locks the thread, then the run; reads the clock
        assert record is not None
        now = tx.now_ms()
        tx.put("run", dict(record.data, status="in_progress"), {"lease": now})
        again = tx.get("run", "run_1")  # what this transaction wrote, without a round trip
        assert again is not None
        assert (again.data["status"], again.meta) == ("in_progress", {"lease": now})
        thread = tx.get("thread", "thread_1")
        assert thread is not None
        tx.put("thread", thread.data)  # meta None: the stored meta is kept
        assert tx.get("thread", "thread_1") == thread
        assert tx.now_ms() == now  # the clock of this transaction's first read
    # BEGIN, compat_get + clock, upsert, compat_get, upsert, COMMIT: 7 statements, 3 waits.
    assert _spent(store, before) == (7, 3, 1)
    stored = store.get("run", "run_1")
    assert stored is not None and stored.meta == {"lease": now}
    assert store.get("thread", "thread_1") == thread
    store.close()


def test_writes_that_fail_in_a_pipeline_roll_the_whole_transaction_back(pg_uri: str) -> None:
    store = PostgresStore(pg_uri)
    with pytest.raises(StoreError, match="null value"), store.transaction() as tx:
        tx.put("thread", {"id": "thread_1", "created_at": 1})
        tx.conn.execute(  # type: ignore[attr-defined]
            "INSERT INTO compat_records (kind, id, created_at, data, meta) "
            "VALUES ('thread', NULL, 1, '{}', '{}')"
        )
        tx.put("thread", {"id": "thread_2", "created_at": 2})
    assert store.list("thread").data == []
    store.put("thread", {"id": "thread_3", "created_at": 3})  # the connection is fine
    assert [t["id"] for t in store.list("thread").data] == ["thread_3"]
    store.close()


def test_sessions_the_server_ends_are_replaced_before_a_call_uses_them(pg_uri: str) -> None:
    store = PostgresStore(pg_uri)
    # Four idle connections in the pool, then the server ends every session but the admin's.
    race(4, lambda i: store.put("thread", {"id": f"thread_{i}", "created_at": i}))
    terminate_other_sessions(pg_uri)
    for i in range(8):  # each call gets a live connection: none fails
        assert store.get("thread", f"thread_{i % 4}") is not None
    with store.transaction() as tx:
        assert tx.get("thread", "thread_0") is not None
    store.close()


def test_the_uri_connect_timeout_is_how_long_a_call_waits() -> None:
    assert uri_timeout("postgresql://h/db") == 10.0
    assert uri_timeout("postgresql://h/db?connect_timeout=3") == 3.0
    assert uri_timeout("postgresql://h/db?connect_timeout=0") == 10.0  # libpq: wait forever
    assert uri_timeout("postgresql://h/db?connect_timeout=x") == 10.0


def test_a_full_pool_is_a_store_error_after_the_timeout(pg_uri: str) -> None:
    store = PostgresStore(pg_uri, max_connections=1, timeout=0.2)
    full = r"no free connection within 0.2s \(all 1 are in use\)"
    # The transaction holds the only connection.
    with store.transaction(), pytest.raises(StoreError, match=full):
        store.get("thread", "thread_1")
    assert store.get("thread", "thread_1") is None
    store.close()


FORK = """
import gc, os, sys, warnings
warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork() of a threaded process
from compat.store.postgres import PostgresStore
store = PostgresStore(sys.argv[1])
store.put("thread", {"id": "thread_1", "created_at": 1})
pid = os.fork()
if pid == 0:
    # The child uses the store, then exits the ordinary way: finalisers run, and must not
    # end the parent's sessions on the sockets the child inherited.
    store.put("thread", {"id": "thread_2", "created_at": 2})
    assert store.get("thread", "thread_1") is not None
    store.close()
    # Even closing what the child inherited (libpq's goodbye on each socket) leaves them be.
    from compat.store import _pg_pool
    for inherited in _pg_pool._inherited:
        for conn in inherited:
            conn.close()
    gc.collect()
    sys.exit(0)
_, status = os.waitpid(pid, 0)
assert os.waitstatus_to_exitcode(status) == 0, status
ids = [t["id"] for t in store.list("thread", order="asc").data]
assert ids == ["thread_1", "thread_2"], ids
print("ok")
"""


def test_a_forked_child_uses_its_own_connections(pg_uri: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", FORK, pg_uri], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout == "ok\n"


def test_without_the_extra_a_postgres_store_is_a_configuration_error() -> None:
    code = (
        "import sys; sys.modules['psycopg'] = None\n"
        "import compat\n"
        "from compat.store import open_store\n"
        "assert 'psycopg' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
        "try:\n"
        "    open_store('postgresql://u:pw@db.example:5432/app')\n"
        "except compat.errors.ConfigurationError as e:\n"
        "    print(e)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "pip install 'dashscope-compat[postgres]'" in out.stdout
    assert "postgresql://db.example:5432/app" in out.stdout
    assert "pw" not in out.stdout.replace("psycopg", "")
    assert ConfigurationError.__name__ == "ConfigurationError"


def test_import_compat_does_not_import_psycopg() -> None:
    code = "import sys, compat, compat.store; print('psycopg' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# -- long rows: the JSON goes out as UTF-8, built once --------------------------------------------


def _long_message(text: str, n: int = 1) -> dict[str, Any]:
    return {
        "id": f"msg_{n}",
        "object": "thread.message",
        "created_at": n,
        "thread_id": "thread_1",
        "status": "completed",
        "content": [{"type": "text", "text": {"value": text, "annotations": []}}],
    }


@pytest.mark.parametrize("encoding", ["default", "LATIN1"])
def test_long_rows_round_trip_exactly(pg_uri: str, encoding: str) -> None:
    from compat.store.base import dumps

    if encoding == "default":
        text = '你好\uff0c世界 "quoted"\n\\ 🚀\x01' * 40_000
        uri = pg_uri
    else:  # a client_encoding other than UTF-8: the UTF-8 is sent in the connection's
        text = 'café "é"\n\\ ' * 80_000
        uri = (
            f"{pg_uri}&client_encoding=LATIN1"
            if "?" in pg_uri
            else f"{pg_uri}?client_encoding=LATIN1"
        )
    store = PostgresStore(uri)
    try:
        meta = {"m": text[:70_000]}
        store.put("message", _long_message(text, 1), meta)  # one statement
        store.put_many(  # one transaction
            [
                ("message", _long_message(text + "2", 2), meta),
                ("thread", {"id": "thread_1", "created_at": 0}, None),
            ]
        )
        with store.transaction() as tx:
            tx.put("message", _long_message(text + "3", 3), None)
            known = tx.get("message", "msg_3")  # served from what this transaction wrote
            assert known is not None and known.data == _long_message(text + "3", 3)
            assert tx.status("message", "msg_3") == "completed"
        for n, suffix in ((1, ""), (2, "2"), (3, "3")):
            record = store.get("message", f"msg_{n}")
            assert record is not None
            assert record.data == _long_message(text + suffix, n)
            assert record.meta == (meta if n < 3 else {})
        with psycopg.connect(pg_uri, autocommit=True) as conn:
            (stored,) = conn.execute(
                "SELECT data FROM compat_records WHERE kind = 'message' AND id = 'msg_1'"
            ).fetchone()
        assert stored == dumps(_long_message(text, 1))  # the very text dumps() gives
        # The parameter psycopg sends is the UTF-8 built once, not a copy of it.
        row = postgres._encode("message", _long_message(text), None)
        assert isinstance(row.data.utf8, bytearray)
        with psycopg.connect(uri) as conn:
            transformer = psycopg.adapt.Transformer(conn)
            dumper = transformer.get_dumper(row.data, psycopg.adapt.PyFormat.AUTO)
            sent = dumper.dump(row.data)
            assert sent is row.data.utf8 if encoding == "default" else sent == text_in_latin1(row)
    finally:
        store.close()


def text_in_latin1(row: Any) -> bytes:
    return bytes(row.data.utf8).decode().encode("latin-1")
