"""The Responses translator: recorded Responses streams in, exact Assistant event sequences out.

Each ``tests/fixtures/responses/<name>.jsonl`` (one Responses event per line) has its expected
translation in ``<name>.expected.jsonl`` (one ``[event, payload]`` per line), made with counting
ids (``msg_1``, ``step_1``, ...) and a clock that ticks 1000, 1001, ... per call. The expected
files are the spec: after a deliberate change, regenerate them with
``python -m tests.unit.test_translate --regen`` and review the diff by eye.
"""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from compat import types as t
from compat._objects import run_object, run_usage, step_usage
from compat.backends.responses import _item, _items, _shape, translate
from compat.backends.responses.translate import IGNORED_EVENTS, ResponsesTranslator, State
from compat.errors import TranslationError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "responses"
NAMES = sorted(p.name.removesuffix(".jsonl") for p in FIXTURES.glob("*.jsonl") if "." not in p.stem)
TOOL_OUTPUT = '{"temp_c": 22, "sky": "clear"}'

JSON = dict[str, Any]


class Ids:
    """``new_id`` that counts per prefix: msg_1, msg_2, step_1, ..."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}

    def __call__(self, prefix: str) -> str:
        self.counts[prefix] = self.counts.get(prefix, 0) + 1
        return f"{prefix}_{self.counts[prefix]}"


class Clock:
    """A clock in ms that ticks once per reading."""

    def __init__(self) -> None:
        self.now = 999

    def __call__(self) -> int:
        self.now += 1
        return self.now


def new_run() -> JSON:
    return run_object("run_1", 900, "thread_1", "asst_1", {"model": "qwen-plus"})


def load(name: str) -> list[JSON]:
    lines = (FIXTURES / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()
    return [json.loads(line) for line in lines]


def drive(translator: ResponsesTranslator, events: list[JSON]) -> list[tuple[str, JSON]]:
    """Feed every event, then ``finish()`` as the caller does when the stream ends."""
    out: list[tuple[str, JSON]] = []
    for event in events:
        out += translator.feed(event)
    return out + translator.finish()


def make(
    name: str, ids: Ids | None = None, clock: Clock | None = None, **extra: Any
) -> ResponsesTranslator:
    """The translator a fixture is recorded for; ``continuation`` follows ``function_call``."""
    ids, clock = ids or Ids(), clock or Clock()
    if name != "continuation":
        return ResponsesTranslator(new_run(), new_id=ids, clock=clock, **extra)
    first = ResponsesTranslator(new_run(), new_id=ids, clock=clock)
    drive(first, load("function_call"))
    call_id = first.pending_tool_calls[0]["id"]
    return ResponsesTranslator(
        dict(first.run, status="queued", required_action=None),  # as the backend stores it
        new_id=ids,
        clock=clock,
        emit_run_start=False,
        continuation_step=first.steps[-1],
        tool_outputs={call_id: TOOL_OUTPUT},
        prior_usage=first.total_usage,
        **extra,
    )


def run_fixture(name: str) -> tuple[ResponsesTranslator, list[tuple[str, JSON]]]:
    translator = make(name)
    return translator, drive(translator, load(name))


def as_lines(events: list[tuple[str, JSON]]) -> list[Any]:
    return [json.loads(json.dumps([name, payload])) for name, payload in events]


def names(events: list[tuple[str, JSON]]) -> list[str]:
    return [name for name, _ in events]


def regenerate() -> None:
    for name in NAMES:
        _, events = run_fixture(name)
        text = "".join(json.dumps([n, p], ensure_ascii=False) + "\n" for n, p in events)
        (FIXTURES / f"{name}.expected.jsonl").write_text(text, encoding="utf-8")
        print(f"wrote {name}.expected.jsonl ({len(events)} events)")


# -- recorded input → expected output -----------------------------------------------------------
@pytest.mark.parametrize("name", NAMES)
def test_fixture_translates_to_its_expected_events(name: str) -> None:
    _, events = run_fixture(name)
    expected_file = FIXTURES / f"{name}.expected.jsonl"
    expected = [json.loads(line) for line in expected_file.read_text("utf-8").splitlines()]
    assert as_lines(events) == expected


def test_every_fixture_has_an_expected_file_and_no_expected_file_is_orphaned() -> None:
    expected = {p.name.removesuffix(".expected.jsonl") for p in FIXTURES.glob("*.expected.jsonl")}
    assert expected == set(NAMES)
    assert len(NAMES) >= 17


@pytest.mark.parametrize("name", NAMES)
def test_emitted_payloads_are_distinct_and_never_mutated_later(name: str) -> None:
    translator = make(name)
    seen: list[tuple[JSON, str]] = []
    for event in [*load(name), None]:
        out = translator.feed(event) if event is not None else translator.finish()
        seen += [(payload, json.dumps(payload)) for _, payload in out]
    assert all(json.dumps(payload) == frozen for payload, frozen in seen)
    # The backend adds status_code to each payload: no two events may share one dict.
    assert len({id(payload) for payload, _ in seen}) == len(seen)


# -- the sequences of EVENTS.md -------------------------------------------------------------------
TEXT_RUN = [
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


@pytest.mark.parametrize("name", NAMES)
def test_an_injected_text_delta_builder_builds_every_delta_and_changes_nothing_else(
    name: str,
) -> None:
    plain = drive(make(name), load(name))
    typed = drive(make(name, text_delta=t.ThreadMessageDelta.of_text), load(name))
    assert names(typed) == names(plain)
    for (event, ours), (_, wire) in zip(typed, plain, strict=True):
        if event == "thread.message.delta":
            assert type(ours) is t.ThreadMessageDelta
            assert ours == t.ThreadMessageDelta.from_dict(wire)
        else:
            assert ours == wire


@pytest.mark.parametrize("name", ["openai_text", "dashscope_text"])
def test_text_run_follows_the_canonical_sequence(name: str) -> None:
    translator, events = run_fixture(name)
    assert names(events) == TEXT_RUN
    assert translator.state is State.DONE
    assert events[2][1]["status"] == "in_progress" and events[2][1]["started_at"] == 1000


def test_text_deltas_are_the_exact_upstream_chunks() -> None:
    _, events = run_fixture("dashscope_text")
    values = [p["delta"]["content"][0]["text"]["value"] for n, p in events if n.endswith(".delta")]
    upstream = [e["delta"] for e in load("dashscope_text") if e["type"].endswith("text.delta")]
    assert values == upstream and len(values) == 3
    assert events[-3][1]["content"][0]["text"]["value"] == "".join(upstream)


def test_dashscope_deltas_without_an_opened_item_open_the_message() -> None:
    translator, events = run_fixture("dashscope_text_implicit")
    assert names(events) == [*TEXT_RUN[:9], *TEXT_RUN[10:]]  # two deltas
    assert [m["content"][0]["text"]["value"] for m in translator.messages] == ["Hangzhou is sunny."]


def test_usage_maps_input_and_output_tokens_onto_the_run_and_the_last_message_step() -> None:
    translator, events = run_fixture("dashscope_text")
    assert translator.usage == {"prompt_tokens": 20, "completion_tokens": 11, "total_tokens": 31}
    assert translator.run["usage"] == translator.usage
    assert events[-2][1]["usage"] == {
        "prompt_tokens": 20,
        "completion_tokens": 11,
        "total_tokens": 31,
        "input_tokens": 20,
        "output_tokens": 11,
    }


def test_reasoning_never_reaches_the_assistant_stream_or_the_snapshots() -> None:
    translator, events = run_fixture("reasoning_text")
    assert names(events) == [*TEXT_RUN[:9], *TEXT_RUN[10:]]
    dumped = json.dumps([events, translator.messages, translator.steps, translator.run])
    assert "SECRET-THOUGHT" not in dumped
    assert translator.unknown_items == {}


def test_text_run_snapshots() -> None:
    translator, _ = run_fixture("openai_text")
    assert translator.response_id == "resp_68a1f0c2e5d481a2"
    assert translator.run["status"] == "completed" and translator.run["completed_at"] == 1003
    [message] = translator.messages
    assert (message["id"], message["status"], message["run_id"]) == ("msg_1", "completed", "run_1")
    assert message["content"] == [
        {"type": "text", "text": {"value": "Hello there!", "annotations": []}}
    ]
    [step] = translator.steps
    assert step["step_details"] == {
        "type": "message_creation",
        "message_creation": {"message_id": "msg_1"},
    }
    assert (step["status"], step["usage"]) == ("completed", step_usage(12, 3))
    assert translator.pending_tool_calls == [] and translator.last_error is None


def test_code_interpreter_streams_code_then_logs_then_completes_the_step() -> None:
    translator, events = run_fixture("code_interpreter")
    deltas = [
        p["delta"]["step_details"]["tool_calls"][0] for n, p in events if n.endswith("step.delta")
    ]
    calls = [(d["code_interpreter"]["arguments"], d["code_interpreter"]["output"]) for d in deltas]
    assert calls == [
        ("import math\n", ""),
        ("print(math.sqrt(", ""),
        ("2))", ""),
        ("", "1.4142135623730951\n"),
    ]
    tool_step = translator.steps[0]
    assert tool_step["status"] == "completed" and tool_step["usage"] is None
    assert tool_step["step_details"]["tool_calls"] == [
        {
            "index": 0,
            "id": "call_1",  # OpenAI's item id is no uuid: a new id
            "type": "code_interpreter",
            "code_interpreter": {
                "arguments": "import math\nprint(math.sqrt(2))",
                "output": "1.4142135623730951\n",
            },
        }
    ]


def test_dashscope_code_arrives_in_one_delta_and_the_call_id_comes_from_the_item() -> None:
    _, events = run_fixture("dashscope_code_interpreter")
    deltas = [
        p["delta"]["step_details"]["tool_calls"][0] for n, p in events if n.endswith("step.delta")
    ]
    assert [d["code_interpreter"] for d in deltas] == [
        {"arguments": "import numpy as np\nprint(np.sin(np.pi / 2))", "output": ""},
        {"arguments": "", "output": "1.0\n"},
    ]
    assert {d["id"] for d in deltas} == {"call_9e4d0a6ccf5b4c7e9ab36b8f0e2c4a55"}


def test_web_search_is_a_quark_search_tool_call() -> None:
    translator, _ = run_fixture("web_search")
    [call] = translator.steps[0]["step_details"]["tool_calls"]
    assert call["type"] == "quark_search"
    assert call["quark_search"] == {
        "arguments": '{"query": "杭州 今天 天气"}',
        "output": '[{"type": "url", "url": "https://weather.example.com/hangzhou"}]',
    }


def test_other_hosted_tools_are_tool_calls_of_their_own_type() -> None:
    translator, _ = run_fixture("hosted_tools")
    calls = [s["step_details"]["tool_calls"][0] for s in translator.steps[:2]]
    assert [(c["type"], c[c["type"]]) for c in calls] == [
        (
            "web_extractor",
            {
                "arguments": '{"goal": "Summarise the page", "urls": ["https://example.com/a"]}',
                "output": "Page A is about cats.",
            },
        ),
        (
            "mcp",
            {
                "arguments": json.dumps(
                    {"name": "lookup", "server_label": "kb", "arguments": '{"q": "cats"}'}
                ),
                "output": "3 results",
            },
        ),
    ]
    assert translator.unknown_events == {"response.web_extractor_call.in_progress": 1}


# -- function calls and the continuation ---------------------------------------------------------
def test_function_call_ends_in_requires_action() -> None:
    translator, events = run_fixture("function_call")
    assert names(events) == [
        "thread.run.created",
        "thread.run.queued",
        "thread.run.in_progress",
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.run.step.delta",
        "thread.run.step.delta",
        "thread.run.requires_action",
    ]
    call_id = "call_2f8a1c9e4b7d4e0f9a3c5b7d9e1f3a5c"
    fragments = [p["delta"]["step_details"]["tool_calls"][0]["function"] for _, p in events[5:7]]
    assert fragments == [
        {"name": "get_weather", "arguments": "", "output": None},
        {"name": "get_weather", "arguments": '{"city": "杭州"}', "output": None},
    ]
    assert translator.state is State.REQUIRES_ACTION
    assert translator.pending_tool_calls == [
        {
            "index": 0,
            "id": call_id,
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "杭州"}', "output": None},
        }
    ]
    run = translator.run
    # No usage on a run that has not ended (as the Assistant API); the count is kept for the next.
    assert run["status"] == "requires_action" and run["usage"] is None
    assert translator.total_usage == run_usage(150, 18)
    assert run["required_action"]["submit_tool_outputs"]["tool_calls"] == [
        {
            "id": call_id,
            "type": "function",
            "function": {"name": "get_weather", "arguments": '{"city": "杭州"}'},
        }
    ]
    [step] = translator.steps
    assert step["status"] == "in_progress"
    assert step["step_details"]["tool_calls"] == translator.pending_tool_calls


def test_parallel_function_calls_share_one_step() -> None:
    translator, events = run_fixture("parallel_function_calls")
    assert names(events).count("thread.run.step.created") == 1
    indexed = [
        (c["index"], c["function"]["name"], c["function"]["arguments"])
        for _, p in events
        if "delta" in p
        for c in p["delta"]["step_details"]["tool_calls"]
    ]
    assert indexed == [
        (0, "get_weather", ""),
        (0, "get_weather", '{"city": "Paris"}'),
        (1, "get_time", ""),
        (1, "get_time", '{"tz": "Europe/Paris"}'),
    ]
    assert [c["id"] for c in translator.pending_tool_calls] == [
        "call_a1b2c3d4e5f60718293a4b5c6d7e8f90",
        "call_0f9e8d7c6b5a49382716a5b4c3d2e1f0",
    ]


def test_argument_deltas_pass_through_and_an_earlier_message_step_completes_without_usage() -> None:
    translator, events = run_fixture("function_call_deltas")
    fragments = [
        p["delta"]["step_details"]["tool_calls"][0]["function"]["arguments"]
        for n, p in events
        if n == "thread.run.step.delta"
    ]
    assert fragments == ["", '{"city":', ' "Paris",', ' "unit": "c"}']
    message_step, tool_step = translator.steps
    assert (message_step["status"], message_step["usage"]) == ("completed", None)
    assert tool_step["status"] == "in_progress"
    i = names(events).index("thread.run.step.completed")
    assert names(events)[i - 1 : i + 2] == [
        "thread.message.completed",
        "thread.run.step.completed",
        "thread.run.step.created",
    ]


def test_continuation_completes_the_tool_step_and_sums_usage() -> None:
    translator, events = run_fixture("continuation")
    assert names(events)[:3] == [
        "thread.run.queued",
        "thread.run.in_progress",
        "thread.run.step.completed",
    ]
    assert events[0][1]["required_action"] is None
    tool_step = events[2][1]
    assert tool_step["id"] == "step_1" and tool_step["usage"] is None
    assert tool_step["step_details"]["tool_calls"][0]["function"]["output"] == TOOL_OUTPUT
    assert names(events)[-1] == "thread.run.completed"
    assert translator.run["usage"] == run_usage(150 + 190, 18 + 12)
    assert translator.usage == run_usage(190, 12)
    assert translator.run["started_at"] == 1000  # the run's first start is kept
    assert [s["id"] for s in translator.steps] == ["step_1", "step_2"]


def test_the_continuation_does_not_change_the_stored_step() -> None:
    ids, clock = Ids(), Clock()
    first = ResponsesTranslator(new_run(), new_id=ids, clock=clock)
    drive(first, load("function_call"))
    stored = json.loads(json.dumps(first.steps[-1]))
    follow = ResponsesTranslator(
        first.run,
        new_id=ids,
        clock=clock,
        emit_run_start=False,
        continuation_step=stored,
        tool_outputs={first.pending_tool_calls[0]["id"]: "x"},
        prior_usage=first.total_usage,
    )
    drive(follow, load("continuation"))
    assert stored == json.loads(json.dumps(first.steps[-1]))
    assert follow.run["usage"] == run_usage(340, 30)


# -- which item an event is about -------------------------------------------------------------
def message_events(events: list[tuple[str, JSON]]) -> list[tuple[str, str]]:
    return [(n, p["id"]) for n, p in events if n.startswith("thread.message.")]


def test_a_message_whose_id_changes_in_every_event_is_one_message_streamed_once() -> None:
    translator, events = run_fixture("changing_item_ids")
    assert names(events) == TEXT_RUN
    assert {message_id for _, message_id in message_events(events)} == {"msg_1"}
    assert [m["content"][0]["text"]["value"] for m in translator.messages] == ["Bonjour, le monde."]
    assert len(translator.steps) == 1 and translator.unknown_items == {}


def test_a_function_call_whose_id_changes_is_one_call_with_the_streamed_arguments() -> None:
    translator, events = run_fixture("changing_item_ids_function_call")
    fragments = [
        p["delta"]["step_details"]["tool_calls"][0]["function"]["arguments"]
        for n, p in events
        if n == "thread.run.step.delta"
    ]
    assert fragments == ["", '{"city": ', '"Lyon"}']
    assert [(c["id"], c["function"]["arguments"]) for c in translator.pending_tool_calls] == [
        ("call_Wx81", '{"city": "Lyon"}')
    ]


def test_dashscope_finishing_items_one_output_index_later_is_harmless() -> None:
    translator, events = run_fixture("dashscope_shifted_output_index")
    assert names(events).count("thread.message.created") == 1
    assert names(events).count("thread.message.completed") == 1
    assert [n for n in names(events) if n == "thread.message.delta"] == ["thread.message.delta"] * 2
    assert {message_id for _, message_id in message_events(events)} == {"msg_1"}
    assert [s["step_details"]["type"] for s in translator.steps] == [
        "tool_calls",
        "message_creation",
    ]
    assert translator.steps[0]["step_details"]["tool_calls"][0]["code_interpreter"] == {
        "arguments": "print(sum(range(10)))",
        "output": "45\n",
    }


def item_event(kind: str, item: JSON, index: int | None = None) -> JSON:
    event = {"type": f"response.output_item.{kind}", "item": item}
    return event if index is None else {**event, "output_index": index}


def message_item(item_id: str, text: str | None = None) -> JSON:
    content = [] if text is None else [{"type": "output_text", "text": text}]
    return {"id": item_id, "type": "message", "content": content}


def started(*events: JSON) -> tuple[ResponsesTranslator, list[tuple[str, JSON]]]:
    translator = ResponsesTranslator(new_run(), new_id=Ids(), clock=Clock())
    out: list[tuple[str, JSON]] = []
    for event in [created(), *events]:
        out += translator.feed(event)
    return translator, out


def test_completed_output_with_new_ids_finishes_the_unfinished_message_once() -> None:
    translator, out = started(
        item_event("added", message_item("m_a"), 0),
        {"type": "response.output_text.delta", "delta": "Hi"},
    )
    output = [message_item("m_z", "Hi")]
    out += translator.feed({"type": "response.completed", "response": {"output": output}})
    assert names(out).count("thread.message.created") == 1
    assert message_events(out)[-1] == ("thread.message.completed", "msg_1")
    assert names(out).count("thread.message.delta") == 1 and translator.state is State.DONE


def test_a_message_whose_id_and_output_index_both_change_is_the_open_message() -> None:
    translator, out = started(
        item_event("added", message_item("m_a"), 0),
        {"type": "response.output_text.delta", "delta": "Hi"},
        item_event("done", message_item("m_b", "Hi"), 3),
    )
    assert names(out).count("thread.message.completed") == 1
    assert [m["id"] for m in translator.messages] == ["msg_1"]


def test_items_at_one_constant_output_index_stay_apart() -> None:
    # Some servers send output_index 0 for every item: a position never merges finished items.
    translator, out = started(
        item_event("done", message_item("m_1", "One."), 0),
        item_event("done", message_item("m_2", "Two."), 0),
    )
    texts = [m["content"][0]["text"]["value"] for m in translator.messages]
    assert texts == ["One.", "Two."]
    output = [message_item("m_1", "One."), message_item("m_2", "Two.")]
    out += translator.feed({"type": "response.completed", "response": {"output": output}})
    assert names(out).count("thread.message.completed") == 2


def test_function_calls_with_different_call_ids_are_never_merged_by_position() -> None:
    call = {"type": "function_call", "name": "f", "arguments": "{}"}
    translator, _ = started(
        item_event("added", {**call, "id": "fc_1", "call_id": "call_x", "arguments": ""}, 0),
        item_event("done", {**call, "id": "fc_2", "call_id": "call_y"}, 0),
        {"type": "response.completed", "response": {}},
    )
    assert [c["id"] for c in translator.pending_tool_calls] == ["call_x", "call_y"]


# -- failures ------------------------------------------------------------------------------------
FAILED_MID_MESSAGE = [
    "thread.message.incomplete",
    "thread.run.step.failed",
    "thread.run.failed",
]


def test_nested_error_event_is_the_raw_error_and_closes_the_snapshots_as_a_failure() -> None:
    # The Assistant API's own `error` event: the one event emitted; the snapshots the caller
    # stores are closed as for any failure, and the response.failed that follows is absorbed.
    translator, events = run_fixture("error_nested")
    assert events[-1] == (
        "error",
        {
            "code": "insufficient_quota",
            "message": "You exceeded your current quota.",
            "request_id": "1",
        },
    )
    assert not set(FAILED_MID_MESSAGE) & set(names(events))
    assert translator.late_events == {}
    [message] = translator.messages
    assert message["status"] == "incomplete"
    assert message["content"][0]["text"]["value"] == "Partial answer"
    error = {"code": "insufficient_quota", "message": "You exceeded your current quota."}
    assert translator.failed and translator.last_error == error
    assert translator.steps[0]["last_error"] == error
    assert translator.steps[0]["failed_at"] == translator.run["failed_at"]


def test_flat_error_event_fails_the_open_tool_step_with_its_partial_code() -> None:
    translator, events = run_fixture("error_flat")
    assert names(events)[-2:] == ["thread.run.step.failed", "thread.run.failed"]
    [call] = translator.steps[0]["step_details"]["tool_calls"]
    assert call["code_interpreter"] == {"arguments": "x = 1", "output": None}
    assert translator.last_error == {
        "code": "server_error",
        "message": "The model crashed while generating.",
    }
    assert translator.run["usage"] is None


def test_dashscope_http_200_rate_limit_becomes_rate_limit_exceeded() -> None:
    translator, events = run_fixture("failed_rate_limit")
    assert names(events) == [
        "thread.run.created",
        "thread.run.queued",
        "thread.run.in_progress",  # as every Assistant-API run is before it fails
        "thread.run.failed",
    ]
    assert translator.run["started_at"] is not None
    assert translator.last_error == {
        "code": "rate_limit_exceeded",
        "message": "Requests rate limit exceeded, please try again later.",
    }
    assert translator.steps == [] and translator.messages == []


def test_incomplete_response_fails_the_run_with_the_reason_as_code() -> None:
    translator, events = run_fixture("incomplete")
    assert names(events)[-4:] == [
        "thread.message.delta",
        "thread.message.incomplete",
        "thread.run.step.failed",
        "thread.run.failed",
    ]
    assert translator.last_error == {
        "code": "max_output_tokens",
        "message": "the response is incomplete: max_output_tokens",
    }
    assert translator.run["usage"] == run_usage(30, 16)
    assert [m["content"][0]["text"]["value"] for m in translator.messages] == ["Once upon a time"]


def test_a_stream_that_ends_without_a_terminal_event_fails_on_finish() -> None:
    translator, events = run_fixture("truncated")
    assert names(events)[-3:] == FAILED_MID_MESSAGE
    assert translator.last_error == {
        "code": "server_error",
        "message": "stream ended before the response finished",
    }
    assert translator.messages[0]["content"][0]["text"]["value"] == "The answer is"


def test_a_failure_before_response_created_opens_and_starts_the_run_first() -> None:
    translator = ResponsesTranslator(new_run(), new_id=Ids(), clock=Clock())
    events = translator.fail("server_error", "Connection error.")
    assert names(events) == [
        "thread.run.created",
        "thread.run.queued",
        "thread.run.in_progress",
        "thread.run.failed",
    ]
    run = translator.run
    assert (run["status"], run["started_at"], run["failed_at"]) == ("failed", 1000, 1001)


def test_a_continuation_that_fails_at_once_is_in_progress_once() -> None:
    events = names(make("continuation").fail("server_error", "Connection error."))
    assert events == [
        "thread.run.queued",
        "thread.run.in_progress",
        "thread.run.step.completed",  # the tool step, with its outputs
        "thread.run.failed",
    ]


def test_error_codes_are_kept_and_a_missing_code_is_server_error() -> None:
    assert _shape.map_error("invalid_prompt", "bad") == {"code": "invalid_prompt", "message": "bad"}
    assert _shape.map_error(None, None) == {
        "code": "server_error",
        "message": "the upstream response failed",
    }
    assert _shape.map_error("server_error", "Rate limit reached")["code"] == "rate_limit_exceeded"
    assert _shape.map_error("server_error", "boom")["code"] == "server_error"


def test_finish_fail_and_cancel_after_the_end_emit_nothing() -> None:
    for name in ("openai_text", "function_call", "failed_rate_limit"):
        translator, _ = run_fixture(name)
        state, run = translator.state, dict(translator.run)
        assert translator.finish() == translator.fail("server_error", "x") == []
        assert translator.cancel() == []
        assert (translator.state, translator.run) == (state, run)


def test_cancel_mid_message_records_a_cancelled_run() -> None:
    translator = ResponsesTranslator(new_run(), new_id=Ids(), clock=Clock())
    for event in load("truncated"):
        translator.feed(event)
    events = translator.cancel()
    assert names(events) == [
        "thread.message.incomplete",
        "thread.run.step.cancelled",
        "thread.run.cancelled",
    ]
    assert translator.state is State.CANCELLED
    run = translator.run
    assert (run["status"], run["cancelled_at"], run["last_error"]) == ("cancelled", 1002, None)
    assert translator.steps[0]["status"] == "cancelled"
    assert translator.steps[0]["cancelled_at"] == 1002
    assert translator.messages[0]["content"][0]["text"]["value"] == "The answer is"


# -- the state machine ---------------------------------------------------------------------------
def created() -> JSON:
    return {"type": "response.created", "response": {"id": "r1", "status": "queued"}}


def test_a_delta_before_response_created_raises_and_enters_error() -> None:
    translator = ResponsesTranslator(new_run(), new_id=Ids(), clock=Clock())
    with pytest.raises(TranslationError, match="IDLE"):
        translator.feed({"type": "response.output_text.delta", "delta": "x"})
    assert translator.state is State.ERROR
    with pytest.raises(TranslationError):  # ERROR is sticky for events
        translator.feed(created())


LATE = [
    {"type": "response.output_text.delta", "delta": "late"},
    {"type": "response.content_part.added"},  # ignored events too
    {"type": "response.completed", "response": {}},
    {"type": "response.failed", "response": {"error": {"code": "server_error"}}},
    {"type": "error", "code": "server_error", "message": "late"},
    {"type": "response.output_item.added", "item": "junk"},
    {"type": ["not", "a", "string"]},
    {"no": "type"},
    ["not", "an", "object"],
]
LATE_KEYS = {
    "response.output_text.delta": 1,
    "response.content_part.added": 1,
    "response.completed": 1,
    "response.failed": 1,
    "error": 1,
    "response.output_item.added": 1,
    "<malformed type>": 1,
    "<no type>": 1,
    "<not an object>": 1,
}


@pytest.mark.parametrize(
    "name", ["openai_text", "function_call", "failed_rate_limit", "incomplete"]
)
def test_events_after_the_end_change_nothing_and_are_counted(name: str) -> None:
    translator, _ = run_fixture(name)
    state, run = translator.state, json.dumps(translator.run)
    snapshots = json.dumps([translator.messages, translator.steps, translator.pending_tool_calls])
    for late in LATE:
        assert translator.feed(late) == []  # type: ignore[arg-type]  # non-objects too
    assert translator.late_events == LATE_KEYS
    assert (translator.state, json.dumps(translator.run)) == (state, run)
    after = json.dumps([translator.messages, translator.steps, translator.pending_tool_calls])
    assert after == snapshots
    assert translator.finish() == translator.fail("x", "y") == translator.cancel() == []


def test_a_cancelled_run_ignores_the_rest_of_the_stream() -> None:
    translator = ResponsesTranslator(new_run(), new_id=Ids(), clock=Clock())
    events = load("openai_text")
    for event in events[:5]:
        translator.feed(event)
    assert names(translator.cancel())[-1] == "thread.run.cancelled"
    assert [translator.feed(e) for e in events[5:]] == [[]] * (len(events) - 5)
    assert translator.state is State.CANCELLED and translator.run["status"] == "cancelled"
    assert sum(translator.late_events.values()) == len(events) - 5


def test_the_failed_after_an_error_event_brings_usage_once_then_events_are_late() -> None:
    translator = ResponsesTranslator(new_run(), new_id=Ids(), clock=Clock())
    translator.feed(created())
    assert names(translator.feed({"type": "error", "message": "boom"}))[-1] == "thread.run.failed"
    failed = {"type": "response.failed", "response": {"usage": {"input_tokens": 7}}}
    assert translator.feed(failed) == []
    assert translator.run["usage"] == run_usage(7, 0) and translator.late_events == {}
    assert translator.feed(failed) == []
    assert translator.late_events == {"response.failed": 1}
    assert translator.state is State.FAILED
    assert translator.last_error == {"code": "server_error", "message": "boom"}


def test_an_unreadable_failed_after_an_error_event_is_still_absorbed() -> None:
    translator = ResponsesTranslator(new_run(), new_id=Ids(), clock=Clock())
    translator.feed(created())
    translator.feed({"type": "error", "message": "boom"})
    bad = {"type": "response.failed", "response": {"usage": {"input_tokens": "7"}}}
    assert translator.feed(bad) == []
    assert translator.state is State.FAILED and translator.run["usage"] is None


def test_fail_after_a_translation_error_closes_the_run() -> None:
    translator = ResponsesTranslator(new_run(), new_id=Ids(), clock=Clock())
    events = load("truncated")
    for event in events:
        translator.feed(event)
    with pytest.raises(TranslationError, match="added twice"):
        translator.feed(events[2])
    assert translator.state is State.ERROR
    out = translator.fail("invalid_stream", "output item added twice")
    assert names(out) == FAILED_MID_MESSAGE
    assert translator.state is State.FAILED


def test_unknown_event_types_are_counted_in_any_state_and_never_raise() -> None:
    translator = ResponsesTranslator(new_run(), new_id=Ids(), clock=Clock())
    assert translator.feed({"type": "response.brand_new.thing"}) == []
    translator.feed(created())
    translator.feed({"type": "response.brand_new.thing"})
    translator.feed({"no": "type"})
    assert translator.unknown_events == {"response.brand_new.thing": 2, "<no type>": 1}
    assert translator.state is State.IN_PROGRESS


def test_unknown_item_types_are_counted_and_not_shown() -> None:
    translator = ResponsesTranslator(new_run(), new_id=Ids(), clock=Clock())
    translator.feed(created())
    item = {"id": "it_1", "type": "program", "code": "x"}
    out = translator.feed({"type": "response.output_item.added", "item": item})
    out += translator.feed({"type": "response.output_item.done", "item": item})
    assert names(out) == ["thread.run.in_progress"]
    assert translator.unknown_items == {"program": 1}


def test_response_completed_finishes_items_the_stream_never_finished() -> None:
    translator = ResponsesTranslator(new_run(), new_id=Ids(), clock=Clock())
    translator.feed(created())
    translator.feed({"type": "response.output_text.delta", "delta": "Hi"})
    call = {
        "id": "fc_1",
        "type": "function_call",
        "call_id": "call_9",
        "name": "f",
        "arguments": "{}",
    }
    output = [{"id": "m_1", "type": "message", "content": [{"type": "text", "text": "Hi"}]}, call]
    events = translator.feed({"type": "response.completed", "response": {"output": output}})
    assert names(events) == [
        "thread.message.completed",
        "thread.run.step.completed",
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.run.step.delta",
        "thread.run.step.delta",
        "thread.run.requires_action",
    ]
    assert [c["id"] for c in translator.pending_tool_calls] == ["call_9"]


def test_a_message_only_on_the_finished_item_is_one_delta() -> None:
    translator = ResponsesTranslator(new_run(), new_id=Ids(), clock=Clock())
    translator.feed(created())
    item = {"id": "m_1", "type": "message", "content": [{"type": "output_text", "text": "All"}]}
    events = translator.feed({"type": "response.output_item.done", "item": item})
    deltas = [p["delta"]["content"][0]["text"]["value"] for n, p in events if n.endswith("delta")]
    assert deltas == ["All"]


def test_a_completed_event_with_failed_status_is_a_failure() -> None:
    translator = ResponsesTranslator(new_run(), new_id=Ids(), clock=Clock())
    translator.feed(created())
    failed = {"status": "failed", "error": {"code": "server_error", "message": "rate limit hit"}}
    events = translator.feed({"type": "response.completed", "response": failed})
    assert names(events)[-1] == "thread.run.failed"
    assert translator.last_error == {"code": "rate_limit_exceeded", "message": "rate limit hit"}


def test_ignored_and_handled_event_types_do_not_overlap() -> None:
    assert not IGNORED_EVENTS & set(translate._HANDLERS)
    assert "response.output_text.delta" in translate._HANDLERS


def test_the_hot_path_shortcut_is_a_self_loop_of_the_table() -> None:
    transitions = translate._TRANSITIONS
    assert transitions[(State.IN_PROGRESS, "update")] is State.IN_PROGRESS
    assert {t for (s, t) in transitions if s is State.ERROR} == {"fail", "cancel"}
    assert all(s not in (State.DONE, State.REQUIRES_ACTION) for s, _ in transitions)


def test_text_deltas_read_no_clock_and_make_no_ids() -> None:
    ids, clock = Ids(), Clock()
    translator = ResponsesTranslator(new_run(), new_id=ids, clock=clock)
    translator.feed(created())
    translator.feed({"type": "response.output_text.delta", "delta": "a"})
    before = (dict(ids.counts), clock.now)
    for _ in range(1000):
        translator.feed({"type": "response.output_text.delta", "delta": "b"})
    assert (ids.counts, clock.now) == before


ALLOWED_IMPORTS = {
    "__future__",
    "collections.abc",
    "contextlib",
    "dataclasses",
    "enum",
    "io",  # io.StringIO: an item's streamed text, in memory
    "json",
    "typing",
    "compat._objects",
    "compat.errors",
    "compat.backends.responses._item",
    "compat.backends.responses._items",
    "compat.backends.responses._shape",
}


@pytest.mark.parametrize("module", [translate, _item, _items, _shape])
def test_the_translator_is_pure(module: Any) -> None:
    tree = ast.parse(Path(module.__file__).read_text("utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert imported <= ALLOWED_IMPORTS


if __name__ == "__main__":
    if sys.argv[1:] != ["--regen"]:
        sys.exit("usage: python -m tests.unit.test_translate --regen")
    regenerate()
