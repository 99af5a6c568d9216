"""Assistant-API tools, parameters and instructions → Responses request (pure)."""

from __future__ import annotations

import pytest

from compat.backends.responses import request as rq

BIG_ADD = {
    "type": "function",
    "function": {
        "name": "big_add",
        "description": "Add two numbers",
        "parameters": {"type": "object", "properties": {"left": {"type": "integer"}}},
    },
}


def test_tools_map_to_their_responses_equivalents() -> None:
    tools = [{"type": "code_interpreter"}, {"type": "search"}, {"type": "quark_search"}, BIG_ADD]
    assert rq.map_tools(tools) == [
        {"type": "code_interpreter"},
        {"type": "web_search"},
        {"type": "web_search"},
        {
            "type": "function",
            "name": "big_add",
            "description": "Add two numbers",
            "parameters": {"type": "object", "properties": {"left": {"type": "integer"}}},
        },
    ]


def test_function_without_parameters_gets_an_empty_object_schema() -> None:
    assert rq.map_tools([{"type": "function", "function": {"name": "now"}}]) == [
        {"type": "function", "name": "now", "parameters": {"type": "object", "properties": {}}}
    ]


@pytest.mark.parametrize(
    ("tool", "fragment"),
    [
        ({"type": "wanx"}, "tool 'wanx' is not supported on the responses backend: "),
        ({"type": "text_to_image"}, "no image-generation tool"),
        ({"type": "calculator"}, "use {'type': 'code_interpreter'}"),
        ({"type": "amap_weather"}, "expose it as a function tool"),
    ],
)
def test_tools_without_an_equivalent_are_refused_by_name(tool: dict, fragment: str) -> None:
    with pytest.raises(rq.Refused) as info:
        rq.map_tools([{"type": "code_interpreter"}, tool])
    assert info.value.code == "UnsupportedByResponsesAPI"
    assert repr(tool["type"]) in info.value.message
    assert fragment in info.value.message


def test_function_without_name_is_an_invalid_parameter() -> None:
    with pytest.raises(rq.Refused) as info:
        rq.map_tools([{"type": "function", "function": {}}])
    assert (info.value.code, info.value.message) == (
        "InvalidParameter",
        "a function tool needs function.name",
    )


def test_top_k_is_refused_because_the_endpoint_would_ignore_it() -> None:
    rq.check_sampling({"top_p": 0.5, "temperature": 1.0, "max_tokens": 10})
    with pytest.raises(rq.Refused, match="top_k is not supported"):
        rq.check_sampling({"top_k": 10})


def test_instructions_run_override_wins_and_additional_is_appended() -> None:
    assistant = {"instructions": "Be brief."}
    assert rq.instructions_for(assistant, {"instructions": ""}, None) == "Be brief."
    assert rq.instructions_for(assistant, {"instructions": "Be verbose."}, "Use French.") == (
        "Be verbose.\n\nUse French."
    )
    assert rq.instructions_for({}, {}, "Only this.") == "Only this."
    assert rq.instructions_for({}, {}, None) is None


def test_request_carries_model_instructions_tools_history_and_sampling() -> None:
    run = {"model": "qwen-plus"}
    request = rq.build_request(
        run,
        instructions="Be brief.",
        tools=[{"type": "web_search"}],
        input_items=[{"role": "user", "content": "hi"}],
        previous_response_id="resp_1",
        sampling={"temperature": 0.3, "top_p": 0.9, "max_tokens": 64},
        extra_body={"enable_thinking": False},
    )
    assert request == {
        "model": "qwen-plus",
        "input": [{"role": "user", "content": "hi"}],
        "instructions": "Be brief.",
        "tools": [{"type": "web_search"}],
        "previous_response_id": "resp_1",
        "temperature": 0.3,
        "top_p": 0.9,
        "max_output_tokens": 64,
        "extra_body": {"enable_thinking": False},
    }
    bare = rq.build_request(
        run,
        instructions=None,
        tools=[],
        input_items=[],
        previous_response_id=None,
        sampling={},
        extra_body=None,
    )
    assert bare == {"model": "qwen-plus", "input": []}


def test_messages_become_easy_input_messages() -> None:
    message = {"role": "assistant", "content": [{"type": "text", "text": {"value": "4"}}]}
    assert rq.message_input(message) == {"role": "assistant", "content": "4"}


def test_function_calls_are_each_followed_by_their_output() -> None:
    calls = [
        {"id": "call_1", "function": {"name": "a", "arguments": "{}"}},
        {"id": "call_2", "function": {"name": "b", "arguments": '{"x":1}'}},
    ]
    assert [
        i["type"] + ":" + i["call_id"]
        for i in rq.function_call_items(calls, {"call_1": "1", "call_2": "2"})
    ] == [
        "function_call:call_1",
        "function_call_output:call_1",
        "function_call:call_2",
        "function_call_output:call_2",
    ]
