"""The store applying lifecycle moves atomically, on every store; transactions and locking."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from compat import lifecycle
from compat.store import Record, RunGone, SQLiteStore, Store, StoreError


def _run(status: str = "queued", **fields: Any) -> dict[str, Any]:
    return {
        "id": "run_1",
        "object": "thread.run",
        "created_at": 1_000,
        "thread_id": "thread_1",
        "status": status,
        "metadata": {},
        "started_at": None,
        "completed_at": None,
        "failed_at": None,
        "cancelled_at": None,
        "expires_at": None,
        "required_action": None,
        **fields,
    }


# -- the store makes moves stick ------------------------------------------------------------------


def test_transition_checks_the_stored_status_not_the_callers(store: Store) -> None:
    store.put("run", _run("in_progress"))
    store.transition("run_1", "cancel")
    # A driver holding an old in_progress snapshot asks to complete: the store re-reads, sees
    # cancelling, and completing is legal from there (the cancel lost the race)...
    done = store.transition("run_1", "complete", _run("in_progress", completed_at=7))
    assert done.data["status"] == "completed"
    assert done.data["completed_at"] == 7
    # ...but nothing leaves a terminal status, whatever the caller believes.
    with pytest.raises(lifecycle.IllegalMove):
        store.transition("run_1", "cancel")
    with pytest.raises(lifecycle.IllegalMove):
        store.transition("run_1", "fail", _run("in_progress"))
    record = store.get("run", "run_1")
    assert record is not None
    assert record.data["status"] == "completed"


def test_transition_never_writes_the_users_metadata(store: Store) -> None:
    store.put("run", _run("in_progress"), {"lease": {"owner": "a", "until": 1}})
    store.update("run", "run_1", lambda r: Record(dict(r.data, metadata={"user": "wrote"}), r.meta))
    stale = _run("in_progress", metadata={})
    done = store.transition("run_1", "complete", stale, {"lease": None})
    assert done.data["metadata"] == {"user": "wrote"}
    assert done.meta == {"lease": None}


def test_transition_of_a_missing_run_raises_run_gone(store: Store) -> None:
    with pytest.raises(RunGone):
        store.transition("run_1", "cancel")


def test_a_failed_transaction_leaves_nothing_behind(store: Store) -> None:
    store.put("thread", {"id": "thread_1", "created_at": 1}, {"n": 1})
    store.put("run", _run("in_progress"))
    with pytest.raises(lifecycle.IllegalMove), store.transaction() as tx:
        tx.put("thread", {"id": "thread_1", "created_at": 1}, {"n": 2})
        tx.delete("run", "run_1")
        tx.put("message", {"id": "msg_1", "created_at": 2, "thread_id": "thread_1"})
        raise lifecycle.IllegalMove("in_progress", "x")
    thread = store.get("thread", "thread_1")
    assert thread is not None
    assert thread.meta == {"n": 1}
    assert store.get("run", "run_1") is not None
    assert store.get("message", "msg_1") is None


def test_reads_in_a_transaction_see_its_writes_and_children_are_ordered(store: Store) -> None:
    with store.transaction() as tx:
        for n in (3, 1, 2):
            tx.put("message", {"id": f"msg_{n}", "created_at": n, "thread_id": "t"})
        assert [r.data["id"] for r in tx.children("message", "t")] == ["msg_1", "msg_2", "msg_3"]
        assert tx.get("message", "msg_3") is not None
        assert tx.now_ms() > 0


def test_concurrent_moves_from_many_threads_apply_exactly_one(store: Store) -> None:
    # Sixteen threads race to submit tool outputs for one requires_action run: one wins.
    store.put("run", _run("requires_action"))
    barrier = threading.Barrier(16)
    won: list[int] = []
    lost: list[int] = []

    def submit(i: int) -> None:
        barrier.wait(10)
        try:
            store.transition("run_1", "submit")
            won.append(i)
        except lifecycle.IllegalMove:
            lost.append(i)

    threads = [threading.Thread(target=submit, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(won) == 1
    assert len(lost) == 15


def _message(status: str, text: str) -> dict[str, Any]:
    return {
        "id": "msg_1",
        "object": "thread.message",
        "created_at": 2,
        "thread_id": "thread_1",
        "status": status,
        "content": [{"type": "text", "text": {"value": text, "annotations": []}}],
    }


def test_a_transaction_reads_a_status_alone(store: Store) -> None:
    long = '\u4f60\u597d "quoted" ' * 20_000  # a long answer, non-ASCII and escaped
    store.put("thread", {"id": "thread_1", "created_at": 1}, {"active_run_id": "run_1"})
    store.put("run", _run("in_progress"), {"lease": {"owner": "a", "until": 5}})
    store.put("message", _message("in_progress", long), {"mine": True})
    store.put("step", {"id": "step_1", "created_at": 3, "run_id": "run_1", "status": 7})
    with store.transaction() as tx:
        assert tx.status("message", "msg_1") == "in_progress"
        assert tx.status("run", "run_1") == "in_progress"
        assert tx.status("thread", "thread_1") is None  # a thread has no status
        assert tx.status("step", "step_1") is None  # not a string
        assert tx.status("message", "msg_2") is None
        assert tx.status("assistant", "asst_1") is None
        # The checkpoint's write: meta None keeps the stored meta; the read sees the write.
        tx.put("message", _message("completed", long + "!"), None)
        assert tx.status("message", "msg_1") == "completed"
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.put("message", _message("incomplete", "x"), None)
        assert tx.status("message", "msg_1") == "incomplete"
        raise RuntimeError("roll back")
    with store.transaction() as tx:
        assert tx.status("message", "msg_1") == "completed"
    stored = store.get("message", "msg_1")
    assert stored is not None
    assert stored.data == _message("completed", long + "!")
    assert stored.meta == {"mine": True}
    with pytest.raises(ValueError, match="unknown record kind"), store.transaction() as tx:
        tx.status("file", "x")  # type: ignore[arg-type]


def test_a_checkpoint_by_status_never_overwrites_a_finished_message(store: Store) -> None:
    # Checkpoints (status read, then the text so far written while in_progress) race the
    # message's completion: whichever order they take, completed is never overwritten.
    store.put("thread", {"id": "thread_1", "created_at": 1})
    store.put("run", _run("in_progress"))
    store.put("message", _message("in_progress", ""))
    barrier = threading.Barrier(9)

    def checkpoint(n: int) -> None:
        barrier.wait(10)
        for i in range(20):
            with store.transaction() as tx:
                if tx.status("message", "msg_1") == "in_progress":
                    tx.put("message", _message("in_progress", f"{n}-{i}"), None)

    def complete() -> None:
        barrier.wait(10)
        with store.transaction() as tx:
            if tx.status("message", "msg_1") == "in_progress":
                tx.put("message", _message("completed", "the answer"), None)

    threads = [threading.Thread(target=checkpoint, args=(n,)) for n in range(8)]
    threads.append(threading.Thread(target=complete))
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    stored = store.get("message", "msg_1")
    assert stored is not None
    assert stored.data == _message("completed", "the answer")


def test_sqlite_store_files_are_private(tmp_path: Path) -> None:
    from compat.store import open_store

    path = tmp_path / "state" / "compat" / "s.sqlite3"
    store = open_store(path)
    try:
        store.put("thread", {"id": "thread_1", "created_at": 1})
        assert (path.parent.stat().st_mode & 0o777) == 0o700
        for name in ("s.sqlite3", "s.sqlite3-wal", "s.sqlite3-shm"):
            assert (path.parent / name).stat().st_mode & 0o777 == 0o600, name
    finally:
        store.close()


def test_a_store_written_by_a_newer_compat_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "s.sqlite3"
    SQLiteStore(path).close()
    import sqlite3

    with sqlite3.connect(path) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES ('m999_from_the_future', 1)")
    conn.close()
    with pytest.raises(StoreError, match=r"newer compat.*m999_from_the_future"):
        SQLiteStore(path)
