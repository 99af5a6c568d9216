"""The store contract on every store (memory, SQLite, PostgreSQL), plus SQLite durability."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from compat.store import (
    MemoryStore,
    Page,
    Record,
    SQLiteStore,
    Store,
    StoreError,
    _sqlite_direct,
    default_store_path,
    open_store,
)
from compat.store.sqlite import MIGRATIONS

ROOT = Path(__file__).resolve().parents[2]


def ident(prefix: str, n: int) -> str:
    return f"{prefix}_{n:032x}"


def thread(n: int, created_at: int = 1_000) -> dict[str, Any]:
    return {"id": ident("thread", n), "object": "thread", "created_at": created_at, "metadata": {}}


def message(n: int, thread_n: int = 1, created_at: int = 1_000, text: str = "hi") -> dict[str, Any]:
    return {
        "id": ident("msg", n),
        "object": "thread.message",
        "created_at": created_at,
        "thread_id": ident("thread", thread_n),
        "role": "user",
        "content": [{"type": "text", "text": {"value": text, "annotations": []}}],
    }


def run(n: int, thread_n: int = 1) -> dict[str, Any]:
    return {
        "id": ident("run", n),
        "object": "thread.run",
        "created_at": 1_000 + n,
        "thread_id": ident("thread", thread_n),
        "status": "queued",
    }


def step(n: int, run_n: int, thread_n: int = 1) -> dict[str, Any]:
    return {
        "id": ident("step", n),
        "object": "thread.run.step",
        "created_at": 1_000 + n,
        "thread_id": ident("thread", thread_n),
        "run_id": ident("run", run_n),
    }


def assistant(n: int, created_at: int = 1_000) -> dict[str, Any]:
    return {"id": ident("asst", n), "object": "assistant", "created_at": created_at, "model": "m"}


def bump(record: Record) -> Record:
    return Record(record.data, {**record.meta, "n": record.meta.get("n", 0) + 1})


def run_threads(count: int, work: Callable[[int], None]) -> None:
    """Run `work(i)` on `count` threads released together; re-raise the first failure."""
    barrier = threading.Barrier(count)
    errors: list[BaseException] = []

    def main(i: int) -> None:
        try:
            barrier.wait()
            work(i)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=main, args=(i,)) for i in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def all_ids(store: Store, kind: Any, parent_id: str | None = None) -> list[str]:
    """Every id of `kind`, oldest first, by walking pages with `after`."""
    ids: list[str] = []
    after: str | None = None
    while True:
        page = store.list(kind, parent_id=parent_id, order="asc", limit=100, after=after)
        ids += [d["id"] for d in page.data]
        if not page.has_more:
            return ids
        after = page.last_id


# -- put / get / delete -------------------------------------------------------------------------


def test_stores_satisfy_the_protocol(store: Store) -> None:
    assert isinstance(store, Store)


def test_put_then_get_returns_data_and_meta(store: Store) -> None:
    data = {**assistant(1), "name": "导师 ✓", "tools": [{"type": "code_interpreter"}]}
    store.put("assistant", data, {"note": "ü"})
    assert store.get("assistant", ident("asst", 1)) == Record(data, {"note": "ü"})


def test_get_unknown_id_or_other_kind_is_none(store: Store) -> None:
    store.put("thread", thread(1))
    assert store.get("thread", ident("thread", 2)) is None
    assert store.get("assistant", ident("thread", 1)) is None


def test_meta_starts_empty_and_put_without_meta_keeps_it(store: Store) -> None:
    tid = ident("thread", 1)
    store.put("thread", thread(1))
    assert store.get("thread", tid) == Record(thread(1), {})
    store.put("thread", thread(1), {"last_response_id": "resp_1"})
    changed = {**thread(1), "metadata": {"k": "v"}}
    store.put("thread", changed)
    assert store.get("thread", tid) == Record(changed, {"last_response_id": "resp_1"})
    store.put("thread", changed, {})
    assert store.get("thread", tid) == Record(changed, {})


def test_replace_keeps_list_position(store: Store) -> None:
    for n in (1, 2, 3):
        store.put("message", message(n))
    store.put("message", message(1, text="edited"))
    page = store.list("message", parent_id=ident("thread", 1), order="asc")
    assert [d["id"] for d in page.data] == [ident("msg", 1), ident("msg", 2), ident("msg", 3)]
    assert page.data[0] == message(1, text="edited")


def test_returned_and_given_dicts_are_not_stored_state(store: Store) -> None:
    data, meta = message(1), {"ids": ["resp_1"]}
    store.put("message", data, meta)
    data["role"] = "x"
    meta["ids"].append("y")
    got = store.get("message", ident("msg", 1))
    assert got is not None
    got.data["role"] = "z"
    got.meta["ids"].append("z")
    store.list("message")
    store.list("message").data[0]["role"] = "w"
    assert store.get("message", ident("msg", 1)) == Record(message(1), {"ids": ["resp_1"]})


def test_put_many_stores_all_or_nothing(store: Store) -> None:
    store.put_many([("thread", thread(1), None), ("message", message(1), {"a": 1})])
    assert store.get("message", ident("msg", 1)) == Record(message(1), {"a": 1})
    bad = {k: v for k, v in message(3).items() if k != "thread_id"}
    with pytest.raises(ValueError, match="thread_id"):
        store.put_many([("message", message(2), None), ("message", bad, None)])
    assert store.get("message", ident("msg", 2)) is None
    store.put_many([])


@pytest.mark.parametrize(
    ("kind", "data", "error"),
    [
        ("run", {"created_at": 1, "thread_id": "t"}, "'id'"),
        ("thread", {"id": "thread_1", "created_at": "1"}, "created_at"),
        ("thread", {"id": "thread_1", "created_at": True}, "created_at"),
        ("step", {"id": "step_1", "created_at": 1, "thread_id": "t"}, "run_id"),
        ("file", {"id": "file_1", "created_at": 1}, "unknown record kind 'file'"),
    ],
)
def test_put_rejects_records_it_cannot_index(
    store: Store, kind: Any, data: dict[str, Any], error: str
) -> None:
    with pytest.raises(ValueError, match=error):
        store.put(kind, data)


def test_delete_thread_takes_messages_runs_and_steps(store: Store) -> None:
    store.put_many(
        [
            ("thread", thread(1), None),
            ("message", message(1, thread_n=1), None),
            ("message", message(2, thread_n=1), None),
            ("run", run(1, thread_n=1), None),
            ("step", step(1, run_n=1), None),
            ("step", step(2, run_n=1), None),
            ("thread", thread(2), None),
            ("message", message(3, thread_n=2), None),
            ("run", run(2, thread_n=2), None),
            ("step", step(3, run_n=2, thread_n=2), None),
            ("assistant", assistant(1), None),
        ]
    )
    assert store.delete("thread", ident("thread", 1)) is True
    assert all_ids(store, "message") == [ident("msg", 3)]
    assert all_ids(store, "run") == [ident("run", 2)]
    assert all_ids(store, "step") == [ident("step", 3)]
    assert store.get("thread", ident("thread", 1)) is None
    assert store.get("thread", ident("thread", 2)) is not None
    assert store.get("assistant", ident("asst", 1)) is not None
    assert store.delete("thread", ident("thread", 1)) is False


def test_delete_run_takes_only_its_steps(store: Store) -> None:
    store.put_many(
        [
            ("thread", thread(1), None),
            ("message", message(1), None),
            ("run", run(1), None),
            ("step", step(1, run_n=1), None),
            ("step", step(2, run_n=1), None),
            ("run", run(2), None),
            ("step", step(3, run_n=2), None),
        ]
    )
    assert store.delete("run", ident("run", 1)) is True
    assert all_ids(store, "step") == [ident("step", 3)]
    assert all_ids(store, "run") == [ident("run", 2)]
    assert all_ids(store, "message") == [ident("msg", 1)]
    assert store.get("thread", ident("thread", 1)) is not None
    assert store.delete("message", ident("msg", 1)) is True
    assert store.delete("message", ident("msg", 1)) is False


# -- list -------------------------------------------------------------------------------------

# Labels 1..5 in list order (asc). Ids run the other way and 5 is inserted first, so only
# created_at (then insertion order, for the 2/3 tie) can produce this order.
CREATED = {5: 4_000, 1: 1_000, 2: 2_000, 3: 2_000, 4: 3_000}


def label_id(label: int) -> str:
    return ident("msg", 50 - label)


@pytest.fixture
def five(store: Store) -> Store:
    for label, created_at in CREATED.items():
        store.put("message", {**message(0, created_at=created_at), "id": label_id(label)})
    store.put("message", message(99, thread_n=2, created_at=2_500))  # another thread's
    return store


@pytest.mark.parametrize(
    ("order", "after", "before", "limit", "labels", "has_more"),
    [
        ("desc", None, None, 20, [5, 4, 3, 2, 1], False),
        ("desc", None, None, 5, [5, 4, 3, 2, 1], False),
        ("desc", None, None, 2, [5, 4], True),
        ("desc", 4, None, 2, [3, 2], True),
        ("desc", 3, None, 2, [2, 1], False),
        ("desc", 1, None, 20, [], False),
        ("desc", None, 2, 2, [4, 3], True),
        ("desc", None, 3, 2, [5, 4], False),
        ("desc", None, 5, 20, [], False),
        ("desc", 5, 1, 2, [4, 3], True),
        ("desc", 5, 1, 20, [4, 3, 2], False),
        ("desc", 1, 5, 20, [], False),
        ("asc", None, None, 20, [1, 2, 3, 4, 5], False),
        ("asc", None, None, 3, [1, 2, 3], True),
        ("asc", 2, None, 2, [3, 4], True),
        ("asc", 3, None, 2, [4, 5], False),
        ("asc", None, 4, 2, [2, 3], True),
        ("asc", None, 3, 2, [1, 2], False),
        ("asc", 1, 4, 20, [2, 3], False),
        ("asc", 1, 5, 1, [2], True),
    ],
)
def test_list_paginates_like_the_assistant_api(
    five: Store,
    order: str,
    after: int | None,
    before: int | None,
    limit: int,
    labels: list[int],
    has_more: bool,
) -> None:
    page = five.list(
        "message",
        parent_id=ident("thread", 1),
        order=order,
        limit=limit,
        after=None if after is None else label_id(after),
        before=None if before is None else label_id(before),
    )
    ids = [label_id(label) for label in labels]
    expected = Page(
        [{**message(0, created_at=CREATED[label]), "id": label_id(label)} for label in labels],
        has_more,
        ids[0] if ids else None,
        ids[-1] if ids else None,
    )
    assert page == expected


@pytest.mark.parametrize("cursor", ["after", "before"])
def test_list_with_unknown_or_foreign_cursor_is_empty(five: Store, cursor: str) -> None:
    for cursor_id in (ident("msg", 12345), ident("msg", 99)):  # unknown; in thread 2
        kwargs: dict[str, Any] = {cursor: cursor_id}
        page = five.list("message", parent_id=ident("thread", 1), **kwargs)
        assert page == Page([], False, None, None)


def test_list_scopes_by_parent_only_for_child_kinds(five: Store) -> None:
    assert [d["id"] for d in five.list("message", parent_id=ident("thread", 2)).data] == [
        ident("msg", 99)
    ]
    everything = five.list("message", order="asc").data
    assert [d["id"] for d in everything] == [label_id(n) for n in (1, 2, 3)] + [
        ident("msg", 99),
        label_id(4),
        label_id(5),
    ]
    five.put("assistant", assistant(1))
    assert five.list("assistant", parent_id="ignored").first_id == ident("asst", 1)
    assert five.list("run", parent_id=ident("thread", 1)) == Page([], False, None, None)


def test_list_clamps_limit_to_1_through_100(store: Store) -> None:
    store.put_many([("assistant", assistant(n, created_at=n), None) for n in range(101)])
    assert [len(store.list("assistant", limit=n).data) for n in (-5, 0, 1, 100, 1_000)] == [
        1,
        1,
        1,
        100,
        100,
    ]
    assert store.list("assistant", limit=1_000).has_more is True
    assert store.list("assistant", limit=1_000, after=ident("asst", 100)).data[-1]["id"] == ident(
        "asst", 0
    )


def test_list_rejects_unknown_order(store: Store) -> None:
    with pytest.raises(ValueError, match="order must be 'asc' or 'desc', got 'newest'"):
        store.list("message", order="newest")


# -- update -----------------------------------------------------------------------------------


def test_update_replaces_and_returns_the_stored_record(store: Store) -> None:
    store.put("run", run(1), {"responses": ["resp_1"]})
    rid = ident("run", 1)

    def start(record: Record) -> Record:
        return Record({**record.data, "status": "in_progress"}, {"responses": ["resp_1", "r2"]})

    expected = Record({**run(1), "status": "in_progress"}, {"responses": ["resp_1", "r2"]})
    assert store.update("run", rid, start) == expected
    assert store.get("run", rid) == expected
    assert store.update("run", rid, lambda record: None) == expected
    assert store.update("run", ident("run", 2), start) is None
    assert store.get("run", ident("run", 2)) is None


def test_update_that_fails_leaves_the_record_alone(store: Store) -> None:
    store.put("run", run(1))
    rid = ident("run", 1)

    def explode(record: Record) -> Record:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        store.update("run", rid, explode)
    with pytest.raises(ValueError, match="returned a record with id run_2"):
        store.update("run", rid, lambda r: Record({**r.data, "id": "run_2"}, r.meta))
    assert store.get("run", rid) == Record(run(1), {})
    assert store.update("run", rid, bump) == Record(run(1), {"n": 1})  # store still usable


def test_update_is_atomic_across_32_threads(store: Store) -> None:
    store.put("thread", thread(1))

    def work(_: int) -> None:
        for _ in range(50):
            store.update("thread", ident("thread", 1), bump)

    run_threads(32, work)
    assert store.get("thread", ident("thread", 1)) == Record(thread(1), {"n": 1600})


def test_32_threads_mixing_put_update_and_list_all_land(store: Store) -> None:
    store.put("thread", thread(1))

    def work(i: int) -> None:
        for j in range(20):
            store.put("message", message(i * 100 + j, created_at=j))
            store.update("thread", ident("thread", 1), bump)
            page = store.list("message", parent_id=ident("thread", 1), limit=5)
            assert 1 <= len(page.data) <= 5
            assert store.get("message", ident("msg", i * 100 + j)) is not None

    run_threads(32, work)
    assert store.get("thread", ident("thread", 1)) == Record(thread(1), {"n": 640})
    ids = all_ids(store, "message", parent_id=ident("thread", 1))
    assert sorted(ids) == sorted(ident("msg", i * 100 + j) for i in range(32) for j in range(20))


def test_closed_store_raises_store_error(store: Store) -> None:
    store.close()
    with pytest.raises(StoreError, match="is closed"):
        store.get("thread", ident("thread", 1))
    with pytest.raises(StoreError, match="is closed"):
        store.put("thread", thread(1))
    store.close()


# -- SQLite: files, migrations, processes, crashes ------------------------------------------------


def test_sqlite_keeps_records_across_reopen_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    first = SQLiteStore(path)
    first.put("message", message(1, text="持久"), {"k": 1})
    first.close()
    second = SQLiteStore(path)
    assert second.get("message", ident("msg", 1)) == Record(message(1, text="持久"), {"k": 1})
    second.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    stored = conn.execute("SELECT data, meta FROM records").fetchone()
    conn.close()
    assert stored[1] == '{"k":1}'
    assert '"value":"持久"' in stored[0]


def test_sqlite_migrations_run_once_per_file(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    for _ in range(2):
        SQLiteStore(path).close()
    conn = sqlite3.connect(path)
    names = [name for (name,) in conn.execute("SELECT name FROM schema_migrations ORDER BY name")]
    indexes = {
        name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")
    }
    conn.close()
    assert names == [m.__name__ for m in MIGRATIONS] == ["m001_records"]
    assert {"records_list", "records_seq"} <= indexes


def test_sqlite_refuses_memory_path_and_non_database_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="use 'memory'"):
        SQLiteStore(":memory:")
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"not a database at all" * 100)
    with pytest.raises(StoreError, match="file is not a database"):
        SQLiteStore(junk)


def spawn(script: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", script, *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


WRITER = """
import sys
from compat.store import Record, open_store
path, worker = sys.argv[1], int(sys.argv[2])
thread = {"id": "thread_" + "0" * 32, "object": "thread", "created_at": 1}
def bump(r):
    return Record(r.data, {**r.meta, "n": r.meta.get("n", 0) + 1})
print("ready", flush=True)
sys.stdin.readline()
store = open_store(path)  # all workers at once, on a file that does not exist yet
for i in range(50):
    store.put("thread", thread)  # meta None: keeps the count the other workers wrote
    msg = {"id": f"msg_{worker:08x}{i:024x}", "created_at": i, "thread_id": thread["id"]}
    store.put("message", msg)
    store.update("thread", thread["id"], bump)
store.close()
print("done", flush=True)
"""


def test_sqlite_processes_share_one_file(tmp_path: Path) -> None:
    path = tmp_path / "new" / "shared.sqlite3"
    workers = [spawn(WRITER, str(path), str(w)) for w in range(4)]
    for w in workers:
        assert w.stdout is not None and w.stdout.readline() == "ready\n"
    for w in workers:
        assert w.stdin is not None
        w.stdin.write("go\n")
        w.stdin.flush()
    outputs = [w.communicate(timeout=60)[0] for w in workers]
    assert outputs == ["done\n"] * 4
    assert [w.returncode for w in workers] == [0] * 4
    store = SQLiteStore(path)
    tid = "thread_" + "0" * 32
    assert store.get("thread", tid) == Record(
        {"id": tid, "object": "thread", "created_at": 1}, {"n": 200}
    )
    ids = all_ids(store, "message", parent_id=tid)
    store.close()
    assert sorted(ids) == sorted(f"msg_{w:08x}{i:024x}" for w in range(4) for i in range(50))


CRASHER = """
import os, sqlite3, sys
from compat.store import SQLiteStore, _sqlite_direct
path, batch_size, crash_batch, crash_row, direct = sys.argv[1], *map(int, sys.argv[2:])
state = {"armed": False, "rows": 0}
def trace(sql):
    if state["armed"] and "INSERT INTO records (" in sql:
        state["rows"] += 1
        if state["rows"] == crash_row:
            os._exit(3)  # inside the open transaction, half the batch written
if direct:
    Direct = _sqlite_direct.DirectConnection
    real_init, real_run = Direct.__init__, Direct.run
    def init(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        self.execute("PRAGMA cache_size=5")  # spill uncommitted pages into the WAL early
    def run(self, sql, params=()):
        trace(sql)
        return real_run(self, sql, params)
    Direct.__init__, Direct.run = init, run
else:
    real_connect = sqlite3.connect
    def connect(*args, **kwargs):
        conn = real_connect(*args, **kwargs)
        conn.execute("PRAGMA cache_size=5")
        conn.set_trace_callback(trace)
        return conn
    sqlite3.connect = connect
store = SQLiteStore(path, direct=bool(direct))
assert store.direct == bool(direct)
for b in range(crash_batch + 1):
    items = [
        ("message", {"id": f"msg_{b:08x}{i:024x}", "created_at": i,
                     "thread_id": f"thread_{b:032x}", "body": "x" * 500}, {"b": b})
        for i in range(batch_size)
    ]
    state["armed"] = b == crash_batch
    store.put_many(items)
    print("committed", b, flush=True)
"""


@pytest.mark.parametrize("writer", ["direct", "sqlite3 module"])
def test_sqlite_crash_mid_put_many_leaves_whole_batches(tmp_path: Path, writer: str) -> None:
    if writer == "direct" and _sqlite_direct.load() is None:
        pytest.skip("the sqlite3 module's SQLite library is not reachable here")
    path = tmp_path / "crash.sqlite3"
    batch, crash_batch = 300, 3
    direct = str(int(writer == "direct"))
    proc = spawn(CRASHER, str(path), str(batch), str(crash_batch), str(batch // 2), direct)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 3
    assert out.splitlines() == [f"committed {b}" for b in range(crash_batch)]
    assert os.path.getsize(f"{path}-wal") > 0  # the crash left a WAL to recover from

    store = SQLiteStore(path)
    for b in range(crash_batch + 1):
        ids = all_ids(store, "message", parent_id=ident("thread", b))
        expected = [f"msg_{b:08x}{i:024x}" for i in range(batch)] if b < crash_batch else []
        assert ids == expected
        for i in range(0, batch if b < crash_batch else 0, 37):
            data = {
                "id": f"msg_{b:08x}{i:024x}",
                "created_at": i,
                "thread_id": ident("thread", b),
                "body": "x" * 500,
            }
            assert store.get("message", data["id"]) == Record(data, {"b": b})
    store.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    assert conn.execute("SELECT COUNT(*) FROM records").fetchone() == (batch * crash_batch,)
    conn.close()


# -- open_store and the default path ----------------------------------------------------------


def test_open_store_memory_gives_a_memory_store() -> None:
    store = open_store("memory")
    assert isinstance(store, MemoryStore)
    store.close()


def test_open_store_path_expands_home_and_creates_directories(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    store = open_store("~/a/b/c.sqlite3")
    assert isinstance(store, SQLiteStore)
    assert store.path == tmp_path / "a" / "b" / "c.sqlite3"
    store.put("thread", thread(1))
    store.close()
    assert (tmp_path / "a" / "b" / "c.sqlite3").is_file()
    with pytest.raises(ValueError, match="empty store spec"):
        open_store("")


@pytest.mark.parametrize(
    ("platform", "env", "expected"),
    [
        ("linux", {"XDG_STATE_HOME": "{tmp}/xdg"}, "{tmp}/xdg/compat/compat.sqlite3"),
        ("linux", {}, "{home}/.local/state/compat/compat.sqlite3"),
        ("linux", {"XDG_STATE_HOME": "relative"}, "{home}/.local/state/compat/compat.sqlite3"),
        ("freebsd13", {}, "{home}/.local/state/compat/compat.sqlite3"),
        ("darwin", {}, "{home}/Library/Application Support/compat/compat.sqlite3"),
        ("win32", {"LOCALAPPDATA": "{tmp}/local"}, "{tmp}/local/compat/compat.sqlite3"),
        ("win32", {}, "{home}/AppData/Local/compat/compat.sqlite3"),
    ],
)
def test_default_store_path_follows_the_platform_state_dir(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    platform: str,
    env: dict[str, str],
    expected: str,
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_STATE_HOME", raising=False)
    monkeypatch.delenv("LOCALAPPDATA", raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value.format(tmp=tmp_path))
    monkeypatch.setattr(sys, "platform", platform)
    assert default_store_path() == Path(expected.format(tmp=tmp_path, home=home))
