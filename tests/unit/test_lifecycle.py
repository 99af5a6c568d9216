"""The run lifecycle's table (the store applying its moves: tests/store/test_transactions.py)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from compat import lifecycle

ALL_TRIGGERS = (
    "start",
    "require_action",
    "complete",
    "fail",
    "cancel",
    "cancelled",
    "submit",
    "unsubmit",
    "expire",
)


def _run(status: str = "queued", **fields: Any) -> dict[str, Any]:
    return {
        "id": "run_1",
        "object": "thread.run",
        "created_at": 1_000,
        "thread_id": "thread_1",
        "status": status,
        "metadata": {},
        "started_at": None,
        "completed_at": None,
        "failed_at": None,
        "cancelled_at": None,
        "expires_at": None,
        "required_action": None,
        **fields,
    }


# -- the pure table ----------------------------------------------------------------------------


def test_terminal_statuses_have_no_way_out() -> None:
    for status, trigger in itertools.product(sorted(lifecycle.TERMINAL), ALL_TRIGGERS):
        with pytest.raises(lifecycle.IllegalMove):
            lifecycle.move(status, trigger)


def test_the_table_knows_every_status_and_moves_only_between_known_ones() -> None:
    assert {"cancelled", "failed", "completed", "expired"} == lifecycle.TERMINAL
    for status, trigger in itertools.product(sorted(lifecycle.STATUSES), ALL_TRIGGERS):
        try:
            target = lifecycle.move(status, trigger)
        except lifecycle.IllegalMove:
            continue
        assert target in lifecycle.STATUSES


@pytest.mark.parametrize(
    ("status", "trigger", "target"),
    [
        ("queued", "start", "in_progress"),
        ("in_progress", "complete", "completed"),
        ("in_progress", "require_action", "requires_action"),
        ("in_progress", "cancel", "cancelling"),
        ("requires_action", "cancel", "cancelled"),  # no driver: cancelled at once
        ("requires_action", "submit", "queued"),
        ("queued", "unsubmit", "requires_action"),
        ("cancelling", "cancelled", "cancelled"),
        ("cancelling", "complete", "completed"),  # the cancel lost the race with the end
        ("cancelling", "unsubmit", "cancelled"),
        ("in_progress", "expire", "expired"),
        ("requires_action", "expire", "expired"),
    ],
)
def test_moves(status: str, trigger: str, target: str) -> None:
    assert lifecycle.move(status, trigger) == target


@pytest.mark.parametrize(
    ("status", "trigger"),
    [
        ("requires_action", "start"),
        ("in_progress", "submit"),  # a second submit after the first claimed the run
        ("requires_action", "complete"),
        ("completed", "cancel"),  # a cancel after the end
        ("cancelled", "complete"),  # a driver finishing after the cancel stuck
        ("expired", "complete"),  # a driver finishing after it was reaped
    ],
)
def test_illegal_moves(status: str, trigger: str) -> None:
    with pytest.raises(lifecycle.IllegalMove):
        lifecycle.move(status, trigger)


def test_moved_fields_stamp_the_time_once_and_clear_required_action() -> None:
    run = _run("in_progress", started_at=5, required_action={"type": "submit_tool_outputs"})
    assert lifecycle.moved_fields(run, "complete", 9) == {
        "status": "completed",
        "completed_at": 9,
        "required_action": None,
    }
    assert lifecycle.moved_fields(_run("queued", started_at=5), "start", 9) == {
        "status": "in_progress",
        "required_action": None,
    }
