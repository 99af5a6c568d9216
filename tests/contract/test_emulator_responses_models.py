"""Everything the emulator's Responses side sends, checked against the openai SDK's own models.

Each scenario kind is played on both wire flavors, streamed and not; every event (and every
Response object) must validate in pydantic's strict mode against the SDK model for its type,
and carry no field the model does not declare. The exceptions are DashScope's documented quirks
(``QUIRKS``, each with where the reference says so), so a new deviation fails here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

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

from .sdk_models import problems, response_problems

JSON = dict[str, Any]
FLAVORS = ("dashscope", "openai")
# The tools as compat sends them to DashScope (its code_interpreter takes no container).
TOOLS = [
    {"type": "function", "name": "get_weather", "parameters": {"type": "object"}},
    {"type": "web_search"},
    {"type": "code_interpreter"},
]
# Search results are the scenario's data, passed through: shaped as the SDK's ActionSearchSource.
RESULTS = [{"type": "url", "url": "https://weather.example.com/hz"}]

#: Deviations from the SDK's models that the reference documents: (flavors, event type
#: pattern, problem pattern, where it is documented). Anything else is a finding.
QUIRKS: list[tuple[tuple[str, ...], str, str, str]] = [
    (
        ("dashscope",),
        r"response\.output_text\.delta",
        r"(item_id|content_index): missing",
        "responses-api.md §4: DashScope's text deltas carry no item_id / content_index",
    ),
    (
        ("dashscope",),
        r"response\.output_text\.(delta|done)",
        r"logprobs: missing",
        "responses-api.md §4 shows DashScope's deltas without it (inferred: never documented)",
    ),
    (
        ("dashscope",),
        r".*",
        r"usage\.input_tokens_details\.cache_write_tokens: missing",
        "responses-api.md §4 Usage (DashScope): input_tokens_details{cached_tokens} only",
    ),
    (
        ("dashscope",),
        r".*",
        r"usage\.x_details: not declared",
        "responses-api.md §4 Usage (DashScope): x_details:[{..., x_billing_type}]",
    ),
    (
        FLAVORS,
        r".*",
        r"tools\.2\.container: missing",
        "responses-api.md §4 Built-in tools: no OpenAI-style container on DashScope; the "
        "Response echoes the request's tools as sent",
    ),
]


def findings(flavor: str, event_type: str, found: list[str]) -> list[str]:
    """``found`` less the documented quirks of ``flavor``."""
    return [
        line
        for line in found
        if not any(
            flavor in flavors and re.fullmatch(kind, event_type) and re.search(what, line)
            for flavors, kind, what, _ in QUIRKS
        )
    ]


def event_findings(flavor: str, event: JSON) -> list[str]:
    nested = event.get("error")
    if event.get("type") == "error" and isinstance(nested, dict):
        # The nested form real OpenAI streams send (responses-api.md §3): the SDK raises
        # APIError on it, reading type/code/message/param: check those as the flat event's.
        assert isinstance(nested.get("type"), str), event
        flat = {k: v for k, v in nested.items() if k != "type"}
        event = {"type": "error", **flat, "sequence_number": event["sequence_number"]}
    return findings(flavor, str(event.get("type")), problems(event))


def post(emu: Emulator, body: JSON) -> httpx.Response:
    headers = {"Authorization": f"Bearer {emu.api_key}"}
    with httpx.Client(timeout=10) as client:
        return client.post(f"{emu.responses_base_url}/responses", json=body, headers=headers)


def sse_data(text: str) -> Iterator[str]:
    """The ``data`` of each event, for both framings (``data:x`` and ``data: x``)."""
    for line in text.splitlines():
        if line.startswith("data:"):
            yield line[5:].removeprefix(" ")


def body(**fields: Any) -> JSON:
    return {"model": "qwen-plus", "input": "What's the weather?", "tools": TOOLS, **fields}


SCENARIOS: dict[str, Scenario] = {
    "text": Scenario.text("Hello, world!"),
    "reasoning": Scenario.of(Reasoning("Two plus two is four."), Text("4")),
    "code": Scenario.code("print(2 ** 10)\n", "1024\n", "Let me compute.", conclusion="1024."),
    "search": Scenario.search("weather Hangzhou", RESULTS, "Sunny."),
    "function": Scenario.of(Text("Checking."), FunctionCall("get_weather", '{"city":"Paris"}')),
    "parallel_functions": Scenario.of(FunctionCall("a", "{}"), FunctionCall("b", '{"x":1}')),
    "everything": Scenario.of(
        Reasoning("plan"),
        Text("First"),
        CodeInterpreter("print(1)\n", "1\n"),
        Search("q", RESULTS),
        Text("then"),
        FunctionCall("get_weather", "{}"),
    ),
    "run_failed": Scenario.failure("server_error", "boom", after_text="Part"),
    "run_failed_in_code": Scenario.of(
        CodeInterpreter("x\n", ""), Failure("server_error", "boom", mode="run_failed")
    ),
    "error_event": Scenario.failure(
        "server_error", "nested", after_text="Part", mode="error_event"
    ),
    "error_event_flat": Scenario.failure("rate_limit_exceeded", "flat", mode="error_event_flat"),
    "incomplete": Scenario.failure(
        "max_output_tokens", "cut", after_text="Part", mode="incomplete"
    ),
    "stall": Scenario.failure("c", "slow", mode="stall", seconds=0.0),
    "truncate": Scenario.failure("c", "quiet", after_text="Part", mode="truncate"),
}


@pytest.mark.parametrize("flavor", FLAVORS)
@pytest.mark.parametrize("kind", SCENARIOS)
def test_every_streamed_event_is_a_valid_sdk_event(
    compat_emulator: Emulator, flavor: str, kind: str
) -> None:
    compat_emulator.responses_flavor = flavor  # type: ignore[assignment]
    compat_emulator.queue(SCENARIOS[kind])
    reply = post(compat_emulator, body(stream=True))
    assert reply.status_code == 200
    events = [json.loads(data) for data in sse_data(reply.text)]
    assert len(events) >= 2
    found = {f"{e['type']}: {line}" for e in events for line in event_findings(flavor, e)}
    assert sorted(found) == []


@pytest.mark.parametrize("flavor", FLAVORS)
# truncate breaks the JSON body itself (half of it, then the connection closes).
@pytest.mark.parametrize("kind", [kind for kind in SCENARIOS if kind != "truncate"])
def test_every_non_streamed_response_is_a_valid_sdk_response(
    compat_emulator: Emulator, flavor: str, kind: str
) -> None:
    compat_emulator.responses_flavor = flavor  # type: ignore[assignment]
    compat_emulator.queue(SCENARIOS[kind])
    reply = post(compat_emulator, body())
    assert reply.status_code == 200
    assert findings(flavor, "response", response_problems(reply.json())) == []


@pytest.mark.parametrize("flavor", FLAVORS)
def test_the_rate_limit_answer_is_a_valid_failed_response(
    compat_emulator: Emulator, flavor: str
) -> None:
    compat_emulator.responses_flavor = flavor  # type: ignore[assignment]
    limited = Failure("server_error", "Requests rate limit exceeded.", mode="rate_limited_json")
    compat_emulator.queue(Scenario.of(limited))
    reply = post(compat_emulator, body(stream=True))
    assert reply.headers["content-type"] == "application/json"
    response = reply.json()
    assert response["status"] == "failed"
    assert findings(flavor, "response", response_problems(response)) == []


@pytest.mark.parametrize("flavor", FLAVORS)
def test_a_tool_output_continuation_streams_valid_events(
    compat_emulator: Emulator, flavor: str
) -> None:
    compat_emulator.responses_flavor = flavor  # type: ignore[assignment]
    call = FunctionCall("get_weather", "{}", call_id="call_1")
    compat_emulator.queue(Scenario([Turn([call]), Turn([Text("22C.")])]))
    first = post(compat_emulator, body())
    output = {"type": "function_call_output", "call_id": "call_1", "output": "22"}
    follow = body(input=[output], previous_response_id=first.json()["id"], stream=True)
    events = [json.loads(data) for data in sse_data(post(compat_emulator, follow).text)]
    assert events[-1]["type"] == "response.completed"
    assert events[-1]["response"]["previous_response_id"] == first.json()["id"]
    assert [line for e in events for line in event_findings(flavor, e)] == []


# --- the check itself ------------------------------------------------------------------------


def test_the_check_finds_an_undeclared_field() -> None:
    event = {
        "type": "response.web_search_call.searching",
        "item_id": "ws_1",
        "output_index": 0,
        "sequence_number": 3,
        "surprise": True,
    }
    assert problems(event) == ["surprise: not declared by ResponseWebSearchCallSearchingEvent"]


def test_the_check_finds_a_missing_or_mistyped_field_inside_an_item() -> None:
    event = {
        "type": "response.output_item.done",
        "output_index": "0",
        "sequence_number": 3,
        "item": {"id": "fc_1", "type": "function_call", "name": "f", "arguments": "{}"},
    }
    assert problems(event) == [
        "item.call_id: missing (Field required)",
        "output_index: int_type (Input should be a valid integer)",
    ]


def test_the_check_refuses_an_unknown_event_type() -> None:
    assert problems({"type": "response.teleported", "sequence_number": 0}) == [
        "type: 'response.teleported' is no event type of the SDK"
    ]


@pytest.mark.parametrize("quirk", QUIRKS, ids=lambda q: q[2])
def test_every_documented_quirk_still_occurs(compat_emulator: Emulator, quirk: Any) -> None:
    """A quirk the emulator no longer shows must leave the list (it would hide a regression)."""
    flavors, kind, what, _ = quirk
    compat_emulator.responses_flavor = flavors[0]
    compat_emulator.queue(SCENARIOS["everything"])
    reply = post(compat_emulator, body(stream=True, input=[{"role": "user", "content": "Hi"}]))
    events = [json.loads(data) for data in sse_data(reply.text)]
    assert any(
        re.fullmatch(kind, e["type"]) and re.search(what, line)
        for e in events
        for line in problems(e)
    )
