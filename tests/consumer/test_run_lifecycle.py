"""The run lifecycle on the responses backend, in one process: races between threads, cancel,
history that loses nothing, tool outputs once, updates and deletes during a run, store failures.

The rules under test are compat's own (the Assistant API enforced them server-side), so these
run on the responses backend only; ``test_runs_across_processes`` repeats the races with real
processes. Waits are on conditions with bounded timeouts; a stalled upstream holds a run active
for as long as a test needs it.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import compat
from compat import lifecycle
from compat.store import MemoryStore, Record, StoreError
from compat.testing import Emulator, Reasoning, Scenario, Text
from tests.pg import consumer_store

from .held import stalled, wait_for

pytestmark = pytest.mark.skipif(
    os.environ.get("COMPAT_BACKEND", "responses") != "responses",
    reason="responses backend only",
)

TOOL = {"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}


@pytest.fixture
def responses(compat_emulator: Emulator) -> Iterator[Emulator]:
    compat.configure(backend="responses", store=consumer_store())
    yield compat_emulator
    compat.configure(reset=True)


def bodies(emu: Emulator) -> list[dict[str, Any]]:
    return [r.json for r in emu.requests if r.path.endswith("/responses")]


def user_texts(body: dict[str, Any]) -> list[str]:
    return [i["content"] for i in body["input"] if i.get("role") == "user"]


def events_until_delta(stream: Any) -> list[str]:
    seen = []
    for event, _ in stream:
        seen.append(event)
        if event == "thread.message.delta":
            return seen
    raise AssertionError(f"no delta in {seen}")


def setup(*messages: str, tools: list[Any] | None = None) -> tuple[Any, Any]:
    assistant = compat.Assistants.create(model="qwen-plus", tools=tools or [])
    thread = compat.Threads.create(messages=[{"role": "user", "content": m} for m in messages])
    return assistant, thread


# -- one active run per thread ------------------------------------------------------------------


def test_of_concurrent_creates_on_one_thread_exactly_one_is_accepted(responses: Emulator) -> None:
    responses.queue(stalled())
    assistant, thread = setup("Hi")
    barrier = threading.Barrier(12)
    results: list[Any] = []
    streams: list[Any] = []
    lock = threading.Lock()

    def create() -> None:
        barrier.wait(10)
        stream = compat.Runs.create(thread.id, assistant_id=assistant.id, stream=True)
        event, data = next(iter(stream))
        with lock:
            results.append((event, data))
            streams.append(stream)

    workers = [threading.Thread(target=create) for _ in range(12)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    accepted = [d for e, d in results if e is not None]
    refused = [d for e, d in results if e is None]
    assert len(accepted) == 1
    assert len(refused) == 11
    for error in refused:
        assert (error["status_code"], error["code"]) == (400, "InvalidParameter")
        assert error["message"].startswith(f"Thread {thread.id} already has an active run")
    assert len(bodies(responses)) == 1  # the refused never reached the model
    (run,) = compat.Runs.list(thread.id).data
    compat.Runs.cancel(run.id, thread_id=thread.id)
    for stream in streams:
        stream.close()


# -- leases -------------------------------------------------------------------------------------


def test_a_short_renewal_setting_renews_a_long_lease_while_the_run_is_held(
    responses: Emulator,
) -> None:
    # A ten-minute lease would next be renewed in 200 s; renewed every 0.1 s, it moves forward
    # (and the text so far is stored with it) while the upstream holds the run.
    compat.configure(lease_seconds=600, lease_renew_seconds=0.1)
    responses.queue(stalled("Partial answer"))
    assistant, thread = setup("Hi")
    stream = compat.Runs.create(thread.id, assistant_id=assistant.id, stream=True)
    events_until_delta(stream)
    (run,) = compat.Runs.list(thread.id).data
    first = _lease_until(run.id)
    later = wait_for(lambda: (u := _lease_until(run.id)) > first and u, "a renewal")
    wait_for(lambda: _lease_until(run.id) > later, "a second renewal")

    def checkpointed() -> Any:
        (message,) = [m for m in compat.Messages.list(thread.id).data if m.role == "assistant"]
        text = message.content[0].text.value if message.content else ""
        # the text of the deltas read so far (the stream is read no further meanwhile)
        return message.status == "in_progress" and text and "Partial answer".startswith(text)

    wait_for(checkpointed, "the text so far to be stored with a renewal")
    assert compat.Runs.cancel(run.id, thread_id=thread.id).status == "cancelling"
    assert [e for e, _ in stream][-1] == "thread.run.cancelled"


def _lease_until(run_id: str) -> int:
    record = _store().get("run", run_id)
    assert record is not None
    return int(record.meta["lease"]["until"])


# -- cancel -----------------------------------------------------------------------------------


def test_cancel_from_another_thread_ends_a_silent_stream_cancelled(responses: Emulator) -> None:
    responses.queue(stalled("Partial answer"))
    assistant, thread = setup("Hi")
    stream = compat.Runs.create(thread.id, assistant_id=assistant.id, stream=True)
    events_until_delta(stream)
    (run,) = compat.Runs.list(thread.id).data
    done = threading.Event()
    rest: list[str] = []

    def read_on() -> None:
        rest.extend(event for event, _ in stream)
        done.set()

    reader = threading.Thread(target=read_on)
    reader.start()
    reply = compat.Runs.cancel(run.id, thread_id=thread.id)
    assert (reply.status_code, reply.status) == (200, "cancelling")
    assert done.wait(30), "the upstream is silent, yet the driver must notice the cancel"
    assert rest[-1] == "thread.run.cancelled"
    stored = compat.Runs.retrieve(run.id, thread_id=thread.id)
    assert stored.status == "cancelled"
    (message,) = [m for m in compat.Messages.list(thread.id).data if m.role == "assistant"]
    assert message.status == "incomplete"
    assert message.content[0].text.value == "Partial answer"


def test_cancel_is_noticed_while_only_quiet_events_arrive(responses: Emulator) -> None:
    responses.queue(Scenario.of(Reasoning("think " * 2000), Text("Never shown.")).paced(0.01))
    assistant, thread = setup("Hi")
    stream = compat.Runs.create(thread.id, assistant_id=assistant.id, stream=True)
    seen = [next(stream)[0], next(stream)[0], next(stream)[0]]
    assert seen == ["thread.run.created", "thread.run.queued", "thread.run.in_progress"]
    (run,) = compat.Runs.list(thread.id).data
    compat.Runs.cancel(run.id, thread_id=thread.id)
    rest = [event for event, _ in stream]
    assert rest[-1] == "thread.run.cancelled"
    assert "thread.message.delta" not in rest
    assert compat.Runs.retrieve(run.id, thread_id=thread.id).status == "cancelled"


def test_a_cancel_after_the_end_leaves_the_run_completed(responses: Emulator) -> None:
    assistant, thread = setup("Hi")
    events = [
        event for event, _ in compat.Runs.create(thread.id, assistant_id=assistant.id, stream=True)
    ]
    assert events[-1] == "thread.run.completed"
    (run,) = compat.Runs.list(thread.id).data
    reply = compat.Runs.cancel(run.id, thread_id=thread.id)
    assert (reply.status_code, reply.code) == (400, "InvalidParameter")
    assert reply.message == "Cannot cancel a run with status 'completed'."
    assert compat.Runs.retrieve(run.id, thread_id=thread.id).status == "completed"


# -- nothing the user wrote is lost -----------------------------------------------------------


def test_a_message_created_during_a_run_reaches_the_next_request_once(responses: Emulator) -> None:
    compat.configure(history="chain")
    responses.queue(Scenario.text("First answer " * 30).paced(0.005))
    assistant, thread = setup("first question")
    stream = compat.Runs.create(thread.id, assistant_id=assistant.id, stream=True)
    events_until_delta(stream)
    compat.Messages.create(thread.id, content="written while the run streamed")
    assert [e for e, _ in stream][-1] == "thread.run.completed"
    for question in ("third question", "fourth question"):
        compat.Messages.create(thread.id, content=question)
        run = compat.Runs.create(thread.id, assistant_id=assistant.id)
        assert compat.Runs.wait(run.id, thread_id=thread.id).status == "completed"
    first, second, third = bodies(responses)
    assert user_texts(first) == ["first question"]
    assert "previous_response_id" in second
    assert user_texts(second) == ["written while the run streamed", "third question"]
    assert user_texts(third) == ["fourth question"]
    assert all(i.get("role") != "assistant" for i in second["input"] + third["input"])


@pytest.mark.parametrize("ending", ["cancelled", "failed", "expired"])
def test_a_question_whose_run_did_not_complete_is_asked_again_once(
    responses: Emulator, ending: str
) -> None:
    compat.configure(history="chain")
    assistant, thread = setup("first question")
    run = compat.Runs.create(thread.id, assistant_id=assistant.id)
    compat.Runs.wait(run.id, thread_id=thread.id)
    chained_to = _thread_meta(thread.id)["last_response_id"]
    compat.Messages.create(thread.id, content="second question")
    if ending == "failed":
        responses.queue(Scenario.failure("InternalError", "boom", after_text="Half"))
        stream = compat.Runs.create(thread.id, assistant_id=assistant.id, stream=True)
        assert [e for e, _ in stream][-1] == "thread.run.failed"
    else:
        responses.queue(stalled())
        stream = compat.Runs.create(thread.id, assistant_id=assistant.id, stream=True)
        events_until_delta(stream)
        (active, _) = compat.Runs.list(thread.id).data
        if ending == "cancelled":
            compat.Runs.cancel(active.id, thread_id=thread.id)
        else:
            _age_lease(active.id)
            assert compat.Runs.retrieve(active.id, thread_id=thread.id).status == "expired"
        stream.close()
    run = compat.Runs.create(thread.id, assistant_id=assistant.id)
    assert compat.Runs.wait(run.id, thread_id=thread.id).status == "completed"
    _, _, retry = bodies(responses)
    assert user_texts(retry) == ["second question"]
    assert retry["previous_response_id"] == chained_to


def test_a_cancelled_requires_action_run_does_not_poison_the_chain(responses: Emulator) -> None:
    compat.configure(history="chain")
    assistant, thread = setup("warm up", tools=[TOOL])
    run = compat.Runs.create(thread.id, assistant_id=assistant.id)
    compat.Runs.wait(run.id, thread_id=thread.id)
    responses.queue(Scenario.function_call("lookup", {"key": "a"}))
    compat.Messages.create(thread.id, content="look it up")
    run = compat.Runs.create(thread.id, assistant_id=assistant.id)
    assert compat.Runs.wait(run.id, thread_id=thread.id).status == "requires_action"
    compat.Runs.cancel(run.id, thread_id=thread.id)
    assert compat.Runs.retrieve(run.id, thread_id=thread.id).status == "cancelled"
    (step,) = compat.Steps.list(run.id, thread_id=thread.id).data
    assert step.status == "cancelled"
    compat.Messages.create(thread.id, content="never mind")
    run = compat.Runs.create(thread.id, assistant_id=assistant.id)
    finished = compat.Runs.wait(run.id, thread_id=thread.id)
    assert finished.status == "completed", finished.last_error
    last = bodies(responses)[-1]
    assert user_texts(last) == ["look it up", "never mind"]


def test_a_requires_action_run_expires_at_its_expires_at(responses: Emulator) -> None:
    responses.queue(Scenario.function_call("lookup", {"key": "a"}))
    assistant, thread = setup("look it up", tools=[TOOL])
    run = compat.Runs.create(thread.id, assistant_id=assistant.id)
    waiting = compat.Runs.wait(run.id, thread_id=thread.id)
    assert waiting.status == "requires_action"
    assert waiting.expires_at > waiting.created_at
    _store().update(  # drive the clock by hand: the deadline has passed
        "run", run.id, lambda r: Record(dict(r.data, expires_at=1), r.meta)
    )
    expired = compat.Runs.retrieve(run.id, thread_id=thread.id)
    assert (expired.status, expired.last_error["code"]) == ("expired", "expired")
    again = compat.Runs.create(thread.id, assistant_id=assistant.id)
    assert compat.Runs.wait(again.id, thread_id=thread.id).status == "completed"


def _waiting_for_a_tool_output(responses: Emulator) -> tuple[Any, Any, Any]:
    """A run whose model called one function, waiting in ``requires_action``:
    (the thread, the run, the tool call)."""
    responses.queue(Scenario.function_call("lookup", {"key": "a"}, then="Done."))
    assistant, thread = setup("look it up", tools=[TOOL])
    run = compat.Runs.create(thread.id, assistant_id=assistant.id)
    waiting = compat.Runs.wait(run.id, thread_id=thread.id)
    (call,) = waiting.required_action.submit_tool_outputs.tool_calls
    return thread, run, call


# -- tool outputs exactly once ------------------------------------------------------------------


def test_of_concurrent_submits_exactly_one_continues(responses: Emulator) -> None:
    thread, run, call = _waiting_for_a_tool_output(responses)
    barrier = threading.Barrier(8)
    replies: list[Any] = []

    def submit() -> None:
        barrier.wait(10)
        replies.append(
            compat.Runs.submit_tool_outputs(
                run.id, thread_id=thread.id, tool_outputs=[{"tool_call_id": call.id, "output": "A"}]
            )
        )

    workers = [threading.Thread(target=submit) for _ in range(8)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(30)
    assert sorted(r.status_code for r in replies) == [200] + [400] * 7
    assert compat.Runs.wait(run.id, thread_id=thread.id).status == "completed"
    outputs = [
        i for b in bodies(responses) for i in b["input"] if i.get("type") == "function_call_output"
    ]
    assert outputs == [{"type": "function_call_output", "call_id": call.id, "output": "A"}]


def test_duplicate_tool_call_ids_in_one_submit_are_refused(responses: Emulator) -> None:
    thread, run, call = _waiting_for_a_tool_output(responses)
    reply = compat.Runs.submit_tool_outputs(
        run.id,
        thread_id=thread.id,
        tool_outputs=[
            {"tool_call_id": call.id, "output": "A"},
            {"tool_call_id": call.id, "output": "B"},
        ],
    )
    assert (reply.status_code, reply.code) == (400, "InvalidParameter")
    assert reply.message == f"Tool call '{call.id}' has more than one output."
    assert compat.Runs.retrieve(run.id, thread_id=thread.id).status == "requires_action"


def test_a_submit_whose_request_fails_gives_the_run_back(responses: Emulator) -> None:
    thread, run, call = _waiting_for_a_tool_output(responses)
    outputs = [{"tool_call_id": call.id, "output": "A"}]
    failed = compat.Runs.submit_tool_outputs(
        run.id, thread_id=thread.id, tool_outputs=outputs, api_key="not-the-key"
    )
    assert (failed.status_code, failed.code) == (401, "InvalidApiKey")
    again = compat.Runs.retrieve(run.id, thread_id=thread.id)
    assert again.status == "requires_action"
    assert again.required_action.submit_tool_outputs.tool_calls[0].id == call.id
    compat.Runs.submit_tool_outputs(run.id, thread_id=thread.id, tool_outputs=outputs)
    assert compat.Runs.wait(run.id, thread_id=thread.id).status == "completed"


class HistoryBlipStore(MemoryStore):
    """A memory store whose next listing of messages fails (a blip while history is read)."""

    fail_next_list = False

    def list(self, kind: Any, **kwargs: Any) -> Any:
        if kind == "message" and self.fail_next_list:
            self.fail_next_list = False
            raise StoreError("database is locked (injected)")
        return super().list(kind, **kwargs)


def test_a_submit_whose_history_cannot_be_read_gives_the_run_back(responses: Emulator) -> None:
    blip = HistoryBlipStore()
    _install_store("history-blip-1", blip)
    compat.configure(store="history-blip-1", history="replay")  # a continuation reads history
    thread, run, call = _waiting_for_a_tool_output(responses)
    outputs = [{"tool_call_id": call.id, "output": "A"}]
    blip.fail_next_list = True
    failed = compat.Runs.submit_tool_outputs(run.id, thread_id=thread.id, tool_outputs=outputs)
    assert (failed.status_code, failed.code) == (500, "InternalError")
    again = compat.Runs.retrieve(run.id, thread_id=thread.id)
    assert again.status == "requires_action"  # not left queued for the lease to expire
    assert again.required_action.submit_tool_outputs.tool_calls[0].id == call.id
    compat.Runs.submit_tool_outputs(run.id, thread_id=thread.id, tool_outputs=outputs)
    assert compat.Runs.wait(run.id, thread_id=thread.id).status == "completed"


# -- what the driver does not own -------------------------------------------------------------


def test_metadata_updated_during_a_run_survives_its_end(responses: Emulator) -> None:
    responses.queue(Scenario.text("Some answer " * 20).paced(0.005))
    assistant, thread = setup("Hi")
    stream = compat.Runs.create(thread.id, assistant_id=assistant.id, stream=True)
    events_until_delta(stream)
    (run,) = compat.Runs.list(thread.id).data
    compat.Runs.update(run.id, thread_id=thread.id, metadata={"ticket": "42"})
    assert [e for e, _ in stream][-1] == "thread.run.completed"
    done = compat.Runs.retrieve(run.id, thread_id=thread.id)
    assert (done.status, done.metadata) == ("completed", {"ticket": "42"})


def test_deleting_a_thread_during_a_run_cancels_it_and_leaves_nothing(responses: Emulator) -> None:
    responses.queue(stalled())
    assistant, thread = setup("Hi")
    stream = compat.Runs.create(thread.id, assistant_id=assistant.id, stream=True)
    events_until_delta(stream)
    (run,) = compat.Runs.list(thread.id).data
    assert compat.Threads.delete(thread.id).status_code == 200
    assert [e for e, _ in stream][-1] == "thread.run.cancelled"
    assert compat.Threads.retrieve(thread.id).status_code == 400
    assert compat.Runs.retrieve(run.id, thread_id=thread.id).status_code == 400
    store = _store()
    for kind in ("message", "run"):
        assert store.list(kind, parent_id=thread.id, limit=100).data == [], kind
    assert store.list("step", parent_id=run.id, limit=100).data == []


# -- store failures ----------------------------------------------------------------------------


class FlakyStore(MemoryStore):
    """A memory store whose transactions fail while ``failing`` is set (a full disk, say)."""

    failing = False

    def transaction(self) -> Any:
        if self.failing:
            raise StoreError("disk I/O error (injected)")
        return super().transaction()


def test_a_store_error_mid_run_fails_the_run_and_frees_the_thread(responses: Emulator) -> None:
    flaky = FlakyStore()
    _install_store("flaky-1", flaky)
    compat.configure(store="flaky-1", lease_seconds=0.3)
    responses.queue(Scenario.text("word " * 40).paced(0.005))
    assistant, thread = setup("Hi")
    stream = compat.Runs.create(thread.id, assistant_id=assistant.id, stream=True)
    events_until_delta(stream)
    flaky.failing = True
    events = [(e, d) for e, d in stream]
    assert events[-1][0] == "thread.run.failed"
    assert events[-1][1].last_error["code"] == "store_error"
    flaky.failing = False
    (run,) = compat.Runs.list(thread.id).data
    # The final write failed too, so the run is reaped once its (short) lease lapses.
    wait_for(
        lambda: compat.Runs.retrieve(run.id, thread_id=thread.id).status == "expired",
        "the run to be reaped",
    )
    again = compat.Runs.create(thread.id, assistant_id=assistant.id)
    assert compat.Runs.wait(again.id, thread_id=thread.id).status == "completed"


class BlipStore(MemoryStore):
    """A memory store whose next ``failures`` transactions fail, then work again (a blip)."""

    failures = 0

    def transaction(self) -> Any:
        if self.failures:
            self.failures -= 1
            raise StoreError("database is locked (injected)")
        return super().transaction()


def test_a_store_error_mid_run_is_stored_failed_when_the_store_takes_the_end(
    responses: Emulator,
) -> None:
    blip = BlipStore()
    _install_store("blip-1", blip)
    compat.configure(store="blip-1")  # the default lease: nothing is reaped during this test
    responses.queue(Scenario.of(Text("First part."), Text("Second part.")).paced(0.005))
    assistant, thread = setup("Hi")
    stream = compat.Runs.create(thread.id, assistant_id=assistant.id, stream=True)
    events_until_delta(stream)
    blip.failures = 1  # the write of the second message's creation fails; the end's does not
    events = [(e, d) for e, d in stream]
    assert events[-1][0] == "thread.run.failed"
    assert events[-1][1].last_error["code"] == "store_error"
    (run,) = compat.Runs.list(thread.id).data
    assert (run.status, run.last_error["code"]) == ("failed", "store_error")
    # The end was stored, so the thread is free at once (no lease has to lapse).
    again = compat.Runs.create(thread.id, assistant_id=assistant.id)
    assert again.status_code == 200, again
    assert compat.Runs.wait(again.id, thread_id=thread.id).status == "completed"


# -- helpers -----------------------------------------------------------------------------------


def _store() -> Any:
    backend, opts = compat._facade._options(None, None, {})
    return backend.store(opts)


def _install_store(name: str, store: Any) -> None:
    backend, _ = compat._facade._options(None, None, {})
    backend._stores[name] = store


def _age_lease(run_id: str) -> None:
    """Drive the lease clock by hand: the run's lease ran out long ago."""

    def age(record: Record) -> Record:
        return Record(record.data, dict(record.meta, lease={"owner": "gone", "until": 1}))

    _store().update("run", run_id, age)
    # This process still drives the run: its keeper sees the run taken and stops the stream.


def _thread_meta(thread_id: str) -> dict[str, Any]:
    record = _store().get("thread", thread_id)
    assert record is not None
    return dict(record.meta)


def test_lifecycle_statuses_cover_what_the_api_reports() -> None:
    assert lifecycle.ACTIVE | lifecycle.TERMINAL == lifecycle.STATUSES


def test_an_assistant_with_a_tool_the_responses_api_lacks_is_refused_at_run_time(
    responses: Emulator,
) -> None:
    # An import or a shadow mirror can store such an assistant; Assistants.create refuses it.
    assistant, thread = setup("Draw a cat.")
    _store().update(
        "assistant",
        assistant.id,
        lambda r: Record(dict(r.data, tools=[{"type": "wanx"}]), r.meta),
    )
    reply = compat.Runs.create(thread.id, assistant_id=assistant.id)
    assert (reply.status_code, reply.code) == (400, "UnsupportedByResponsesAPI")
    (item,) = list(compat.Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    assert item[0] is None and item[1]["code"] == "UnsupportedByResponsesAPI"
    assert compat.Runs.list(thread.id).data == []
