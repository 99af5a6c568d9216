"""Tools, tool round trips, failures and cancellation: the same observations on both backends."""

from __future__ import annotations

import os
import threading
import time
from typing import Any

import pytest

import compat
from compat.testing import Emulator, Scenario
from compat.types import AssistantError as CompatAssistantError
from tests.pg import consumer_store

from . import programs_tools as p

PARITY = [
    p.search_then_answer,
    p.function_round_trip,
    p.function_round_trip_not_streamed,
    p.parallel_calls_and_a_second_round,
    p.tool_output_mistakes,
    p.active_run_is_refused,
]


@pytest.mark.parametrize("program", PARITY, ids=lambda f: f.__name__)
def test_program_observes_the_same_on_compat_as_on_dashscope(
    program: Any, apis: dict[str, Any], compat_emulator: Emulator
) -> None:
    expected = program(apis["dashscope"], compat_emulator)
    compat_emulator.reset()
    assert program(apis["compat"], compat_emulator) == expected


def test_function_call_ends_in_requires_action_with_the_call(
    apis: dict[str, Any], compat_emulator: Emulator
) -> None:
    seen = p.function_round_trip(apis["compat"], compat_emulator)
    first_stream = seen[: seen.index(("requires_action", "submit_tool_outputs"))]
    assert [s for s in first_stream if isinstance(s, str)] == [
        "thread.run.created",
        "thread.run.queued",
        "thread.run.in_progress",
        "thread.run.step.created",
        "thread.run.step.in_progress",
        "thread.run.requires_action",
    ]
    deltas = [s for s in first_stream if isinstance(s, tuple)]
    assert [d[2:] for d in deltas] == [("big_add", ""), ("big_add", '{"left": 1, "right": 2}')]
    assert ("function", "big_add", {"left": 1, "right": 2}) in seen
    assert ("big_add", "3", True) in seen
    assert [("tool_calls", "completed"), ("message_creation", "completed")] in seen


def test_code_interpreter_code_streamed_as_deltas_reads_the_same(
    apis: dict[str, Any], compat_emulator: Emulator
) -> None:
    from . import programs

    dashscope_flavour = programs.code_tutor(apis["compat"])
    compat_emulator.reset()
    compat_emulator.responses_flavor = "openai"  # code_interpreter_call_code.delta events upstream
    assert programs.code_tutor(apis["compat"]) == dashscope_flavour


FAILURES = {
    "response_failed": Scenario.failure("server_error", "model overloaded", after_text="Once upon"),
    "error_event_flat": Scenario.failure(
        "server_error", "boom", after_text="Once upon", mode="error_event_flat"
    ),
    "incomplete": Scenario.failure(
        "max_output_tokens", "cut short", after_text="Once upon", mode="incomplete"
    ),
    "rate_limited_json": Scenario.failure(
        "rate_limit_exceeded", "Requests rate limit exceeded", mode="rate_limited_json"
    ),
    "dropped_connection": Scenario.failure(
        "connection_error", "dropped", after_text="Once upon", mode="drop"
    ),
    "truncated_stream": Scenario.failure(
        "server_error", "truncated", after_text="Once upon", mode="truncate"
    ),
    "malformed_event": Scenario.failure(
        "invalid_stream", "<html>502 Bad Gateway</html>", after_text="Once upon", mode="malformed"
    ),
    "event_not_utf8": Scenario.failure(
        "invalid_stream", '{"type":"x","delta":"\udcff"}', after_text="Once upon", mode="malformed"
    ),
}


@pytest.mark.parametrize("name", FAILURES)
def test_failure_after_the_run_started_ends_in_run_failed_and_keeps_the_thread(
    name: str, apis: dict[str, Any], compat_emulator: Emulator
) -> None:
    seen = p.failure_after_start(apis["compat"], compat_emulator, FAILURES[name])
    *streamed, stored_status, messages, _stored = seen
    events = [s for s in streamed if isinstance(s, str)]
    assert events[-1] == "thread.run.failed"
    assert stored_status == "failed"
    assert (messages[0][0], messages[0][2]) == ("user", "Tell me a story.")
    if name == "rate_limited_json":
        assert len(messages) == 1
    else:
        assert messages[1][0] == "assistant"
        assert messages[1][1] == "incomplete"
        assert messages[1][2].startswith("Once")


#: Upstream failures that are the Assistant API's own: the same stream, the same stored run.
PARITY_FAILURES = {
    "response_failed": FAILURES["response_failed"],
    "error_event": Scenario.failure(
        "server_error", "boom", after_text="Once upon", mode="error_event"
    ),
    "error_event_flat": FAILURES["error_event_flat"],
    "incomplete": FAILURES["incomplete"],
    "rate_limited_json": FAILURES["rate_limited_json"],
}


@pytest.mark.parametrize("name", PARITY_FAILURES)
def test_upstream_failures_are_observed_and_stored_as_on_the_assistant_api(
    name: str, apis: dict[str, Any], compat_emulator: Emulator
) -> None:
    scenario = PARITY_FAILURES[name]
    expected = p.failure_after_start(apis["dashscope"], compat_emulator, scenario)
    compat_emulator.reset()
    assert p.failure_after_start(apis["compat"], compat_emulator, scenario) == expected


@pytest.mark.parametrize("status", [400, 401, 404, 429, 500])
def test_http_error_before_the_stream_is_dashscopes_single_none_item(
    status: int, apis: dict[str, Any], compat_emulator: Emulator
) -> None:
    codes = {
        400: "InvalidParameter",
        401: "InvalidApiKey",
        404: "ModelNotFound",
        429: "Throttling.RateQuota",
        500: "InternalError",
    }
    scenario = Scenario.failure(
        codes[status], f"failed with {status}", mode="http_error", status=status, times=3
    )

    def observe(api: Any) -> list[Any]:
        compat_emulator.queue(scenario)
        assistant, thread = p._setup(api, [])
        streamed = list(api.Runs.create(thread.id, assistant_id=assistant.id, stream=True))
        runs = api.Runs.list(thread.id).data
        compat_emulator.reset()  # drops failures the other API did not use up (no retries)
        compat_emulator.queue(scenario)
        assistant, thread = p._setup(api, [])
        returned = api.Runs.create(thread.id, assistant_id=assistant.id)
        runs += api.Runs.list(thread.id).data
        return [
            [(e, d["status_code"], d["code"], d["message"]) for e, d in streamed],
            (returned.status_code, returned.code, returned.message),
            len(runs),
        ]

    expected = observe(apis["dashscope"])
    compat_emulator.reset()
    assert (
        observe(apis["compat"])
        == expected
        == [
            [(None, status, codes[status], f"failed with {status}")],
            (status, codes[status], f"failed with {status}"),
            0,
        ]
    )


def test_closing_the_stream_mid_run_cancels_it(
    apis: dict[str, Any], compat_emulator: Emulator
) -> None:
    api = apis["compat"]
    compat_emulator.queue(Scenario.text("word " * 60).paced(0.02))
    assistant, thread = p._setup(api, [], "Talk.")
    stream = api.Runs.create(thread.id, assistant_id=assistant.id, stream=True)
    deltas = 0
    run_id = None
    for event, data in stream:
        if event == "thread.run.created":
            run_id = data.id
        if event == "thread.message.delta":
            deltas += 1
            if deltas == 3:
                break
    stream.close()
    deadline = time.monotonic() + 5
    while api.Runs.retrieve(run_id, thread_id=thread.id).status != "cancelled":
        assert time.monotonic() < deadline, "the run was not cancelled"
        time.sleep(0.02)
    (reply, _question) = api.Messages.list(thread.id).data
    assert reply.status == "incomplete"
    assert reply.content[0].text.value.startswith("word word word")
    steps = api.Steps.list(run_id, thread_id=thread.id).data
    assert [s.status for s in steps] == ["cancelled"]


def test_cancel_moves_a_running_run_through_cancelling_to_cancelled(
    apis: dict[str, Any], compat_emulator: Emulator
) -> None:
    api = apis["compat"]
    compat_emulator.queue(Scenario.text("word " * 200).paced(0.02))
    assistant, thread = p._setup(api, [], "Talk.")
    run = api.Runs.create(thread.id, assistant_id=assistant.id)
    cancelling = api.Runs.cancel(run.id, thread_id=thread.id)
    assert (cancelling.status_code, cancelling.status) == (200, "cancelling")
    final = api.Runs.wait(run.id, thread_id=thread.id, timeout_seconds=10)
    assert final.status == "cancelled"
    again = api.Runs.cancel(run.id, thread_id=thread.id)
    assert (again.status_code, again.code, again.message) == (
        400,
        "InvalidParameter",
        "Cannot cancel a run with status 'cancelled'.",
    )


def test_thirty_two_threads_run_concurrently(
    apis: dict[str, Any], compat_emulator: Emulator
) -> None:
    api = apis["compat"]
    if api is not compat:
        pytest.skip(
            "threads are the sync facade's case; compat.aio's is tests/consumer/test_aio.py"
        )
    assistant = api.Assistants.create(model="qwen-plus")
    results: list[Any] = []
    errors: list[BaseException] = []

    def one(i: int) -> None:
        try:
            thread = api.Threads.create(messages=[{"role": "user", "content": f"Question {i}"}])
            events = [
                e for e, _ in api.Runs.create(thread.id, assistant_id=assistant.id, stream=True)
            ]
            reply = api.Messages.list(thread.id).data[0].content[0].text.value
            results.append((events[-1], f"Question {i}" in reply))
        except BaseException as exc:  # reported below
            errors.append(exc)

    workers = [threading.Thread(target=one, args=(i,)) for i in range(32)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(60)
    assert errors == []
    assert results == [("thread.run.completed", True)] * 32


needs_responses = pytest.mark.skipif(
    os.environ.get("COMPAT_BACKEND", "responses") != "responses", reason="responses backend only"
)


@needs_responses
@pytest.mark.parametrize(
    ("tools", "fragment"),
    [
        ([{"type": "wanx"}], "tool 'wanx' is not supported on the responses backend"),
        ([{"type": "text_to_image"}], "tool 'text_to_image' is not supported"),
        ([{"type": "amap_weather"}], "expose it as a function tool"),
    ],
)
def test_tools_without_a_responses_equivalent_are_refused_loudly(
    tools: list[Any], fragment: str, compat_emulator: Emulator
) -> None:
    compat.configure(backend="responses", store=consumer_store())
    try:
        refused = compat.Assistants.create(model="qwen-plus", tools=tools)
        assert (refused.status_code, refused.code) == (400, "UnsupportedByResponsesAPI")
        assert fragment in refused.message
        assert compat.Assistants.list().data == [] or all(
            a.tools != tools for a in compat.Assistants.list().data
        )
        ok = compat.Assistants.create(model="qwen-plus")
        thread = compat.Threads.create(messages=[{"role": "user", "content": "Hi"}])
        streamed = list(compat.Runs.create(thread.id, assistant_id=ok.id, tools=tools, stream=True))
        assert [(e, d["status_code"], d["code"]) for e, d in streamed] == [
            (None, 400, "UnsupportedByResponsesAPI")
        ]
        updated = compat.Assistants.update(ok.id, tools=tools)
        assert updated.status_code == 400
        assert compat.Assistants.retrieve(ok.id).tools == []
        assert compat.Runs.list(thread.id).data == []
        assert compat_emulator.requests == [] or all(
            not r.path.endswith("/responses") for r in compat_emulator.requests
        )
    finally:
        compat.configure(reset=True)


@needs_responses
def test_top_k_is_refused_not_dropped(compat_emulator: Emulator) -> None:
    compat.configure(backend="responses", store=consumer_store())
    try:
        refused = compat.Assistants.create(model="qwen-plus", top_k=10)
        assert (refused.status_code, refused.code) == (400, "UnsupportedByResponsesAPI")
        assert refused.message.startswith("top_k is not supported")
        assistant = compat.Assistants.create(model="qwen-plus")
        thread = compat.Threads.create(messages=[{"role": "user", "content": "Hi"}])
        run = compat.Runs.create(thread.id, assistant_id=assistant.id, top_k=5)
        assert (run.status_code, run.code) == (400, "UnsupportedByResponsesAPI")
    finally:
        compat.configure(reset=True)


@needs_responses
@pytest.mark.parametrize(
    ("scenario", "code"),
    [
        (Scenario.failure("x", "y", after_text="Once upon", mode="drop"), "connection_error"),
        (Scenario.failure("x", "y", after_text="Once upon", mode="truncate"), "server_error"),
        (
            Scenario.failure("x", "<html>502</html>", after_text="Once upon", mode="malformed"),
            "invalid_stream",
        ),
        (
            Scenario.failure("x", '{"delta":"\udcff"}', after_text="Once upon", mode="malformed"),
            "invalid_stream",
        ),
        (Scenario.failure("x", "y", after_text="Once upon", mode="stall", seconds=2), "timeout"),
        (
            Scenario.failure(
                "server_error", "Requests rate limit exceeded", mode="rate_limited_json"
            ),
            "rate_limit_exceeded",
        ),
    ],
    ids=["drop", "truncate", "malformed", "not_utf8", "stall", "rate_limited_json"],
)
def test_transport_failures_are_reported_with_their_own_code(
    scenario: Scenario, code: str, compat_emulator: Emulator
) -> None:
    compat.configure(backend="responses", store=consumer_store())
    try:
        compat_emulator.queue(scenario)
        assistant, thread = p._setup(compat, [], "Tell me a story.")
        items = list(
            compat.Runs.create(
                thread.id, assistant_id=assistant.id, stream=True, request_timeout=0.5
            )
        )
        event, run = items[-1]
        assert event == "thread.run.failed"
        assert run.status == "failed"
        assert run.last_error["code"] == code
        assert run.last_error["message"]
        assert compat.Runs.retrieve(run.id, thread_id=thread.id).last_error == run.last_error
    finally:
        compat.configure(reset=True)


@needs_responses
def test_file_attachments_are_refused_not_dropped(compat_emulator: Emulator) -> None:
    compat.configure(backend="responses", store=consumer_store())
    try:
        refused = compat.Assistants.create(model="qwen-plus", file_ids=["file_1"])
        assert (refused.status_code, refused.code) == (400, "UnsupportedByResponsesAPI")
        assert refused.message.startswith("file_ids are not supported on the responses backend")
        thread = compat.Threads.create(messages=[{"role": "user", "content": "Hi"}])
        message = compat.Messages.create(thread.id, content="See file", file_ids=["file_1"])
        assert (message.status_code, message.code) == (400, "UnsupportedByResponsesAPI")
        assert [m.content[0].text.value for m in compat.Messages.list(thread.id).data] == ["Hi"]
        bad = compat.Threads.create(
            messages=[{"role": "user", "content": "Hi", "file_ids": ["file_1"]}]
        )
        assert (bad.status_code, bad.code) == (400, "UnsupportedByResponsesAPI")
    finally:
        compat.configure(reset=True)


def test_nested_error_event_is_the_raw_error_event_and_the_run_is_stored_failed(
    apis: dict[str, Any], compat_emulator: Emulator
) -> None:
    api = apis["compat"]
    compat_emulator.queue(PARITY_FAILURES["error_event"])
    assistant, thread = p._setup(api, [], "Tell me a story.")
    items = list(api.Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    # The Assistant API's own form: a raw event:error, which dashscope yields as ("error", err)
    # and after which it reads nothing; the run, its message and its step are stored failed.
    assert [event for event, _ in items[-3:]] == [
        "thread.message.delta",
        "thread.message.delta",
        "error",
    ]
    assert not any(event == "thread.run.failed" for event, _ in items)
    error = {"code": "server_error", "message": "boom"}
    run = api.Runs.retrieve(items[0][1].id, thread_id=thread.id)
    assert (run.status, run.last_error, run.usage) == ("failed", error, None)
    [step] = api.Steps.list(run.id, thread_id=thread.id).data
    assert (step.status, step.last_error.code, step.last_error.message) == (
        "failed",
        *error.values(),
    )
    reply = api.Messages.list(thread.id).data[0]
    assert (reply.role, reply.status, reply.content[0].text.value) == (
        "assistant",
        "incomplete",
        "Once upon",
    )


def test_the_error_item_reads_like_dashscopes_assistant_error(
    apis: dict[str, Any], compat_emulator: Emulator
) -> None:
    from dashscope.common.error import AssistantError

    def last_item(api: Any) -> tuple[str | None, Any]:
        compat_emulator.queue(PARITY_FAILURES["error_event"])
        assistant, thread = p._setup(api, [], "Tell me a story.")
        items = list(api.Runs.create(thread.id, assistant_id=assistant.id, stream=True))
        return items[-1]

    event, theirs = last_item(apis["dashscope"])
    compat_emulator.reset()
    our_event, ours = last_item(apis["compat"])
    assert (event, our_event) == ("error", "error")
    assert isinstance(theirs, AssistantError) and isinstance(ours, CompatAssistantError)
    assert (ours.code, ours.message, ours.status_code) == ("server_error", "boom", None)
    assert str(ours) == str(theirs).replace(theirs.request_id, ours.request_id)
