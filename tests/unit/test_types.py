"""compat.types reads like dashscope 2.0.2's objects for every access pattern legacy code uses."""

from __future__ import annotations

import ast
import copy
import json
import pickle
from http import HTTPStatus
from types import SimpleNamespace
from typing import Any

import pytest

from compat import types as t
from compat._objects import message_delta

# Wire shapes (the JSON the Assistant API sends, plus the status_code the SDK adds). Functions, so
# that every test gets fresh dicts.


def function_tool() -> dict[str, Any]:
    parameters = {"type": "object", "properties": {"left": {"type": "integer"}}}
    return {
        "type": "function",
        "function": {"name": "big_add", "description": "Add", "parameters": parameters},
    }


def assistant_wire() -> dict[str, Any]:
    return {
        "id": "asst_1",
        "object": "assistant",
        "created_at": 1711098751346,
        "model": "qwen-plus",
        "name": "smart helper",
        "description": "A tool helper.",
        "instructions": "You are a helpful assistant.",
        "tools": [
            {"type": "code_interpreter"},
            {"type": "search"},
            {"type": "wanx"},
            function_tool(),
            {"type": "quark_search"},
            {"type": "text_to_image"},
            {"type": "calculator"},
            {"type": "plugin_abc"},
        ],
        "file_ids": [],
        "metadata": {},
        "top_p": 0.5,
        "top_k": 10,
        "temperature": 1.0,
        "max_tokens": 2048,
        "request_id": "req_1",
        "status_code": 200,
    }


def error_wire(status: int = 401) -> dict[str, Any]:
    return {
        "status_code": status,
        "code": "InvalidApiKey",
        "message": "Invalid API-key provided.",
        "request_id": "r401",
    }


def thread_wire() -> dict[str, Any]:
    return {
        "id": "thread_1",
        "object": "thread",
        "created_at": 1711098751346,
        "metadata": {},
        "status_code": 200,
    }


def text_item(value: str) -> dict[str, Any]:
    return {"type": "text", "text": {"value": value, "annotations": []}}


def message_wire() -> dict[str, Any]:
    return {
        "id": "msg_1",
        "object": "thread.message",
        "created_at": 1711098751346,
        "thread_id": "thread_1",
        "role": "assistant",
        "content": [text_item("Hello")],
        "assistant_id": "asst_1",
        "run_id": "run_1",
        "file_ids": [],
        "metadata": {},
        "status_code": 200,
    }


def message_delta_wire(*values: str) -> dict[str, Any]:
    content = [{"index": 0, **text_item(v)} for v in values]
    return {
        "id": "msg_1",
        "object": "thread.message.delta",
        "delta": {"role": "assistant", "content": content},
        "status_code": 200,
    }


def required_action_wire() -> dict[str, Any]:
    call = {"id": "call_1", "type": "function", "function": {"name": "big_add", "arguments": "{}"}}
    return {"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": [call]}}


def run_wire(status: str = "completed") -> dict[str, Any]:
    return {
        "id": "run_1",
        "object": "thread.run",
        "created_at": 1711098751346,
        "assistant_id": "asst_1",
        "thread_id": "thread_1",
        "status": status,
        "model": "qwen-plus",
        "instructions": "Be brief.",
        "tools": [{"type": "code_interpreter"}, function_tool(), {"type": "quark_search"}],
        "file_ids": [],
        "metadata": {},
        "required_action": None,
        "last_error": None,
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
        "started_at": 1711098751400,
        "expires_at": None,
        "cancelled_at": None,
        "failed_at": None,
        "completed_at": 1711098752000,
        "top_p": None,
        "top_k": None,
        "temperature": 0.5,
        "max_tokens": None,
        "status_code": 200,
    }


def usage_wire() -> dict[str, Any]:
    return {
        "prompt_tokens": 10,
        "completion_tokens": 5,
        "total_tokens": 15,
        "input_tokens": 10,
        "output_tokens": 5,
    }


def code_call(arguments: str = "print(1)", output: str | None = "1\n") -> dict[str, Any]:
    return {
        "index": 0,
        "id": "call_c",
        "type": "code_interpreter",
        "code_interpreter": {"arguments": arguments, "output": output},
    }


def function_call() -> dict[str, Any]:
    return {
        "index": 1,
        "id": "call_f",
        "type": "function",
        "function": {"name": "big_add", "arguments": '{"left": 1}', "output": None},
    }


def quark_call() -> dict[str, Any]:
    return {
        "index": 2,
        "id": "call_q",
        "type": "quark_search",
        "quark_search": {"arguments": "weather", "output": "sunny"},
    }


def step_wire(step_details: dict[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
    details = step_details or {"type": "message_creation", "message_creation": {"message_id": "m"}}
    return {
        "id": "step_1",
        "object": "thread.run.step",
        "created_at": 1711098751346,
        "run_id": "run_1",
        "assistant_id": "asst_1",
        "thread_id": "thread_1",
        "type": details["type"],
        "status": "completed",
        "step_details": details,
        "usage": usage_wire(),
        "last_error": None,
        "metadata": {},
        "status_code": 200,
        **extra,
    }


def tool_calls_details(*calls: dict[str, Any]) -> dict[str, Any]:
    return {"type": "tool_calls", "tool_calls": list(calls)}


def step_delta_wire(*calls: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "step_1",
        "object": "thread.run.step.delta",
        "delta": {"step_details": tool_calls_details(*calls)},
        "status_code": 200,
    }


def list_wire(*items: dict[str, Any]) -> dict[str, Any]:
    return {
        "object": "list",
        "data": list(items),
        "first_id": items[0]["id"] if items else None,
        "last_id": items[-1]["id"] if items else None,
        "has_more": False,
        "status_code": 200,
    }


# Base behaviour


def test_keywords_and_from_dict_build_equal_objects() -> None:
    assert t.Run(**run_wire()) == t.Run.from_dict(run_wire())


def test_construction_leaves_the_wire_dict_unchanged() -> None:
    wire = step_wire(tool_calls_details(code_call(), function_call(), quark_call()))
    before = copy.deepcopy(wire)
    t.RunStep.from_dict(wire)
    t.RunStep(**wire)
    assert wire == before


def test_error_reply_reads_code_and_raises_attribute_error_for_id() -> None:
    res = t.Assistant(**error_wire())
    assert (res.status_code, res.code, res.message, res.request_id) == (
        401,
        "InvalidApiKey",
        "Invalid API-key provided.",
        "r401",
    )
    with pytest.raises(AttributeError):
        _ = res.id
    with pytest.raises(AttributeError):
        _ = res["id"]
    assert "id" not in res
    assert res.get("id") is None
    assert repr(res) == (
        "Assistant(status_code=401, code='InvalidApiKey', message='Invalid API-key provided.', "
        "request_id='r401', tools=[])"
    )


def test_field_with_a_dashscope_default_reads_the_default_when_absent() -> None:
    assistant = t.Assistant(id="asst_1", status_code=200)
    assert (assistant.name, assistant.top_p, assistant.request_id, assistant.object) == (
        None,
        None,
        None,
        None,
    )
    run = t.Run(id="run_1", status_code=200)
    assert (run.object, run.usage, run.last_error, run.required_action, run.tools) == (
        "thread.run",
        None,
        None,
        None,
        [],
    )
    assert t.ThreadMessage(id="m").object == "thread.message"
    assert t.RunStep(id="s").status_code is None
    with pytest.raises(AttributeError):
        _ = run.status
    with pytest.raises(AttributeError):
        _ = t.RunStep(id="s").object


def test_item_access_mirrors_attribute_access() -> None:
    run = t.Run(**run_wire())
    assert run["status"] == run.status == "completed"
    run["status"] = "cancelled"
    assert run.status == "cancelled"
    assert "status" in run
    del run["status"]
    assert "status" not in run
    assert "usage" in run
    assert 3 not in run
    with pytest.raises(AttributeError):
        del run["status"]


def test_get_returns_the_value_or_the_default() -> None:
    run = t.Run(**run_wire())
    assert run.get("status") == "completed"
    assert run.get("expires_at", "x") is None  # present with None
    assert run.get("nope") is None
    assert run.get("nope", 7) == 7
    assert t.Run(status_code=400).get("status", "unknown") == "unknown"


def test_to_dict_is_plain_json_and_round_trips() -> None:
    for cls, wire in [
        (t.Assistant, assistant_wire()),
        (t.Run, {**run_wire(), "required_action": required_action_wire()}),
        (t.RunStep, step_wire(tool_calls_details(code_call(), function_call(), quark_call()))),
        (t.ThreadMessage, message_wire()),
        (t.ThreadMessageList, list_wire(message_wire())),
    ]:
        obj = cls.from_dict(wire)
        plain = obj.to_dict()
        assert json.loads(json.dumps(plain)) == plain
        assert cls.from_dict(plain) == obj


def test_objects_survive_pickle_and_deepcopy() -> None:
    run = t.Run(**{**run_wire("requires_action"), "required_action": required_action_wire()})
    err = t.AssistantError(**error_wire(400))
    for obj in (run, err, t.RunStep(**step_wire())):
        assert pickle.loads(pickle.dumps(obj)) == obj
        assert copy.deepcopy(obj) == obj
    assert str(pickle.loads(pickle.dumps(err))) == str(err)


def test_to_dict_of_a_complete_wire_object_is_that_wire_object() -> None:
    assert t.Run(**run_wire()).to_dict() == run_wire()
    assert t.ThreadMessage(**message_wire()).to_dict() == message_wire()
    assert t.Assistant(**assistant_wire()).to_dict() == assistant_wire()


def test_to_dict_adds_unset_defaults_after_present_fields() -> None:
    assert t.Thread(id="thread_1", status_code=200).to_dict() == {
        "id": "thread_1",
        "status_code": 200,
        "metadata": None,
        "object": "thread",
    }


def test_str_is_the_dict_dump() -> None:
    message = t.ThreadMessage(**message_wire())
    assert ast.literal_eval(str(message)) == message.to_dict()
    assert str(t.Assistant(**error_wire())).startswith(
        "{'status_code': 401, 'code': 'InvalidApiKey', "
    )


def test_repr_shows_the_present_fields() -> None:
    assert (
        repr(t.Run(id="run_1", status="completed"))
        == "Run(id='run_1', status='completed', tools=[])"
    )
    delta = t.ThreadMessageDelta(**message_delta_wire("Hi"))
    assert repr(delta) == (
        "ThreadMessageDelta(id='msg_1', object='thread.message.delta', "
        "delta=ThreadMessageDeltaContent(role='assistant', content=MessageContentText(index=0, "
        "type='text', text=Text(value='Hi', annotations=[]))), status_code=200)"
    )


class _BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("boom")


CLASS_NAMES = sorted(n for n in t.__all__ if isinstance(getattr(t, n), type))


@pytest.mark.parametrize("name", CLASS_NAMES)
def test_repr_never_raises_on_an_empty_object(name: str) -> None:
    obj = getattr(t, name)()
    assert repr(obj).startswith(f"{name}(")
    assert isinstance(str(obj), str)


def test_repr_never_raises_on_odd_values() -> None:
    run = t.Run(id="run_1", weird=_BadRepr())
    assert repr(run).startswith("<Run object at 0x")
    loop = t.Thread(id="thread_1")
    loop["self"] = loop
    assert repr(loop) == "Thread(id='thread_1', self=...)"
    assert (
        repr([t.Run(status_code=500, message="x")])
        == "[Run(status_code=500, message='x', tools=[])]"
    )


def test_equality_is_by_type_and_content() -> None:
    assert t.Run(id="r", status="queued") == t.Run(id="r", status="queued")
    assert t.Run(id="r") != t.Run(id="r", status="queued")
    assert t.Run(id="r") != t.RunStep(id="r")
    assert t.Run(id="r") != {"id": "r"}
    assert t.Thread(id="x") == t.Thread(id="x", object="thread")  # the default counts
    with pytest.raises(TypeError):
        hash(t.Run(id="r"))


def test_iterating_an_object_raises_a_clear_type_error() -> None:
    with pytest.raises(TypeError, match="'RunStep' object is not iterable"):
        list(t.RunStep(**step_wire()))
    with pytest.raises(TypeError, match="'Run' object is not iterable"):
        for _ in t.Run(**run_wire()):
            pass


def test_list_objects_iterate_over_data_and_stay_truthy() -> None:
    runs = t.RunList(**list_wire(run_wire(), run_wire("failed")))
    assert [r.status for r in runs] == ["completed", "failed"]
    assert len(runs) == 2
    empty = t.RunStepList(**list_wire())
    assert (len(empty), bool(empty), list(empty)) == (0, True, [])


def test_dict_value_with_a_known_object_key_is_converted() -> None:
    thread = t.Thread(
        id="thread_1",
        last_run={"object": "thread.run", "id": "run_1", "status": "completed"},
        deleted={"object": "assistant.deleted", "id": "asst_1", "deleted": True},
        other={"object": "thread.run.step.delta", "id": "x"},
        odd={"object": ["not", "a", "name"]},
        plain={"id": "y"},
    )
    assert isinstance(thread.last_run, t.Run)
    assert thread.last_run.status == "completed"
    assert isinstance(thread.deleted, t.DeleteResponse)
    assert thread.other == {"object": "thread.run.step.delta", "id": "x"}
    assert thread.odd == {"object": ["not", "a", "name"]}
    assert thread.plain == {"id": "y"}


def test_public_names_are_complete() -> None:
    contract = {
        "Assistant", "AssistantList", "DeleteResponse", "AssistantFile", "AssistantFileList",
        "Thread", "ThreadMessage", "ThreadMessageList", "ThreadMessageDelta",
        "ThreadMessageDeltaContent", "MessageContentText", "Text", "MessageContentImageFile",
        "ImageFile", "Run", "RunList", "RunStep", "RunStepList", "RunStepDelta",
        "RunStepDeltaContent", "MessageCreation", "MessageCreationStepDetails",
        "ToolCallsStepDetails", "FunctionToolCall", "Function", "CodeToolCall", "CodeInterpreter",
        "RetrievalToolCall", "RequiredAction", "RequiredActionSubmitToolOutputs",
        "RequiredActionFunctionToolCall", "Usage", "LastError", "ToolCodeInterpreter",
        "ToolSearch", "ToolWanX", "ToolFunction", "FunctionDefinition", "AssistantError",
        "STREAM_EVENT_TYPES", "convert_stream_item",
    }  # fmt: skip
    assert contract <= set(t.__all__)
    assert all(hasattr(t, name) for name in t.__all__)
    assert len(t.__all__) == len(set(t.__all__))


# Assistants


def test_assistant_tools_of_four_types_become_objects_and_others_stay_dicts() -> None:
    tools = t.Assistant(**assistant_wire()).tools
    assert [type(x).__name__ for x in tools] == [
        "ToolCodeInterpreter",
        "ToolSearch",
        "ToolWanX",
        "ToolFunction",
        "dict",
        "dict",
        "dict",
        "dict",
    ]
    assert [x["type"] for x in tools] == [
        "code_interpreter",
        "search",
        "wanx",
        "function",
        "quark_search",
        "text_to_image",
        "calculator",
        "plugin_abc",
    ]
    fn = tools[3].function
    assert (fn.name, fn.description, fn.parameters["type"]) == ("big_add", "Add", "object")
    bare = t.ToolFunction(type="function", function={"name": "f"})
    assert (bare.function.description, bare.function.parameters) == (None, None)


def test_assistant_tools_none_is_kept_and_absent_is_an_empty_list() -> None:
    assert t.Assistant(id="a", tools=None).tools is None  # dashscope raises TypeError
    assert t.Assistant(id="a").tools == []


def test_assistant_sampling_parameters_read_like_the_legacy_example() -> None:
    assistant = t.Assistant(**assistant_wire())
    text = (
        f"top_p={assistant.top_p}, top_k={assistant.top_k}, "
        f"temperature={assistant.temperature}, max_tokens={assistant.max_tokens}"
    )
    assert text == "top_p=0.5, top_k=10, temperature=1.0, max_tokens=2048"
    assert assistant.id == "asst_1"
    assert assistant.status_code == HTTPStatus.OK


def test_legacy_status_check_on_an_error_reply_prints_the_dump() -> None:
    res = t.Assistant(**error_wire())
    assert res.status_code != HTTPStatus.OK
    assert f"Failed: {res}".startswith("Failed: {'status_code': 401, ")


def test_delete_response_and_assistant_file_and_thread_fields() -> None:
    deleted = t.DeleteResponse(
        id="asst_1", object="assistant.deleted", deleted=True, status_code=200
    )
    assert (deleted.id, deleted.deleted, deleted.object, deleted.status_code) == (
        "asst_1",
        True,
        "assistant.deleted",
        200,
    )
    file = t.AssistantFile(
        id="file_1", assistant_id="asst_1", created_at=1, object="assistant.file"
    )
    assert (file.id, file.assistant_id) == ("file_1", "asst_1")
    thread = t.Thread(id="thread_1", created_at=5, status_code=200)
    assert (thread.id, thread.created_at, thread.metadata, thread.object) == (
        "thread_1",
        5,
        None,
        "thread",
    )


@pytest.mark.parametrize(
    ("cls", "item_cls", "item"),
    [
        (t.AssistantList, t.Assistant, assistant_wire()),
        (t.ThreadMessageList, t.ThreadMessage, message_wire()),
        (t.RunList, t.Run, run_wire()),
        (t.RunStepList, t.RunStep, step_wire()),
        (t.AssistantFileList, t.AssistantFile, {"id": "file_1", "object": "assistant.file"}),
        (t.MessageFileList, t.MessageFile, {"id": "file_1", "object": "thread.message.file"}),
    ],
)
def test_list_types_hold_typed_data(cls: type[t.BaseObject], item_cls: type, item: Any) -> None:
    page = cls.from_dict(list_wire(item))
    assert [type(x) for x in page.data] == [item_cls]
    assert (page.has_more, page.first_id, page.last_id, page.status_code) == (
        False,
        item["id"],
        item["id"],
        200,
    )
    bare = cls(status_code=200)
    assert (bare.data, bare.has_more, bare.first_id, bare.last_id) == ([], None, None, None)


# Messages


def test_message_content_reads_by_attribute_and_by_item() -> None:
    message = t.ThreadMessage(**message_wire())
    assert message.content[0].text.value == "Hello"
    assert message["content"][0]["text"]["value"] == "Hello"
    assert message.content[0].text.annotations == []
    assert message.content[0].type == "text"
    assert (message["role"], message.run_id) == ("assistant", "run_1")


def test_message_content_image_file_keeps_file_id_and_other_items_stay_dicts() -> None:
    items = [
        {"type": "image_file", "image_file": {"file_id": "file_9"}},
        {"type": "audio", "audio": {"url": "u"}},
        {"text": {"value": "no type"}},
    ]
    content = t.ThreadMessage(id="m", content=items).content
    assert isinstance(content[0], t.MessageContentImageFile)
    assert content[0].image_file.file_id == "file_9"  # dashscope drops file_id
    assert content[1:] == items[1:]


def test_message_content_absent_is_none_and_empty_stays_empty() -> None:
    assert t.ThreadMessage(id="m").content is None
    assert t.ThreadMessage(id="m", content=[]).content == []
    assert t.ThreadMessage(id="m", status_code=200).file_ids is None


def test_message_delta_keeps_the_last_content_item_for_the_seed_program() -> None:
    data = t.ThreadMessageDelta(**message_delta_wire("first", "last"))
    assert data.delta.content.text.value == "last"
    assert data.delta.role == "assistant"
    assert data["delta"]["content"]["text"]["value"] == "last"


def test_message_delta_accepts_a_single_content_object() -> None:
    wire = {"id": "msg_1", "delta": {"role": "assistant", "content": text_item("one")}}
    assert t.ThreadMessageDelta(**wire).delta.content.text.value == "one"


@pytest.mark.parametrize("delta", [None, {}, "missing"])
def test_message_delta_missing_or_empty_is_none(delta: Any) -> None:
    wire: dict[str, Any] = {"id": "msg_1", "status_code": 200}
    if delta != "missing":
        wire["delta"] = delta
    assert t.ThreadMessageDelta(**wire).delta is None


def test_message_delta_empty_content_list_stays_a_list() -> None:
    data = t.ThreadMessageDelta(id="msg_1", delta={"role": "assistant", "content": []})
    assert data.delta.content == []
    assert t.ThreadMessageDelta(id="msg_1", delta={"role": "assistant"}).delta.content is None


def test_message_delta_item_of_another_type_or_without_type_stays_a_dict() -> None:
    odd = t.ThreadMessageDelta(id="m", delta={"content": [{"text": {"value": "x"}}]})
    assert odd.delta.content == {"text": {"value": "x"}}  # dashscope raises KeyError
    image = t.ThreadMessageDelta(
        id="m", delta={"content": [{"type": "image_file", "image_file": {"file_id": "f"}}]}
    )
    assert image.delta.content.image_file.file_id == "f"


# Runs


def test_run_usage_and_last_error_stay_plain_dicts() -> None:
    run = t.Run(**{**run_wire("failed"), "last_error": {"code": "server_error", "message": "x"}})
    assert run.usage.get("total_tokens") == 15
    assert run.usage.get("input_tokens") is None
    assert type(run.usage) is dict
    assert run.last_error == {"code": "server_error", "message": "x"}
    assert run.last_error.get("code") == "server_error"


def test_run_required_action_reads_the_function_call() -> None:
    run = t.Run(**{**run_wire("requires_action"), "required_action": required_action_wire()})
    action = run.required_action
    assert action.type == "submit_tool_outputs"
    call = action.submit_tool_outputs.tool_calls[0]
    assert isinstance(call, t.RequiredActionFunctionToolCall)
    assert (call.id, call.type, call.function.name, call.function.arguments) == (
        "call_1",
        "function",
        "big_add",
        "{}",
    )
    assert call.function.output is None
    assert run["required_action"]["submit_tool_outputs"]["tool_calls"][0]["id"] == "call_1"


def test_run_required_action_none_or_partial_does_not_crash() -> None:
    assert t.Run(id="r", required_action=None).required_action is None
    assert t.Run(id="r", required_action={}).required_action == {}
    partial = t.Run(id="r", required_action={"type": "submit_tool_outputs"}).required_action
    assert partial.submit_tool_outputs.tool_calls == []
    none_outputs = t.RequiredAction(type="submit_tool_outputs", submit_tool_outputs=None)
    assert none_outputs.submit_tool_outputs is None  # dashscope raises TypeError
    assert t.RequiredActionFunctionToolCall(id="c").type == "function"


@pytest.mark.parametrize(
    "status",
    [
        "queued",
        "in_progress",
        "requires_action",
        "cancelling",
        "cancelled",
        "failed",
        "completed",
        "expired",
    ],
)
def test_run_keeps_every_status(status: str) -> None:
    assert t.Run(**run_wire(status)).status == status


def test_run_tools_convert_like_assistant_tools() -> None:
    tools = t.Run(**run_wire()).tools
    assert [type(x).__name__ for x in tools] == ["ToolCodeInterpreter", "ToolFunction", "dict"]
    assert t.Run(id="r", tools=None).tools is None


# Steps


def test_run_step_usage_and_last_error_are_objects() -> None:
    step = t.RunStep(**step_wire(last_error={"code": "rate_limit_exceeded", "message": "slow"}))
    assert isinstance(step.usage, t.Usage)
    usage = step.usage
    assert (usage.total_tokens, usage.input_tokens, usage.output_tokens) == (15, 10, 5)
    assert isinstance(step.last_error, t.LastError)
    assert (step.last_error.code, step.last_error["message"]) == ("rate_limit_exceeded", "slow")
    empty = t.RunStep(**step_wire(usage={}, last_error={}))
    assert (empty.usage, empty.last_error) == ({}, None)  # as dashscope: {} stays, {} is unset
    assert t.RunStep(**step_wire(usage=None)).usage is None


def test_run_step_message_creation_details() -> None:
    step = t.RunStep(**step_wire())
    assert isinstance(step.step_details, t.MessageCreationStepDetails)
    assert step.step_details.type == "message_creation"
    assert step.step_details.message_creation.message_id == "m"
    assert step["step_details"]["message_creation"]["message_id"] == "m"


def test_run_step_tool_calls_convert_three_types_and_keep_the_rest_as_dicts() -> None:
    retrieval = {"id": "call_r", "type": "retrieval", "retrieval": {}}
    details = tool_calls_details(code_call(), function_call(), quark_call(), retrieval)
    calls = t.RunStep(**step_wire(details)).step_details.tool_calls
    assert [type(c).__name__ for c in calls] == [
        "CodeToolCall",
        "FunctionToolCall",
        "dict",
        "RetrievalToolCall",
    ]
    code, function, quark, _ = calls
    assert (code.index, code.id, code.code_interpreter.arguments, code.code_interpreter.output) == (
        0,
        "call_c",
        "print(1)",
        "1\n",
    )
    assert (function.index, function.function.name) == (1, "big_add")
    assert function.function.output is None
    assert quark == quark_call()
    assert quark["type"] == "quark_search"
    assert getattr(quark, "type", "") == ""  # what legacy code observes with dashscope, too
    assert calls[3].retrieval == {}


def test_run_step_details_missing_none_or_unknown() -> None:
    assert t.RunStep(id="s").step_details == {}
    assert t.RunStep(id="s", step_details=None).step_details is None  # dashscope: TypeError
    unknown = {"type": "thinking", "thinking": {}}
    assert t.RunStep(id="s", step_details=unknown).step_details == unknown
    assert t.ToolCallsStepDetails(type="tool_calls").tool_calls == []
    assert t.ToolCallsStepDetails(type="tool_calls", tool_calls=None).tool_calls is None


def test_code_interpreter_arguments_and_output_always_exist_and_outputs_stay_dicts() -> None:
    fragment = t.CodeToolCall(id="c", type="code_interpreter", code_interpreter={})
    assert (fragment.code_interpreter.arguments, fragment.code_interpreter.output) == (None, None)
    assert fragment.code_interpreter.outputs == []
    outputs = [{"type": "logs", "logs": "1\n"}]  # dashscope raises TypeError on any item
    full = t.CodeInterpreter(input="print(1)", outputs=outputs)
    assert full.outputs == outputs
    assert full.input == "print(1)"
    assert t.CodeToolCall(id="c", type="code_interpreter").code_interpreter.outputs == []
    assert t.FunctionToolCall(id="f", type="function").function.output is None


def _seed_step_delta_output(data: Any) -> str:
    # The seed program's loop body for thread.run.step.delta, verbatim apart from print().
    out = ""
    tool_call = data.delta.step_details.tool_calls[0]
    if getattr(tool_call, "type", "") == "code_interpreter":
        code = getattr(tool_call.code_interpreter, "arguments", "")
        output = getattr(tool_call.code_interpreter, "output", "")
        out += code
        out += output
    return out


def test_seed_program_reads_code_interpreter_step_deltas() -> None:
    data = t.RunStepDelta(**step_delta_wire(code_call("import math", "")))
    assert _seed_step_delta_output(data) == "import math"
    done = t.RunStepDelta(**step_delta_wire(code_call("", "0.0\n")))
    assert _seed_step_delta_output(done) == "0.0\n"
    assert data.delta.step_details.tool_calls[0].code_interpreter.arguments == "import math"


def test_seed_program_skips_quark_search_step_deltas() -> None:
    data = t.RunStepDelta(**step_delta_wire(quark_call()))
    assert _seed_step_delta_output(data) == ""
    assert data.delta.step_details.tool_calls[0]["type"] == "quark_search"


def test_run_step_delta_function_fragment() -> None:
    first = {"index": 0, "id": "call_1", "type": "function"}
    first["function"] = {"name": "big_add", "arguments": "", "output": None}
    call = t.RunStepDelta(**step_delta_wire(first)).delta.step_details.tool_calls[0]
    assert (call.index, call.function.name, call.function.arguments) == (0, "big_add", "")


def test_run_step_delta_missing_or_empty() -> None:
    assert t.RunStepDelta(id="s").delta is None
    assert t.RunStepDelta(id="s", delta={}).delta == {}
    assert t.RunStepDelta(id="s", delta={"x": 1}).delta.step_details == {}
    assert t.RunStepDeltaContent(step_details=None).step_details is None


# AssistantError


def test_assistant_error_reads_like_the_others_and_formats_like_dashscope() -> None:
    err = t.AssistantError(code="Throttling", message="slow down", request_id="req_9")
    assert isinstance(err, Exception)
    assert str(err) == "Request failed, request_id: req_9, code: Throttling, message: slow down"
    assert (err.code, err["message"], err.get("request_id"), err.status_code) == (
        "Throttling",
        "slow down",
        "req_9",
        None,
    )
    assert "code" in err
    assert repr(err) == "AssistantError(code='Throttling', message='slow down', request_id='req_9')"
    with_status = t.AssistantError.from_dict({**error_wire(400), "code": "Throttling"})
    assert with_status.status_code == 400
    assert str(t.AssistantError()) == "Request failed, request_id: None, code: None, message: None"
    with pytest.raises(t.AssistantError, match="code: Throttling"):
        raise err


# Stream conversion

EXPECTED_STREAM_EVENT_TYPES = {
    "thread.created": t.Thread,
    "thread.run.created": t.Run,
    "thread.run.queued": t.Run,
    "thread.run.in_progress": t.Run,
    "thread.run.requires_action": t.Run,
    "thread.run.completed": t.Run,
    "thread.run.failed": t.Run,
    "thread.run.cancelled": t.Run,
    "thread.run.expired": t.Run,
    "thread.run.step.created": t.RunStep,
    "thread.run.step.in_progress": t.RunStep,
    "thread.run.step.completed": t.RunStep,
    "thread.run.step.failed": t.RunStep,
    "thread.run.step.cancelled": t.RunStep,
    "thread.run.step.expired": t.RunStep,
    "thread.run.step.delta": t.RunStepDelta,
    "thread.message.created": t.ThreadMessage,
    "thread.message.in_progress": t.ThreadMessage,
    "thread.message.completed": t.ThreadMessage,
    "thread.message.incomplete": t.ThreadMessage,
    "thread.message.delta": t.ThreadMessageDelta,
    "error": t.AssistantError,
}

WIRE_BY_TYPE = {
    t.Thread: thread_wire,
    t.Run: run_wire,
    t.RunStep: step_wire,
    t.RunStepDelta: lambda: step_delta_wire(code_call()),
    t.ThreadMessage: message_wire,
    t.ThreadMessageDelta: lambda: message_delta_wire("x"),
    t.AssistantError: lambda: error_wire(400),
}


def test_stream_event_table_is_the_reference_table() -> None:
    assert t.STREAM_EVENT_TYPES == EXPECTED_STREAM_EVENT_TYPES


@pytest.mark.parametrize(("event", "cls"), EXPECTED_STREAM_EVENT_TYPES.items())
def test_known_stream_event_gives_its_type(event: str, cls: type[t.BaseObject]) -> None:
    wire = WIRE_BY_TYPE[cls]()
    name, obj = t.convert_stream_item(event, wire)
    assert name == event
    assert type(obj) is cls
    assert obj == cls.from_dict(wire)


@pytest.mark.parametrize(
    "event", ["thread.run.cancelling", "thread.run.step.cancelling", "done", "surprise", None]
)
def test_other_stream_events_pass_the_dict_through(event: str | None) -> None:
    data = {"status_code": 400, "code": "InvalidParameter", "message": "bad", "request_id": "r"}
    name, obj = t.convert_stream_item(event, data)
    assert name == event
    assert obj is data


def test_stream_item_that_is_not_a_dict_passes_through() -> None:
    sentinel = t.Run(id="run_1")
    assert t.convert_stream_item("thread.run.created", sentinel) == ("thread.run.created", sentinel)


def test_seed_program_prints_message_deltas_from_converted_items() -> None:
    stream = [
        ("thread.run.created", {**run_wire("queued"), "usage": None}),
        ("thread.message.delta", message_delta_wire("Hel")),
        ("thread.message.delta", message_delta_wire("lo")),
        ("thread.run.completed", run_wire()),
    ]
    printed = []
    for event, data in (t.convert_stream_item(e, d) for e, d in stream):
        if event == "thread.run.created":
            printed.append(data.status)
        if event == "thread.message.delta":
            printed.append(data.delta.content.text.value)
    assert printed == ["queued", "Hel", "lo"]


# Parity with the installed dashscope: the same wire dict, read the same way, gives the same
# values (objects compared by class name) or raises the same exception type.

PARITY_CASES: list[tuple[str, str, dict[str, Any], list[str]]] = [
    (
        "Assistant",
        "assistant",
        assistant_wire(),
        [
            "o.id", "o.status_code", "o.model", "o.name", "o.description", "o.instructions",
            "o.top_p", "o.top_k", "o.temperature", "o.max_tokens", "o.request_id", "o.object",
            "o.metadata", "o.file_ids", "o.tools", "o.tools[3].function.name",
            "o.tools[3].function.parameters", "o.tools[4]['type']", "o['tools'][0]['type']",
            "o.code", "o.message", "'id' in o", "'code' in o",
        ],
    ),
    (
        "Assistant",
        "assistant error",
        error_wire(),
        ["o.status_code", "o.code", "o.message", "o.request_id", "o.id", "o['id']", "o.tools",
         "o.name", "'id' in o", "o.created_at"],
    ),
    (
        "AssistantList",
        "assistant list",
        list_wire(assistant_wire()),
        ["o.data", "o.data[0].id", "o.has_more", "o.first_id", "o.last_id", "o.status_code"],
    ),
    (
        "DeleteResponse",
        "delete",
        {"id": "asst_1", "object": "assistant.deleted", "deleted": True, "status_code": 200},
        ["o.id", "o.deleted", "o.object", "o.status_code"],
    ),
    ("Thread", "thread", thread_wire(), ["o.id", "o.created_at", "o.metadata", "o.object"]),
    ("Thread", "thread error", error_wire(400), ["o.id", "o.object", "o.code", "o.metadata"]),
    (
        "ThreadMessage",
        "message",
        {**message_wire(), "content": [text_item("Hi"), {"type": "audio"}, {"x": 1}]},
        [
            "o.content[0].text.value", "o['content'][0]['text']['value']", "o['role']",
            "o.content[0].text.annotations", "o.content[0].type", "o.content[1]", "o.content[2]",
            "o.run_id", "o.assistant_id", "o.file_ids", "o.object", "o.metadata",
        ],
    ),
    (
        "ThreadMessage",
        "message without content",
        {"id": "msg_1", "status_code": 200},
        ["o.content", "o.file_ids", "o.run_id", "o.role", "o.object"],
    ),
    (
        "ThreadMessageList",
        "message list",
        list_wire(message_wire()),
        ["o.data[0].content[0].text.value", "o.data[0]['role']", "o.has_more", "o.last_id"],
    ),
    (
        "ThreadMessageDelta",
        "message delta",
        message_delta_wire("a", "b"),
        [
            "o.delta.content.text.value", "o.delta.content.type", "o.delta.content.index",
            "o.delta.role", "o.object", "o.id", "o['delta']['content']['text']['value']",
        ],
    ),
    (
        "ThreadMessageDelta",
        "message delta empty content",
        {"id": "m", "delta": {"role": "assistant", "content": []}},
        ["o.delta.content", "o.delta.role"],
    ),
    ("ThreadMessageDelta", "message delta without delta", {"id": "m"}, ["o.delta"]),
    ("ThreadMessageDelta", "message delta empty delta", {"id": "m", "delta": {}}, ["o.delta"]),
    (
        "Run",
        "run",
        run_wire(),
        [
            "o.id", "o.status", "o.thread_id", "o.assistant_id", "o.usage",
            "o.usage.get('total_tokens')", "o.last_error", "o.required_action", "o.tools",
            "o.tools[1].function.name", "o.tools[2]", "o.object", "o.model", "o.instructions",
            "o.created_at", "o.completed_at", "o.temperature", "o.top_p", "o.file_ids",
            "o.status_code", "'usage' in o", "o['status']",
        ],
    ),
    (
        "Run",
        "run requires_action",
        {**run_wire("requires_action"), "required_action": required_action_wire()},
        [
            "o.required_action.type",
            "o.required_action.submit_tool_outputs.tool_calls",
            "o.required_action.submit_tool_outputs.tool_calls[0].id",
            "o.required_action.submit_tool_outputs.tool_calls[0].type",
            "o.required_action.submit_tool_outputs.tool_calls[0].function.name",
            "o.required_action.submit_tool_outputs.tool_calls[0].function.arguments",
            "o.required_action.submit_tool_outputs.tool_calls[0].function.output",
        ],
    ),
    (
        "Run",
        "run failed",
        {**run_wire("failed"), "usage": None, "last_error": {"code": "c", "message": "m"}},
        ["o.last_error", "o.last_error.get('message')", "o.usage", "o.failed_at"],
    ),
    (
        "Run",
        "run minimal",
        {"id": "run_1", "status_code": 200, "required_action": {}},
        ["o.tools", "o.required_action", "o.status", "o.usage", "o.object", "o.created_at"],
    ),
    ("Run", "run error", error_wire(400), ["o.status", "o.id", "o.code", "o.message", "o.tools"]),
    (
        "RunList",
        "run list",
        list_wire(run_wire(), run_wire("failed")),
        ["o.data", "o.data[1].status", "o.data[0].usage", "o.has_more", "o.first_id"],
    ),
    (
        "RunStep",
        "step message_creation",
        step_wire(last_error={"code": "server_error", "message": "x"}),
        [
            "o.step_details", "o.step_details.type", "o.step_details.message_creation.message_id",
            "o.usage", "o.usage.total_tokens", "o.usage.input_tokens", "o.usage['output_tokens']",
            "o.last_error", "o.last_error.code", "o.last_error.message", "o.type", "o.status",
            "o.object", "o.run_id", "o.status_code", "o.expired_at", "o.metadata",
        ],
    ),
    (
        "RunStep",
        "step tool_calls",
        step_wire(
            tool_calls_details(
                code_call(), function_call(), quark_call(), {"id": "r", "type": "retrieval"}
            )
        ),
        [
            "o.step_details.tool_calls", "o.step_details.tool_calls[0].code_interpreter.arguments",
            "o.step_details.tool_calls[0].code_interpreter.output",
            "o.step_details.tool_calls[0].code_interpreter.outputs",
            "o.step_details.tool_calls[0].index", "o.step_details.tool_calls[0].id",
            "o.step_details.tool_calls[1].function.arguments",
            "o.step_details.tool_calls[1].function.output",
            "o.step_details.tool_calls[2]['type']", "o.step_details.tool_calls[2]['quark_search']",
            "getattr(o.step_details.tool_calls[2], 'type', '')",
            "o.step_details.tool_calls[3].type", "o.step_details.type",
        ],
    ),
    (
        "RunStep",
        "step sparse",
        {"id": "s", "usage": {}, "last_error": None, "step_details": {"type": "thinking"}},
        ["o.step_details", "o.usage", "o.last_error", "o.status_code", "o.status"],
    ),
    (
        "RunStep",
        "step without details",
        {"id": "s", "status_code": 200},
        ["o.step_details", "o.usage", "o.object"],
    ),
    (
        "RunStepList",
        "step list",
        list_wire(step_wire()),
        ["o.data", "o.data[0].step_details.message_creation.message_id", "o.has_more"],
    ),
    (
        "RunStepDelta",
        "step delta code_interpreter",
        step_delta_wire(code_call("x = 1", None)),
        [
            "o.delta.step_details.tool_calls[0].code_interpreter.arguments",
            "o.delta.step_details.tool_calls[0].code_interpreter.output",
            "getattr(o.delta.step_details.tool_calls[0], 'type', '')",
            "o.delta.step_details.type", "o.object", "o.id",
        ],
    ),
    (
        "RunStepDelta",
        "step delta function",
        step_delta_wire(function_call()),
        [
            "o.delta.step_details.tool_calls[0].function.name",
            "o.delta.step_details.tool_calls[0].function.arguments",
            "o.delta.step_details.tool_calls[0].index",
        ],
    ),
    (
        "RunStepDelta",
        "step delta quark_search",
        step_delta_wire(quark_call()),
        [
            "o.delta.step_details.tool_calls[0]",
            "getattr(o.delta.step_details.tool_calls[0], 'type', '')",
            "o.delta.step_details.tool_calls[0]['type']",
        ],
    ),
    ("RunStepDelta", "step delta empty", {"id": "s", "delta": {}}, ["o.delta"]),
    ("RunStepDelta", "step delta missing", {"id": "s"}, ["o.delta", "o.object"]),
    (
        "RunStepDelta",
        "step delta without details",
        {"id": "s", "delta": {"x": 1}},
        ["o.delta.step_details", "o.delta.x"],
    ),
]  # fmt: skip


@pytest.fixture(scope="module")
def dashscope_types() -> SimpleNamespace:
    pytest.importorskip("dashscope")
    from dashscope.assistants import assistant_types
    from dashscope.common.error import AssistantError
    from dashscope.threads import thread_types
    from dashscope.threads.runs.runs import Runs

    names = {**vars(assistant_types), **vars(thread_types)}
    return SimpleNamespace(
        cls=names, AssistantError=AssistantError, convert=Runs.convert_stream_object
    )


def _shape(value: Any) -> Any:
    """Comparable form: objects of either library become their class name."""
    if isinstance(value, list):
        return [_shape(v) for v in value]
    if isinstance(value, dict):
        return {k: _shape(v) for k, v in value.items()}
    if type(value).__module__.startswith(("dashscope.", "compat.")):
        return f"<{type(value).__name__}>"
    return value


def _read(expression: str, obj: Any) -> tuple[str, Any]:
    try:
        value = eval(expression, {"getattr": getattr}, {"o": obj})
    except Exception as exc:
        return "raises", type(exc).__name__
    return "value", _shape(value)


@pytest.mark.parametrize(
    ("class_name", "wire", "expressions"),
    [pytest.param(c, w, e, id=i) for c, i, w, e in PARITY_CASES],
)
def test_legacy_reads_match_dashscope(
    dashscope_types: SimpleNamespace, class_name: str, wire: dict[str, Any], expressions: list[str]
) -> None:
    theirs = dashscope_types.cls[class_name](**copy.deepcopy(wire))
    ours = getattr(t, class_name).from_dict(copy.deepcopy(wire))
    for expression in expressions:
        assert _read(expression, ours) == _read(expression, theirs), expression


@pytest.mark.parametrize(("event", "cls"), EXPECTED_STREAM_EVENT_TYPES.items())
def test_stream_conversion_matches_dashscope(
    dashscope_types: SimpleNamespace, event: str, cls: type[t.BaseObject]
) -> None:
    wire = WIRE_BY_TYPE[cls]()
    if cls is t.AssistantError:  # dashscope's takes the raw event data: JSON in `message`
        theirs = dashscope_types.convert(event, {"status_code": 400, "message": json.dumps(wire)})
    else:
        theirs = dashscope_types.convert(event, copy.deepcopy(wire))
    ours = t.convert_stream_item(event, wire)[1]
    assert type(ours).__name__ == type(theirs).__name__
    for attribute in ("id", "status", "object", "code", "message", "request_id"):
        assert _read(f"o.{attribute}", ours) == _read(f"o.{attribute}", theirs), attribute
    if cls is t.AssistantError:
        assert str(ours) == str(theirs)


@pytest.mark.parametrize("event", ["thread.run.cancelling", "done", None])
def test_unknown_stream_events_match_dashscope(
    dashscope_types: SimpleNamespace, event: str | None
) -> None:
    data = {"status_code": 400, "code": "InvalidParameter", "message": "bad"}
    assert t.convert_stream_item(event, data)[1] is dashscope_types.convert(event, data) is data


@pytest.mark.parametrize("value", ["Hi", "", '多语言 \n"quoted"'])
def test_a_text_delta_built_directly_is_the_one_from_dict_builds(value: str) -> None:
    direct = t.ThreadMessageDelta.of_text("msg_1", value)
    built = t.ThreadMessageDelta.from_dict(message_delta("msg_1", value))
    assert direct == built
    assert repr(direct) == repr(built)
    assert direct.to_dict() == built.to_dict()
    # level by level: the same classes and the same attributes in the same order
    pairs = [
        (direct, built),
        (direct.delta, built.delta),
        (direct.delta.content, built.delta.content),
        (direct.delta.content.text, built.delta.content.text),
    ]
    for ours, theirs in pairs:
        assert type(ours) is type(theirs)
        assert list(vars(ours)) == list(vars(theirs))
    assert direct.status_code == 200
    assert direct.delta.content.text.value == value
    assert direct.delta.content.text.annotations == []
    # every delta gets its own mutable parts
    other = t.ThreadMessageDelta.of_text("msg_1", value)
    assert other.delta.content.text.annotations is not direct.delta.content.text.annotations


def test_every_public_type_is_at_home_in_compat_types_and_pickles_from_there() -> None:
    for name in t.__all__:
        value = getattr(t, name)
        if isinstance(value, type) and value is not t.BaseObject:  # the base is never built
            assert value.__module__ == "compat.types", name
    step = t.RunStep.from_dict({"id": "step_1", "usage": {"total_tokens": 3}})
    copy_ = pickle.loads(pickle.dumps(step))
    assert type(copy_) is t.RunStep
    assert copy_.usage.total_tokens == 3
    assert b"_types_steps" not in pickle.dumps(step)
