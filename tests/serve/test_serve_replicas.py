"""``python -m compat serve`` as real processes: CLI options, SIGTERM, replicas on one store.

The store is ``COMPAT_SERVE_TEST_STORE`` when set (so the suite can run on PostgreSQL), else a
SQLite file; the upstream is the emulator in this process.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from compat.testing import Emulator, Scenario, Text
from tests.consumer.held import wait_for

from .conftest import dashscope
from .replicas import Replica, store_uri

pytestmark = pytest.mark.skipif(
    os.environ.get("COMPAT_BACKEND", "responses") != "responses",
    reason="compat serve runs on the responses backend",
)


@pytest.fixture
def replica_env(compat_emulator: Emulator, tmp_path: Path) -> dict[str, str]:
    return {
        "COMPAT_BACKEND": "responses",
        "COMPAT_STORE": store_uri(tmp_path),
        "COMPAT_RESPONSES_BASE_URL": compat_emulator.responses_base_url,
        "COMPAT_LEASE_SECONDS": "0.6",
    }


@pytest.fixture
def two(replica_env: dict[str, str]) -> Iterator[tuple[Replica, Replica]]:
    with Replica(replica_env) as a, Replica(replica_env) as b:
        yield a, b


def _via(monkeypatch: pytest.MonkeyPatch, replica: Replica) -> None:
    monkeypatch.setattr(dashscope, "base_http_api_url", replica.base_url)


def _long_text() -> Scenario:
    words = [f"w{n} " for n in range(3000)]
    return Scenario.of(Text("".join(words), chunks=words)).paced(0.01)


def test_a_thread_created_through_one_replica_continues_through_another(
    two: tuple[Replica, Replica], compat_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = two
    compat_emulator.queue(Scenario.text("First."), Scenario.text("Second."))
    _via(monkeypatch, a)
    assistant = dashscope.Assistants.create(model="qwen-plus")
    thread = dashscope.Threads.create(messages=[{"role": "user", "content": "One"}])
    run = dashscope.Runs.create(thread.id, assistant_id=assistant.id)
    assert dashscope.Runs.wait(run.id, thread_id=thread.id).status == "completed"
    _via(monkeypatch, b)
    dashscope.Messages.create(thread.id, content="Two")
    items = list(dashscope.Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    assert items[-1][0] == "thread.run.completed"
    _via(monkeypatch, a)
    texts = [m.content[0].text.value for m in dashscope.Messages.list(thread.id, order="asc").data]
    assert texts == ["One", "First.", "Two", "Second."]


def test_a_run_streamed_from_one_replica_is_cancelled_through_another(
    two: tuple[Replica, Replica], compat_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = two
    compat_emulator.queue(_long_text())
    _via(monkeypatch, a)
    assistant = dashscope.Assistants.create(model="qwen-plus")
    thread = dashscope.Threads.create(messages=[{"role": "user", "content": "Hi"}])
    events: list[str] = []
    cancel_reply: list[Any] = []
    for event, data in dashscope.Runs.create(thread.id, assistant_id=assistant.id, stream=True):
        events.append(event)
        if event == "thread.run.created":
            run_id = data.id
        if event == "thread.message.delta" and not cancel_reply:
            cancel_reply.append(
                dashscope.Runs.cancel(run_id, thread_id=thread.id, base_address=b.base_url)
            )
    assert cancel_reply[0].status_code == 200
    assert events[-1] == "thread.run.cancelled"
    stored = dashscope.Runs.retrieve(run_id, thread_id=thread.id, base_address=b.base_url)
    assert stored.status == "cancelled"


def test_a_killed_replicas_run_is_reaped_and_the_thread_stays_usable(
    two: tuple[Replica, Replica], compat_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    a, b = two
    compat_emulator.queue(_long_text())
    _via(monkeypatch, a)
    assistant = dashscope.Assistants.create(model="qwen-plus")
    thread = dashscope.Threads.create(messages=[{"role": "user", "content": "Hi"}])
    stream = dashscope.Runs.create(thread.id, assistant_id=assistant.id, stream=True)
    for event, data in stream:
        if event == "thread.run.created":
            run_id = data.id
        if event == "thread.message.delta":
            break
    a.kill()
    stream.close()
    _via(monkeypatch, b)
    reaped = wait_for(
        lambda: (
            (r := dashscope.Runs.retrieve(run_id, thread_id=thread.id)).status == "expired" and r
        ),
        "the killed replica's run to be reaped",
    )
    assert reaped.last_error["code"] == "worker_lost"
    compat_emulator.queue(Scenario.text("Still here."))
    again = dashscope.Runs.create(thread.id, assistant_id=assistant.id)
    assert dashscope.Runs.wait(again.id, thread_id=thread.id).status == "completed"


def test_sigterm_ends_open_streams_as_cancelled_and_exits(
    replica_env: dict[str, str], compat_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    compat_emulator.queue(_long_text())
    with Replica(replica_env) as a, Replica(replica_env) as b:
        _via(monkeypatch, a)
        assistant = dashscope.Assistants.create(model="qwen-plus")
        thread = dashscope.Threads.create(messages=[{"role": "user", "content": "Hi"}])
        seen = []
        for event, data in dashscope.Runs.create(thread.id, assistant_id=assistant.id, stream=True):
            seen.append((event, data))
            if event == "thread.message.delta" and len(seen) == 8:
                a.process.send_signal(signal.SIGTERM)
        # uvicorn re-raises the signal once it has shut down gracefully: supervisors see it.
        assert a.process.wait(60) == -signal.SIGTERM
        last_event, last = seen[-1]
        assert (last_event, last.status) == ("thread.run.cancelled", "cancelled")
        _via(monkeypatch, b)
        assert dashscope.Runs.retrieve(last.id, thread_id=thread.id).status == "cancelled"


def test_workers_serve_on_one_port(
    replica_env: dict[str, str], compat_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Replica(replica_env, "--workers", "2") as served:
        _via(monkeypatch, served)
        threads = [dashscope.Threads.create().id for _ in range(4)]
        assert all(dashscope.Threads.retrieve(t).id == t for t in threads)
        assert served.stop() == 0


def test_the_cli_refuses_bad_options(replica_env: dict[str, str]) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "compat", "serve", "--workers", "0"],
        env=dict(os.environ, **replica_env),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "--workers must be at least 1" in result.stderr
