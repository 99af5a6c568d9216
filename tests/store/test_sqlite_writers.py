"""The SQLite store's writers: many at once (threads, processes), the direct connection, timing.

Both write paths run: ``direct`` (SQLite called without releasing the GIL) and the ``sqlite3``
module. No test here looks at a timing.
"""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compat.store import Record, SQLiteStore, StoreError, _sqlite_direct, sqlite
from compat.store._sqlite_lock import Turnstile

ROOT = Path(__file__).resolve().parents[2]
WRITERS = ["direct", "sqlite3 module"]
COUNTER = {"id": "thread_counter", "object": "thread", "created_at": 1}


@pytest.fixture
def api() -> _sqlite_direct.Api:
    found = _sqlite_direct.load()
    if found is None:
        pytest.skip("the sqlite3 module's SQLite library is not reachable here")
    return found


def bump(record: Record) -> Record:
    return Record(record.data, {"n": record.meta.get("n", 0) + 1})


def open_writer(path: Path, writer: str) -> SQLiteStore:
    store = SQLiteStore(path, direct=writer == "direct")
    if writer == "direct" and not store.direct:
        store.close()
        pytest.skip("the sqlite3 module's SQLite library is not reachable here")
    return store


@pytest.mark.parametrize("writer", WRITERS)
def test_threads_writing_one_record_at_once_lose_no_update(tmp_path: Path, writer: str) -> None:
    store = open_writer(tmp_path / "s.sqlite3", writer)
    store.put("thread", COUNTER, {"n": 0})
    threads, rounds = 16, 25
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def work(worker: int) -> None:
        try:
            barrier.wait(10)
            for i in range(rounds):
                store.update("thread", COUNTER["id"], bump)
                msg = {"id": f"msg_{worker}_{i}", "created_at": i, "thread_id": COUNTER["id"]}
                store.put("message", msg)
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=work, args=(w,)) for w in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    try:
        assert errors == []
        counter = store.get("thread", COUNTER["id"])
        assert counter is not None and counter.meta == {"n": threads * rounds}
        page = store.list("message", parent_id=COUNTER["id"], limit=100)
        assert page.has_more  # 400 of them: the count is checked in SQL below
    finally:
        store.close()
    with sqlite3.connect(tmp_path / "s.sqlite3") as conn:
        (count,) = conn.execute("SELECT COUNT(*) FROM records WHERE kind = 'message'").fetchone()
    conn.close()
    assert count == threads * rounds


# Each process: THREADS threads, each ROUNDS times bumping the one shared counter and adding a
# message of its own, all started together (every process waits for "go" on stdin).
CONTENDER = """
import sys, threading
from compat.store import Record, SQLiteStore
path, process, direct = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
THREADS, ROUNDS = 4, 20
counter = {"id": "thread_counter", "object": "thread", "created_at": 1}
def bump(r):
    return Record(r.data, {"n": r.meta.get("n", 0) + 1})
store = SQLiteStore(path, direct=direct)
print("ready", flush=True)
sys.stdin.readline()
errors = []
def work(t):
    try:
        for i in range(ROUNDS):
            store.update("thread", counter["id"], bump)
            msg = {"id": f"msg_{process}_{t}_{i}", "created_at": i, "thread_id": counter["id"]}
            store.put("message", msg)
    except BaseException as exc:
        errors.append(repr(exc))
workers = [threading.Thread(target=work, args=(t,)) for t in range(THREADS)]
for w in workers:
    w.start()
for w in workers:
    w.join()
store.close()
print("errors:", errors, flush=True)
"""


@pytest.mark.parametrize("writer", WRITERS)
def test_processes_writing_one_record_at_once_all_succeed(tmp_path: Path, writer: str) -> None:
    path = tmp_path / "shared.sqlite3"
    store = open_writer(path, writer)  # the file exists, with its counter
    store.put("thread", COUNTER, {"n": 0})
    store.close()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    direct = "1" if writer == "direct" else "0"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", CONTENDER, str(path), str(p), direct],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for p in range(6)
    ]
    try:
        for p in processes:
            assert p.stdout is not None and p.stdout.readline() == "ready\n"
        for p in processes:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        results = [p.communicate(timeout=120) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.communicate()
    assert [out for out, _ in results] == ["errors: []\n"] * 6, [err for _, err in results]
    assert [p.returncode for p in processes] == [0] * 6
    store = SQLiteStore(path)
    try:
        counter = store.get("thread", COUNTER["id"])
        assert counter is not None and counter.meta == {"n": 6 * 4 * 20}
    finally:
        store.close()
    with sqlite3.connect(path) as conn:
        (count,) = conn.execute("SELECT COUNT(*) FROM records WHERE kind = 'message'").fetchone()
    conn.close()
    assert count == 6 * 4 * 20


@pytest.mark.parametrize("writer", WRITERS)
def test_a_process_that_exits_without_closing_leaves_its_writes_in_the_file(
    tmp_path: Path, writer: str
) -> None:
    # As when the sqlite3 module's connections close at exit: the last one folds the WAL in.
    path = tmp_path / "s.sqlite3"
    open_writer(path, writer).close()
    script = (
        "import sys; from compat.store import SQLiteStore; "
        "s = SQLiteStore(sys.argv[1], direct=sys.argv[2] == '1'); "
        "s.put('thread', {'id': 'thread_1', 'created_at': 1})"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    direct = "1" if writer == "direct" else "0"
    subprocess.run([sys.executable, "-c", script, str(path), direct], env=env, check=True)
    assert not Path(f"{path}-wal").exists()
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    assert conn.execute("SELECT id FROM records").fetchall() == [("thread_1",)]
    conn.close()


def test_a_writer_waits_while_another_connection_holds_the_lock(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    store = SQLiteStore(path, busy_timeout=30.0)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another program holds SQLite's write lock
    done = threading.Event()

    def write() -> None:
        store.put("thread", COUNTER)
        done.set()

    writer = threading.Thread(target=write)
    writer.start()
    assert not done.wait(0.2)  # still waiting (no error) while the lock is held
    other.execute("COMMIT")
    writer.join(30)
    other.close()
    assert done.is_set()
    assert store.get("thread", COUNTER["id"]) == Record(COUNTER, {})
    store.close()


def test_a_writer_gives_up_after_its_busy_timeout(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    store = SQLiteStore(path, busy_timeout=0.05)
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        with pytest.raises(StoreError, match="database is locked"):
            store.put("thread", COUNTER)
    finally:
        other.execute("ROLLBACK")
        other.close()
    store.put("thread", COUNTER)  # free again: the store is still usable
    assert store.get("thread", COUNTER["id"]) is not None
    store.close()


# -- the direct connection ------------------------------------------------------------------


@pytest.fixture
def direct(api: _sqlite_direct.Api, tmp_path: Path) -> Iterator[_sqlite_direct.DirectConnection]:
    path = tmp_path / "d.sqlite3"
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE t (k TEXT PRIMARY KEY, n INTEGER, v TEXT)")
    conn.close()
    connection = _sqlite_direct.DirectConnection(api, str(path))
    yield connection
    connection.close()


def test_direct_connection_round_trips_text_integers_and_null(
    direct: _sqlite_direct.DirectConnection,
) -> None:
    values: list[tuple[Any, ...]] = [("数据", -(2**62), None), ("", 0, "😀\x00x"), ("a'b", 7, "")]
    for row in values:
        assert direct.run("INSERT INTO t (k, n, v) VALUES (?, ?, ?)", row) == 1
    assert direct.query("SELECT k, n, v FROM t ORDER BY n") == sorted(values, key=lambda r: r[1])
    assert direct.query("SELECT k FROM t WHERE k = ?", ("missing",)) == []


def test_direct_connection_reports_errors_as_sqlite3_exceptions(
    direct: _sqlite_direct.DirectConnection,
) -> None:
    direct.run("INSERT INTO t (k) VALUES (?)", ("x",))
    with pytest.raises(sqlite3.IntegrityError, match=r"UNIQUE constraint failed: t\.k"):
        direct.run("INSERT INTO t (k) VALUES (?)", ("x",))
    with pytest.raises(sqlite3.OperationalError, match="no such table: nope"):
        direct.query("SELECT * FROM nope")
    assert direct.query("SELECT COUNT(*) FROM t") == [(1,)]  # still usable


def test_direct_connection_begins_only_when_the_lock_is_free(
    direct: _sqlite_direct.DirectConnection, tmp_path: Path
) -> None:
    other = sqlite3.connect(tmp_path / "d.sqlite3", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    assert direct.try_begin() is False
    assert not direct.in_transaction
    other.execute("ROLLBACK")
    other.close()
    assert direct.try_begin() is True
    assert direct.in_transaction
    direct.run("INSERT INTO t (k) VALUES ('y')")
    direct.execute("ROLLBACK")
    assert direct.query("SELECT COUNT(*) FROM t") == [(0,)]


def test_direct_writes_are_checkpointed_into_the_file(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    store = open_writer(path, "direct")
    before = path.stat().st_size
    body = "x" * 60_000  # about 15 pages a record: 100 records are well past 1,000 WAL frames
    try:
        for n in range(100):
            store.put("message", {"id": f"msg_{n}", "created_at": n, "thread_id": "t", "b": body})
        assert path.stat().st_size > before + 2_000_000  # copied back while the store is open
    finally:
        store.close()


# -- the turnstile and the lock times --------------------------------------------------------


def test_the_turnstile_lets_one_thread_in_at_a_time() -> None:
    turnstile = Turnstile()
    inside: list[int] = []
    overlaps: list[list[int]] = []
    barrier = threading.Barrier(8)

    def work(worker: int) -> None:
        barrier.wait(10)
        for _ in range(200):
            turnstile.acquire()
            inside.append(worker)
            time.sleep(0)  # releases the GIL: another thread may run here
            if len(inside) != 1:
                overlaps.append(list(inside))
            inside.remove(worker)
            turnstile.release()

    workers = [threading.Thread(target=work, args=(w,)) for w in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert overlaps == []
    assert turnstile.acquire(blocking=False)
    assert not turnstile.acquire(blocking=False)
    turnstile.release()


def test_lock_times_are_recorded_only_while_switched_on(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "s.sqlite3")
    try:
        sqlite.time_locks(False)
        store.put("thread", COUNTER)
        assert sqlite.lock_times() == []
        sqlite.time_locks(True)
        store.put("thread", COUNTER)
        with store.transaction() as tx:
            tx.get("thread", COUNTER["id"])
        times = sqlite.lock_times()
        assert len(times) == 2
        assert all(wait >= 0 and hold >= 0 for wait, hold in times)
    finally:
        sqlite.time_locks(False)
        store.close()
