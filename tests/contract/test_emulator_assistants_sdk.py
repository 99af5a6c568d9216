"""The real dashscope 2.0.2 SDK against the emulator's Assistant API: every call, every stream."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
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
    Search,
    Text,
    Turn,
)

ROOT = Path(__file__).resolve().parents[2]

HEAD = ["thread.run.created", "thread.run.queued", "thread.run.in_progress"]


def message_events(deltas: int) -> list[str]:
    return [
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.message.created",
        "thread.message.in_progress",
        *["thread.message.delta"] * deltas,
        "thread.message.completed",
        "thread.run.step.completed",
    ]


def tool_events(deltas: int) -> list[str]:
    return [
        "thread.run.step.created",
        "thread.run.step.in_progress",
        *["thread.run.step.delta"] * deltas,
        "thread.run.step.completed",
    ]


def missing(thing: str) -> str:
    return f"The specified {thing} has been deleted or does not exist."


@pytest.fixture
def emu(compat_emulator: Emulator, monkeypatch: pytest.MonkeyPatch) -> Emulator:
    monkeypatch.setattr(dashscope, "base_http_api_url", compat_emulator.assistants_base_url)
    monkeypatch.setattr(dashscope, "api_key", compat_emulator.api_key)
    return compat_emulator


@pytest.fixture
def manual(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """An emulator whose non-streamed runs move only when retrieved."""
    with Emulator(auto_advance=None) as emulator:
        monkeypatch.setattr(dashscope, "base_http_api_url", emulator.assistants_base_url)
        monkeypatch.setattr(dashscope, "api_key", emulator.api_key)
        yield emulator


def raw(
    emu: Emulator, method: str, path: str, body: Any = None, key: str | None = None
) -> tuple[int, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(emu.base_url + path, data=data, method=method)
    request.add_header("Authorization", f"Bearer {key or emu.api_key}")
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def new_thread(text: str = "What is 2+2?") -> Any:
    return Threads.create(messages=[{"role": "user", "content": text}])


# --- assistants, threads, messages ----------------------------------------------------------


def test_assistant_create_retrieve_update_list_delete(emu: Emulator) -> None:
    created = Assistants.create(
        model="qwen-plus",
        name="Tutor",
        description="d",
        instructions="Be brief.",
        tools=[{"type": "code_interpreter"}],
        metadata={"k": "v"},
        temperature=0.5,
    )
    assert created.status_code == 200
    assert created.id.startswith("asst_") and len(created.id) == 37
    assert (created.model, created.name, created.instructions) == (
        "qwen-plus",
        "Tutor",
        "Be brief.",
    )
    assert (created.metadata, created.temperature, created.file_ids) == ({"k": "v"}, 0.5, [])
    assert created.tools[0].type == "code_interpreter"
    assert created.request_id
    called = Assistants.call(model="qwen-max")
    for fetched in (Assistants.retrieve(created.id), Assistants.get(created.id)):
        assert (fetched.id, fetched.created_at, fetched.name) == (
            created.id,
            created.created_at,
            "Tutor",
        )
    updated = Assistants.update(created.id, name="Tutor 2", top_p=0.9)
    assert (updated.name, updated.top_p, updated.model, updated.instructions) == (
        "Tutor 2",
        0.9,
        "qwen-plus",
        "Be brief.",
    )
    listed = Assistants.list()
    assert [a.id for a in listed.data] == [called.id, created.id]
    assert (listed.first_id, listed.last_id, listed.has_more) == (called.id, created.id, False)
    deleted = Assistants.delete(created.id)
    assert (deleted.id, deleted.deleted, deleted.status_code) == (created.id, True, 200)
    assert [a.id for a in Assistants.list(order="asc").data] == [called.id]


def test_assistant_function_tool_is_typed_by_the_sdk(emu: Emulator) -> None:
    tool = {"type": "function", "function": {"name": "f", "description": "x", "parameters": {}}}
    assistant = Assistants.create(model="m", tools=[tool, {"type": "quark_search"}])
    assert assistant.tools[0].function.name == "f"
    assert assistant.tools[1] == {"type": "quark_search"}


def test_empty_thread_is_created_from_the_json_string_body(emu: Emulator) -> None:
    thread = Threads.create()
    assert thread.status_code == 200 and thread.id.startswith("thread_")
    assert thread.metadata == {}
    assert emu.requests[-1].body == b'""'
    assert Messages.list(thread.id).data == []


def test_thread_retrieve_update_and_delete_cascades(emu: Emulator) -> None:
    thread = Threads.call(messages=[{"role": "user", "content": "hi"}], metadata={"a": "1"})
    assert thread.metadata == {"a": "1"}
    assert Threads.retrieve(thread.id).id == thread.id
    assert Threads.get(thread.id).created_at == thread.created_at
    assert Threads.update(thread.id, metadata={"a": "2"}).metadata == {"a": "2"}
    [message] = Messages.list(thread.id).data
    deleted = Threads.delete(thread.id)
    assert (deleted.id, deleted.deleted) == (thread.id, True)
    gone = Messages.retrieve(message.id, thread_id=thread.id)
    assert (gone.status_code, gone.code, gone.message) == (
        400,
        "InvalidParameter",
        missing("thread"),
    )


def test_messages_create_retrieve_update_list(emu: Emulator) -> None:
    thread = new_thread()
    message = Messages.create(thread.id, content="second", metadata={"n": "2"})
    assert (message.role, message.content[0].text.value, message.metadata) == (
        "user",
        "second",
        {"n": "2"},
    )
    assert (message.thread_id, message.run_id, message.assistant_id) == (thread.id, None, None)
    assert Messages.call(thread.id, content="third").content[0].text.value == "third"
    fetched = Messages.retrieve(message.id, thread_id=thread.id)
    assert fetched.content[0].text.value == "second"
    assert Messages.get(message.id, thread_id=thread.id).id == message.id
    assert Messages.update(message.id, thread_id=thread.id, metadata={"n": "x"}).metadata == {
        "n": "x"
    }
    texts = [m.content[0].text.value for m in Messages.list(thread.id).data]
    assert texts == ["third", "second", "What is 2+2?"]


@pytest.mark.parametrize(
    ("query", "expected", "has_more"),
    [
        ({}, [5, 4, 3, 2, 1], False),
        ({"limit": 2}, [5, 4], True),
        ({"limit": 2, "after": 4}, [3, 2], True),
        ({"limit": 2, "after": 2}, [1], False),
        ({"limit": 2, "before": 2}, [4, 3], True),
        ({"limit": 2, "before": 4}, [5], False),
        ({"order": "asc", "limit": 2}, [1, 2], True),
        ({"order": "asc", "after": 3}, [4, 5], False),
        ({"order": "asc", "before": 3, "limit": 1}, [2], True),
        ({"after": 5, "before": 2}, [4, 3], False),
    ],
)
def test_lists_follow_openai_cursor_pagination(
    emu: Emulator, query: dict[str, Any], expected: list[int], has_more: bool
) -> None:
    thread = Threads.create()
    ids = {n: Messages.create(thread.id, content=str(n)).id for n in range(1, 6)}
    for cursor in ("after", "before"):
        if cursor in query:
            query[cursor] = ids[query[cursor]]
    page = Messages.list(thread.id, **query)
    assert [int(m.content[0].text.value) for m in page.data] == expected
    assert (page.first_id, page.last_id, page.has_more) == (
        ids[expected[0]],
        ids[expected[-1]],
        has_more,
    )


def test_list_limit_out_of_range_is_invalid(emu: Emulator) -> None:
    page = Assistants.list(limit=101)
    assert (page.status_code, page.code) == (400, "InvalidParameter")
    assert page.message == "limit must be an integer between 1 and 100."


# --- errors ----------------------------------------------------------------------------------


def test_unknown_ids_answer_400_invalid_parameter(emu: Emulator) -> None:
    assistant = Assistants.create(model="m")
    thread = new_thread()
    run = Runs.create(thread.id, assistant_id=assistant.id)
    answers = {
        "assistant": Assistants.retrieve("asst_missing"),
        "thread": Threads.retrieve("thread_missing"),
        "message": Messages.retrieve("msg_missing", thread_id=thread.id),
        "run": Runs.retrieve("run_missing", thread_id=thread.id),
        "step": Steps.retrieve("step_missing", thread_id=thread.id, run_id=run.id),
    }
    for thing, answer in answers.items():
        assert (answer.status_code, answer.code, answer.message) == (
            400,
            "InvalidParameter",
            missing(thing),
        )
        assert answer.request_id
    no_assistant = Runs.create(Threads.create().id, assistant_id="asst_missing")
    assert (no_assistant.status_code, no_assistant.message) == (400, missing("assistant"))
    assert Assistants.delete("asst_missing").status_code == 400


def test_missing_required_fields_answer_400(emu: Emulator) -> None:
    assert raw(emu, "POST", "/api/v1/assistants", {"name": "x"})[1]["message"] == (
        "Missing required parameter 'model'."
    )
    status, body = raw(emu, "POST", "/api/v1/threads/runs", {"stream": False})
    assert (status, body["code"], body["message"]) == (
        400,
        "InvalidParameter",
        "Missing required parameter 'assistant_id'.",
    )


def test_wrong_api_key_answers_401_plain_and_streamed(emu: Emulator) -> None:
    answer = Assistants.create(model="m", api_key="sk-wrong")
    assert (answer.status_code, answer.code, answer.message) == (
        401,
        "InvalidApiKey",
        "Invalid API-key provided.",
    )
    thread = new_thread()
    events = list(Runs.create(thread.id, assistant_id="asst_x", stream=True, api_key="sk-wrong"))
    assert len(events) == 1
    event, data = events[0]
    assert event is None
    assert {k: data[k] for k in ("status_code", "code", "message")} == {
        "status_code": 401,
        "code": "InvalidApiKey",
        "message": "Invalid API-key provided.",
    }
    assert data["request_id"]


def test_unknown_path_answers_404_json(emu: Emulator) -> None:
    status, body = raw(emu, "GET", "/nowhere")
    assert (status, body["code"], body["message"]) == (404, "NotFound", "No route for /nowhere.")
    assert body["request_id"]
    assert raw(emu, "GET", "/api/v1/files")[0] == 404


# --- streamed runs ---------------------------------------------------------------------------


def test_streamed_text_run_emits_the_canonical_sequence(emu: Emulator) -> None:
    assistant = Assistants.create(model="qwen-plus", instructions="Be brief.")
    thread = new_thread()
    emu.queue(Scenario.text("It is 4.", chunks=["It ", "is ", "4."]))
    events = list(Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    assert [e for e, _ in events] == HEAD + message_events(3) + ["thread.run.completed"]
    by_name = {e: d for e, d in events}
    created = by_name["thread.run.created"]
    assert (created.status, created.thread_id, created.assistant_id) == (
        "queued",
        thread.id,
        assistant.id,
    )
    assert (created.model, created.instructions) == ("qwen-plus", "Be brief.")
    assert by_name["thread.run.in_progress"].started_at is not None
    deltas = [d.delta.content.text.value for e, d in events if e == "thread.message.delta"]
    assert deltas == ["It ", "is ", "4."]
    assert by_name["thread.message.created"].content == []
    completed_message = by_name["thread.message.completed"]
    assert completed_message.content[0].text.value == "It is 4."
    assert (completed_message.role, completed_message.run_id) == ("assistant", created.id)
    step = by_name["thread.run.step.completed"]
    assert step.step_details.message_creation.message_id == completed_message.id
    # usage: input "Be brief." + "What is 2+2?" = 21 chars -> 6; output 8 chars -> 3
    assert (step.usage.prompt_tokens, step.usage.completion_tokens, step.usage.total_tokens) == (
        6,
        3,
        9,
    )
    assert (step.usage.input_tokens, step.usage.output_tokens) == (6, 3)
    run = by_name["thread.run.completed"]
    assert run.usage == {"prompt_tokens": 6, "completion_tokens": 3, "total_tokens": 9}
    assert run.usage.get("total_tokens") == 9
    assert run.completed_at is not None
    assert Runs.retrieve(run.id, thread_id=thread.id).status == "completed"
    newest = Messages.list(thread.id, limit=1).data[0]
    assert newest.content[0].text.value == "It is 4."


def test_stream_bytes_are_framed_exactly(emu: Emulator) -> None:
    assistant = Assistants.create(model="m")
    thread = new_thread()
    emu.queue(Scenario.text("Hi"))
    with httpx.Client(headers={"Authorization": f"Bearer {emu.api_key}"}) as client:
        url = f"{emu.assistants_base_url}/threads/{thread.id}/runs"
        with client.stream("POST", url, json={"assistant_id": assistant.id, "stream": True}) as r:
            assert r.headers["content-type"] == "text/event-stream;charset=UTF-8"
            body = r.read().decode()
        again = client.get(f"{emu.assistants_base_url}/threads/{thread.id}")
        assert again.status_code == 200 and again.headers["content-type"] == "application/json"
    blocks = body.split("\n\n")
    assert blocks[-2:] == ["event:done\ndata:[DONE]", ""]
    for block in blocks[:-2]:
        event, data = block.split("\n")
        assert event.startswith("event:thread.") and data.startswith("data:{")
        json.loads(data[len("data:") :])
    assert blocks[0].startswith('event:thread.run.created\ndata:{"id":"run_')


def test_create_thread_and_run_stream_starts_with_thread_created(emu: Emulator) -> None:
    assistant = Assistants.create(model="m")
    emu.queue(Scenario.text("Hello"))
    thread = {"messages": [{"role": "user", "content": "Hi there"}]}
    events = list(Runs.create_thread_and_run(assistant_id=assistant.id, thread=thread, stream=True))
    assert [e for e, _ in events] == [
        "thread.created",
        *HEAD,
        *message_events(1),
        "thread.run.completed",
    ]
    new = events[0][1]
    assert new.id.startswith("thread_") and events[1][1].thread_id == new.id
    texts = [m.content[0].text.value for m in Messages.list(new.id, order="asc").data]
    assert texts == ["Hi there", "Hello"]


def test_create_thread_and_run_without_stream_returns_a_queued_run(emu: Emulator) -> None:
    assistant = Assistants.create(model="m")
    thread = {"messages": [{"role": "user", "content": "Hi"}]}
    for run in (
        Threads.create_and_run(assistant_id=assistant.id, thread=thread),
        Runs.create_thread_and_run(assistant_id=assistant.id, thread=thread),
    ):
        assert (run.status_code, run.status, run.assistant_id) == (200, "queued", assistant.id)
        assert Threads.retrieve(run.thread_id).id == run.thread_id


def test_default_reply_quotes_the_last_user_message(emu: Emulator) -> None:
    assistant = Assistants.create(model="m")
    thread = new_thread("Tell me a joke")
    events = list(Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    text = "".join(d.delta.content.text.value for e, d in events if e == "thread.message.delta")
    assert text == 'You said: "Tell me a joke". This is the emulator\'s deterministic answer.'


def test_default_with_code_interpreter_is_a_code_tutor_turn(emu: Emulator) -> None:
    assistant = Assistants.create(model="qwen-plus", tools=[{"type": "code_interpreter"}])
    thread = new_thread("How do I plot a sine?")
    events = list(Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    names = [e for e, _ in events]
    first_text = names.index("thread.message.completed") + 2
    tool_start = first_text
    tool_end = names.index("thread.run.step.completed", tool_start) + 1
    assert names[:first_text] == HEAD + message_events(first_text - len(HEAD) - 6)
    assert names[tool_start:tool_end] == tool_events(tool_end - tool_start - 3)
    assert names[-1] == "thread.run.completed"
    calls = [d.delta.step_details.tool_calls[0] for e, d in events if e == "thread.run.step.delta"]
    code = "".join(c.code_interpreter.arguments for c in calls)
    output = "".join(c.code_interpreter.output for c in calls)
    assert code.startswith("import math\n") and "math.sin(x)" in code
    assert output.splitlines()[2] == "x = 1.571  sin(x) = +1.000  |####################"
    assert calls[-1].code_interpreter.arguments == ""  # the output delta carries no code
    assert {c.type for c in calls} == {"code_interpreter"}


def test_code_scenario_streams_code_chunks_then_output(emu: Emulator) -> None:
    assistant = Assistants.create(model="m", tools=[{"type": "code_interpreter"}])
    thread = new_thread()
    emu.queue(
        Scenario.of(
            Text("Let me run it."),
            CodeInterpreter("x = 2\nprint(x ** 10)\n", "1024\n"),
            Text("Done."),
        )
    )
    events = list(Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    assert [e for e, _ in events] == [
        *HEAD,
        *message_events(4),
        *tool_events(3),
        *message_events(1),
        "thread.run.completed",
    ]
    deltas = [d.delta.step_details.tool_calls[0] for e, d in events if e == "thread.run.step.delta"]
    assert [(c.code_interpreter.arguments, c.code_interpreter.output) for c in deltas] == [
        ("x = 2\n", ""),
        ("print(x ** 10)\n", ""),
        ("", "1024\n"),
    ]
    assert len({c.id for c in deltas}) == 1 and deltas[0].id.startswith("call_")
    tool_step = [d for e, d in events if e == "thread.run.step.completed"][1]
    [call] = tool_step.step_details.tool_calls
    assert (call.code_interpreter.arguments, call.code_interpreter.output) == (
        "x = 2\nprint(x ** 10)\n",
        "1024\n",
    )
    assert (tool_step.type, tool_step.usage) == ("tool_calls", None)
    started = [d for e, d in events if e == "thread.run.step.created"][1]
    assert started.step_details.tool_calls == []


def test_search_scenario_streams_a_quark_search_dict(emu: Emulator) -> None:
    assistant = Assistants.create(model="m", tools=[{"type": "quark_search"}])
    thread = new_thread()
    results = [{"title": "Paris", "url": "https://example.org/paris"}]
    emu.queue(Scenario.search("天气 Paris", results, "It is sunny."))
    events = list(Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    assert [e for e, _ in events] == [
        *HEAD,
        *tool_events(2),
        *message_events(3),
        "thread.run.completed",
    ]
    deltas = [d.delta.step_details.tool_calls[0] for e, d in events if e == "thread.run.step.delta"]
    assert all(isinstance(c, dict) and c["type"] == "quark_search" for c in deltas)
    assert deltas[0]["quark_search"] == {"arguments": '{"query": "天气 Paris"}', "output": ""}
    assert deltas[1]["quark_search"] == {"arguments": "", "output": json.dumps(results)}
    tool_step = next(d for e, d in events if e == "thread.run.step.completed")
    [call] = tool_step.step_details.tool_calls
    assert json.loads(call["quark_search"]["output"]) == results


def test_reasoning_is_invisible_on_the_assistant_side(emu: Emulator) -> None:
    assistant = Assistants.create(model="m")
    thread = new_thread()
    emu.queue(Scenario.of(Reasoning("2+2 is 4"), Text("4"), usage=(10, 20)))
    events = list(Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    assert [e for e, _ in events] == HEAD + message_events(1) + ["thread.run.completed"]
    assert events[-1][1].usage == {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}


# --- function calls ----------------------------------------------------------------------------


def test_function_call_ends_in_requires_action_then_submit_streams_the_answer(
    emu: Emulator,
) -> None:
    assistant = Assistants.create(model="m")
    thread = new_thread("Weather in Paris?")
    emu.queue(Scenario.function_call("get_weather", {"city": "Paris"}, then="It is 22C in Paris."))
    events = list(Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    assert [e for e, _ in events] == [
        *HEAD,
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.run.step.delta",
        "thread.run.step.delta",
        "thread.run.requires_action",
    ]
    first, second = (d.delta.step_details.tool_calls[0] for e, d in events[5:7])
    assert (first.function.name, first.function.arguments, first.index) == ("get_weather", "", 0)
    assert second.function.arguments == '{"city": "Paris"}'
    run = events[-1][1]
    assert run.status == "requires_action"
    [call] = run.required_action.submit_tool_outputs.tool_calls
    assert (call.id, call.type, call.function.name, call.function.arguments) == (
        first.id,
        "function",
        "get_weather",
        '{"city": "Paris"}',
    )
    waiting = Steps.list(run.id, thread_id=thread.id).data[0]
    assert waiting.status == "in_progress"
    assert waiting.step_details.tool_calls[0].function.output is None

    outputs = [{"tool_call_id": call.id, "output": "22C"}]
    resumed = list(
        Runs.submit_tool_outputs(run.id, thread_id=thread.id, tool_outputs=outputs, stream=True)
    )
    assert [e for e, _ in resumed] == [
        "thread.run.queued",
        "thread.run.in_progress",
        "thread.run.step.completed",
        *message_events(5),
        "thread.run.completed",
    ]
    assert resumed[0][1].required_action is None
    done_step = resumed[2][1]
    assert done_step.id == waiting.id and done_step.usage is None
    assert done_step.step_details.tool_calls[0].function.output == "22C"
    # turn 1: input 17 chars -> 5, output "get_weather" + args (28) -> 8;
    # turn 2: input 17 + 30 (the call) + 3 (the output) = 50 -> 13, output 19 -> 5
    assert resumed[-1][1].usage == {
        "prompt_tokens": 18,
        "completion_tokens": 13,
        "total_tokens": 31,
    }


def test_parallel_calls_share_one_step_and_submit_without_stream(emu: Emulator) -> None:
    assistant = Assistants.create(model="m")
    thread = new_thread()
    emu.queue(
        Scenario(
            [
                Turn([FunctionCall("a", "{}", call_id="call_a"), FunctionCall("b", '{"x":1}')]),
                Turn([Text("both done")]),
            ]
        )
    )
    events = list(Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    deltas = [d.delta.step_details.tool_calls[0] for e, d in events if e == "thread.run.step.delta"]
    assert [(c.index, c.function.name, c.function.arguments) for c in deltas] == [
        (0, "a", ""),
        (0, "a", "{}"),
        (1, "b", ""),
        (1, "b", '{"x":1}'),
    ]
    assert [e for e, _ in events].count("thread.run.step.created") == 1
    run = events[-1][1]
    ids = [c.id for c in run.required_action.submit_tool_outputs.tool_calls]
    assert ids[0] == "call_a" and ids[1].startswith("call_")
    outputs = [{"tool_call_id": ids[1], "output": "B"}, {"tool_call_id": ids[0], "output": "A"}]
    submitted = Runs.submit_tool_outputs(run.id, thread_id=thread.id, tool_outputs=outputs)
    assert (submitted.status, submitted.required_action) == ("queued", None)
    Runs.retrieve(
        run.id, thread_id=thread.id
    )  # each retrieve moves the run on (at least) one state
    assert Runs.retrieve(run.id, thread_id=thread.id).status == "completed"
    step_id = events[3][1].id
    step = Steps.retrieve(step_id, thread_id=thread.id, run_id=run.id)
    assert step.status == "completed"
    assert [c.function.output for c in step.step_details.tool_calls] == ["A", "B"]


def test_submit_tool_outputs_errors(manual: Emulator) -> None:
    # ``manual``: the accepted submit leaves the run queued until retrieved, so the refusal that
    # follows names that status whatever the machine's load (a timer could move it on).
    assistant = Assistants.create(model="m")
    thread = new_thread()
    manual.queue(Scenario.of(FunctionCall("a", "{}"), FunctionCall("b", "{}")))
    run = list(Runs.create(thread.id, assistant_id=assistant.id, stream=True))[-1][1]
    ids = [c.id for c in run.required_action.submit_tool_outputs.tool_calls]

    def submit(outputs: list[dict[str, str]]) -> Any:
        return Runs.submit_tool_outputs(run.id, thread_id=thread.id, tool_outputs=outputs)

    cases = [
        ([{"tool_call_id": "call_nope", "output": "x"}], "Tool call 'call_nope' is not pending"),
        (
            [{"tool_call_id": ids[0], "output": "x"}],
            f"Missing tool outputs for tool calls: {ids[1]}.",
        ),
        ([{"output": "x"}], "Tool call 'None' is not pending on this run."),
    ]
    for outputs, message in cases:
        answer = submit(outputs)
        assert (answer.status_code, answer.code) == (400, "InvalidParameter")
        assert answer.message.startswith(message)
    assert Runs.retrieve(run.id, thread_id=thread.id).status == "requires_action"
    assert submit([{"tool_call_id": i, "output": "x"} for i in ids]).status == "queued"
    again = submit([{"tool_call_id": ids[0], "output": "x"}])
    assert (again.status_code, again.message) == (
        400,
        "The run is not waiting for tool outputs (status 'queued').",
    )


def test_single_output_without_tool_call_id_is_accepted(emu: Emulator) -> None:
    assistant = Assistants.create(model="m")
    thread = new_thread()
    emu.queue(Scenario.function_call("f", "{}", then=None))
    run = list(Runs.create(thread.id, assistant_id=assistant.id, stream=True))[-1][1]
    events = list(
        Runs.submit_tool_outputs(
            run.id, thread_id=thread.id, tool_outputs=[{"output": "42"}], stream=True
        )
    )
    text = "".join(d.delta.content.text.value for e, d in events if e == "thread.message.delta")
    assert text == "The tool returned: 42"


def test_a_thread_with_an_active_run_refuses_another(emu: Emulator) -> None:
    assistant = Assistants.create(model="m")
    thread = new_thread()
    emu.queue(Scenario.function_call("f", "{}"))
    active = list(Runs.create(thread.id, assistant_id=assistant.id, stream=True))[-1][1]
    refused = Runs.create(thread.id, assistant_id=assistant.id)
    assert (refused.status_code, refused.code, refused.message) == (
        400,
        "InvalidParameter",
        f"Thread {thread.id} already has an active run {active.id}.",
    )


# --- failures --------------------------------------------------------------------------------


def test_failure_after_text_streams_the_failed_sequence(emu: Emulator) -> None:
    assistant = Assistants.create(model="m")
    thread = new_thread()
    emu.queue(Scenario.failure("InternalError", "model crashed", after_text="Partial answ"))
    events = list(Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    assert [e for e, _ in events] == [
        *HEAD,
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.message.created",
        "thread.message.in_progress",
        "thread.message.delta",
        "thread.message.delta",
        "thread.message.incomplete",
        "thread.run.step.failed",
        "thread.run.failed",
    ]
    message, step, run = (d for _, d in events[-3:])
    assert (message.status, message.content[0].text.value) == ("incomplete", "Partial answ")
    assert (step.status, step.last_error.code, step.last_error.message) == (
        "failed",
        "InternalError",
        "model crashed",
    )
    assert step.failed_at is not None
    assert (run.status, run.last_error, run.usage) == (
        "failed",
        {"code": "InternalError", "message": "model crashed"},
        None,
    )
    assert Runs.retrieve(run.id, thread_id=thread.id).status == "failed"


def test_error_event_yields_an_assistant_error(emu: Emulator) -> None:
    assistant = Assistants.create(model="m")
    thread = new_thread()
    emu.queue(Scenario.failure("Throttling", "slow down", after_text="Hi", mode="error_event"))
    events = list(Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    assert [e for e, _ in events] == [
        *HEAD,
        *message_events(1)[:5],
        "error",
    ]
    error = events[-1][1]
    assert isinstance(error, AssistantError)
    assert (error.code, error.message) == ("Throttling", "slow down")
    assert error.request_id
    run = Runs.retrieve(events[0][1].id, thread_id=thread.id)
    assert (run.status, run.last_error) == (
        "failed",
        {"code": "Throttling", "message": "slow down"},
    )


def test_http_error_fails_the_request_before_any_event(emu: Emulator) -> None:
    assistant = Assistants.create(model="m")
    thread = new_thread()
    emu.queue(Scenario.failure("Throttling.RateQuota", "Too many", mode="http_error", status=429))
    [(event, data)] = list(Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    assert event is None
    assert (data["status_code"], data["code"], data["message"]) == (
        429,
        "Throttling.RateQuota",
        "Too many",
    )
    assert Runs.list(thread.id).data == []
    # the scenario is used up: the retry plays the default reply
    assert list(Runs.create(thread.id, assistant_id=assistant.id, stream=True))[-1][0] == (
        "thread.run.completed"
    )


# --- non-streamed runs -----------------------------------------------------------------------


def test_non_streamed_run_moves_one_state_per_retrieve(manual: Emulator) -> None:
    assistant = Assistants.create(model="m", tools=[{"type": "code_interpreter"}])
    thread = new_thread()
    manual.queue(Scenario.code("print(1)\n", "1\n", "Running it."))
    run = Runs.create(thread.id, assistant_id=assistant.id)
    assert (run.status, run.started_at) == ("queued", None)
    progressing = Runs.retrieve(run.id, thread_id=thread.id)
    assert progressing.status == "in_progress" and progressing.started_at is not None
    assert len(Messages.list(thread.id).data) == 1
    assert Steps.list(run.id, thread_id=thread.id).data == []
    done = Runs.get(run.id, thread_id=thread.id)
    assert done.status == "completed"
    assert (
        done.usage["total_tokens"] == done.usage["prompt_tokens"] + done.usage["completion_tokens"]
    )
    assert Messages.list(thread.id).data[0].content[0].text.value == "Running it."
    steps = Steps.list(run.id, thread_id=thread.id, order="asc").data
    assert [s.type for s in steps] == ["message_creation", "tool_calls"]
    code = steps[1].step_details.tool_calls[0].code_interpreter
    assert (code.arguments, code.output) == ("print(1)\n", "1\n")
    assert Steps.get(steps[0].id, thread_id=thread.id, run_id=run.id).status == "completed"


def test_runs_wait_finishes_with_auto_advance(emu: Emulator) -> None:
    assistant = Assistants.create(model="m")
    thread = new_thread()
    run = Runs.create(thread.id, assistant_id=assistant.id)
    final = Runs.wait(run.id, thread_id=thread.id, timeout_seconds=5)
    assert (final.status_code, final.status) == (200, "completed")


def test_cancel_moves_to_cancelling_then_cancelled(manual: Emulator) -> None:
    assistant = Assistants.create(model="m")
    thread = new_thread()
    run = Runs.create(thread.id, assistant_id=assistant.id)
    assert Runs.cancel(run.id, thread_id=thread.id).status == "cancelling"
    cancelled = Runs.retrieve(run.id, thread_id=thread.id)
    assert cancelled.status == "cancelled" and cancelled.cancelled_at is not None
    again = Runs.cancel(run.id, thread_id=thread.id)
    assert (again.status_code, again.code, again.message) == (
        400,
        "InvalidParameter",
        "Cannot cancel a run with status 'cancelled'.",
    )
    assert len(Messages.list(thread.id).data) == 1


@pytest.mark.parametrize(
    ("retrieves", "status", "steps"),
    [(1, "in_progress", []), (2, "requires_action", ["cancelled"])],
)
def test_cancel_from_in_progress_or_requires_action_goes_through_cancelling(
    manual: Emulator, retrieves: int, status: str, steps: list[str]
) -> None:
    assistant = Assistants.create(model="m")
    thread = new_thread()
    manual.queue(Scenario.function_call("f", {"x": 1}))
    run = Runs.create(thread.id, assistant_id=assistant.id)
    for _ in range(retrieves):
        reached = Runs.retrieve(run.id, thread_id=thread.id).status
    assert reached == status
    cancelling = Runs.cancel(run.id, thread_id=thread.id)
    assert (cancelling.status, cancelling.cancelled_at) == ("cancelling", None)
    cancelled = Runs.retrieve(run.id, thread_id=thread.id)
    assert (cancelled.status, cancelled.required_action) == ("cancelled", None)
    assert cancelled.cancelled_at is not None
    assert [s.status for s in Steps.list(run.id, thread_id=thread.id).data] == steps


def test_run_settings_come_from_the_assistant_unless_overridden(manual: Emulator) -> None:
    assistant = Assistants.create(
        model="qwen-plus", instructions="Base.", tools=[{"type": "code_interpreter"}], top_p=0.5
    )
    thread = Threads.create()
    inherited = Runs.create(thread.id, assistant_id=assistant.id, metadata={"m": "1"})
    assert (inherited.model, inherited.instructions, inherited.top_p) == ("qwen-plus", "Base.", 0.5)
    assert inherited.tools[0].type == "code_interpreter" and inherited.metadata == {"m": "1"}
    Runs.cancel(inherited.id, thread_id=thread.id)
    assert Runs.retrieve(inherited.id, thread_id=thread.id).status == "cancelled"
    overridden = Runs.create(
        thread.id,
        assistant_id=assistant.id,
        model="qwen-max",
        additional_instructions="Extra.",
        tools=[{"type": "quark_search"}],
        temperature=0.1,
        extra_body={"unused": True},
    )
    assert (overridden.model, overridden.instructions, overridden.temperature) == (
        "qwen-max",
        "Base.\n\nExtra.",
        0.1,
    )
    assert overridden.tools == [{"type": "quark_search"}]
    assert last_post_body(manual)["unused"] is True
    replaced = Runs.update(overridden.id, thread_id=thread.id, metadata={"k": "v"})
    assert replaced.metadata == {"k": "v"}
    assert [r.id for r in Runs.list(thread.id).data] == [overridden.id, inherited.id]
    assert [r.id for r in Runs.list(thread.id, order="asc", limit=1).data] == [inherited.id]


def last_post_body(emu: Emulator) -> Any:
    return [r for r in emu.requests if r.method == "POST"][-1].json


# --- streams, the emulator itself --------------------------------------------------------------


def test_closing_a_stream_already_written_whole_leaves_the_run_completed(emu: Emulator) -> None:
    assistant = Assistants.create(model="m")
    thread = new_thread()
    words = [f"w{i} " for i in range(50)]  # a few KB: in the socket before the client reads
    emu.queue(Scenario.text("".join(words), chunks=words))
    stream = Runs.create(thread.id, assistant_id=assistant.id, stream=True)
    seen = [next(stream)[0] for _ in range(10)]
    stream.close()
    assert seen[-1] == "thread.message.delta"
    with pytest.raises(StopIteration):
        next(stream)
    time.sleep(0.1)
    assert Runs.list(thread.id).data[0].status == "completed"
    assert Messages.list(thread.id).data[0].content[0].text.value == "".join(words)


def test_paced_stream_still_arrives_whole(emu: Emulator) -> None:
    assistant = Assistants.create(model="m")
    thread = new_thread()
    emu.queue(Scenario.text("a b").paced(0.001))
    events = list(Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    assert [e for e, _ in events] == HEAD + message_events(2) + ["thread.run.completed"]
    time.sleep(0.05)
    run = Runs.retrieve(events[0][1].id, thread_id=thread.id)
    assert (run.status, run.cancelled_at) == ("completed", None)
    reply = Messages.list(thread.id).data[0]
    assert (reply.status, reply.content[0].text.value) == ("completed", "a b")
    steps = Steps.list(run.id, thread_id=thread.id).data
    assert [s.status for s in steps] == ["completed"]


def test_paced_stream_is_written_one_event_at_a_time(emu: Emulator) -> None:
    assistant = Assistants.create(model="m")
    thread = new_thread()
    emu.queue(Scenario.text("a b c d").paced(0.05))
    with httpx.Client(headers={"Authorization": f"Bearer {emu.api_key}"}) as client:
        url = f"{emu.assistants_base_url}/threads/{thread.id}/runs"
        started = time.monotonic()
        with client.stream("POST", url, json={"assistant_id": assistant.id, "stream": True}) as r:
            reads = [chunk for chunk in r.iter_raw() if chunk]
        elapsed = time.monotonic() - started
    events = b"".join(reads).split(b"\n\n")[:-1]
    assert len(events) == len(HEAD + message_events(4)) + 2  # run.completed, done
    assert elapsed >= 0.05 * (len(events) - 1)
    assert all(chunk.endswith(b"\n\n") for chunk in reads)  # whole events only
    # 50 ms apart, events arrive one per read (a loaded machine may merge a few)
    assert len(reads) > len(events) // 2


# --- streams the client closes early -----------------------------------------------------------


def wait_for_status(thread_id: str, run_id: str, status: str) -> Any:
    deadline = time.monotonic() + 10  # bounded; the run is usually cancelled within one pace
    while (run := Runs.retrieve(run_id, thread_id=thread_id)).status != status:
        assert time.monotonic() < deadline, f"the run is still {run.status!r}"
        time.sleep(0.02)
    return run


def read_until(stream: Any, event: str, count: int) -> list[tuple[str, Any]]:
    seen: list[tuple[str, Any]] = []
    for item in stream:
        seen.append(item)
        if [e for e, _ in seen].count(event) == count:
            break
    stream.close()
    return seen


def test_closing_a_paced_stream_cancels_the_run_after_the_events_sent(emu: Emulator) -> None:
    assistant = Assistants.create(model="m")
    thread = new_thread()
    words = [f"w{i} " for i in range(40)]
    emu.queue(Scenario.text("".join(words), chunks=words).paced(0.02))
    stream = Runs.create(thread.id, assistant_id=assistant.id, stream=True)
    seen = read_until(stream, "thread.message.delta", 3)
    run = wait_for_status(thread.id, seen[0][1].id, "cancelled")
    assert run.cancelled_at is not None
    assert (run.completed_at, run.usage, run.required_action) == (None, None, None)
    reply, question = Messages.list(thread.id).data
    assert (reply.role, reply.status, question.status) == ("assistant", "incomplete", "completed")
    text = reply.content[0].text.value
    sent = text.count(" ")  # the deltas written before the server saw the client gone
    assert 3 <= sent < 40 and text == "".join(words[:sent])
    [step] = Steps.list(run.id, thread_id=thread.id).data
    assert (step.type, step.status, step.completed_at) == ("message_creation", "cancelled", None)
    assert step.cancelled_at is not None
    assert step.step_details.message_creation.message_id == reply.id
    # The thread goes on, and the model sees the partial reply: 12 + len(text) chars of input.
    events = list(Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    assert events[-1][0] == "thread.run.completed"
    assert events[-1][1].usage["prompt_tokens"] == (12 + len(text)) // 4 + 1


def test_closing_a_stream_mid_tool_step_keeps_the_finished_message(emu: Emulator) -> None:
    assistant = Assistants.create(model="m", tools=[{"type": "code_interpreter"}])
    thread = new_thread()
    lines = [f"print({i})\n" for i in range(30)]
    code = CodeInterpreter("".join(lines), "0\n")
    emu.queue(Scenario.of(Text("Let me run it."), code, Text("Done.")).paced(0.02))
    stream = Runs.create(thread.id, assistant_id=assistant.id, stream=True)
    seen = read_until(stream, "thread.run.step.delta", 2)
    run = wait_for_status(thread.id, seen[0][1].id, "cancelled")
    reply = Messages.list(thread.id).data[0]
    assert (reply.status, reply.content[0].text.value) == ("completed", "Let me run it.")
    first, second = Steps.list(run.id, thread_id=thread.id, order="asc").data
    assert (first.type, first.status, second.type, second.status) == (
        "message_creation",
        "completed",
        "tool_calls",
        "cancelled",
    )
    [call] = second.step_details.tool_calls
    sent = call.code_interpreter.arguments.count("\n")
    assert 2 <= sent < 30 and call.code_interpreter.arguments == "".join(lines[:sent])
    assert call.code_interpreter.output is None
    assert call.id == seen[-1][1].delta.step_details.tool_calls[0].id


def test_closing_an_unpaced_stream_counts_the_events_written_whole(emu: Emulator) -> None:
    assistant = Assistants.create(model="m")
    thread = new_thread()
    words = [f"w{i} " for i in range(40000)]  # ~6 MB: more than the socket buffers can hold
    emu.queue(Scenario.text("".join(words), chunks=words))
    body = json.dumps({"assistant_id": assistant.id, "stream": True}).encode()
    head = (
        f"POST /api/v1/threads/{thread.id}/runs HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {emu.api_key}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
        sock.connect(("127.0.0.1", emu.port))
        sock.sendall(head.encode() + body)
        received = b""
        while received.count(b"event:thread.message.delta") < 3:
            received += sock.recv(4096)
    run_id = json.loads(received.split(b"data:", 1)[1].split(b"\n", 1)[0])["id"]
    wait_for_status(thread.id, run_id, "cancelled")
    reply = Messages.list(thread.id).data[0]
    text = reply.content[0].text.value
    sent = text.count(" ")
    assert reply.status == "incomplete"
    assert 3 <= sent < 40000 and text == "".join(words[:sent])


def test_a_streamed_run_that_required_action_still_cancels_through_cancelling(
    manual: Emulator,
) -> None:
    assistant = Assistants.create(model="m")
    thread = new_thread()
    manual.queue(Scenario.function_call("f", {"x": 1}).paced(0.001))
    events = list(Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    run = events[-1][1]
    assert run.status == "requires_action"
    assert Runs.cancel(run.id, thread_id=thread.id).status == "cancelling"
    cancelled = Runs.retrieve(run.id, thread_id=thread.id)
    assert (cancelled.status, cancelled.required_action) == ("cancelled", None)
    [step] = Steps.list(run.id, thread_id=thread.id).data
    assert step.status == "cancelled" and step.cancelled_at is not None


def test_requests_are_recorded_and_reset_drops_everything(emu: Emulator) -> None:
    assistant = Assistants.create(model="m", name="x")
    recorded = emu.requests[-1]
    assert (recorded.method, recorded.path) == ("POST", "/api/v1/assistants")
    assert recorded.json == {"model": "m", "name": "x", "file_ids": [], "metadata": None}
    assert recorded.headers["authorization"] == f"Bearer {emu.api_key}"
    Assistants.list(limit=5, order="asc")
    assert emu.requests[-1].query == {"limit": "5", "order": "asc"}
    emu.queue(Scenario.text("queued"))
    emu.reset()
    assert emu.requests == []
    assert Assistants.retrieve(assistant.id).status_code == 400
    thread = new_thread("x")
    answer = list(Runs.create(thread.id, assistant_id=Assistants.create(model="m").id, stream=True))
    assert "queued" not in answer[-3][1].content[0].text.value


def test_the_fixture_points_the_environment_at_the_emulator(compat_emulator: Emulator) -> None:
    env = compat_emulator.env()
    assert {name: os.environ[name] for name in env} == env
    assert env["DASHSCOPE_HTTP_BASE_URL"].endswith("/api/v1")
    assert env["COMPAT_RESPONSES_BASE_URL"].endswith("/compatible-mode/v1")
    assert env["DASHSCOPE_API_KEY"] == "sk-compat-emulator"
    assert dashscope.base_http_api_url == compat_emulator.assistants_base_url


def test_python_m_compat_testing_runs_a_command_with_the_env() -> None:
    script = (
        "import os, sys; print(os.environ['DASHSCOPE_HTTP_BASE_URL']);"
        "print(os.environ['DASHSCOPE_API_KEY']); sys.exit(3)"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "compat.testing",
            "--api-key",
            "k1",
            "--",
            sys.executable,
            "-c",
            script,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 3, result.stderr
    url, key = result.stdout.split()
    assert url.startswith("http://127.0.0.1:") and url.endswith("/api/v1")
    assert key == "k1"


@pytest.mark.parametrize(
    "build",
    [
        lambda: Turn([]),
        lambda: Turn([FunctionCall("f", "{}"), Text("after")]),
        lambda: Turn([Failure("c", "m"), Text("after")]),
        lambda: Turn([Text("t"), Failure("c", "m", mode="http_error", status=500)]),
        lambda: Failure("c", "m", mode="http_error"),
        lambda: Scenario([Turn([Text("one")]), Turn([Text("two")])]),
        lambda: Text("abc", chunks=["a", "b"]),
        lambda: CodeInterpreter("x", "", code_chunks=["y"]),
        lambda: Search("q", []) and Scenario([]),
    ],
)
def test_invalid_scenarios_are_refused_when_built(build: Any) -> None:
    with pytest.raises(ValueError):
        build()
