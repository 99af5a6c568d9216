"""``python -m compat import``: the emulator's Assistant side, filled through the real dashscope
SDK, copied into a store that the responses backend then serves and continues from."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import compat
from compat.cli import main
from compat.cli.importer import IMPORTED_MID_RUN, run_record, thread_meta
from compat.store import open_store
from compat.testing import Emulator, Scenario

dashscope = pytest.importorskip("dashscope")

ROOT = Path(__file__).resolve().parents[2]
TOOL = {
    "type": "function",
    "function": {
        "name": "lookup",
        "description": "Look a word up.",
        "parameters": {"type": "object", "properties": {"word": {"type": "string"}}},
    },
}


def _ok(obj: Any) -> Any:
    assert obj.status_code == 200, obj
    return obj


def populate(emu: Emulator) -> dict[str, Any]:
    """Two assistants, a finished thread, a thread left in requires_action, through dashscope."""
    tutor = _ok(
        dashscope.Assistants.create(
            model="qwen-max",
            name="Tutor",
            instructions="Teach kindly.",
            tools=[TOOL],
            metadata={"team": "edu"},
        )
    )
    other = _ok(dashscope.Assistants.create(model="qwen-plus", name="Other"))
    done = _ok(
        dashscope.Threads.create(
            messages=[{"role": "user", "content": "What is a list?"}], metadata={"user": "u1"}
        )
    )
    emu.queue(Scenario.text("A list is an ordered collection."))
    run = _ok(dashscope.Runs.create(done.id, assistant_id=tutor.id))
    _ok(dashscope.Runs.wait(run.id, thread_id=done.id))
    _ok(dashscope.Messages.create(done.id, content="And a tuple?", metadata={"n": "2"}))
    waiting = _ok(dashscope.Threads.create(messages=[{"role": "user", "content": "Define cat"}]))
    emu.queue(Scenario.function_call("lookup", {"word": "cat"}))
    pending = _ok(dashscope.Runs.create(waiting.id, assistant_id=tutor.id))
    pending = _ok(dashscope.Runs.wait(pending.id, thread_id=waiting.id))
    assert pending.status == "requires_action"
    return {"tutor": tutor.id, "other": other.id, "done": done.id, "waiting": waiting.id}


def listed(kind: str, parent: str) -> list[dict[str, Any]]:
    """What dashscope lists of ``kind`` under ``parent`` (a thread, or "thread/run")."""
    if kind == "message":
        page = dashscope.Messages.list(parent, order="asc", limit=100)
    elif kind == "run":
        page = dashscope.Runs.list(parent, order="asc", limit=100)
    else:
        thread_id, run_id = parent.split("/")
        page = dashscope.Steps.list(run_id, thread_id=thread_id, order="asc", limit=100)
    _ok(page)
    return [compat_plain(item) for item in page.data]


def compat_plain(obj: Any) -> dict[str, Any]:
    from compat.backends.assistants import to_plain

    return dict(to_plain(obj))


def dump(store_path: Path) -> dict[str, Any]:
    """Every record of the store, by kind and id."""
    store = open_store(store_path)
    try:
        out: dict[str, Any] = {}
        with store.transaction() as tx:
            for kind in ("assistant", "thread"):
                for item in store.list(kind, limit=100).data:
                    record = tx.get(kind, item["id"])
                    assert record is not None
                    out[item["id"]] = (record.data, record.meta)
        return out
    finally:
        store.close()


@pytest.fixture
def store_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "store.sqlite3"
    monkeypatch.setenv("COMPAT_STORE", str(path))
    return path


def test_import_copies_everything_with_ids_and_the_shapes_the_backend_expects(
    compat_emulator: Emulator, store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = populate(compat_emulator)
    code = main(["import", "--assistant", ids["other"], "--thread", ids["done"]])
    assert code == 0
    out = capsys.readouterr().out
    # the run's assistant (Tutor) comes with the thread
    assert out.strip() == (
        "import: added 2 assistants, 3 messages, 1 run, 1 step, 1 thread; "
        "0 already present; 0 failed"
    )
    store = open_store(store_path)
    try:
        tutor = store.get("assistant", ids["tutor"])
        assert tutor is not None
        source = compat_plain(dashscope.Assistants.retrieve(ids["tutor"]))
        for key in ("model", "name", "instructions", "tools", "metadata", "created_at"):
            assert tutor.data[key] == source[key]
        assert store.get("assistant", ids["other"]) is not None
        thread = store.get("thread", ids["done"])
        assert thread is not None
        assert thread.data["metadata"] == {"user": "u1"}
        assert thread.meta == thread_meta("complete")
        assert "chain_cursor" not in thread.meta
        stored = store.list("message", parent_id=ids["done"], order="asc", limit=100).data
        expected = listed("message", ids["done"])
        assert [m["id"] for m in stored] == [m["id"] for m in expected]
        for mine, theirs in zip(stored, expected, strict=True):
            for key in ("role", "content", "created_at", "metadata", "run_id"):
                assert mine[key] == theirs[key]
        runs = store.list("run", parent_id=ids["done"], order="asc", limit=100).data
        assert [r["id"] for r in runs] == [r["id"] for r in listed("run", ids["done"])]
        assert runs[0]["status"] == "completed"
        steps = store.list("step", parent_id=runs[0]["id"], order="asc").data
        run_steps = listed("step", f"{ids['done']}/{runs[0]['id']}")
        assert [s["id"] for s in steps] == [s["id"] for s in run_steps]
    finally:
        store.close()


def test_an_active_run_is_imported_expired_and_does_not_hold_the_thread(
    compat_emulator: Emulator, store_path: Path
) -> None:
    ids = populate(compat_emulator)
    assert main(["import", "--thread", ids["waiting"]]) == 0
    store = open_store(store_path)
    try:
        (run,) = store.list("run", parent_id=ids["waiting"]).data
        assert run["status"] == "expired"
        assert run["last_error"] == IMPORTED_MID_RUN
        assert run["required_action"] is None
        thread = store.get("thread", ids["waiting"])
        assert thread is not None and thread.meta["active_run_id"] is None
    finally:
        store.close()
    assert run_record({"id": "r", "status": "completed"}) == {"id": "r", "status": "completed"}


def test_a_second_import_adds_and_changes_nothing(
    compat_emulator: Emulator, store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = populate(compat_emulator)
    argv = ["import", "--all-assistants", "--thread", ids["done"], "--thread", ids["waiting"]]
    assert main(argv) == 0
    before = dump(store_path)
    capsys.readouterr()
    assert main(argv) == 0
    assert capsys.readouterr().out.strip() == ("import: added nothing; 4 already present; 0 failed")
    assert dump(store_path) == before


def test_a_partly_imported_thread_is_finished_next_time(
    compat_emulator: Emulator, store_path: Path
) -> None:
    ids = populate(compat_emulator)
    first = listed("message", ids["done"])[0]
    store = open_store(store_path)
    thread = compat_plain(dashscope.Threads.retrieve(ids["done"]))
    del thread["status_code"], thread["request_id"]
    store.put("thread", thread, thread_meta("partial"))
    store.put("message", first, {})
    store.close()
    assert main(["import", "--thread", ids["done"]]) == 0
    store = open_store(store_path)
    try:
        stored = store.list("message", parent_id=ids["done"], order="asc", limit=100).data
        assert [m["id"] for m in stored] == [m["id"] for m in listed("message", ids["done"])]
        record = store.get("thread", ids["done"])
        assert record is not None and record.meta["imported"] == "complete"
    finally:
        store.close()


def test_a_failing_id_is_reported_and_the_rest_go_through(
    compat_emulator: Emulator, store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = populate(compat_emulator)
    code = main(["import", "--thread", "thread_missing", "--thread", ids["done"]])
    assert code == 1
    captured = capsys.readouterr()
    assert "import: thread thread_missing failed: thread thread_missing: HTTP 400" in captured.err
    assert captured.out.strip().endswith("; 1 failed")
    store = open_store(store_path)
    try:
        assert store.get("thread", ids["done"]) is not None
        assert store.get("thread", "thread_missing") is None
    finally:
        store.close()


def test_usage_errors_exit_2(
    compat_emulator: Emulator, store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["import"]) == 2
    assert "name what to import" in capsys.readouterr().err
    assert main(["import", "--threads-file", str(store_path.parent / "none.txt")]) == 2
    assert "cannot read" in capsys.readouterr().err
    assert not store_path.exists()


def test_a_dry_run_writes_nothing(
    compat_emulator: Emulator, store_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = populate(compat_emulator)
    assert main(["import", "--dry-run", "--thread", ids["done"]]) == 0
    assert capsys.readouterr().out.startswith("import: would add ")
    assert not store_path.exists()


def test_imported_threads_are_served_and_continued_by_the_responses_backend(
    compat_emulator: Emulator, store_path: Path
) -> None:
    ids = populate(compat_emulator)
    assert main(["import", "--thread", ids["done"]]) == 0
    compat.configure(backend="responses", store=str(store_path))
    try:
        before = len(compat_emulator.requests)
        messages = compat.Messages.list(ids["done"], order="asc")
        assert [m.content[0].text.value for m in messages.data] == [
            "What is a list?",
            "A list is an ordered collection.",
            "And a tuple?",
        ]
        assert compat.Assistants.retrieve(ids["tutor"]).name == "Tutor"
        assert len(compat_emulator.requests) == before  # served from the store
        compat_emulator.queue(Scenario.text("A tuple cannot change."))
        run = compat.Runs.create(ids["done"], assistant_id=ids["tutor"])
        run = compat.Runs.wait(run.id, thread_id=ids["done"])
        assert run.status == "completed"
        (request,) = [r.json for r in compat_emulator.requests if r.path.endswith("/responses")]
        assert "previous_response_id" not in request or request["previous_response_id"] is None
        texts = [(item["role"], item["content"]) for item in request["input"]]
        assert texts == [
            ("user", "What is a list?"),
            ("assistant", "A list is an ordered collection."),
            ("user", "And a tuple?"),
        ]
    finally:
        compat.configure(reset=True)


def test_import_as_a_subprocess_from_a_threads_file(
    compat_emulator: Emulator, tmp_path: Path
) -> None:
    ids = populate(compat_emulator)
    threads = tmp_path / "threads.txt"
    threads.write_text(f"# ours\n{ids['done']}\n\n{ids['waiting']}  # pending\n", "utf-8")
    store = tmp_path / "sub.sqlite3"
    env = dict(os.environ, **compat_emulator.env(), COMPAT_STORE=str(store))
    result = subprocess.run(
        [sys.executable, "-m", "compat", "import", "--threads-file", str(threads)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("import: added ")
    assert result.stderr == ""  # no progress bar: stderr is not a terminal
    opened = open_store(store)
    try:
        assert opened.get("thread", ids["done"]) is not None
        assert opened.get("thread", ids["waiting"]) is not None
    finally:
        opened.close()
