"""A long thread sends exactly its history, turn after turn, in both ``COMPAT_HISTORY`` modes.

What each Responses request carried is read from the emulator's record of requests, and what
the model saw (the request plus its ``previous_response_id`` chain) from its conversations.
The thread outgrows one store page (100 messages), and some turns add two questions, so any
shortcut in building the history (paging, cursors, caching) has to keep this exact.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

import compat
from compat.testing import Emulator
from tests.pg import consumer_store

pytestmark = pytest.mark.skipif(
    os.environ.get("COMPAT_BACKEND", "responses") != "responses",
    reason="history modes are the responses backend's",
)

TURNS = 50
#: turns that add two questions before their run (a chained request then carries both)
DOUBLE = frozenset(range(5, TURNS + 1, 5))


def question(turn: int, part: int = 0) -> str:
    return f"Question {turn}.{part}: tell me more about point {turn}, {'again ' * part}please."


def answer(text: str) -> str:
    """The emulator's default reply to a last user message ``text``."""
    return f'You said: "{text}". This is the emulator\'s deterministic answer.'


def long_thread(api: Any, emu: Emulator) -> list[tuple[dict[str, Any], list[tuple[str, str]]]]:
    """Drive one thread for ``TURNS`` turns; per turn, the body sent and the thread it had.

    At every turn the model must have seen exactly the thread so far (through the chain, or
    in the request itself), with the assistant's instructions.
    """
    assistant = api.Assistants.create(model="qwen-plus", instructions="Be brief.")
    thread = api.Threads.create()
    transcript: list[tuple[str, str]] = []
    sent: list[tuple[dict[str, Any], list[tuple[str, str]]]] = []
    for turn in range(1, TURNS + 1):
        asked = [question(turn, part) for part in range(2 if turn in DOUBLE else 1)]
        for text in asked:
            api.Messages.create(thread.id, content=text)
            transcript.append(("user", text))
        events = [e for e, _ in api.Runs.create(thread.id, assistant_id=assistant.id, stream=True)]
        assert events[-1] == "thread.run.completed", (turn, events)
        seen = emu.conversations[-1]
        assert list(seen.messages) == transcript, turn
        assert seen.instructions == "Be brief."
        bodies = [r.json for r in emu.requests if r.path.endswith("/responses")]
        assert len(bodies) == turn
        sent.append((bodies[-1], list(transcript)))
        transcript.append(("assistant", answer(asked[-1])))
    page = api.Messages.list(thread.id, limit=100, order="asc")
    rest = api.Messages.list(thread.id, limit=100, order="asc", after=page.last_id)
    stored = [(m.role, m.content[0].text.value) for m in [*page.data, *rest.data]]
    assert stored == transcript
    assert len(transcript) - 1 > 100  # the last run's history spans two store pages
    return sent


#: the suite's store (memory, or PostgreSQL in its session) through both facades, and a SQLite
#: file (its own paging) through the sync one
COMBINATIONS = pytest.mark.parametrize(
    ("facade", "store"),
    [("sync", "suite"), ("aio", "suite"), ("sync", "sqlite")],
    indirect=["facade"],
)


def store_spec(store: str, tmp_path: Path) -> str:
    return consumer_store() if store == "suite" else str(tmp_path / "compat.sqlite3")


@COMBINATIONS
def test_a_long_replayed_thread_sends_the_whole_thread_every_turn(
    compat_emulator: Emulator, facade: Any, store: str, tmp_path: Path
) -> None:
    compat.configure(backend="responses", store=store_spec(store, tmp_path), history="replay")
    try:
        sent = long_thread(facade, compat_emulator)
    finally:
        compat.configure(reset=True)
    for body, thread in sent:
        assert "previous_response_id" not in body
        assert body["instructions"] == "Be brief."
        assert body["input"] == [{"role": role, "content": text} for role, text in thread]


@COMBINATIONS
def test_a_long_chained_thread_sends_only_what_is_new(
    compat_emulator: Emulator, facade: Any, store: str, tmp_path: Path
) -> None:
    compat.configure(backend="responses", store=store_spec(store, tmp_path), history="chain")
    try:
        sent = long_thread(facade, compat_emulator)
    finally:
        compat.configure(reset=True)
    assert "previous_response_id" not in sent[0][0]
    chained = [body.get("previous_response_id") for body, _ in sent[1:]]
    assert all(chained) and len(set(chained)) == len(chained)
    for turn, (body, _) in enumerate(sent, start=1):
        assert body["instructions"] == "Be brief."
        asked = [question(turn, part) for part in range(2 if turn in DOUBLE else 1)]
        assert body["input"] == [{"role": "user", "content": text} for text in asked]
