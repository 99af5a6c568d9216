"""The real openai 3.54 SDK against the emulator's Responses API: events, chaining, failures."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import dashscope
import httpx
import openai
import pytest
from dashscope import Assistants, Runs, Threads

from compat.testing import (
    CodeInterpreter,
    Conversation,
    Emulator,
    Failure,
    FunctionCall,
    Reasoning,
    Scenario,
    Text,
    Turn,
    default_turn,
    estimate_usage,
)

HEAD = ["response.created", "response.in_progress"]
ADDED, DONE = "response.output_item.added", "response.output_item.done"


def text_events(deltas: int) -> list[str]:
    return [
        ADDED,
        "response.content_part.added",
        *["response.output_text.delta"] * deltas,
        "response.output_text.done",
        "response.content_part.done",
        DONE,
    ]


CODE_EVENTS = [
    ADDED,
    "response.code_interpreter_call.in_progress",
    "response.code_interpreter_call.interpreting",
    "response.code_interpreter_call.completed",
    DONE,
]
SEARCH_EVENTS = [
    ADDED,
    "response.web_search_call.in_progress",
    "response.web_search_call.searching",
    "response.web_search_call.completed",
    DONE,
]
RESULTS = [{"type": "url", "url": "https://weather.example.com/hz", "title": "Weather"}]


@pytest.fixture
def emu(compat_emulator: Emulator) -> Emulator:
    return compat_emulator


@pytest.fixture
def client(emu: Emulator) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=emu.responses_base_url, api_key=emu.api_key) as client:
        yield client


def stream(client: openai.OpenAI, **kwargs: Any) -> list[Any]:
    kwargs.setdefault("model", "qwen-plus")
    kwargs.setdefault("input", "Hi")
    with client.responses.create(stream=True, **kwargs) as events:
        return list(events)


def types(events: list[Any]) -> list[str]:
    return [e.type for e in events]


def usage(events: list[Any]) -> tuple[int, int, int]:
    u = events[-1].response.usage
    return u.input_tokens, u.output_tokens, u.total_tokens


# --- streams per item kind -------------------------------------------------------------------


def test_text_streams_dashscope_order_with_deltas_lacking_item_id(
    emu: Emulator, client: openai.OpenAI
) -> None:
    emu.queue(Scenario.text("Hello, world!", chunks=["Hello", ", ", "world!"]))
    events = stream(client, input="Say hello", instructions="Be kind.")
    assert types(events) == [*HEAD, *text_events(3), "response.completed"]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    created, in_progress = events[0].response, events[1].response
    assert (created.status, in_progress.status) == ("queued", "in_progress")
    assert created.id.startswith("resp_") and len(created.id) == 41
    deltas = [e for e in events if e.type == "response.output_text.delta"]
    assert [(d.delta, d.item_id, d.content_index, d.output_index) for d in deltas] == [
        ("Hello", None, None, 0),
        (", ", None, None, 0),
        ("world!", None, None, 0),
    ]
    item = events[-2].item
    assert item.id.startswith("msg_") and item.id == events[3].item_id
    assert (item.status, item.content[0].type, item.content[0].text) == (
        "completed",
        "output_text",
        "Hello, world!",
    )
    done = events[-1].response
    assert (done.id, done.status, done.output_text, done.model) == (
        created.id,
        "completed",
        "Hello, world!",
        "qwen-plus",
    )
    assert (done.instructions, done.previous_response_id) == ("Be kind.", None)
    assert abs(done.created_at - time.time()) < 60  # seconds, not milliseconds
    # Input: "Be kind." + "Say hello" = 17 chars; output 13 chars.
    assert usage(events) == (5, 4, 9)
    assert done.usage.input_tokens_details.cached_tokens == 0
    assert done.usage.output_tokens_details.reasoning_tokens == 0


def test_reasoning_then_text(emu: Emulator, client: openai.OpenAI) -> None:
    emu.queue(Scenario.of(Reasoning("Two plus two is four."), Text("4")))
    events = stream(client)
    assert types(events) == [
        *HEAD,
        ADDED,
        *["response.reasoning_summary_text.delta"] * 5,
        "response.reasoning_summary_text.done",
        DONE,
        *text_events(1),
        "response.completed",
    ]
    assert "".join(e.delta for e in events[3:8]) == "Two plus two is four."
    reasoning = events[9].item
    assert (reasoning.type, reasoning.summary[0].text) == ("reasoning", "Two plus two is four.")
    assert reasoning.id.startswith("msg_")  # DashScope: msg_<uuid> for every item type
    assert [i.type for i in events[-1].response.output] == ["reasoning", "message"]


def test_code_interpreter_sends_code_and_logs_only_on_the_item(
    emu: Emulator, client: openai.OpenAI
) -> None:
    emu.queue(Scenario.code("print(2 ** 10)\n", "1024\n", "Let me compute.", conclusion="1024."))
    events = stream(client, tools=[{"type": "code_interpreter"}])
    assert types(events) == [
        *HEAD,
        *text_events(3),
        *CODE_EVENTS,
        *text_events(1),
        "response.completed",
    ]
    added, done = events[10].item, events[14].item
    assert (added.type, added.status, added.code, added.outputs) == (
        "code_interpreter_call",
        "in_progress",
        "",
        [],
    )
    assert (done.status, done.code, done.outputs[0].type, done.outputs[0].logs) == (
        "completed",
        "print(2 ** 10)\n",
        "logs",
        "1024\n",
    )
    assert {e.item_id for e in events[11:14]} == {done.id}
    assert events[-1].response.tools[0].type == "code_interpreter"


def test_web_search_item_carries_query_and_sources(emu: Emulator, client: openai.OpenAI) -> None:
    emu.queue(Scenario.search("weather Hangzhou", RESULTS, "Sunny."))
    events = stream(client, tools=[{"type": "web_search"}])
    assert types(events) == [*HEAD, *SEARCH_EVENTS, *text_events(1), "response.completed"]
    action = events[6].item.action
    assert (action.type, action.query, action.sources[0].url) == (
        "search",
        "weather Hangzhou",
        "https://weather.example.com/hz",
    )
    assert events[6].item.model_dump()["action"]["sources"] == RESULTS


def test_function_calls_complete_the_response_without_argument_events(
    emu: Emulator, client: openai.OpenAI
) -> None:
    calls = [
        FunctionCall("get_weather", '{"city": "Hangzhou"}', "call_fixed"),
        FunctionCall("now", "{}"),
    ]
    emu.queue(Scenario([Turn(calls), Turn([Text("Sunny at noon.")])]))
    events = stream(client, tools=[{"type": "function", "name": "get_weather"}])
    assert types(events) == [*HEAD, ADDED, DONE, ADDED, DONE, "response.completed"]
    first_added, first, second = events[2].item, events[3].item, events[5].item
    assert (first_added.arguments, first_added.status) == ("", "in_progress")
    assert (first.call_id, first.name, first.arguments, first.status) == (
        "call_fixed",
        "get_weather",
        '{"city": "Hangzhou"}',
        "completed",
    )
    assert second.call_id.startswith("call_") and len(second.call_id) == 37
    assert [e.output_index for e in events[2:6]] == [0, 0, 1, 1]
    assert events[-1].response.status == "completed"  # no requires_action in the Responses API


# --- conversations -----------------------------------------------------------------------------


def test_tool_outputs_continue_the_same_script_by_previous_response_id(
    emu: Emulator, client: openai.OpenAI
) -> None:
    emu.queue(Scenario.function_call("get_weather", {"city": "Hangzhou"}, then="Sunny."))
    emu.queue(Scenario.text("Not for the continuation."))
    first = stream(client, input="Weather?")[-1].response
    call = first.output[0]
    output = {"type": "function_call_output", "call_id": call.call_id, "output": "25C"}
    second = stream(client, input=[output], previous_response_id=first.id)
    assert second[-1].response.output_text == "Sunny."
    assert second[-1].response.previous_response_id == first.id
    # The queued scenario is still there for the next fresh request.
    assert stream(client, input="Next")[-1].response.output_text == "Not for the continuation."


def test_tool_outputs_continue_the_script_when_the_history_is_replayed(
    emu: Emulator, client: openai.OpenAI
) -> None:
    emu.queue(Scenario.function_call("lookup", "{}", then="Found it."))
    call = stream(client, input="Find it")[-1].response.output[0]
    replay = [
        {"role": "user", "content": "Find it"},
        {"type": "function_call", "call_id": call.call_id, "name": "lookup", "arguments": "{}"},
        {"type": "function_call_output", "call_id": call.call_id, "output": "here"},
    ]
    events = stream(client, input=replay)
    assert events[-1].response.output_text == "Found it."
    # The conversation: "Find it" + "lookup({})" + "here" = 21 chars.
    assert usage(events)[0] == estimate_usage(21, 0)[0]


def test_default_turn_sees_the_whole_chain_and_quotes_the_last_user_message(
    client: openai.OpenAI,
) -> None:
    first = stream(client, input="What is 2+2?", instructions="Be brief.")[-1].response
    answer = 'You said: "What is 2+2?". This is the emulator\'s deterministic answer.'
    assert first.output_text == answer
    events = stream(
        client, input=[{"role": "user", "content": "And 3+3?"}], previous_response_id=first.id
    )
    expected = default_turn(
        Conversation([("user", "What is 2+2?"), ("assistant", answer), ("user", "And 3+3?")])
    )
    assert events[-1].response.output_text == expected.items[0].text
    chars = len("What is 2+2?") + len(answer) + len("And 3+3?")  # instructions not inherited
    assert usage(events)[:2] == estimate_usage(chars, len(expected.items[0].text))


def test_default_turn_with_code_interpreter_is_the_tutoring_turn(client: openai.OpenAI) -> None:
    events = stream(client, input="Explain sine", tools=[{"type": "code_interpreter"}])
    expected = default_turn(Conversation([("user", "Explain sine")], "", ["code_interpreter"]))
    output = events[-1].response.output
    assert [i.type for i in output] == ["message", "code_interpreter_call", "message"]
    assert output[1].code == expected.items[1].code
    assert output[1].outputs[0].logs == expected.items[1].output


def test_unknown_or_expired_previous_response_id_is_a_400(
    emu: Emulator, client: openai.OpenAI
) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        stream(client, previous_response_id="resp_missing")
    error = caught.value
    assert (error.status_code, error.code) == (400, "InvalidParameter")
    assert error.body["message"] == (
        "[400] previous_response_not_found: Previous response with id 'resp_missing' not found."
    )
    assert error.body["request_id"]
    kept = stream(client)[-1].response.id
    assert stream(client, previous_response_id=kept)[-1].response.status == "completed"
    emu.expire_responses()
    with pytest.raises(openai.BadRequestError, match="previous_response_not_found"):
        stream(client, previous_response_id=kept)


def test_function_output_must_follow_its_call(client: openai.OpenAI) -> None:
    items = [
        {"type": "function_call", "call_id": "call_a", "name": "f", "arguments": "{}"},
        {"role": "user", "content": "between"},
        {"type": "function_call_output", "call_id": "call_a", "output": "x"},
    ]
    with pytest.raises(openai.BadRequestError, match="immediately follow") as caught:
        stream(client, input=items)
    assert caught.value.code == "InvalidParameter"


def test_non_streamed_create_returns_the_response(emu: Emulator, client: openai.OpenAI) -> None:
    emu.queue(Scenario.text("Plain."))
    response = client.responses.create(model="qwen-plus", input="Hi", temperature=0.5, top_p=0.9)
    assert (response.object, response.status, response.output_text) == (
        "response",
        "completed",
        "Plain.",
    )
    assert (response.temperature, response.top_p, response.usage.total_tokens) == (0.5, 0.9, 3)
    assert emu.requests[-1].json["temperature"] == 0.5
    again = client.responses.create(
        model="qwen-plus", input="More", previous_response_id=response.id
    )
    assert again.output_text == 'You said: "More". This is the emulator\'s deterministic answer.'


def test_wrong_key_and_missing_model_are_dashscope_errors(
    emu: Emulator, client: openai.OpenAI
) -> None:
    wrong = client.with_options(api_key="sk-wrong")
    with pytest.raises(openai.AuthenticationError) as caught:
        stream(wrong)
    assert (caught.value.code, caught.value.body["message"]) == (
        "InvalidApiKey",
        "Invalid API-key provided.",
    )
    response = httpx.post(
        emu.responses_base_url + "/responses",
        json={"input": "Hi"},
        headers={"Authorization": f"Bearer {emu.api_key}"},
    )
    body = response.json()
    assert (response.status_code, body["code"], body["message"]) == (
        400,
        "InvalidParameter",
        "[400] missing_required_parameter: model",
    )


def test_paced_scenario_spaces_the_events(emu: Emulator, client: openai.OpenAI) -> None:
    emu.queue(Scenario.text("a b").paced(0.03))
    start = time.monotonic()
    events = stream(client)
    assert len(events) == 10 and time.monotonic() - start >= 0.27


# --- failures ----------------------------------------------------------------------------------


def test_run_failed_is_response_failed_with_the_message_left_open(
    emu: Emulator, client: openai.OpenAI
) -> None:
    emu.queue(Scenario.failure("InternalError", "model crashed", after_text="Partial answ"))
    events = stream(client)
    assert types(events) == [*HEAD, *text_events(2)[:4], "response.failed"]
    response = events[-1].response
    assert (response.status, response.error.code, response.error.message, response.usage) == (
        "failed",
        "InternalError",
        "model crashed",
        None,
    )


def test_nested_error_event_raises_api_error(emu: Emulator, client: openai.OpenAI) -> None:
    emu.queue(Scenario.failure("server_error", "overloaded", after_text="Hi", mode="error_event"))
    seen: list[str] = []
    with pytest.raises(openai.APIError) as caught:
        for event in client.responses.create(model="m", input="Hi", stream=True):
            seen.append(event.type)
    assert seen == [*HEAD, *text_events(1)[:3]]
    assert (caught.value.message, caught.value.code) == ("overloaded", "server_error")
    assert caught.value.body == {
        "type": "server_error",
        "code": "server_error",
        "message": "overloaded",
        "param": None,
    }


def test_flat_error_event_is_yielded_then_response_failed(
    emu: Emulator, client: openai.OpenAI
) -> None:
    emu.queue(Scenario.failure("rate_limit_exceeded", "slow", mode="error_event_flat"))
    events = stream(client)
    assert types(events) == [*HEAD, "error", "response.failed"]
    assert (events[2].code, events[2].message, events[2].param) == (
        "rate_limit_exceeded",
        "slow",
        None,
    )
    assert events[-1].response.error.code == "rate_limit_exceeded"


def test_incomplete_closes_the_open_item_incomplete(emu: Emulator, client: openai.OpenAI) -> None:
    emu.queue(Scenario.failure("max_output_tokens", "cut", after_text="Long", mode="incomplete"))
    events = stream(client)
    assert types(events) == [*HEAD, *text_events(1), "response.incomplete"]
    assert events[-2].item.status == "incomplete"
    response = events[-1].response
    assert (response.status, response.incomplete_details.reason) == (
        "incomplete",
        "max_output_tokens",
    )


def test_rate_limit_as_http_200_json_gives_zero_events(
    emu: Emulator, client: openai.OpenAI
) -> None:
    message = "Requests rate limit exceeded, please try again later."
    emu.queue(Scenario.failure("server_error", message, mode="rate_limited_json"))
    with client.responses.create(model="m", input="Hi", stream=True) as events:
        assert events.response.headers["content-type"] == "application/json"
        assert list(events) == []
    emu.queue(Scenario.failure("server_error", message, mode="rate_limited_json"))
    response = client.responses.create(model="m", input="Hi")
    assert (response.status, response.error.code, response.error.message) == (
        "failed",
        "server_error",
        message,
    )


def test_drop_breaks_the_stream_with_a_connection_error(
    emu: Emulator, client: openai.OpenAI
) -> None:
    emu.queue(Scenario.failure("c", "m", after_text="Partial", mode="drop"))
    seen: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        for event in client.responses.create(model="m", input="Hi", stream=True):
            seen.append(event.type)
    assert seen == [*HEAD, *text_events(1)[:3]]
    assert len(emu.requests) == 1  # never retried mid-stream


def test_truncate_ends_quietly_without_a_terminal_event(
    emu: Emulator, client: openai.OpenAI
) -> None:
    emu.queue(Scenario.failure("c", "m", after_text="Partial", mode="truncate"))
    assert types(stream(client)) == [*HEAD, *text_events(1)[:3]]


def test_stall_times_out_mid_stream(emu: Emulator, client: openai.OpenAI) -> None:
    emu.queue(Scenario.failure("c", "m", after_text="Partial", mode="stall", seconds=1.0))
    seen: list[str] = []
    with pytest.raises(openai.APITimeoutError):
        for event in client.with_options(timeout=0.5).responses.create(
            model="m", input="Hi", stream=True
        ):
            seen.append(event.type)
    assert seen == [*HEAD, *text_events(1)[:3]]


def test_stall_completes_for_a_patient_client(emu: Emulator, client: openai.OpenAI) -> None:
    emu.queue(Scenario.failure("c", "m", after_text="Slow", mode="stall", seconds=0.2))
    assert types(stream(client)) == [*HEAD, *text_events(1), "response.completed"]


def test_http_500_is_retried_then_raises(emu: Emulator, client: openai.OpenAI) -> None:
    emu.queue(Scenario.failure("InternalError", "boom", mode="http_error", status=500, times=3))
    with pytest.raises(openai.InternalServerError) as caught:
        stream(client)
    assert (caught.value.status_code, caught.value.code) == (500, "InternalError")
    retries = [r.headers["x-stainless-retry-count"] for r in emu.requests]
    assert retries == ["0", "1", "2"]


def test_http_error_once_is_outlasted_by_the_retry(emu: Emulator, client: openai.OpenAI) -> None:
    emu.queue(Scenario.failure("Throttling.RateQuota", "slow", mode="http_error", status=429))
    emu.queue(Scenario.text("Recovered."))
    events = stream(client.with_options(max_retries=1))
    assert events[-1].response.output_text == "Recovered."
    assert len(emu.requests) == 2


def test_new_failure_modes_are_run_failed_on_the_assistant_side(
    emu: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(dashscope, "base_http_api_url", emu.assistants_base_url)
    monkeypatch.setattr(dashscope, "api_key", emu.api_key)
    assistant = Assistants.create(model="m")
    for failure in (
        Failure("max_output_tokens", "cut", mode="incomplete"),
        Failure("c", "dropped", mode="drop"),
        Failure("c", "stalled", mode="stall", seconds=5.0),
        Failure("c", "quiet", mode="truncate"),
        Failure("rate_limit_exceeded", "flat", mode="error_event_flat"),
        Failure("server_error", "limited", mode="rate_limited_json"),
    ):
        thread = Threads.create(messages=[{"role": "user", "content": "Hi"}])
        emu.queue(Scenario.of(failure))
        events = list(Runs.create(thread.id, assistant_id=assistant.id, stream=True))
        name, run = events[-1]
        assert (name, run.status, run.last_error) == (
            "thread.run.failed",
            "failed",
            {"code": failure.code, "message": failure.message},
        )


def test_failure_fields_are_checked() -> None:
    with pytest.raises(ValueError, match="seconds"):
        Failure("c", "m", mode="stall")
    with pytest.raises(ValueError, match="seconds"):
        Failure("c", "m", seconds=1.0)
    with pytest.raises(ValueError, match="times"):
        Failure("c", "m", times=2)
    with pytest.raises(ValueError, match="alone"):
        Turn([Text("t"), Failure("c", "m", mode="rate_limited_json")])


# --- the OpenAI flavor and the raw wire ----------------------------------------------------------


def test_openai_flavor_streams_ids_code_and_argument_deltas(
    emu: Emulator, client: openai.OpenAI
) -> None:
    emu.responses_flavor = "openai"
    emu.queue(
        Scenario(
            [
                Turn([CodeInterpreter("a = 1\nprint(a)\n", "1\n"), FunctionCall("f", '{"x": 1}')]),
                Turn([Reasoning("ok then"), Text("Done.")]),
            ]
        )
    )
    events = stream(client)
    assert events[0].response.status == "in_progress"
    assert types(events) == [
        *HEAD,
        ADDED,
        "response.code_interpreter_call.in_progress",
        "response.code_interpreter_call_code.delta",
        "response.code_interpreter_call_code.delta",
        "response.code_interpreter_call_code.done",
        "response.code_interpreter_call.interpreting",
        "response.code_interpreter_call.completed",
        DONE,
        ADDED,
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        DONE,
        "response.completed",
    ]
    assert events[2].item.id.startswith("ci_") and events[10].item.id.startswith("fc_")
    assert [e.delta for e in events[4:6]] == ["a = 1\n", "print(a)\n"]
    call = events[-1].response.output[1]
    output = {"type": "function_call_output", "call_id": call.call_id, "output": "ok"}
    events = stream(client, input=[output], previous_response_id=events[-1].response.id)
    assert types(events) == [
        *HEAD,
        ADDED,
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        DONE,
        *text_events(1),
        "response.completed",
    ]
    delta = events[11]
    assert (delta.item_id, delta.content_index, delta.output_index) == (events[9].item.id, 0, 1)


def read_raw(emu: Emulator) -> str:
    response = httpx.post(
        emu.responses_base_url + "/responses",
        json={"model": "qwen-plus", "input": "Hi", "stream": True},
        headers={"Authorization": f"Bearer {emu.api_key}"},
    )
    assert response.status_code == 200
    return response.text


def test_raw_wire_is_dashscope_framing(emu: Emulator) -> None:
    emu.queue(Scenario.text("Hi!", chunks=["Hi", "!"]))
    blocks = read_raw(emu).split("\n\n")
    assert blocks[-1] == ""  # ends after the terminal event: no [DONE]
    blocks = blocks[:-1]
    for number, block in enumerate(blocks, start=1):
        head, data = block.rsplit("\n", 1)
        payload = json.loads(data.removeprefix("data:"))
        assert head == f"id:{number}\nevent:{payload['type']}\n:HTTP_STATUS/200"
        assert data.startswith("data:{") and "\n" not in data
        assert payload["sequence_number"] == number - 1
    delta = json.loads(blocks[4].rsplit("\n", 1)[1][5:])
    assert delta == {
        "type": "response.output_text.delta",
        "output_index": 0,
        "delta": "Hi",
        "sequence_number": 4,
    }
    assert json.loads(blocks[-1].rsplit("\n", 1)[1][5:])["type"] == "response.completed"


def test_raw_wire_in_the_openai_flavor(emu: Emulator) -> None:
    emu.responses_flavor = "openai"
    emu.queue(Scenario.text("Hi!", chunks=["Hi", "!"]))
    blocks = read_raw(emu).split("\n\n")[:-1]
    for block in blocks:
        event, data = block.split("\n")
        payload = json.loads(data.removeprefix("data: "))
        assert event == f"event: {payload['type']}"
    emu.reset()
    assert emu.responses_flavor == "dashscope"
