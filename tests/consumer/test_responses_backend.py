"""What only the responses backend does: requests it sends, history modes, background runs."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

import compat
from compat.testing import Emulator, Reasoning, Scenario, Text
from tests.pg import consumer_store

ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    os.environ.get("COMPAT_BACKEND", "responses") != "responses",
    reason="responses backend only",
)


@pytest.fixture
def responses(compat_emulator: Emulator) -> Any:
    compat.configure(backend="responses", store=consumer_store())
    yield compat_emulator
    compat.configure(reset=True)


def _bodies(emu: Emulator) -> list[dict[str, Any]]:
    return [r.json for r in emu.requests if r.path.endswith("/responses")]


def _text(stream: Any) -> str:
    return "".join(d.delta.content.text.value for e, d in stream if e == "thread.message.delta")


def test_request_carries_instructions_model_tools_and_sampling(responses: Emulator) -> None:
    assistant = compat.Assistants.create(
        model="qwen-plus",
        instructions="Be brief.",
        tools=[{"type": "search"}],
        temperature=0.2,
        top_p=0.8,
        max_tokens=64,
    )
    thread = compat.Threads.create(messages=[{"role": "user", "content": "Hi"}])
    _text(
        compat.Runs.create(
            thread.id,
            assistant_id=assistant.id,
            additional_instructions="Answer in French.",
            stream=True,
        )
    )
    (body,) = _bodies(responses)
    assert body == {
        "model": "qwen-plus",
        "input": [{"role": "user", "content": "Hi"}],
        "instructions": "Be brief.\n\nAnswer in French.",
        "tools": [{"type": "web_search"}],
        "temperature": 0.2,
        "top_p": 0.8,
        "max_output_tokens": 64,
        "stream": True,
    }


def test_chain_sends_previous_response_id_and_only_new_messages(responses: Emulator) -> None:
    assistant = compat.Assistants.create(model="qwen-plus", instructions="Be brief.")
    thread = compat.Threads.create(messages=[{"role": "user", "content": "One"}])
    _text(compat.Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    compat.Messages.create(thread.id, content="Two")
    _text(compat.Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    first, second = _bodies(responses)
    assert "previous_response_id" not in first
    assert second["previous_response_id"].startswith("resp_")
    assert second["input"] == [{"role": "user", "content": "Two"}]
    assert second["instructions"] == "Be brief."  # not inherited upstream: sent every time


def test_chain_falls_back_to_replay_when_the_previous_response_is_gone(
    responses: Emulator,
) -> None:
    assistant = compat.Assistants.create(model="qwen-plus")
    thread = compat.Threads.create(messages=[{"role": "user", "content": "One"}])
    first_answer = _text(compat.Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    responses.expire_responses()
    compat.Messages.create(thread.id, content="Two")
    stream = compat.Runs.create(thread.id, assistant_id=assistant.id, stream=True)
    events = [e for e, _ in stream]
    assert events[-1] == "thread.run.completed"
    refused, replayed = _bodies(responses)[1:]
    assert "previous_response_id" in refused
    assert "previous_response_id" not in replayed
    assert replayed["input"] == [
        {"role": "user", "content": "One"},
        {"role": "assistant", "content": first_answer},
        {"role": "user", "content": "Two"},
    ]


def test_replay_resends_the_whole_thread(responses: Emulator) -> None:
    compat.configure(history="replay")
    assistant = compat.Assistants.create(model="qwen-plus")
    thread = compat.Threads.create(messages=[{"role": "user", "content": "One"}])
    answer = _text(compat.Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    compat.Messages.create(thread.id, content="Two")
    _text(compat.Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    second = _bodies(responses)[1]
    assert "previous_response_id" not in second
    assert second["input"] == [
        {"role": "user", "content": "One"},
        {"role": "assistant", "content": answer},
        {"role": "user", "content": "Two"},
    ]


def test_reasoning_never_reaches_the_message(responses: Emulator) -> None:
    responses.queue(Scenario.of(Reasoning("secret plan"), Text("Visible answer.")))
    assistant = compat.Assistants.create(model="qwen-plus")
    thread = compat.Threads.create(messages=[{"role": "user", "content": "Hi"}])
    assert _text(compat.Runs.create(thread.id, assistant_id=assistant.id, stream=True)) == (
        "Visible answer."
    )
    (reply, _) = compat.Messages.list(thread.id).data
    assert reply.content[0].text.value == "Visible answer."
    assert "secret" not in str(compat.Steps.list(reply.run_id, thread_id=thread.id).to_dict())


def test_non_streamed_run_progresses_in_the_background(responses: Emulator) -> None:
    responses.queue(Scenario.text("Slow and steady.").paced(0.05))
    assistant = compat.Assistants.create(model="qwen-plus")
    thread = compat.Threads.create(messages=[{"role": "user", "content": "Hi"}])
    run = compat.Runs.create(thread.id, assistant_id=assistant.id)
    assert run.status == "queued"
    seen = [run.status]
    deadline = time.monotonic() + 10
    while seen[-1] != "completed" and time.monotonic() < deadline:
        status = compat.Runs.retrieve(run.id, thread_id=thread.id).status
        if status != seen[-1]:
            seen.append(status)
        time.sleep(0.01)
    assert seen == ["queued", "in_progress", "completed"]
    done = compat.Runs.wait(run.id, thread_id=thread.id)
    assert (
        done.usage["total_tokens"] == done.usage["prompt_tokens"] + done.usage["completion_tokens"]
    )
    assert compat.Messages.list(thread.id).data[0].content[0].text.value == "Slow and steady."


ORPHAN = """
import os, sys, time
sys.path.insert(0, sys.argv[1])
import compat
from compat.testing import Emulator, Scenario
compat.configure(backend="responses", store=sys.argv[2], lease_seconds=0.5)
with Emulator() as emu:
    compat.configure(responses_base_url=emu.responses_base_url, api_key=emu.api_key)
    emu.queue(Scenario.text("x " * 200).paced(0.05))
    a = compat.Assistants.create(model="qwen-plus")
    t = compat.Threads.create(messages=[{"role": "user", "content": "Hi"}])
    r = compat.Runs.create(t.id, assistant_id=a.id)
    while compat.Runs.retrieve(r.id, thread_id=t.id).status != "in_progress":
        time.sleep(0.01)
    print(t.id, r.id, flush=True)
    os._exit(0)  # the process dies with its worker mid-run
"""


def test_a_run_orphaned_by_its_process_is_reported_expired(tmp_path: Path) -> None:
    store = str(tmp_path / "store.sqlite3")
    out = subprocess.run(
        [sys.executable, "-c", ORPHAN, str(ROOT), store],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    thread_id, run_id = out.stdout.split()
    compat.configure(backend="responses", store=store)
    try:
        # Nobody renews the dead process's half-second lease: the first read after it lapses
        # reaps the run (the loop only waits out the lease; it asserts nothing on time).
        deadline = time.monotonic() + 30
        run = compat.Runs.retrieve(run_id, thread_id=thread_id)
        while run.status == "in_progress" and time.monotonic() < deadline:
            time.sleep(0.05)
            run = compat.Runs.retrieve(run_id, thread_id=thread_id)
        assert run.status == "expired"
        assert run.last_error["code"] == "worker_lost"
        assert compat.Runs.wait(run_id, thread_id=thread_id).status == "expired"
    finally:
        compat.configure(reset=True)


def test_replay_continuation_resends_each_call_next_to_its_output(responses: Emulator) -> None:
    compat.configure(history="replay")
    responses.queue(Scenario.function_call("lookup", {"key": "a"}, then="Found it."))
    tool = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}
    assistant = compat.Assistants.create(model="qwen-plus", tools=[tool])
    thread = compat.Threads.create(messages=[{"role": "user", "content": "Find a."}])
    run = compat.Runs.create(thread.id, assistant_id=assistant.id)
    run = compat.Runs.wait(run.id, thread_id=thread.id)
    (call,) = run.required_action.submit_tool_outputs.tool_calls
    compat.Runs.submit_tool_outputs(
        run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": call.id, "output": "A!"}]
    )
    assert compat.Runs.wait(run.id, thread_id=thread.id).status == "completed"
    continuation = _bodies(responses)[1]
    assert "previous_response_id" not in continuation
    assert continuation["input"] == [
        {"role": "user", "content": "Find a."},
        {
            "type": "function_call",
            "call_id": call.id,
            "name": "lookup",
            "arguments": '{"key": "a"}',
        },
        {"type": "function_call_output", "call_id": call.id, "output": "A!"},
    ]


def test_a_stream_dropped_before_its_first_item_cancels_the_run(responses: Emulator) -> None:
    import gc

    responses.queue(Scenario.text("word " * 50).paced(0.02))
    assistant = compat.Assistants.create(model="qwen-plus")
    thread = compat.Threads.create(messages=[{"role": "user", "content": "Hi"}])
    stream = compat.Runs.create(thread.id, assistant_id=assistant.id, stream=True)
    del stream
    gc.collect()
    (run,) = compat.Runs.list(thread.id).data
    assert run.status == "cancelled"
    again = compat.Runs.create(thread.id, assistant_id=assistant.id)  # the thread is free again
    assert compat.Runs.wait(again.id, thread_id=thread.id).status == "completed"
