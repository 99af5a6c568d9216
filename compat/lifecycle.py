"""The run lifecycle: a run's statuses and the legal moves between them, in one table.

A protocol core in the manner of ``translate.py``: no I/O, no clock, no store. The store makes a
move stick (``compat.store.transition`` applies it as one compare-and-set transaction); the run
drivers only ask for moves. Statuses are the Assistant API's wire strings.

Who asks for which move:

* ``start``: the driver saw the response begin (queued → in_progress).
* ``complete`` / ``fail`` / ``require_action``: the driver's final write of a response.
* ``cancel``: ``Runs.cancel`` or ``Threads.delete``, from any thread, process or host. An active
  run goes to ``cancelling`` and its driver finishes it; a ``requires_action`` run has no driver,
  so it goes straight to ``cancelled``.
* ``cancelled``: the driver confirms a cancel (or the consumer closed the stream).
* ``submit``: ``Runs.submit_tool_outputs`` claims the run for its continuation;
  ``unsubmit`` gives it back if the continuation's request fails before its stream starts.
* ``expire``: a reader found the run's lease lapsed (its driver is gone), or a
  ``requires_action`` run past its ``expires_at``.

A ``cancelling`` run whose response ended before its driver noticed the cancel keeps that end
(``complete``, ``fail``, ``require_action``): the cancel lost the race, as with the Assistant API.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ACTIVE",
    "DRIVEN",
    "STATUSES",
    "TERMINAL",
    "IllegalMove",
    "move",
    "moved_fields",
]

#: Every status a stored run can have.
STATUSES = frozenset(
    {
        "queued",
        "in_progress",
        "requires_action",
        "cancelling",
        "cancelled",
        "failed",
        "completed",
        "expired",
    }
)
#: The thread is busy: at most one run per thread is in one of these.
ACTIVE = frozenset({"queued", "in_progress", "requires_action", "cancelling"})
#: A driver holds a lease on the run (``requires_action`` waits for the user instead).
DRIVEN = frozenset({"queued", "in_progress", "cancelling"})
#: No move leaves these.
TERMINAL = STATUSES - ACTIVE

# Rule 1: this table is the only place that says which moves are legal. Every change of a
#   stored run's status goes through ``move``, applied by the store in one transaction that
#   re-reads the run first; a move not listed here is refused and the stored run is unchanged.
# Rule 2: nothing here does I/O or reads a clock: callers pass ``now`` in.
_TRANSITIONS: dict[tuple[str, str], str] = {
    ("queued", "start"): "in_progress",
    ("in_progress", "start"): "in_progress",  # a continuation's response begins
    **{
        (status, trigger): target
        for status in ("queued", "in_progress")
        for trigger, target in (
            ("require_action", "requires_action"),
            ("complete", "completed"),
            ("fail", "failed"),
            ("cancel", "cancelling"),
            ("cancelled", "cancelled"),
            ("expire", "expired"),
        )
    },
    ("queued", "unsubmit"): "requires_action",
    ("cancelling", "cancel"): "cancelling",  # a second cancel changes nothing
    ("cancelling", "cancelled"): "cancelled",
    ("cancelling", "complete"): "completed",
    ("cancelling", "fail"): "failed",
    ("cancelling", "require_action"): "requires_action",
    ("cancelling", "unsubmit"): "cancelled",  # nobody drives it now: the cancel completes
    ("cancelling", "expire"): "expired",
    ("requires_action", "submit"): "queued",
    ("requires_action", "cancel"): "cancelled",
    ("requires_action", "expire"): "expired",
}

#: The timestamp field a move into each status sets.
_STAMPS = {
    "in_progress": "started_at",
    "completed": "completed_at",
    "failed": "failed_at",
    "cancelled": "cancelled_at",
    "expired": "expires_at",
}


class IllegalMove(Exception):
    """A move the table does not allow from the run's stored status."""

    def __init__(self, status: str, trigger: str) -> None:
        super().__init__(f"a run in status {status!r} cannot {trigger!r}")
        self.status = status
        self.trigger = trigger


def move(status: str, trigger: str) -> str:
    """The status ``trigger`` leads to from ``status``, or raise ``IllegalMove``."""
    target = _TRANSITIONS.get((status, trigger))
    if target is None:
        raise IllegalMove(status, trigger)
    return target


def moved_fields(run: dict[str, Any], trigger: str, now: int) -> dict[str, Any]:
    """The fields a move changes on ``run`` (status, its timestamp, what it clears).

    A timestamp the run already has is kept (the driver's own, as its events showed it).
    """
    target = move(run["status"], trigger)
    changes: dict[str, Any] = {"status": target}
    stamp = _STAMPS.get(target)
    if stamp is not None and run.get(stamp) is None:
        changes[stamp] = now
    if target != "requires_action":
        changes["required_action"] = None
    return changes
