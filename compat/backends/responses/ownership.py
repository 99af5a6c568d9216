"""Who drives which run, and which run holds each thread, on the Responses backend.

A run is driven by one process: the one that started it (or continued it after tool outputs),
recorded on the stored run as ``meta["worker"]``. Within that process, ``RunOwnership`` knows
the runs it is driving right now. A run left ``queued``/``in_progress``/``cancelling`` by a
process that is gone is an orphan: the first reader reports it ``expired`` (``last_error.code``
``worker_lost``) instead of letting it look alive forever, and frees its thread.

A thread holds at most one active run (``meta["active_run_id"]``), as the Assistant API refuses
a run on a thread whose run is still active. The claim is one store update, so two processes
racing for a thread cannot both win.
"""

from __future__ import annotations

import os
import socket
import threading
import uuid
from typing import Any

from compat import _objects as o
from compat._ids import now_ms
from compat.store import Record, Store

__all__ = ["ACTIVE", "WORKER", "RunOwnership"]

#: Run statuses in which the thread is busy and a process may be driving the run.
ACTIVE = frozenset({"queued", "in_progress", "requires_action", "cancelling"})
#: The statuses in which a process must be driving the run (requires_action waits for the user).
_DRIVEN = frozenset({"queued", "in_progress", "cancelling"})
#: This process, as recorded on the runs it drives (pid reuse cannot fake it: the token).
WORKER = {"host": socket.gethostname(), "pid": os.getpid(), "token": uuid.uuid4().hex}


class RunOwnership:
    """The runs this process drives, orphan reaping, and the threads' active-run claims."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._driving: dict[str, Any] = {}  # run id → its job
        self._lock = threading.Lock()

    # -- the runs driven here -----------------------------------------------------------------
    def drive(self, run_id: str, job: Any) -> None:
        """Count the run as driven here (before it is stored, so no reader reaps it)."""
        with self._lock:
            self._driving[run_id] = job

    def done(self, run_id: str) -> None:
        with self._lock:
            self._driving.pop(run_id, None)

    def job(self, run_id: str) -> Any:
        """The job driving ``run_id`` in this process, or None."""
        with self._lock:
            return self._driving.get(run_id)

    # -- orphans ------------------------------------------------------------------------------
    def reap(self, record: Record) -> Record:
        """Report a run whose driving process is gone as ``expired`` (never in_progress forever)."""
        if record.data.get("status") not in _DRIVEN or self._is_driven(record):
            return record

        def expire(current: Record) -> Record | None:
            if current.data.get("status") not in _DRIVEN:
                return None
            data = dict(current.data)
            data.update(
                status="expired",
                expires_at=now_ms(),
                last_error={
                    "code": "worker_lost",
                    "message": "the process driving this run exited before the run finished",
                },
            )
            return Record(data, current.meta)

        updated = self.store.update("run", record.data["id"], expire)
        if updated is not None:
            self.release_thread(updated.data["thread_id"], updated.data["id"])
        return updated or record

    def reap_orphans(self, thread_id: str) -> None:
        page = self.store.list("run", parent_id=thread_id, limit=100)
        for run in page.data:
            if run["status"] in _DRIVEN:
                record = self.store.get("run", run["id"])
                if record is not None:
                    self.reap(record)

    def _is_driven(self, record: Record) -> bool:
        worker = record.meta.get("worker") or {}
        if worker.get("token") == WORKER["token"]:
            with self._lock:
                return record.data["id"] in self._driving
        if worker.get("host") != WORKER["host"]:
            return True  # another host's process: compat cannot tell, so it trusts it
        return _pid_alive(int(worker.get("pid") or 0))

    # -- the thread's active-run claim --------------------------------------------------------
    def claim_thread(self, thread_id: str, run_id: str) -> str | None:
        """Mark the thread busy with ``run_id``; the refusal message if another run is active."""
        current = self.store.get("thread", thread_id)
        active = (current.meta.get("active_run_id") if current else None) or None
        if active:
            other = self.store.get("run", active)
            if other is not None and self.reap(other).data["status"] in ACTIVE:
                return o.ACTIVE_RUN_MESSAGE.format(thread_id=thread_id, run_id=active)
        conflict: list[str] = []

        def claim(r: Record) -> Record | None:
            holder = r.meta.get("active_run_id")
            if holder and holder != active:
                conflict.append(holder)
                return None
            return Record(r.data, dict(r.meta, active_run_id=run_id))

        self.store.update("thread", thread_id, claim)
        if conflict:
            return o.ACTIVE_RUN_MESSAGE.format(thread_id=thread_id, run_id=conflict[0])
        return None

    def release_thread(self, thread_id: str, run_id: str) -> None:
        def release(r: Record) -> Record | None:
            if r.meta.get("active_run_id") != run_id:
                return None
            return Record(r.data, dict(r.meta, active_run_id=None))

        self.store.update("thread", thread_id, release)


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
