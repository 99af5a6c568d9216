"""When the responses backend writes an assistant message: created, then once when it ends.

A run stores its message when the message is created (empty, ``in_progress``: a crash leaves
no step pointing at nothing, and the reaper can mark it incomplete) and once more when it
completes or ends incomplete, with its whole text; never per delta. (A run longer than a
third of its lease also checkpoints the text so far with each lease renewal; these tests hold
a lease far longer than they run, so no renewal happens.) Writes are counted by a memory
store that records each message row it is given, through every public way of writing.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

import compat
from compat.store import MemoryStore
from compat.testing import CodeInterpreter, Emulator, Failure, Scenario, Text

pytestmark = pytest.mark.skipif(
    os.environ.get("COMPAT_BACKEND", "responses") != "responses",
    reason="the responses backend's store",
)

#: (message id, status, text) of each assistant message row written, in order.
Writes = list[tuple[str, str, str]]


class CountingStore(MemoryStore):
    """A memory store that records every assistant message row written to it."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: Writes = []

    def put_many(self, items: Any) -> None:
        items = list(items)
        for kind, data, _ in items:
            self._record(kind, data)
        super().put_many(items)

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        with super().transaction() as tx:
            yield _CountingTx(tx, self)

    def _record(self, kind: str, data: dict[str, Any]) -> None:
        if kind == "message" and data.get("role") == "assistant":
            content = data.get("content") or [{"text": {"value": ""}}]
            self.writes.append((data["id"], data["status"], content[0]["text"]["value"]))


class _CountingTx:
    def __init__(self, tx: Any, store: CountingStore) -> None:
        self._tx = tx
        self._store = store

    def put(self, kind: str, data: dict[str, Any], meta: dict[str, Any] | None = None) -> None:
        self._store._record(kind, data)
        self._tx.put(kind, data, meta)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)


@pytest.fixture
def store(compat_emulator: Emulator) -> Iterator[CountingStore]:
    counting = CountingStore()
    backend, _ = compat._facade._options(None, None, {})
    backend._stores["counting"] = counting
    # A lease renewed every 20 minutes: no checkpoint during a test.
    compat.configure(backend="responses", store="counting", lease_seconds=3600)
    yield counting
    compat.configure(reset=True)
    backend._stores.pop("counting", None)


def _start(facade: Any, compat_emulator: Emulator, scenario: Scenario) -> tuple[Any, Any]:
    compat_emulator.queue(scenario)
    assistant = facade.Assistants.create(model="qwen-plus")
    thread = facade.Threads.create(messages=[{"role": "user", "content": "Count."}])
    return assistant, thread


PIECES = [f"数{i}\uff0c" for i in range(300)]
TEXT = "".join(PIECES)


def test_a_streamed_message_is_written_when_created_and_once_when_complete(
    store: CountingStore, compat_emulator: Emulator, facade: Any
) -> None:
    assistant, thread = _start(facade, compat_emulator, Scenario.text(TEXT, chunks=PIECES))
    stream = facade.Runs.create(thread.id, assistant_id=assistant.id, stream=True)
    events = [event for event, _ in stream]
    assert events.count("thread.message.delta") == len(PIECES)
    (message_id,) = {message_id for message_id, _, _ in store.writes}
    assert store.writes == [(message_id, "in_progress", ""), (message_id, "completed", TEXT)]


def test_a_background_run_writes_its_message_the_same_way(
    store: CountingStore, compat_emulator: Emulator, facade: Any
) -> None:
    assistant, thread = _start(facade, compat_emulator, Scenario.text(TEXT, chunks=PIECES))
    run = facade.Runs.create(thread.id, assistant_id=assistant.id)
    assert facade.Runs.wait(run.id, thread_id=thread.id).status == "completed"
    (message_id,) = {message_id for message_id, _, _ in store.writes}
    assert store.writes == [(message_id, "in_progress", ""), (message_id, "completed", TEXT)]


def test_each_message_of_a_run_is_written_once_when_it_ends(
    store: CountingStore, compat_emulator: Emulator, facade: Any
) -> None:
    scenario = Scenario.of(Text("before"), CodeInterpreter("print(1)", "1"), Text("after"))
    assistant, thread = _start(facade, compat_emulator, scenario)
    facade.Assistants.update(assistant.id, tools=[{"type": "code_interpreter"}])
    list(facade.Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    first, second = dict.fromkeys(message_id for message_id, _, _ in store.writes)
    assert store.writes == [
        (first, "in_progress", ""),
        (first, "completed", "before"),
        (second, "in_progress", ""),
        (second, "completed", "after"),
    ]


def test_a_message_cut_off_by_a_failure_is_written_once_as_incomplete(
    store: CountingStore, compat_emulator: Emulator, facade: Any
) -> None:
    scenario = Scenario.of(Text(TEXT, PIECES), Failure("InternalError", "upstream broke"))
    assistant, thread = _start(facade, compat_emulator, scenario)
    events = [
        event for event, _ in facade.Runs.create(thread.id, assistant_id=assistant.id, stream=True)
    ]
    assert events[-1] == "thread.run.failed"
    (message_id,) = {message_id for message_id, _, _ in store.writes}
    assert store.writes == [(message_id, "in_progress", ""), (message_id, "incomplete", TEXT)]
