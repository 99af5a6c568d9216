"""``COMPAT_BACKEND=shadow`` on the emulator: the primary answers; the shadow repeats, compares."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import compat
from compat._config import current_settings
from compat.backends import get_backend
from compat.backends.shadow import ShadowBackend, ShadowWorker
from compat.cli import main
from compat.testing import Emulator, Scenario

pytest.importorskip("dashscope")
pytest.importorskip("openai")

DRAIN = 60.0


@pytest.fixture
def report(
    compat_emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    path = tmp_path / "shadow.jsonl"
    monkeypatch.setenv("COMPAT_SHADOW_REPORT", str(path))
    monkeypatch.delenv("COMPAT_SHADOW_STORE", raising=False)
    compat.configure(backend="shadow", store="memory")
    yield path
    drain()
    compat.configure(reset=True)


def backend() -> ShadowBackend:
    found = get_backend(current_settings())
    assert isinstance(found, ShadowBackend)
    return found


def drain() -> None:
    assert backend().worker.drain(DRAIN), "the shadow worker did not finish in time"


def lines(path: Path) -> list[dict[str, Any]]:
    drain()
    return [json.loads(line) for line in path.read_text("utf-8").splitlines()]


def setup_thread(text: str = "Say hello") -> tuple[str, str]:
    assistant = compat.Assistants.create(model="qwen-max", name="Hi", instructions="Be brief.")
    thread = compat.Threads.create(messages=[{"role": "user", "content": text}])
    return assistant.id, thread.id


def streamed_text(thread_id: str, assistant_id: str) -> tuple[list[str], str, str]:
    events: list[str] = []
    text = ""
    status = ""
    for event, data in compat.Runs.create(thread_id, assistant_id=assistant_id, stream=True):
        events.append(event)
        if event == "thread.message.delta":
            text += data.delta.content.text.value
        if event and event.startswith("thread.run.") and ".step." not in event:
            status = data.status
    return events, text, status


def test_identical_runs_are_reported_identical_whatever_the_chunking(
    report: Path, compat_emulator: Emulator
) -> None:
    emu_text = "Hello, world."
    assistant_id, thread_id = setup_thread()
    compat_emulator.queue(
        Scenario.text(emu_text, chunks=["Hel", "lo, world."]),
        Scenario.text(emu_text, chunks=["H", "ello", ", world", "."]),
    )
    events, text, status = streamed_text(thread_id, assistant_id)
    assert (text, status) == (emu_text, "completed")
    assert events[-1] == "thread.run.completed"
    (entry,) = lines(report)
    assert entry["kind"] == "run"
    assert entry["thread_id"] == thread_id
    assert entry["verdict"] == "identical", entry["differences"]
    # a second run on the thread: the shadow thread has the mirrored user message and its own
    # first answer, and again answers alike
    compat.Messages.create(thread_id, content="Again")
    compat_emulator.queue(Scenario.text("Twice."), Scenario.text("Twice."))
    assert streamed_text(thread_id, assistant_id)[1:] == ("Twice.", "completed")
    second = lines(report)[1]
    assert second["verdict"] == "identical", second["differences"]
    shadow_requests = [r.json for r in compat_emulator.requests if r.path.endswith("/responses")]
    assert len(shadow_requests) == 2
    assert shadow_requests[-1]["input"][-1] == {"role": "user", "content": "Again"}


def test_a_difference_is_reported_and_the_primary_is_unchanged(
    report: Path, compat_emulator: Emulator
) -> None:
    assistant_id, thread_id = setup_thread()
    compat_emulator.queue(Scenario.text("The primary answer."), Scenario.text("Something else."))
    text, status = streamed_text(thread_id, assistant_id)[1:]
    assert (text, status) == ("The primary answer.", "completed")
    (entry,) = lines(report)
    assert entry["verdict"] == "different"
    (difference,) = entry["differences"]
    assert difference == {
        "kind": "texts",
        "primary": ["The primary answer."],
        "shadow": ["Something else."],
    }


def test_a_tool_the_responses_side_refuses_is_a_difference(
    report: Path, compat_emulator: Emulator
) -> None:
    assistant = compat.Assistants.create(model="qwen-max", name="Painter", tools=[{"type": "wanx"}])
    thread = compat.Threads.create(messages=[{"role": "user", "content": "Paint a cat"}])
    compat_emulator.queue(Scenario.text("Here is a cat."))
    text, status = streamed_text(thread.id, assistant.id)[1:]
    assert (text, status) == ("Here is a cat.", "completed")
    (entry,) = lines(report)
    assert entry["verdict"] == "different"
    kinds = {d["kind"]: d for d in entry["differences"]}
    assert kinds["error"]["primary"] is None
    assert kinds["error"]["shadow"] == "UnsupportedByResponsesAPI"


def test_a_non_streamed_run_is_compared_by_outcome(report: Path, compat_emulator: Emulator) -> None:
    assistant_id, thread_id = setup_thread()
    compat_emulator.queue(Scenario.text("Quiet."), Scenario.text("Quiet."))
    run = compat.Runs.create(thread_id, assistant_id=assistant_id)
    run = compat.Runs.wait(run.id, thread_id=thread_id)
    assert run.status == "completed"
    (entry,) = lines(report)
    assert entry["run_id"] == run.id
    assert entry["verdict"] == "identical", entry["differences"]


def test_a_function_round_trip_is_repeated_on_the_shadow(
    report: Path, compat_emulator: Emulator
) -> None:
    tool = {
        "type": "function",
        "function": {
            "name": "weather",
            "description": "The weather in a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
        },
    }
    assistant = compat.Assistants.create(model="qwen-max", name="W", tools=[tool])
    thread = compat.Threads.create(messages=[{"role": "user", "content": "Weather in Oslo?"}])
    scenario = Scenario.function_call("weather", {"city": "Oslo"}, then="Cold, 2 degrees.")
    compat_emulator.queue(scenario, scenario)
    run_id = ""
    calls: list[Any] = []
    for event, data in compat.Runs.create(thread.id, assistant_id=assistant.id, stream=True):
        if event == "thread.run.requires_action":
            run_id = data.id
            calls = data.required_action.submit_tool_outputs.tool_calls
    assert [c.function.name for c in calls] == ["weather"]
    outputs = [{"tool_call_id": calls[0].id, "output": "2 degrees"}]
    text = ""
    for event, data in compat.Runs.submit_tool_outputs(
        run_id, thread_id=thread.id, tool_outputs=outputs, stream=True
    ):
        if event == "thread.message.delta":
            text += data.delta.content.text.value
    assert text == "Cold, 2 degrees."
    first, second = lines(report)
    assert first["verdict"] == "identical", first["differences"]
    assert (second["continuation"], second["verdict"]) == (True, "identical")


def test_an_exception_on_the_shadow_side_never_reaches_the_user(
    report: Path, compat_emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("", "utf-8")
    monkeypatch.setenv("COMPAT_SHADOW_STORE", str(blocker / "shadow.sqlite3"))
    assistant_id, thread_id = setup_thread()
    compat_emulator.queue(Scenario.text("Still fine."))
    assert streamed_text(thread_id, assistant_id)[1:] == ("Still fine.", "completed")
    entries = lines(report)
    assert [e["verdict"] for e in entries if e["kind"] == "run"] == ["error"]
    assert "StoreError" in entries[-1]["error"]


def test_create_thread_and_run_is_shadowed(report: Path, compat_emulator: Emulator) -> None:
    assistant = compat.Assistants.create(model="qwen-max", name="Hi")
    compat_emulator.queue(Scenario.text("Made."), Scenario.text("Made."))
    thread_id = ""
    for event, data in compat.Runs.create_thread_and_run(
        assistant_id=assistant.id,
        thread={"messages": [{"role": "user", "content": "Make a thread"}]},
        stream=True,
    ):
        if event == "thread.run.completed":
            thread_id = data.thread_id
    (entry,) = lines(report)
    assert (entry["thread_id"], entry["verdict"]) == (thread_id, "identical"), entry["differences"]
    (request,) = [r.json for r in compat_emulator.requests if r.path.endswith("/responses")]
    assert request["input"][-1] == {"role": "user", "content": "Make a thread"}


def test_a_full_queue_drops_and_counts() -> None:
    worker = ShadowWorker(maxsize=1)
    started, release = threading.Event(), threading.Event()
    done: list[str] = []

    def blocking() -> None:
        started.set()
        release.wait(DRAIN)
        done.append("first")

    assert worker.submit("run", blocking)
    assert started.wait(DRAIN)
    assert worker.submit("run", lambda: done.append("second"))
    assert not worker.submit("run", lambda: done.append("third"))
    assert worker.dropped == 1
    release.set()
    assert worker.drain(DRAIN)
    assert done == ["first", "second"]


def test_shadow_report_summarises(
    report: Path, compat_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assistant_id, thread_id = setup_thread()
    compat_emulator.queue(Scenario.text("A."), Scenario.text("A."))
    streamed_text(thread_id, assistant_id)
    drain()  # the emulator answers in order: let the shadow take its answer first
    compat_emulator.queue(Scenario.text("B."), Scenario.text("C."))
    compat.Messages.create(thread_id, content="More")
    streamed_text(thread_id, assistant_id)
    drain()
    with report.open("a", encoding="utf-8") as file:
        file.write(json.dumps({"kind": "dropped", "dropped": 3}) + "\n")
    assert main(["shadow-report", str(report)]) == 1
    out = capsys.readouterr().out.splitlines()
    assert out[:7] == [
        "runs compared: 2",
        "identical:     1",
        "different:     1",
        "  texts: 1",
        "shadow errors: 0",
        "dropped:       3",
        "first differing runs:",
    ]
