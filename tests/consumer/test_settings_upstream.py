"""The responses backend's upstream settings: timeouts, retries, logs, and no SDK before needed."""

from __future__ import annotations

import asyncio
import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import compat
from compat import aio
from compat.testing import Emulator, Scenario
from tests.pg import consumer_store

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    os.environ.get("COMPAT_BACKEND", "responses") != "responses",
    reason="responses backend only",
)


@pytest.fixture
def responses(compat_emulator: Emulator) -> Any:
    compat.configure(backend="responses", store=consumer_store())
    yield compat_emulator
    compat.configure(reset=True)


def _run(**kwargs: Any) -> list[tuple[Any, Any]]:
    assistant = compat.Assistants.create(model="qwen-plus")
    thread = compat.Threads.create(messages=[{"role": "user", "content": "Tell me a story."}])
    return list(compat.Runs.create(thread.id, assistant_id=assistant.id, stream=True, **kwargs))


def _arun(**kwargs: Any) -> list[tuple[Any, Any]]:
    """``_run`` through ``compat.aio`` (its own HTTP client: the same settings apply)."""

    async def main() -> list[tuple[Any, Any]]:
        assistant = await aio.Assistants.create(model="qwen-plus")
        thread = await aio.Threads.create(
            messages=[{"role": "user", "content": "Tell me a story."}]
        )
        items = await aio.Runs.create(thread.id, assistant_id=assistant.id, stream=True, **kwargs)
        if isinstance(items, dict):  # an error before the stream: its one item
            return [(None, items)]
        return [item async for item in items]

    return asyncio.run(main())


RUNNERS = pytest.mark.parametrize("run", [_run, _arun], ids=["sync", "aio"])


def _responses_requests(emu: Emulator) -> int:
    return sum(r.path.endswith("/responses") for r in emu.requests)


# -- retries -----------------------------------------------------------------------------------


@RUNNERS
def test_no_retry_by_default_the_error_is_returned_at_once(responses: Emulator, run: Any) -> None:
    responses.queue(
        Scenario.failure("InternalError", "try later", mode="http_error", status=503),
        Scenario.text("Second try."),
    )
    items = run()
    assert [(event, data["status_code"], data["code"]) for event, data in items] == [
        (None, 503, "InternalError")
    ]
    assert _responses_requests(responses) == 1


@RUNNERS
def test_max_retries_retries_a_failed_request_and_logs_it(
    responses: Emulator, caplog: pytest.LogCaptureFixture, run: Any
) -> None:
    compat.configure(max_retries=1)
    responses.queue(
        Scenario.failure("InternalError", "try later", mode="http_error", status=503),
        Scenario.text("Second try."),
    )
    with caplog.at_level(logging.INFO, logger="compat"):
        items = run()
    assert items[-1][0] == "thread.run.completed"
    text = "".join(d.delta.content.text.value for e, d in items if e == "thread.message.delta")
    assert text == "Second try."
    assert _responses_requests(responses) == 2
    retries = [r.getMessage() for r in caplog.records if "retrying" in r.getMessage()]
    assert retries == [
        f"retrying the Responses request (retry 1): {responses.responses_base_url}/responses"
    ]


# -- timeouts ----------------------------------------------------------------------------------


@RUNNERS
def test_compat_timeout_bounds_a_stalled_stream(
    responses: Emulator, monkeypatch: pytest.MonkeyPatch, run: Any
) -> None:
    monkeypatch.setenv("COMPAT_TIMEOUT", "0.5")
    responses.queue(Scenario.failure("x", "y", after_text="Once upon", mode="stall", seconds=3))
    event, ended = run()[-1]
    assert event == "thread.run.failed"
    assert ended.last_error["code"] == "timeout"


@RUNNERS
def test_request_timeout_of_the_call_wins_over_compat_timeout(
    responses: Emulator, monkeypatch: pytest.MonkeyPatch, run: Any
) -> None:
    monkeypatch.setenv("COMPAT_TIMEOUT", "0.5")
    responses.queue(Scenario.failure("x", "y", after_text="Once upon", mode="stall", seconds=1.5))
    event, ended = run(request_timeout=30)[-1]
    assert (event, ended.status) == ("thread.run.completed", "completed")


# -- logs --------------------------------------------------------------------------------------


def _logged_run(emu: Emulator, deltas: int, caplog: pytest.LogCaptureFixture) -> list[str]:
    caplog.clear()
    emu.queue(Scenario.text("w " * deltas, chunks=["w "] * deltas))
    with caplog.at_level(logging.DEBUG):
        items = _run(api_key=emu.api_key)
    assert items[-1][0] == "thread.run.completed"
    assert sum(e == "thread.message.delta" for e, _ in items) == deltas
    return [f"{r.name} {r.getMessage()} {r.args!r}" for r in caplog.records]


def test_a_logged_run_shows_no_key_and_nothing_per_delta(
    responses: Emulator, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("DASHSCOPE_API_KEY")  # the key comes per call only
    compat.configure(timeout=117)  # a client no other test built: its construction is logged
    warm_up = _logged_run(responses, 1, caplog)
    assert any(line.startswith("compat.backends.responses.upstream client for") for line in warm_up)
    small = _logged_run(responses, 2, caplog)
    large = _logged_run(responses, 200, caplog)
    ours = [line for line in large if line.startswith("compat")]
    assert len([line for line in small if line.startswith("compat")]) == len(ours)
    assert any(
        line.startswith("compat.backends.responses.upstream POST ")
        and "model=qwen-plus history=full input_items=1 tools=0" in line
        for line in ours
    )
    # neither compat nor the SDKs below it log the key at debug level
    assert not [line for line in warm_up + small + large if responses.api_key in line]


# -- cold start ----------------------------------------------------------------------------------

LOCAL_CALLS = """
import sys
sys.path.insert(0, sys.argv[1])
import compat
from compat import aio
assistant = compat.Assistants.create(model="qwen-plus", instructions="Be brief.")
assistant = compat.Assistants.update(assistant.id, name="tutor")
thread = compat.Threads.create(messages=[{"role": "user", "content": "Hi"}])
message = compat.Messages.create(thread.id, content="More.")
compat.Messages.retrieve(message.id, thread_id=thread.id)
assert [m.id for m in compat.Messages.list(thread.id).data][0] == message.id
compat.Assistants.list()
compat.Runs.list(thread.id)
compat.Threads.retrieve(thread.id)
compat.Threads.delete(thread.id)
print(sorted(m for m in ("openai", "httpx2", "httpx", "dashscope") if m in sys.modules))
"""


def test_local_calls_import_no_sdk() -> None:
    env = dict(os.environ, COMPAT_STORE="memory", COMPAT_BACKEND="responses")
    out = subprocess.run(
        [sys.executable, "-c", LOCAL_CALLS, str(ROOT)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
