"""The SQLite store's lock among the threads of a process: a ``Turnstile``.

It is built so that no thread owns it while it waits for the GIL, the one wait that is long
when many threads are busy: a thread that blocks, even for a millisecond, waits a turn behind
every runnable thread when it wakes (tens of milliseconds with 32 busy streams).
``threading.Lock`` hands itself to the waiter it wakes, which then holds it through that turn,
so that every thread asking meanwhile queues too: a convoy that feeds itself. A turnstile is
only ever taken by a running thread: a release wakes the longest waiter, which tries again when
it runs, and whoever runs first takes it.
"""

from __future__ import annotations

import contextlib
import threading
from collections import deque

__all__ = ["Turnstile"]


class Turnstile:
    """A lock that only a running thread takes (see the module docstring); not reentrant."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: deque[threading.Lock] = deque()

    def acquire(self, blocking: bool = True) -> bool:
        if self._lock.acquire(blocking=False):
            return True
        if not blocking:
            return False
        gate = threading.Lock()
        gate.acquire()
        while True:
            # Queued before trying: a release after the try finds this gate to open.
            self._waiters.append(gate)
            if self._lock.acquire(blocking=False):
                # A release may have opened this gate already: nobody else missed a wake-up.
                with contextlib.suppress(ValueError):
                    self._waiters.remove(gate)
                return True
            gate.acquire()  # until a release opens it; then try again

    def release(self) -> None:
        self._lock.release()
        try:
            gate = self._waiters.popleft()
        except IndexError:
            return
        gate.release()
