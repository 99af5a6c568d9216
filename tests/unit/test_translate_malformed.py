"""Malformed Responses events: each is the translator's protocol error, never a Python crash.

Whatever the SSE reader hands to ``feed`` -- a non-object, a type of the wrong JSON type, a field
of the wrong shape at any depth -- ``feed`` raises ``TranslationError`` and enters ERROR, and
``fail()`` then closes the run with exactly one ``thread.run.failed``.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from compat._objects import run_object, run_usage
from compat.backends.responses.translate import ResponsesTranslator, State
from compat.errors import TranslationError

JSON = dict[str, Any]
TERMINAL = {
    "thread.run.completed",
    "thread.run.failed",
    "thread.run.cancelled",
    "thread.run.requires_action",
}


def translator(**extra: Any) -> ResponsesTranslator:
    counter = itertools.count(1)
    clock = itertools.count(1000)
    run = run_object("run_1", 900, "thread_1", "asst_1", {"model": "qwen-plus"})
    return ResponsesTranslator(
        run, new_id=lambda p: f"{p}_{next(counter)}", clock=lambda: next(clock), **extra
    )


def in_a_message() -> tuple[ResponsesTranslator, list[tuple[str, Any]]]:
    """A translator inside a response, with a message open and one delta streamed."""
    t = translator()
    out = t.feed({"type": "response.created", "response": {"id": "r1"}})
    out += t.feed({"type": "response.output_item.added", "item": {"id": "m1", "type": "message"}})
    out += t.feed({"type": "response.output_text.delta", "delta": "Hi"})
    return t, out


def added(item: object) -> JSON:
    return {"type": "response.output_item.added", "item": item}


def done(item: object) -> JSON:
    return {"type": "response.output_item.done", "item": item}


def completed(response: object) -> JSON:
    return {"type": "response.completed", "response": response}


def message(content: object) -> JSON:
    return {"id": "m9", "type": "message", "content": content}


MALFORMED: dict[str, object] = {
    "an array": ["response.created"],
    "a string": "response.created",
    "a number": 7,
    "null": None,
    "type an array": {"type": ["response.created"]},
    "type an object": {"type": {"name": "response.created"}},
    "type a number": {"type": 3},
    "text delta a number": {"type": "response.output_text.delta", "delta": 5},
    "text delta null": {"type": "response.output_text.delta", "delta": None},
    "item missing": {"type": "response.output_item.added"},
    "item an array": added([]),
    "item a string": done("m1"),
    "item id a number": added({"id": 5, "type": "message"}),
    "item type an object": added({"id": "x1", "type": {}}),
    "output_index a string": {**added({"id": "x1", "type": "reasoning"}), "output_index": "0"},
    "output_index negative": {**added({"id": "x1", "type": "reasoning"}), "output_index": -1},
    "output_index a boolean": {**added({"id": "x1", "type": "reasoning"}), "output_index": True},
    "content a string": done(message("Hello")),
    "content part a string": done({**message(["Hello"]), "id": "m1"}),
    "content part text a number": done(message([{"type": "output_text", "text": 5}])),
    "content part type an array": done(message([{"type": ["output_text"], "text": "x"}])),
    "message status a number": done({**message([]), "status": 1}),
    "call_id a number": added({"id": "f1", "type": "function_call", "call_id": 7}),
    "function name an object": done({"id": "f1", "type": "function_call", "name": {}}),
    "arguments an array": done({"id": "f1", "type": "function_call", "arguments": []}),
    "code a number": done({"id": "c1", "type": "code_interpreter_call", "code": 1}),
    "outputs an object": done({"id": "c1", "type": "code_interpreter_call", "outputs": {}}),
    "an output a string": done({"id": "c1", "type": "code_interpreter_call", "outputs": ["x"]}),
    "logs a number": done(
        {"id": "c1", "type": "code_interpreter_call", "outputs": [{"type": "logs", "logs": 1}]}
    ),
    "search action an array": done({"id": "w1", "type": "web_search_call", "action": []}),
    "search sources a string": done(
        {"id": "w1", "type": "web_search_call", "action": {"query": "q", "sources": "x"}}
    ),
    "search query a number": done({"id": "w1", "type": "web_search_call", "action": {"query": 5}}),
    "code delta item_id a number": {
        "type": "response.code_interpreter_call_code.delta",
        "item_id": 1,
        "delta": "x",
    },
    "arguments delta for nothing": {
        "type": "response.function_call_arguments.delta",
        "item_id": "nope",
        "delta": "x",
    },
    "response a string": completed("done"),
    "response an array": {"type": "response.in_progress", "response": []},
    "response id a number": completed({"id": 5}),
    "status an array": completed({"status": ["completed"]}),
    "output an object": completed({"output": {}}),
    "output item a string": completed({"output": ["m1"]}),
    "usage a string": completed({"usage": "lots"}),
    "usage an array": completed({"usage": [1, 2]}),
    "input_tokens a string": completed({"usage": {"input_tokens": "abc"}}),
    "input_tokens an object": completed({"usage": {"input_tokens": {}}}),
    "input_tokens a float": completed({"usage": {"input_tokens": 1.5}}),
    "input_tokens a boolean": completed({"usage": {"input_tokens": True}}),
    "output_tokens negative": completed({"usage": {"output_tokens": -3}}),
    "failed error a string": {"type": "response.failed", "response": {"error": "boom"}},
    "error event error a number": {"type": "error", "error": 500},
    "incomplete_details a string": {
        "type": "response.incomplete",
        "response": {"incomplete_details": "max_output_tokens"},
    },
    "incomplete reason an object": {
        "type": "response.incomplete",
        "response": {"incomplete_details": {"reason": {}}},
    },
}


@pytest.mark.parametrize("name", MALFORMED)
def test_a_malformed_event_is_a_protocol_error_and_fail_closes_the_run_once(name: str) -> None:
    t, before = in_a_message()
    with pytest.raises(TranslationError):
        t.feed(MALFORMED[name])  # type: ignore[arg-type]  # non-objects on purpose
    assert t.state is State.ERROR
    with pytest.raises(TranslationError):  # ERROR is sticky for events
        t.feed({"type": "response.completed", "response": {}})
    after = t.fail("invalid_stream", "bad event")
    ends = [n for n, _ in [*before, *after] if n in TERMINAL]
    assert ends == ["thread.run.failed"]
    assert t.run["last_error"] == {"code": "invalid_stream", "message": "bad event"}
    assert [m["content"][0]["text"]["value"] for m in t.messages] == ["Hi"]
    assert t.finish() == t.cancel() == t.fail("x", "y") == []


def test_malformed_before_response_created_also_closes_the_run_once() -> None:
    t = translator()
    with pytest.raises(TranslationError, match="not an object"):
        t.feed(["junk"])  # type: ignore[arg-type]
    out = t.cancel()
    assert [n for n, _ in out] == [
        "thread.run.created",
        "thread.run.queued",
        "thread.run.cancelled",
    ]


def test_the_message_names_the_field_and_its_type_never_the_value() -> None:
    t, _ = in_a_message()
    with pytest.raises(TranslationError) as caught:
        t.feed(completed({"usage": {"input_tokens": "SECRET-VALUE"}}))
    assert (
        str(caught.value) == "response usage: input_tokens is a string, not a non-negative integer"
    )


def test_any_other_exception_in_a_handler_becomes_a_translation_error_from_it() -> None:
    def broken(message_id: str, text: str) -> Any:
        raise ValueError("builder broke")

    t = translator(text_delta=broken)
    t.feed({"type": "response.created", "response": {}})
    with pytest.raises(TranslationError, match="builder broke") as caught:
        t.feed({"type": "response.output_text.delta", "delta": "x"})  # the slow path's first
    assert isinstance(caught.value.__cause__, ValueError)
    assert t.state is State.ERROR


def test_an_event_without_a_type_is_unknown_not_malformed() -> None:
    t, _ = in_a_message()
    assert t.feed({"delta": "x"}) == [] and t.feed({"type": ""}) == []
    assert t.unknown_events == {"<no type>": 2} and t.state is State.IN_PROGRESS


def test_an_error_code_or_message_that_is_not_a_string_gets_the_default() -> None:
    t, _ = in_a_message()
    out = t.feed({"type": "error", "error": {"code": 429, "message": ["x"]}})
    default = {"code": "server_error", "message": "the upstream response failed"}
    assert out[-1][0] == "error" and out[-1][1]["code"] == default["code"]
    assert t.last_error == default
    flat = in_a_message()[0]
    assert flat.feed({"type": "error", "code": 429, "message": None})[-1][0] == "thread.run.failed"
    assert flat.last_error == default


def test_absent_and_null_fields_read_as_absent() -> None:
    t, _ = in_a_message()
    out = t.feed(done({"id": "m1", "type": "message", "content": None, "status": None}))
    out += t.feed(completed({"id": None, "output": None, "usage": {"input_tokens": None}}))
    assert out[-1][0] == "thread.run.completed"
    assert t.usage == run_usage(0, 0) and t.response_id == "r1"
