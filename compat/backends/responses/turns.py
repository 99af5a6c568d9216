"""Turns on the event loop: work that holds the loop for a while takes its share of each pass.

``compat.aio`` does some work on the loop itself: a call on the in-memory store, a run's start
(its request's body, the connection) and its stored steps. Each takes well under a millisecond,
but work that becomes ready together runs together: 32 runs started by one ``gather`` would
hold the loop for 32 of them before a timer or a socket got its turn. Before such work a task
takes a turn (``await take_turn()``): a pass of the loop grants turns until about ``BUDGET`` of
time went to them, and the rest wait, in order, for the next passes. The loop's other callbacks
(timers, sockets, a stream's events) run between passes as usual.

An uncontended turn costs a clock read and does not suspend the task; nothing per stream delta
takes one.
"""

from __future__ import annotations

import asyncio
import collections
import time
import weakref

__all__ = ["BUDGET", "take_turn"]

#: Seconds of turns one pass of the loop grants before the next turns wait for the next pass.
BUDGET = 0.0005


class _Turns:
    """One loop's turns: who may go on in this pass, and who waits for the next."""

    __slots__ = ("__weakref__", "begun", "cost", "last", "waiting")

    def __init__(self) -> None:
        # No reference to the loop: this is the value of a weak mapping keyed by the loop.
        #: when this pass's first turn was granted, None before it
        self.begun: float | None = None
        #: when the latest turn was granted, None if a pass began since
        self.last: float | None = None
        #: a turn's running estimate (s), from turns granted back to back in one pass
        self.cost = BUDGET
        self.waiting: collections.deque[asyncio.Future[None]] = collections.deque()

    def grant(self, loop: asyncio.AbstractEventLoop, now: float) -> None:
        if self.begun is None:
            self.begun = now
            loop.call_soon(self.next_pass)
        if self.last is not None:
            self.cost += (now - self.last - self.cost) / 4
        self.last = now

    def next_pass(self) -> None:
        """A new pass: as many waiting turns as its budget should hold go on (at least one)."""
        self.begun = self.last = None
        room = max(1, int(BUDGET / max(self.cost, 1e-6)))
        waiting = self.waiting
        while waiting and room:
            future = waiting.popleft()
            if not future.done():
                future.set_result(None)
                room -= 1


_turns: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Turns] = weakref.WeakKeyDictionary()


async def take_turn() -> None:
    """Wait until the running loop's pass has room for a turn (at once when it has)."""
    loop = asyncio.get_running_loop()
    turns = _turns.get(loop)
    if turns is None:
        turns = _turns[loop] = _Turns()
    now = time.perf_counter()
    if not turns.waiting and (turns.begun is None or now - turns.begun < BUDGET):
        turns.grant(loop, now)
        return
    future = loop.create_future()
    turns.waiting.append(future)
    if turns.begun is None:  # nothing will start a pass: start one
        turns.begun = now
        loop.call_soon(turns.next_pass)
    try:
        await future
    except asyncio.CancelledError:
        if future.done() and not future.cancelled():  # granted, then cancelled: pass it on
            turns.next_pass()
        else:
            future.cancel()
        raise
    turns.grant(loop, time.perf_counter())
