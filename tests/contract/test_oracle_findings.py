"""What the independent oracle found wrong in compat itself, kept as regression tests.

Each finding was first pinned as a strict xfail; both are fixed, and these now run as parity
tests on both backends. A new finding goes here as a strict xfail until compat is fixed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import compat
from compat.testing import Emulator, Scenario


# Fixed by the run lifecycle: the run is stored requires_action before the event is emitted.
@pytest.fixture(params=["assistants", "responses"])
def backend(request: pytest.FixtureRequest, compat_emulator: Emulator) -> Iterator[str]:
    compat.configure(backend=request.param, store="memory")
    yield request.param
    compat.configure(reset=True)


def test_tool_outputs_submitted_on_the_requires_action_event_continue_the_run(
    backend: str, compat_emulator: Emulator
) -> None:
    assistant = compat.Assistants.create(model="qwen-plus")
    thread = compat.Threads.create(messages=[{"role": "user", "content": "Weather?"}])
    compat_emulator.queue(Scenario.function_call("get_weather", {"city": "Paris"}, then="22C."))
    resumed: list[tuple[Any, Any]] = []
    for event, data in compat.Runs.create(thread.id, assistant_id=assistant.id, stream=True):
        if event == "thread.run.requires_action":
            [call] = data.required_action.submit_tool_outputs.tool_calls
            outputs = [{"tool_call_id": call.id, "output": "22C"}]
            resumed = list(
                compat.Runs.submit_tool_outputs(
                    data.id, thread_id=thread.id, tool_outputs=outputs, stream=True
                )
            )
    assert resumed, "no requires_action event"
    assert resumed[0][0] is not None, resumed[0][1]
    assert resumed[-1][0] == "thread.run.completed"


# Fixed: a run shows usage only once it ends, on both backends.
@pytest.fixture(params=["assistants", "responses"])
def usage_backend(request: pytest.FixtureRequest, compat_emulator: Emulator) -> Iterator[str]:
    compat.configure(backend=request.param, store="memory")
    yield request.param
    compat.configure(reset=True)


def test_a_run_has_no_usage_until_it_ends(usage_backend: str, compat_emulator: Emulator) -> None:
    assistant = compat.Assistants.create(model="qwen-plus")
    thread = compat.Threads.create(messages=[{"role": "user", "content": "Weather?"}])
    compat_emulator.queue(Scenario.function_call("get_weather", {"city": "Paris"}, then="22C."))
    first = list(compat.Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    name, waiting = first[-1]
    assert name == "thread.run.requires_action"
    [call] = waiting.required_action.submit_tool_outputs.tool_calls
    outputs = [{"tool_call_id": call.id, "output": "22C"}]
    second = list(
        compat.Runs.submit_tool_outputs(
            waiting.id, thread_id=thread.id, tool_outputs=outputs, stream=True
        )
    )
    runs = [(e, d) for e, d in first + second if e.startswith("thread.run.") and "step" not in e]
    usage = [(e, d.usage is None) for e, d in runs]
    assert usage == [(e, e != "thread.run.completed") for e, _ in runs]
