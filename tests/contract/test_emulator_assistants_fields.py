"""Everything the emulator's Assistant side sends, as the real dashscope SDK parses it.

Every object and stream event of every scenario kind is checked for every field the reference
(the project's notes, assistant-api.md §2, §3, §4) lists for its type, and for the SDK class
it must become: a field missing on the wire is an ``AttributeError`` in legacy code.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import dashscope
import httpx
import pytest
from dashscope import Assistants, Messages, Runs, Steps, Threads
from dashscope.common.error import AssistantError

from compat.testing import (
    CodeInterpreter,
    Emulator,
    Failure,
    FunctionCall,
    Reasoning,
    Scenario,
    Text,
)

# Field lists of reference §2 (and the example payloads of §6), per dashscope class.
ASSISTANT = (
    "id", "object", "created_at", "model", "name", "description", "instructions", "tools",
    "file_ids", "metadata", "top_p", "top_k", "temperature", "max_tokens",
)  # fmt: skip
THREAD = ("id", "object", "created_at", "metadata")
MESSAGE = (
    "id", "object", "created_at", "thread_id", "role", "status", "content", "metadata",
    "assistant_id", "file_ids", "run_id",
)  # fmt: skip
RUN = (
    "id", "object", "created_at", "assistant_id", "thread_id", "status", "model",
    "instructions", "tools", "file_ids", "metadata", "required_action", "last_error", "usage",
    "started_at", "expires_at", "cancelled_at", "failed_at", "completed_at",
    "top_p", "top_k", "temperature", "max_tokens",
)  # fmt: skip
STEP = (
    "id", "object", "created_at", "run_id", "assistant_id", "thread_id", "type", "status",
    "step_details", "last_error", "usage", "metadata",
    "completed_at", "cancelled_at", "failed_at", "expired_at",
)  # fmt: skip
STEP_USAGE = ("prompt_tokens", "completion_tokens", "total_tokens", "input_tokens", "output_tokens")
RUN_USAGE = ("prompt_tokens", "completion_tokens", "total_tokens")
LIST = ("object", "data", "first_id", "last_id", "has_more")
ERROR = ("status_code", "code", "message", "request_id")


def has(obj: Any, name: str) -> bool:
    """``name`` came on the wire: set on the instance, not a class default of dashscope's."""
    return name in obj if isinstance(obj, dict) else name in vars(obj)


def absent(
    obj: Any, names: tuple[str, ...], where: str, *, dropped: tuple[str, ...] = ()
) -> Iterator[str]:
    """The ``names`` that did not come on the wire; ``dropped``: those dashscope's own code
    discards when null (they read as the class default, so only reading them can be checked)."""
    for name in names:
        if not (has(obj, name) or (name in dropped and hasattr(obj, name))):
            yield f"{where}.{name}"


def tool_call_gaps(call: Any, where: str) -> Iterator[str]:
    """§2 Tool calls: function and code_interpreter are typed, every other tool stays a dict."""
    kind = call["type"]
    if kind == "function":
        assert type(call).__name__ == "FunctionToolCall", where
        yield from absent(call, ("id", "type"), where)
        yield from absent(call.function, ("name", "arguments", "output"), f"{where}.function")
    elif kind == "code_interpreter":
        assert type(call).__name__ == "CodeToolCall", where
        yield from absent(call, ("id", "type"), where)
        body = call.code_interpreter
        yield from absent(body, ("arguments", "output"), f"{where}.code_interpreter")
    else:
        assert isinstance(call, dict), where
        yield from absent(call, ("index", "id", "type", kind), where)
        yield from absent(call[kind], ("arguments", "output"), f"{where}.{kind}")


def step_details_gaps(details: Any, where: str) -> Iterator[str]:
    if details.type == "message_creation":
        assert type(details).__name__ == "MessageCreationStepDetails", where
        yield from absent(details.message_creation, ("message_id",), f"{where}.message_creation")
    else:
        assert type(details).__name__ == "ToolCallsStepDetails", where
        for index, call in enumerate(details.tool_calls):
            yield from tool_call_gaps(call, f"{where}.tool_calls.{index}")


def gaps(obj: Any, where: str = "$") -> list[str]:
    """The reference's fields that ``obj`` (as dashscope parsed it) lacks, at any depth."""
    return list(_gaps(obj, where))


def _gaps(obj: Any, where: str) -> Iterator[str]:
    kind = type(obj).__name__
    if kind == "Assistant":
        yield from absent(obj, ASSISTANT, where)
    elif kind == "Thread":
        yield from absent(obj, THREAD, where)
    elif kind == "ThreadMessage":
        yield from absent(obj, MESSAGE, where)
        for index, part in enumerate(obj.content):
            assert type(part).__name__ == "MessageContentText", where
            yield from absent(part.text, ("value", "annotations"), f"{where}.content.{index}.text")
    elif kind == "ThreadMessageDelta":
        yield from absent(obj, ("id", "object", "delta"), where)
        yield from absent(obj.delta, ("role", "content"), f"{where}.delta")
        yield from absent(obj.delta.content.text, ("value", "annotations"), f"{where}.delta.text")
    elif kind == "Run":
        yield from _run_gaps(obj, where)
    elif kind == "RunStep":
        # RunStep.__init__ pops a null last_error (thread_types.py, RunStep).
        yield from absent(obj, STEP, where, dropped=("last_error",))
        yield from step_details_gaps(obj.step_details, f"{where}.step_details")
        if obj.usage is not None:
            assert type(obj.usage).__name__ == "Usage", where
            yield from absent(obj.usage, STEP_USAGE, f"{where}.usage")
        if obj.last_error is not None:
            assert type(obj.last_error).__name__ == "LastError", where
            yield from absent(obj.last_error, ("code", "message"), f"{where}.last_error")
    elif kind == "RunStepDelta":
        yield from absent(obj, ("id", "object", "delta"), where)
        yield from step_details_gaps(obj.delta.step_details, f"{where}.delta.step_details")
    elif kind in ("AssistantList", "ThreadMessageList", "RunList", "RunStepList"):
        yield from absent(obj, LIST, where)
        for index, item in enumerate(obj.data):
            yield from _gaps(item, f"{where}.data.{index}")
    elif kind == "DeleteResponse":
        yield from absent(obj, ("id", "object", "deleted"), where)
    elif kind == "AssistantError":
        yield from absent(obj, ("request_id", "code", "message"), where)
    else:
        raise AssertionError(f"{where}: an unexpected {kind}")


def _run_gaps(run: Any, where: str) -> Iterator[str]:
    yield from absent(run, RUN, where)
    if run.usage is not None:
        assert isinstance(run.usage, dict), where  # §2: Run.usage stays a plain dict
        yield from absent(run.usage, RUN_USAGE, f"{where}.usage")
    if run.last_error is not None:
        assert isinstance(run.last_error, dict), where
        yield from absent(run.last_error, ("code", "message"), f"{where}.last_error")
    if run.required_action is not None:
        action = run.required_action
        assert type(action).__name__ == "RequiredAction", where
        yield from absent(action, ("type", "submit_tool_outputs"), f"{where}.required_action")
        for index, call in enumerate(action.submit_tool_outputs.tool_calls):
            at = f"{where}.required_action.tool_calls.{index}"
            yield from absent(call, ("id", "type", "function"), at)
            yield from absent(call.function, ("name", "arguments"), f"{at}.function")


# What dashscope's parsing cannot show (Run.__init__ always sets ``tools`` and
# ``required_action``; a class default reads like a sent null): the raw payloads, by ``object``.
WIRE = {
    "assistant": ASSISTANT,
    "thread": THREAD,
    "thread.message": MESSAGE,
    "thread.run": RUN,
    "thread.run.step": STEP,
    "thread.message.delta": ("id", "object", "delta"),
    "thread.run.step.delta": ("id", "object", "delta"),
    "list": LIST,
}


def wire_gaps(payload: dict[str, Any]) -> list[str]:
    kind = payload.get("object")
    if kind is None:  # a stream's error event: the error body of §4
        return [f"error.{k}" for k in ("code", "message", "request_id") if k not in payload]
    names = WIRE[kind]
    return [f"{kind}.{name}" for name in names if name not in payload]


def raw_stream(emu: Emulator, path: str, body: dict[str, Any]) -> list[tuple[str, Any]]:
    """``(event, JSON data)`` of a stream read with httpx (``done`` left out)."""
    headers = {"Authorization": f"Bearer {emu.api_key}"}
    url = emu.assistants_base_url + path
    with httpx.Client(timeout=10) as client:
        text = client.post(url, json={**body, "stream": True}, headers=headers).text
    events = []
    for block in text.split("\n\n"):
        head, _, data = block.partition("\ndata:")
        if head.startswith("event:") and head != "event:done":
            events.append((head.removeprefix("event:"), json.loads(data)))
    return events


@pytest.fixture
def emu(compat_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    monkeypatch.setattr(dashscope, "base_http_api_url", compat_emulator.assistants_base_url)
    monkeypatch.setattr(dashscope, "api_key", compat_emulator.api_key)
    return compat_emulator


RESULTS = [{"type": "url", "url": "https://weather.example.com/hz"}]
SCENARIOS = {
    "text": Scenario.text("Hello there, world."),
    "reasoning": Scenario.of(Reasoning("hidden"), Text("4")),
    "code": Scenario.code("print(1)\nprint(2)\n", "1\n2\n", "Running.", conclusion="Done."),
    "search": Scenario.search("weather", RESULTS, "Sunny."),
    "run_failed": Scenario.failure("server_error", "boom", after_text="Part of"),
    "run_failed_in_code": Scenario.of(Text("Go."), CodeInterpreter("x\n", ""), Failure("c", "m")),
    "error_event": Scenario.failure("server_error", "raw", after_text="Part", mode="error_event"),
    "functions": Scenario.of(FunctionCall("a", "{}"), FunctionCall("b", '{"x": 1}')),
}


@pytest.mark.parametrize("kind", SCENARIOS)
def test_every_streamed_event_carries_the_reference_fields(emu: Emulator, kind: str) -> None:
    assistant = Assistants.create(model="qwen-plus", tools=[{"type": "code_interpreter"}])
    thread = Threads.create(messages=[{"role": "user", "content": "Hi"}])
    emu.queue(SCENARIOS[kind])
    events = list(Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    assert events and all(name is not None for name, _ in events)
    assert [line for name, data in events for line in gaps(data, name)] == []
    last_name, last = events[-1]
    if kind == "error_event":
        assert last_name == "error" and isinstance(last, AssistantError)
    # The objects the stream left behind parse as completely as the events did.
    run_id = events[0][1].id
    stored = [
        Runs.retrieve(run_id, thread_id=thread.id),
        Runs.list(thread.id),
        Steps.list(run_id, thread_id=thread.id),
        Messages.list(thread.id),
    ]
    assert [line for obj in stored for line in gaps(obj)] == []


@pytest.mark.parametrize("kind", SCENARIOS)
def test_every_raw_stream_payload_carries_the_reference_keys(emu: Emulator, kind: str) -> None:
    assistant = Assistants.create(model="qwen-plus", tools=[{"type": "code_interpreter"}])
    emu.queue(SCENARIOS[kind])
    thread = {"messages": [{"role": "user", "content": "Hi"}]}
    events = raw_stream(emu, "/threads/runs", {"assistant_id": assistant.id, "thread": thread})
    assert events[0][0] == "thread.created"
    assert [line for _, data in events for line in wire_gaps(data)] == []
    runs = [data for name, data in events if name.startswith("thread.run.") and "step" not in name]
    assert runs and all(isinstance(run["tools"], list) for run in runs)


def test_submitted_tool_outputs_stream_the_reference_fields(emu: Emulator) -> None:
    assistant = Assistants.create(model="m")
    thread = Threads.create(messages=[{"role": "user", "content": "Weather?"}])
    emu.queue(Scenario.function_call("get_weather", {"city": "Paris"}, then="22C."))
    run = list(Runs.create(thread.id, assistant_id=assistant.id, stream=True))[-1][1]
    [call] = run.required_action.submit_tool_outputs.tool_calls
    outputs = [{"tool_call_id": call.id, "output": "22"}]
    events = list(
        Runs.submit_tool_outputs(run.id, thread_id=thread.id, tool_outputs=outputs, stream=True)
    )
    assert events[-1][0] == "thread.run.completed"
    assert [line for name, data in events for line in gaps(data, name)] == []
    steps = Steps.list(run.id, thread_id=thread.id, order="asc").data
    assert steps[0].step_details.tool_calls[0].function.output == "22"
    assert gaps(Steps.retrieve(steps[0].id, thread_id=thread.id, run_id=run.id)) == []


def test_create_thread_and_run_streams_a_complete_thread(emu: Emulator) -> None:
    assistant = Assistants.create(model="m")
    thread = {"messages": [{"role": "user", "content": "Hi"}]}
    events = list(Runs.create_thread_and_run(assistant_id=assistant.id, thread=thread, stream=True))
    assert events[0][0] == "thread.created"
    assert [line for name, data in events for line in gaps(data, name)] == []


def test_every_object_call_returns_the_reference_fields(emu: Emulator) -> None:
    tool = {"type": "function", "function": {"name": "f", "description": "d", "parameters": {}}}
    assistant = Assistants.create(model="qwen-plus", name="A", tools=[tool], top_k=3)
    thread = Threads.create(messages=[{"role": "user", "content": "Hi"}], metadata={"k": "v"})
    message = Messages.create(thread.id, content="More", metadata={"n": "1"})
    emu.queue(Scenario.function_call("f", {}))
    run = Runs.create(thread.id, assistant_id=assistant.id, metadata={"r": "1"})
    for _ in range(2):  # each retrieve moves it one state at least: then requires_action
        Runs.retrieve(run.id, thread_id=thread.id)
    objects = {
        "assistant": assistant,
        "assistant.retrieve": Assistants.retrieve(assistant.id),
        "assistant.update": Assistants.update(assistant.id, name="B"),
        "assistant.list": Assistants.list(),
        "thread": thread,
        "thread.retrieve": Threads.retrieve(thread.id),
        "thread.update": Threads.update(thread.id, metadata={"k": "w"}),
        "message": message,
        "message.retrieve": Messages.retrieve(message.id, thread_id=thread.id),
        "message.update": Messages.update(message.id, thread_id=thread.id, metadata={"n": "2"}),
        "message.list": Messages.list(thread.id),
        "run": run,
        "run.retrieve": Runs.retrieve(run.id, thread_id=thread.id),
        "run.update": Runs.update(run.id, thread_id=thread.id, metadata={"r": "2"}),
        "run.list": Runs.list(thread.id),
        "step.list": Steps.list(run.id, thread_id=thread.id),
        "run.cancel": Runs.cancel(run.id, thread_id=thread.id),  # requires_action: no timer
    }
    emu.queue(Scenario.function_call("f", {}))
    other = Runs.create_thread_and_run(assistant_id=assistant.id, thread={})
    objects["run.create_thread_and_run"] = other
    for _ in range(2):
        waiting_too = Runs.retrieve(other.id, thread_id=other.thread_id)
    [call] = waiting_too.required_action.submit_tool_outputs.tool_calls
    objects["run.submit_tool_outputs"] = Runs.submit_tool_outputs(
        waiting_too.id,
        thread_id=waiting_too.thread_id,
        tool_outputs=[{"tool_call_id": call.id, "output": "x"}],
    )
    objects["assistant.delete"] = Assistants.delete(assistant.id)
    objects["thread.delete"] = Threads.delete(thread.id)
    assert {name: gaps(obj, name) for name, obj in objects.items() if gaps(obj, name)} == {}
    assert all(obj.status_code == 200 and has(obj, "request_id") for obj in objects.values())
    waiting = objects["run.retrieve"]
    assert waiting.status == "requires_action" and waiting.required_action is not None


@pytest.mark.parametrize(
    "call",
    [
        lambda: Assistants.retrieve("asst_nope"),
        lambda: Threads.retrieve("thread_nope"),
        lambda: Messages.retrieve("msg_nope", thread_id="thread_nope"),
        lambda: Runs.retrieve("run_nope", thread_id="thread_nope"),
        lambda: Steps.retrieve("step_nope", thread_id="thread_nope", run_id="run_nope"),
        lambda: Assistants.list(limit=500),
    ],
)
def test_every_error_reply_carries_the_error_fields(emu: Emulator, call: Any) -> None:
    error = call()
    assert list(absent(error, ERROR, "$")) == []
    assert (error.status_code, error.code) == (400, "InvalidParameter")
    assert error.request_id


def test_a_streamed_request_error_is_one_item_with_the_error_fields(emu: Emulator) -> None:
    assistant = Assistants.create(model="m")
    [(name, error)] = list(Runs.create("thread_nope", assistant_id=assistant.id, stream=True))
    assert name is None
    assert list(absent(error, ERROR, "$")) == [] and error["status_code"] == 400


def test_the_check_names_a_missing_field() -> None:
    from dashscope.threads.thread_types import Run

    wire = {"id": "run_1", "object": "thread.run", "status": "queued", "tools": []}
    parsed = Run(**wire, assistant_id="a", thread_id="t")
    found = gaps(parsed)
    assert "$.model" in found and "$.completed_at" in found and "$.id" not in found
    assert wire_gaps({**wire, "assistant_id": "a"}) == [
        f"thread.run.{name}" for name in RUN if name not in wire and name != "assistant_id"
    ]
