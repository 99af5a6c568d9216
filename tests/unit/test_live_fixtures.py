"""Every Responses stream recorded by ``nox -s live`` replays through the translator cleanly.

Passes trivially while tests/fixtures/live/ holds no recordings; each one recorded is then checked:
no exception, and exactly one terminal Assistant event.
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import pytest

from compat._objects import run_object
from compat.backends.responses.translate import ResponsesTranslator

LIVE = Path(__file__).resolve().parents[1] / "fixtures" / "live"
TERMINAL = frozenset(
    f"thread.run.{status}" for status in ("completed", "failed", "cancelled", "requires_action")
)


def replay(path: Path) -> list[str]:
    """The Assistant event names a recorded stream translates to."""
    counter, clock = itertools.count(1), itertools.count(1000)
    run = run_object("run_live", 900, "thread_live", "asst_live", {"model": "qwen-plus"})
    translator = ResponsesTranslator(
        run, new_id=lambda p: f"{p}_{next(counter)}", clock=lambda: next(clock)
    )
    names: list[str] = []
    for line in path.read_text("utf-8").splitlines():
        if line.strip():
            names += [event for event, _ in translator.feed(json.loads(line))]
    names += [event for event, _ in translator.finish()]
    return names


@pytest.mark.parametrize("path", sorted(LIVE.glob("*.jsonl")), ids=lambda p: p.name)
def test_a_recorded_stream_translates_to_one_terminal_event(path: Path) -> None:
    names = replay(path)
    assert [name for name in names if name in TERMINAL] == [names[-1]], names


def test_replay_sees_what_the_recording_proxy_writes(tmp_path: Path) -> None:
    """The replay itself can fail: a stream cut before its end is one failed run."""
    path = tmp_path / "cut.jsonl"
    path.write_text(json.dumps({"type": "response.created", "response": {"id": "r"}}) + "\n")
    assert replay(path)[-1] == "thread.run.failed"
