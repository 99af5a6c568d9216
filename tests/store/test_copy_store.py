"""`python -m compat copy-store`: ids, order and meta kept; a second copy changes nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from compat.cli import main
from compat.store import KINDS, SQLiteStore, Store, open_store


def dst_spec(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> str:
    if kind == "sqlite":
        return str(tmp_path / "dst.sqlite3")
    uri: str = request.getfixturevalue("pg_uri")
    return uri


def fill(store: Store) -> None:
    """Two threads with equal created_at (order by insertion), messages, runs, steps, meta."""
    store.put("assistant", {"id": "asst_b", "created_at": 5, "model": "m"}, {"k": "b"})
    store.put("assistant", {"id": "asst_a", "created_at": 5, "model": "m"})
    for t in ("thread_z", "thread_y"):
        store.put("thread", {"id": t, "created_at": 7}, {"active_run_id": f"run_{t}"})
        for m in (3, 1, 2):
            data = {"id": f"msg_{t}_{m}", "created_at": 10, "thread_id": t, "text": f"第{m}"}
            store.put("message", data)
        store.put("run", {"id": f"run_{t}", "created_at": 11, "thread_id": t}, {"lease": None})
        store.put("step", {"id": f"step_{t}", "created_at": 12, "run_id": f"run_{t}"})
    store.delete("message", "msg_thread_y_1")


def snapshot(store: Store) -> dict[str, list[tuple[dict[str, Any], dict[str, Any]]]]:
    """Every record of every kind, in list order, with its meta."""
    out: dict[str, list[tuple[dict[str, Any], dict[str, Any]]]] = {}
    for kind in KINDS:
        rows = []
        for data in store.list(kind, limit=100, order="asc").data:
            record = store.get(kind, data["id"])
            assert record is not None
            rows.append((record.data, record.meta))
        out[kind] = rows
    return out


@pytest.mark.parametrize(
    "dst_kind", ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]
)
def test_copy_store_keeps_ids_order_and_meta_and_is_idempotent(
    dst_kind: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    capsys: pytest.CaptureFixture[str],
) -> None:
    src_path = tmp_path / "src.sqlite3"
    src = SQLiteStore(src_path)
    fill(src)
    expected = snapshot(src)
    src.close()
    dst = dst_spec(dst_kind, tmp_path, request)

    assert main(["copy-store", str(src_path), dst]) == 0
    assert capsys.readouterr().err == (
        "copied 2 assistants, 2 threads, 5 messages, 2 runs, 2 steps\n"
    )
    store = open_store(dst)
    assert snapshot(store) == expected
    assert [m["id"] for m in store.list("message", parent_id="thread_z", order="asc").data] == [
        "msg_thread_z_3",
        "msg_thread_z_1",
        "msg_thread_z_2",
    ]
    store.close()

    assert main(["copy-store", str(src_path), dst]) == 0
    store = open_store(dst)
    assert snapshot(store) == expected
    store.close()


def test_copy_store_refuses_one_store_as_both_and_reports_bad_stores(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "s.sqlite3"
    assert main(["copy-store", str(path), str(tmp_path / "." / "s.sqlite3")]) == 2
    assert "SRC and DST are the same store" in capsys.readouterr().err
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"not a database" * 100)
    assert main(["copy-store", str(junk), str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("python -m compat copy-store: ")
    assert "junk.sqlite3" in err
