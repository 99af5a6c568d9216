"""The same legacy program observes the same thing through compat and through dashscope."""

from __future__ import annotations

from typing import Any

import pytest

from compat.testing import Emulator, Scenario

from . import programs

PROGRAMS = [
    programs.code_tutor,
    programs.simple_wait_and_list,
    programs.multi_turn,
    programs.create_thread_and_run,
    programs.crud_and_errors,
]


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.__name__)
def test_program_observes_the_same_on_compat_as_on_dashscope(
    program: Any, apis: dict[str, Any], compat_emulator: Emulator
) -> None:
    expected = program(apis["dashscope"])
    compat_emulator.reset()
    assert program(apis["compat"]) == expected


def test_code_tutor_sees_explanation_code_output_and_the_event_order(
    apis: dict[str, Any],
) -> None:
    seen = programs.code_tutor(apis["compat"])
    message_step = [
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.message.created",
        "thread.message.in_progress",
        "thread.message.completed",
        "thread.run.step.completed",
    ]
    tool_step = [
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.run.step.completed",
    ]
    assert [s for s in seen if isinstance(s, str)] == [
        "thread.run.created",
        "thread.run.queued",
        "thread.run.in_progress",
        *message_step,
        *tool_step,
        *message_step,
        "thread.run.completed",
    ]
    assert seen[0] == ("status", "queued")
    (printout,) = [s[1] for s in seen if isinstance(s, tuple) and s[0] == "code printout"]
    assert printout.startswith("import math\n")
    assert "sin(x) = +1.000" in printout
    text = "".join(s[1] for s in seen if isinstance(s, tuple) and s[0] == "text")
    assert text.startswith("Let's work through this step by step")


def test_streamed_text_run_has_the_assistant_api_event_sequence(
    apis: dict[str, Any], compat_emulator: Emulator
) -> None:
    compat_emulator.queue(Scenario.text("Hello there, Ada.", chunks=["Hello ", "there, ", "Ada."]))
    api = apis["compat"]
    assistant = api.Assistants.create(model="qwen-plus")
    thread = api.Threads.create(messages=[{"role": "user", "content": "Hi"}])
    items = [
        (event, data)
        for event, data in api.Runs.create(thread.id, assistant_id=assistant.id, stream=True)
    ]
    assert [event for event, _ in items] == [
        "thread.run.created",
        "thread.run.queued",
        "thread.run.in_progress",
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.message.created",
        "thread.message.in_progress",
        "thread.message.delta",
        "thread.message.delta",
        "thread.message.delta",
        "thread.message.completed",
        "thread.run.step.completed",
        "thread.run.completed",
    ]
    deltas = [data.delta.content.text.value for event, data in items if event.endswith("delta")]
    assert deltas == ["Hello ", "there, ", "Ada."]
    completed = items[-1][1]
    assert completed.status == "completed"
    assert completed.status_code == 200
    assert set(completed.usage) == {"prompt_tokens", "completion_tokens", "total_tokens"}
    assert items[10][1].content[0].text.value == "Hello there, Ada."
    step = items[11][1]
    assert step.usage.total_tokens == completed.usage["total_tokens"]


def test_http_error_in_a_stream_is_the_single_none_item(
    apis: dict[str, Any], compat_emulator: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    api = apis["compat"]
    assistant = api.Assistants.create(model="qwen-plus")
    thread = api.Threads.create(messages=[{"role": "user", "content": "Hi"}])
    items = list(api.Runs.create("thread_doesnotexist", assistant_id=assistant.id, stream=True))
    assert len(items) == 1
    event, data = items[0]
    assert event is None
    assert (data["status_code"], data["code"]) == (400, "InvalidParameter")
    assert data["message"] == "The specified thread has been deleted or does not exist."
    assert thread.status_code == 200


@pytest.mark.parametrize("which", ["dashscope", "compat"])
def test_a_stream_that_is_one_error_item_can_be_closed_like_any_stream(
    which: str, apis: dict[str, Any], compat_emulator: Emulator
) -> None:
    api = apis[which]
    assistant = api.Assistants.create(model="qwen-plus")
    unread = api.Runs.create("thread_doesnotexist", assistant_id=assistant.id, stream=True)
    unread.close()  # before reading
    assert list(unread) == []
    stream = api.Runs.create("thread_doesnotexist", assistant_id=assistant.id, stream=True)
    event, data = next(stream)
    assert (event, data["status_code"]) == (None, 400)
    stream.close()  # after reading
    assert list(stream) == []
