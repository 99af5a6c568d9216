"""The raw dashscope SDK observes the same through ``compat serve`` as against the Assistant API.

Each consumer program runs twice with dashscope: against the emulator's Assistant side (the
reference transcript), then against the proxy, whose upstream is the emulator's Responses side.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from compat.serve.server import BackgroundServer
from compat.testing import Emulator, Scenario
from tests.consumer import programs, programs_tools

from .conftest import dashscope

PROGRAMS = [
    programs.code_tutor,
    programs.simple_wait_and_list,
    programs.multi_turn,
    programs.create_thread_and_run,
    programs.crud_and_errors,
]
TOOL_PROGRAMS = [
    programs_tools.search_then_answer,
    programs_tools.function_round_trip,
    programs_tools.function_round_trip_not_streamed,
    programs_tools.parallel_calls_and_a_second_round,
    programs_tools.tool_output_mistakes,
    programs_tools.active_run_is_refused,
]


def _through_proxy(monkeypatch: pytest.MonkeyPatch, proxy: BackgroundServer) -> None:
    monkeypatch.setattr(dashscope, "base_http_api_url", proxy.base_url)


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.__name__)
def test_program_observes_the_same_through_the_proxy(
    program: Any,
    raw_dashscope: Any,
    compat_emulator: Emulator,
    proxy: BackgroundServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected = program(raw_dashscope)
    compat_emulator.reset()
    _through_proxy(monkeypatch, proxy)
    assert program(raw_dashscope) == expected


@pytest.mark.parametrize("program", TOOL_PROGRAMS, ids=lambda p: p.__name__)
def test_tool_program_observes_the_same_through_the_proxy(
    program: Any,
    raw_dashscope: Any,
    compat_emulator: Emulator,
    proxy: BackgroundServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected = program(raw_dashscope, compat_emulator)
    compat_emulator.reset()
    _through_proxy(monkeypatch, proxy)
    assert program(raw_dashscope, compat_emulator) == expected


FAILURES = {
    "response_failed": Scenario.failure("server_error", "model overloaded", after_text="Once upon"),
    "error_event": Scenario.failure(
        "server_error", "boom", after_text="Once upon", mode="error_event"
    ),
    "error_event_flat": Scenario.failure(
        "server_error", "boom", after_text="Once upon", mode="error_event_flat"
    ),
    "incomplete": Scenario.failure(
        "max_output_tokens", "cut short", after_text="Once upon", mode="incomplete"
    ),
    "rate_limited_json": Scenario.failure(
        "rate_limit_exceeded", "Requests rate limit exceeded", mode="rate_limited_json"
    ),
}


@pytest.mark.parametrize("name", FAILURES)
def test_failure_after_start_is_observed_the_same_through_the_proxy(
    name: str,
    raw_dashscope: Any,
    compat_emulator: Emulator,
    proxy: BackgroundServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected = programs_tools.failure_after_start(raw_dashscope, compat_emulator, FAILURES[name])
    compat_emulator.reset()
    _through_proxy(monkeypatch, proxy)
    seen = programs_tools.failure_after_start(raw_dashscope, compat_emulator, FAILURES[name])
    assert seen == expected


def test_the_error_event_is_written_as_the_assistant_api_writes_it(
    raw_dashscope: Any,
    compat_emulator: Emulator,
    proxy: BackgroundServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def stream_tail(base_url: str) -> bytes:
        compat_emulator.queue(FAILURES["error_event"])
        assistant = raw_dashscope.Assistants.create(model="qwen-plus")
        thread = raw_dashscope.Threads.create(messages=[{"role": "user", "content": "Hi"}])
        reply = httpx.post(
            f"{base_url}/threads/{thread.id}/runs",
            json={"assistant_id": assistant.id, "stream": True},
            headers={"Authorization": f"Bearer {compat_emulator.api_key}"},
            timeout=30,
        )
        assert reply.status_code == 200
        tail = reply.content[reply.content.rindex(b"event:") :]
        request_id = json.loads(tail.partition(b"data:")[2])["request_id"]
        assert isinstance(request_id, str) and request_id
        return tail.replace(request_id.encode(), b"<id>")

    expected = stream_tail(compat_emulator.assistants_base_url)
    compat_emulator.reset()
    _through_proxy(monkeypatch, proxy)
    assert stream_tail(proxy.base_url) == expected
    assert expected == (
        b'event:error\ndata:{"code":"server_error","message":"boom","request_id":"<id>"}\n\n'
    )
