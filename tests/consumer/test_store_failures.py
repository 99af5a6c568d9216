"""When compat's store fails: every call answers the legacy error object, nothing acknowledged is
lost, and the thread is usable once the store is back.

Real failures only: a store path whose parent is a file, a PostgreSQL URI to a closed port, a
full disk (a file size limit, ``RLIMIT_FSIZE``, in a child process), sessions terminated by the
server, and a server stopped and started again (a cluster of the test's own, ``tests/pg.py``).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import compat
from compat import aio
from compat.testing import Emulator
from tests.pg import (
    Cluster,
    fresh_schema_uri,
    pg_server_uri,
    terminate_other_sessions,
    throwaway_cluster,
)

from .held import wait_for

pytestmark = pytest.mark.skipif(
    os.environ.get("COMPAT_BACKEND", "responses") != "responses",
    reason="responses backend only: the assistants backend has no store",
)

ROOT = Path(__file__).resolve().parents[2]
CLASSES = ("Assistants", "Threads", "Messages", "Runs", "Steps")
STREAMED = {"stream": True}

#: One call of every facade method: (class, method, args, kwargs). Ids need not exist: the
#: store fails before anything is looked up.
CALLS: list[tuple[str, str, tuple[Any, ...], dict[str, Any]]] = [
    ("Assistants", "create", (), {"model": "qwen-plus"}),
    ("Assistants", "call", (), {"model": "qwen-plus"}),
    ("Assistants", "retrieve", ("asst_1",), {}),
    ("Assistants", "get", ("asst_1",), {}),
    ("Assistants", "list", (), {}),
    ("Assistants", "update", ("asst_1",), {"name": "n"}),
    ("Assistants", "delete", ("asst_1",), {}),
    ("Threads", "create", (), {}),
    ("Threads", "call", (), {}),
    ("Threads", "retrieve", ("thread_1",), {}),
    ("Threads", "get", ("thread_1",), {}),
    ("Threads", "update", ("thread_1",), {"metadata": {"k": "v"}}),
    ("Threads", "delete", ("thread_1",), {}),
    ("Threads", "create_and_run", (), {"assistant_id": "asst_1"}),
    ("Messages", "create", ("thread_1",), {"content": "Hi"}),
    ("Messages", "call", ("thread_1",), {"content": "Hi"}),
    ("Messages", "retrieve", ("msg_1",), {"thread_id": "thread_1"}),
    ("Messages", "get", ("msg_1",), {"thread_id": "thread_1"}),
    ("Messages", "list", ("thread_1",), {}),
    ("Messages", "update", ("msg_1",), {"thread_id": "thread_1", "metadata": {}}),
    ("Runs", "create", ("thread_1",), {"assistant_id": "asst_1"}),
    ("Runs", "create", ("thread_1",), {"assistant_id": "asst_1", **STREAMED}),
    ("Runs", "call", ("thread_1",), {"assistant_id": "asst_1", **STREAMED}),
    ("Runs", "create_thread_and_run", (), {"assistant_id": "asst_1"}),
    ("Runs", "create_thread_and_run", (), {"assistant_id": "asst_1", **STREAMED}),
    ("Runs", "list", ("thread_1",), {}),
    ("Runs", "retrieve", ("run_1",), {"thread_id": "thread_1"}),
    ("Runs", "get", ("run_1",), {"thread_id": "thread_1"}),
    ("Runs", "update", ("run_1",), {"thread_id": "thread_1", "metadata": {}}),
    ("Runs", "cancel", ("run_1",), {"thread_id": "thread_1"}),
    ("Runs", "wait", ("run_1",), {"thread_id": "thread_1"}),
    ("Runs", "submit_tool_outputs", ("run_1",), {"thread_id": "thread_1", "tool_outputs": [{}]}),
    (
        "Runs",
        "submit_tool_outputs",
        ("run_1",),
        {"thread_id": "thread_1", "tool_outputs": [{}], **STREAMED},
    ),
    ("Steps", "list", ("run_1",), {"thread_id": "thread_1"}),
    ("Steps", "retrieve", ("step_1",), {"thread_id": "thread_1", "run_id": "run_1"}),
    ("Steps", "get", ("step_1",), {"thread_id": "thread_1", "run_id": "run_1"}),
]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_the_calls_cover_every_facade_method() -> None:
    public = {
        (cls, name)
        for cls in CLASSES
        for name, member in vars(getattr(compat, cls)).items()
        if isinstance(member, classmethod) and not name.startswith("_")
    }
    public.discard(("Runs", "convert_stream_object"))  # no I/O
    assert {(cls, name) for cls, name, _, _ in CALLS} == public


@pytest.fixture(params=["sqlite", "postgresql"])
def unusable_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A store spec that cannot be opened: a path under a file, a server nobody listens for."""
    if request.param == "sqlite":
        (tmp_path / "a-file").write_text("")
        spec = str(tmp_path / "a-file" / "compat.sqlite3")
    else:
        pytest.importorskip("psycopg")
        spec = f"postgresql://compat:pw@127.0.0.1:{_closed_port()}/compat"
    compat.configure(backend="responses", store=spec, api_key="sk-test")
    yield spec
    compat.configure(reset=True)


def _assert_store_failed(reply: Any, streamed: bool) -> None:
    if streamed:
        ((event, item),) = reply
        assert event is None
        status_code, code, message = item["status_code"], item["code"], item["message"]
    else:
        status_code, code, message = reply.status_code, reply.code, reply.message
    assert (status_code, code) == (500, "InternalError")
    assert message.startswith("compat's store failed: ")
    assert "pw@" not in message  # a PostgreSQL password is never shown


@pytest.mark.parametrize(
    ("cls", "method", "args", "kwargs"),
    CALLS,
    ids=[f"{c}.{m}{'-stream' if k.get('stream') else ''}" for c, m, _, k in CALLS],
)
def test_every_call_answers_a_failing_store_with_the_legacy_error(
    unusable_store: str, cls: str, method: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    streamed = bool(kwargs.get("stream"))
    reply = getattr(getattr(compat, cls), method)(*args, **kwargs)
    _assert_store_failed(list(reply) if streamed else reply, streamed)

    async def call_async() -> Any:
        reply = await getattr(getattr(aio, cls), method)(*args, **kwargs)
        return [item async for item in reply] if streamed else reply

    _assert_store_failed(asyncio.run(call_async()), streamed)


# -- a full disk (SQLite) ------------------------------------------------------------------------

FULL_DISK = r"""
import json, os, resource, signal, sys, time
sys.path.insert(0, sys.argv[1])
import compat
from compat.testing import Emulator

store = sys.argv[2]
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG
hard = resource.getrlimit(resource.RLIMIT_FSIZE)[1]

def disk_full(full):
    # Writes go to the WAL, at its end: with the limit at its size, the next write fails.
    limit = os.path.getsize(store + "-wal") if full else hard
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))

def text(m):
    return m.content[0].text.value if m.content else ""

out = {}
with Emulator() as emu:
    os.environ.update(emu.env())
    compat.configure(backend="responses", store=store, lease_seconds=1)
    a = compat.Assistants.create(model="qwen-plus")
    t = compat.Threads.create(messages=[{"role": "user", "content": "Hi"}])
    out["first"] = [e for e, _ in compat.Runs.create(t.id, assistant_id=a.id, stream=True)][-1]

    disk_full(True)
    m = compat.Messages.create(t.id, content="not stored")
    out["message"] = [m.status_code, m.code]
    run = compat.Runs.create(t.id, assistant_id=a.id)
    out["run"] = [run.status_code, run.code]
    ((event, item),) = compat.Runs.create(t.id, assistant_id=a.id, stream=True)
    out["stream"] = [event, item["status_code"], item["code"]]

    disk_full(False)
    stream = compat.Runs.create(t.id, assistant_id=a.id, stream=True)  # the run is stored
    event, data = next(stream)
    disk_full(True)  # ... and the disk fills up mid-stream
    events = [(event, data), *stream]
    out["mid_stream"] = [events[-1][0], events[-1][1].last_error]
    run_id = data.id

    disk_full(False)
    deadline = time.monotonic() + 60
    while compat.Runs.retrieve(run_id, thread_id=t.id).status != "expired":
        assert time.monotonic() < deadline, "the run was never reaped"
        time.sleep(0.05)
    out["reaped"] = compat.Runs.retrieve(run_id, thread_id=t.id).last_error["code"]
    out["after"] = [e for e, _ in compat.Runs.create(t.id, assistant_id=a.id, stream=True)][-1]
    out["messages"] = [[m.role, text(m)] for m in compat.Messages.list(t.id, order="asc").data]
    out["runs"] = [r.status for r in compat.Runs.list(t.id, order="asc").data]
print(json.dumps(out))
"""


def test_a_full_disk_is_the_legacy_error_and_loses_nothing_acknowledged(tmp_path: Path) -> None:
    pytest.importorskip("resource")  # POSIX
    result = subprocess.run(
        [sys.executable, "-c", FULL_DISK, str(ROOT), str(tmp_path / "full.sqlite3")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = json.loads(result.stdout)
    answer = ["assistant", 'You said: "Hi". This is the emulator\'s deterministic answer.']
    assert out == {
        "first": "thread.run.completed",
        "message": [500, "InternalError"],
        "run": [500, "InternalError"],
        "stream": [None, 500, "InternalError"],
        "mid_stream": ["thread.run.failed", out["mid_stream"][1]],
        "reaped": "worker_lost",
        "after": "thread.run.completed",
        # what was acknowledged is there; what was refused is not
        "messages": [["user", "Hi"], answer, answer],
        "runs": ["completed", "expired", "completed"],
    }
    assert out["mid_stream"][1]["code"] == "store_error"
    # SQLite's own reason follows the store's path (for a file too large: "disk I/O error").
    message = out["mid_stream"][1]["message"]
    assert message.startswith(f"compat's store failed: {tmp_path / 'full.sqlite3'}: ")


# -- PostgreSQL: sessions terminated, the server stopped and started --------------------------


def _conversation(api: Any) -> tuple[Any, Any]:
    assistant = api.Assistants.create(model="qwen-plus")
    thread = api.Threads.create(messages=[{"role": "user", "content": "Hi"}])
    return assistant, thread


def _ran(api: Any, thread: Any, assistant: Any) -> str:
    return str(
        [e for e, _ in api.Runs.create(thread.id, assistant_id=assistant.id, stream=True)][-1]
    )


def _texts(thread: Any) -> list[tuple[str, str]]:
    page = compat.Messages.list(thread.id, order="asc")
    assert page.status_code == 200, page
    return [(m.role, m.content[0].text.value if m.content else "") for m in page.data]


@pytest.mark.postgres
def test_sessions_the_server_terminates_are_replaced_unseen(compat_emulator: Emulator) -> None:
    with fresh_schema_uri(pg_server_uri(), f"t_{os.getpid()}_{id(compat_emulator)}") as uri:
        compat.configure(backend="responses", store=uri)
        try:
            assistant, thread = _conversation(compat)
            assert _ran(compat, thread, assistant) == "thread.run.completed"
            assert terminate_other_sessions(uri) >= 1
            # No call sees the dropped sessions: each dead connection is replaced first.
            assert _ran(compat, thread, assistant) == "thread.run.completed"
            assert [role for role, _ in _texts(thread)] == ["user", "assistant", "assistant"]
        finally:
            compat.configure(reset=True)


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with throwaway_cluster() as made:
        yield made


@pytest.fixture
def on_cluster(cluster: Cluster, compat_emulator: Emulator) -> Iterator[Cluster]:
    # A call waits a second for a connection (not 10): the URI's connect_timeout sets it.
    compat.configure(backend="responses", store=f"{cluster.uri}?connect_timeout=1", lease_seconds=1)
    yield cluster
    compat.configure(reset=True)


def _while_stopped(cluster: Cluster, work: Callable[[], Any]) -> Any:
    cluster.stop()
    try:
        return work()
    finally:
        cluster.start()


@pytest.mark.postgres
def test_a_stopped_server_is_the_legacy_error_and_loses_nothing(on_cluster: Cluster) -> None:
    assistant, thread = _conversation(compat)
    assert _ran(compat, thread, assistant) == "thread.run.completed"
    before = _texts(thread)

    def calls() -> list[Any]:
        message = compat.Messages.create(thread.id, content="not stored")
        stream = list(compat.Runs.create(thread.id, assistant_id=assistant.id, stream=True))
        listed = asyncio.run(aio.Messages.list(thread.id))
        return [message, stream, listed]

    message, stream, listed = _while_stopped(on_cluster, calls)
    _assert_store_failed(message, streamed=False)
    _assert_store_failed(stream, streamed=True)
    _assert_store_failed(listed, streamed=False)
    assert message.message.startswith(
        f"compat's store failed: {on_cluster.uri}?connect_timeout=1: "
    )

    # The server is back: what was written before is all there, the thread takes new runs.
    assert _texts(thread) == before
    assert _ran(compat, thread, assistant) == "thread.run.completed"
    assert [r.status for r in compat.Runs.list(thread.id).data] == ["completed", "completed"]


@pytest.mark.postgres
def test_a_server_stopped_mid_stream_fails_the_run_which_is_reaped_later(
    on_cluster: Cluster,
) -> None:
    assistant, thread = _conversation(compat)
    stream = compat.Runs.create(thread.id, assistant_id=assistant.id, stream=True)
    event, run = next(stream)  # the run is stored, queued
    assert event == "thread.run.created"
    events = _while_stopped(on_cluster, lambda: [(event, run), *stream])
    last_event, last = events[-1]
    assert last_event == "thread.run.failed"
    assert last.last_error["code"] == "store_error"

    # Its end was never stored: once its lease lapses, the next reader reaps it.
    reaped = wait_for(
        lambda: (r := compat.Runs.retrieve(run.id, thread_id=thread.id)).status == "expired" and r,
        "the run to be reaped",
    )
    assert reaped.last_error["code"] == "worker_lost"
    assert _ran(compat, thread, assistant) == "thread.run.completed"


def test_store_failures_are_answered_for_every_backend_method() -> None:
    from compat.backends import Backend
    from compat.backends.responses.backend import ResponsesBackend

    methods = [n for n, m in vars(Backend).items() if callable(m) and not n.startswith("_")]
    assert len(methods) > 20
    for name in methods:
        assert inspect.unwrap(getattr(ResponsesBackend, name)) is not getattr(
            ResponsesBackend, name
        ), name
