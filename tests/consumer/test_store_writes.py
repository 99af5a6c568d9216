"""What a streamed run writes, and when: never ahead of what the stream has said, and few times.

A legacy program may read an object back as soon as an event names it (``Messages.retrieve`` on
``thread.message.completed``); the store must already say so. On the responses backend compat
holds a batch that creates nothing (the run began, a message finished) until the next one and
stores both at once, so the event waits for its write, never the other way round.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest

import compat
from compat.testing import Emulator, Scenario
from tests.pg import consumer_store, fresh_schema_uri, pg_server_uri

# The emulator's Assistant API stores a run's outcome before it streams it, so only compat's
# own store is checked here.
pytestmark = pytest.mark.skipif(
    os.environ.get("COMPAT_BACKEND", "responses") != "responses",
    reason="responses backend only",
)


def _check_stored(api: Any, thread_id: str, event: str, data: Any, seen: list[str]) -> None:
    """Read back what ``event`` says, as a legacy program would, inside the loop."""
    if event.startswith("thread.run.") and not event.startswith("thread.run.step"):
        run = api.Runs.retrieve(data.id, thread_id=thread_id)
        seen.append(f"{event}: run {run.status}")
    elif event in ("thread.message.created", "thread.message.completed"):
        message = api.Messages.retrieve(data.id, thread_id=thread_id)
        text = message.content[0].text.value if message.content else ""
        seen.append(f"{event}: message {message.status} {text!r}")
    elif event in ("thread.run.step.created", "thread.run.step.completed"):
        step = api.Steps.retrieve(data.id, thread_id=thread_id, run_id=data.run_id)
        seen.append(f"{event}: step {step.status}")


@pytest.fixture
def responses(compat_emulator: Emulator) -> Iterator[Emulator]:
    compat.configure(backend="responses", store=consumer_store())
    yield compat_emulator
    compat.configure(reset=True)


def test_every_event_is_emitted_after_the_store_has_it(responses: Emulator) -> None:
    responses.queue(Scenario.text("Hello there"))
    assistant = compat.Assistants.create(model="qwen-plus")
    thread = compat.Threads.create(messages=[{"role": "user", "content": "Hi"}])
    seen: list[str] = []
    for event, data in compat.Runs.create(thread.id, assistant_id=assistant.id, stream=True):
        if event is not None and event != "thread.message.delta":
            _check_stored(compat, thread.id, event, data, seen)
    assert seen == [
        "thread.run.created: run queued",
        "thread.run.queued: run queued",
        "thread.run.in_progress: run in_progress",
        "thread.run.step.created: step in_progress",
        "thread.message.created: message in_progress ''",
        "thread.message.completed: message completed 'Hello there'",
        "thread.run.step.completed: step completed",
        "thread.run.completed: run completed",
    ]


@pytest.mark.postgres
def test_a_streamed_run_commits_three_times(compat_emulator: Emulator) -> None:
    """The claim; the start with the first message and step; the end with the message's
    completion. (With the lease renewed far less often than the run lasts.)"""
    from compat.store import postgres

    with fresh_schema_uri(pg_server_uri(), f"w_{os.getpid()}") as uri:
        compat.configure(backend="responses", store=uri, lease_seconds=600)
        try:
            assistant = compat.Assistants.create(model="qwen-plus")
            thread = compat.Threads.create(messages=[{"role": "user", "content": "Hi"}])
            (store,) = [s for s in postgres._open_stores if s.uri == uri]
            before = store.commits
            events = [
                e for e, _ in compat.Runs.create(thread.id, assistant_id=assistant.id, stream=True)
            ]
            assert events[-1] == "thread.run.completed"
            assert store.commits - before == 3
        finally:
            compat.configure(reset=True)
