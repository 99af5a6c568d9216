"""Fuzzing the translator: whatever events arrive, only TranslationError escapes, one run end.

Two sources of event sequences: the recorded fixtures, mutated (values and types replaced at
any depth, keys deleted, events dropped, duplicated, swapped, retyped, junk injected), and
plausible streams built from a small pool of item ids, types and output indices so that the
item-keying rules collide often. Each sequence is fed the way the run loop feeds it (stopping
at a TranslationError, or carrying on, which must be as safe), then closed with ``finish``,
``fail`` or ``cancel``. The properties:

* ``feed`` raises nothing but ``TranslationError``; the closing call raises nothing;
* exactly one terminal run event (or the raw ``error`` event that reports a failure) over the
  whole sequence plus the closing call, and it is the last event emitted (a settled translator
  emits nothing more);
* every payload is JSON-serialisable, and the snapshots too.

Derandomized (the same examples on every run) and with no deadline, so it is never flaky.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from compat._objects import run_object
from compat.backends.responses.translate import (
    _HANDLERS,
    IGNORED_EVENTS,
    ResponsesTranslator,
    State,
)
from compat.errors import TranslationError

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "responses"
RECORDED = {
    p.stem: [json.loads(line) for line in p.read_text("utf-8").splitlines()]
    for p in sorted(FIXTURES.glob("*.jsonl"))
    if "." not in p.stem
}
#: The events that end a run's stream; ``error`` is a failure reported the Assistant API's raw way.
TERMINAL = frozenset(
    {
        "thread.run.completed",
        "thread.run.failed",
        "thread.run.cancelled",
        "thread.run.requires_action",
        "error",
    }
)
EVENT_TYPES = sorted(_HANDLERS) + sorted(IGNORED_EVENTS)[:6] + ["response.brand_new", ""]
ITEM_TYPES = [
    "message",
    "function_call",
    "code_interpreter_call",
    "web_search_call",
    "mcp_call",
    "reasoning",
    "program",
]
WORDS = [*EVENT_TYPES, *ITEM_TYPES, "completed", "failed", "incomplete", "in_progress", "logs"]

FUZZ = settings(
    max_examples=200,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-3, max_value=2**40)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=4)
    | st.sampled_from(WORDS)
)
junk = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)


def new_translator(continuation: bool = False) -> ResponsesTranslator:
    """A first response's translator, or (``continuation``) the one after submit_tool_outputs."""
    ids = itertools.count(1)
    clock = itertools.count(1000)
    run = run_object("run_1", 900, "thread_1", "asst_1", {"model": "qwen-plus"})
    first = ResponsesTranslator(run, new_id=lambda p: f"{p}_{next(ids)}", clock=lambda: next(clock))
    if not continuation:
        return first
    for event in RECORDED["function_call"]:
        first.feed(event)
    return ResponsesTranslator(
        dict(first.run, status="queued", required_action=None),
        new_id=lambda p: f"{p}_{next(ids)}",
        clock=lambda: next(clock),
        emit_run_start=False,
        continuation_step=first.steps[-1],
        tool_outputs={first.pending_tool_calls[0]["id"]: "22 C"},
        prior_usage=first.run["usage"],
    )


def mutate_value(data: st.DataObject, value: Any) -> Any:
    """``value`` with one change somewhere inside, usually deep: a replaced value or a lost key."""
    descend = data.draw(st.integers(0, 9)) < 8
    if isinstance(value, dict) and value and descend:
        key = data.draw(st.sampled_from(sorted(value)))
        copy = dict(value)
        if data.draw(st.integers(0, 5)) == 0:
            del copy[key]
        else:
            copy[key] = mutate_value(data, value[key])
        return copy
    if isinstance(value, list) and value and descend:
        i = data.draw(st.integers(0, len(value) - 1))
        return [*value[:i], mutate_value(data, value[i]), *value[i + 1 :]]
    return data.draw(junk)


def mutate(data: st.DataObject, events: list[Any]) -> list[Any]:
    events = list(events)
    ops = ["value", "value", "value", "drop", "dup", "swap", "retype", "inject"]
    for _ in range(data.draw(st.integers(1, 3))):
        op = data.draw(st.sampled_from(ops)) if events else "inject"
        i = data.draw(st.integers(0, max(len(events) - 1, 0)))
        if op == "value":
            events[i] = mutate_value(data, events[i])
        elif op == "drop":
            del events[i]
        elif op == "dup":
            events.insert(data.draw(st.integers(0, len(events))), events[i])
        elif op == "swap":
            j = data.draw(st.integers(0, len(events) - 1))
            events[i], events[j] = events[j], events[i]
        elif op == "retype" and isinstance(events[i], dict):
            events[i] = {**events[i], "type": data.draw(st.sampled_from(EVENT_TYPES))}
        else:
            events.insert(i, data.draw(junk | st.fixed_dictionaries({"type": junk})))
    return events


#: Event types of a plausible stream's middle, item events and deltas most often.
MIDDLE = [
    *["response.output_item.added", "response.output_item.done"] * 4,
    *["response.output_text.delta", "response.function_call_arguments.delta"] * 2,
    "response.code_interpreter_call_code.delta",
    "response.in_progress",
    "response.content_part.added",
    "response.completed",
    "response.failed",
    "response.incomplete",
    "error",
]


def plausible_event(data: st.DataObject) -> dict[str, Any]:
    """An event of a known type, with ids and indices from small pools so that they collide."""
    kind = data.draw(st.sampled_from(MIDDLE))
    ids = st.sampled_from(["a", "b", "c", None])
    event: dict[str, Any] = {"type": kind}
    if kind.startswith("response.output_item"):
        item = {"id": data.draw(ids), "type": data.draw(st.sampled_from(ITEM_TYPES))}
        extra = st.sampled_from(["call_id", "name", "arguments", "code", "status", "content"])
        for key in data.draw(st.lists(extra, max_size=3, unique=True)):
            value = {
                "call_id": st.sampled_from(["call_x", "call_y"]),
                "status": st.just("incomplete"),
            }
            item[key] = data.draw(value.get(key, st.text(max_size=3)))
        if "content" in item:
            item["content"] = [{"type": "output_text", "text": item["content"]}]
        event["item"] = item
    elif kind.endswith(".delta"):
        event.update(delta=data.draw(st.text(max_size=3)), item_id=data.draw(ids))
    elif kind.startswith("response."):
        status = data.draw(st.sampled_from([None, "completed", "failed", "incomplete"]))
        usage = data.draw(st.none() | st.fixed_dictionaries({"input_tokens": st.integers(0, 9)}))
        event["response"] = {"status": status, "usage": usage, "output": []}
    if data.draw(st.booleans()):
        event["output_index"] = data.draw(st.sampled_from([0, 1, 2]))
    if data.draw(st.integers(0, 5)) == 0:  # small events: junk lands on a field that is read
        return mutate_value(data, event)  # type: ignore[no-any-return]
    return event


def check(events: list[Any], stop_at_error: bool, closing: str, continuation: bool = False) -> None:
    translator = new_translator(continuation)
    out: list[tuple[str, Any]] = []
    for event in events:
        try:
            out += translator.feed(event)
        except TranslationError:
            assert translator.state is State.ERROR
            if stop_at_error:  # what the run loop does
                break
    if closing == "finish":
        out += translator.finish()
    elif closing == "fail":
        out += translator.fail("invalid_stream", "fuzz")
    else:
        out += translator.cancel()
    ends = [i for i, (name, _) in enumerate(out) if name in TERMINAL]
    assert len(ends) == 1 and ends[0] == len(out) - 1, [name for name, _ in out]
    assert translator.settled
    json.dumps([out, translator.run, translator.messages, translator.steps])
    json.dumps([translator.pending_tool_calls, translator.usage, translator.late_events])


closings = st.sampled_from(["finish", "fail", "cancel"])


@FUZZ
@given(st.sampled_from(sorted(RECORDED)), st.data(), st.booleans(), closings)
def test_mutated_recordings_end_the_run_exactly_once(
    name: str, data: st.DataObject, stop_at_error: bool, closing: str
) -> None:
    check(mutate(data, RECORDED[name]), stop_at_error, closing, name == "continuation")


@FUZZ
@given(st.data(), st.booleans(), closings)
def test_plausible_streams_end_the_run_exactly_once(
    data: st.DataObject, stop_at_error: bool, closing: str
) -> None:
    start = [{"type": "response.created", "response": {"id": "r"}}]
    events = start + [plausible_event(data) for _ in range(data.draw(st.integers(0, 12)))]
    check(events, stop_at_error, closing)


def test_the_unmutated_recordings_pass_the_same_checks() -> None:
    for name, events in RECORDED.items():
        check(events, True, "finish", name == "continuation")
