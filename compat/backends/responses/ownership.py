"""Who drives which run, for how long, and which run holds each thread (Responses backend).

A run in ``queued``/``in_progress``/``cancelling`` is driven by one process, which holds a
*lease* on it: ``meta["lease"] = {"owner": worker id, "until": ms}``, renewed while it drives
(``RunOwnership``'s keeper thread). A run whose lease has lapsed is an orphan: whoever reads it
or its thread next, in any process on any host sharing the store, moves it to ``expired``
(``last_error.code`` ``worker_lost``), marks its unfinished message ``incomplete`` (the text
checkpointed so far kept) and frees its thread. No pid or host name decides liveness; a forked
child gets its own worker id. A ``requires_action`` run expires at its ``expires_at``.

A thread holds at most one active run (``meta["active_run_id"]``): the claim and the insert of
the queued run are one store transaction, so of two racing creates exactly one wins.

The keeper thread also polls the runs driven here, so that a cancel stored by another process
(or a deleted thread) reaches the driver within a tick, even while the upstream is silent: it
interrupts the blocked read.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
import weakref
from typing import Any, Protocol

from compat import _objects as o
from compat import lifecycle
from compat._log import logger
from compat.errors import StoreError
from compat.store import Record, Store, Tx, transition

__all__ = [
    "POLL_SECONDS",
    "REQUIRES_ACTION_SECONDS",
    "Job",
    "RunOwnership",
    "claim_thread",
    "expire_run",
    "keep_text",
    "lapsed",
    "lease",
    "release_thread",
    "worker_id",
]

_log = logger(__name__)

#: How often the keeper looks at the runs driven here (a cancel is noticed within this).
POLL_SECONDS = 0.2
#: How long a ``requires_action`` run waits for tool outputs before it expires (the Assistant
#: API's runs expire ten minutes after they ask; inferred for DashScope, which does not say).
REQUIRES_ACTION_SECONDS = 600

_worker = {"id": uuid.uuid4().hex}
#: The runs this process drives now, whatever store they are in (see ``lapsed``).
_driven_here: set[str] = set()


def worker_id() -> str:
    """This process's identity on the runs it drives (new in every forked child)."""
    return _worker["id"]


def lease(now: int, seconds: float) -> dict[str, Any]:
    """A lease held by this process from ``now`` (ms) for ``seconds``."""
    return {"owner": worker_id(), "until": now + int(seconds * 1000)}


def lapsed(record: Record, now: int) -> bool:
    """The run's driver is gone (its lease lapsed), or it waited too long for tool outputs.

    A run driven by this very process is never lapsed here, however late its renewal (a
    starved keeper thread must not let the process reap its own live run).
    """
    status = record.data.get("status")
    if status in lifecycle.DRIVEN:
        held = record.meta.get("lease") or {}
        if held.get("owner") == worker_id() and record.data.get("id") in _driven_here:
            return False
        until = held.get("until")
        return not isinstance(until, int) or until < now
    if status == "requires_action":
        expires_at = record.data.get("expires_at")
        return isinstance(expires_at, int) and expires_at < now
    return False


def expire_run(tx: Tx, record: Record, message: str) -> Record:
    """Move the run to ``expired`` and leave its messages, steps and thread consistent."""
    data = record.data
    now = tx.now_ms()
    error = {"code": "worker_lost", "message": message}
    if data["status"] == "requires_action":
        error = {"code": "expired", "message": "the run waited too long for tool outputs"}
    expired = transition(tx, data["id"], "expire", {"last_error": error})
    for message_record in tx.children("message", data["thread_id"]):
        msg = message_record.data
        if msg.get("run_id") == data["id"] and msg.get("status") == "in_progress":
            tx.put(
                "message",
                dict(msg, status="incomplete", incomplete_at=now),
                message_record.meta,
            )
    for step_record in tx.children("step", data["id"]):
        step = step_record.data
        if step.get("status") == "in_progress":
            tx.put("step", dict(step, status="expired", expired_at=now), step_record.meta)
    release_thread(tx, data["thread_id"], data["id"])
    return expired


def keep_text(tx: Tx, checkpoint: dict[str, Any] | None) -> None:
    """Store the unfinished message's text so far (``Job.checkpoint``) while it is unfinished."""
    if checkpoint is None:
        return
    # The status alone is read (the stored text is not decoded); the row stays locked until the
    # put, which keeps the stored meta.
    if tx.status("message", checkpoint["id"]) == "in_progress":
        tx.put("message", checkpoint, None)


def claim_thread(tx: Tx, thread: Record, run: dict[str, Any], meta: dict[str, Any]) -> str | None:
    """Store the queued run as the thread's active run; the refusal message if one is active."""
    active = thread.meta.get("active_run_id")
    if active:
        other = tx.get("run", active)
        if other is not None and lapsed(other, tx.now_ms()):
            other = expire_run(tx, other, _LOST)
            thread = tx.get("thread", thread.data["id"]) or thread
        if other is not None and other.data["status"] in lifecycle.ACTIVE:
            return o.ACTIVE_RUN_MESSAGE.format(thread_id=thread.data["id"], run_id=active)
    tx.put("run", run, meta)
    tx.put("thread", thread.data, dict(thread.meta, active_run_id=run["id"]))
    return None


def release_thread(tx: Tx, thread_id: str, run_id: str) -> None:
    """Free the thread if ``run_id`` holds it."""
    thread = tx.get("thread", thread_id)
    if thread is not None and thread.meta.get("active_run_id") == run_id:
        tx.put("thread", thread.data, dict(thread.meta, active_run_id=None))


_LOST = "the process driving this run stopped renewing its lease (it exited or was killed)"


class Job(Protocol):
    """What the keeper needs of a run being driven here."""

    run_id: str
    lease_seconds: float
    #: seconds between two renewals of the lease (shorter than ``lease_seconds``)
    renew_seconds: float

    def stop(self) -> None:
        """The run was cancelled or taken away elsewhere: end it soon."""

    def checkpoint(self) -> dict[str, Any] | None:
        """The unfinished message as it stands (to store with the lease), or None."""


class RunOwnership:
    """The runs this process drives on one store: their leases, the keeper, orphan reaping."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._jobs: dict[str, Job] = {}
        self._renewed: dict[str, float] = {}  # run id → monotonic time of the last renewal
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._keeper: threading.Thread | None = None
        _instances.add(self)

    # -- the runs driven here -----------------------------------------------------------------
    def drive(self, job: Job) -> None:
        """Keep ``job``'s lease renewed and watch its run until ``done``."""
        with self._lock:
            self._jobs[job.run_id] = job
            self._renewed[job.run_id] = time.monotonic()
            _driven_here.add(job.run_id)
            if self._keeper is None or not self._keeper.is_alive():
                self._keeper = threading.Thread(
                    target=self._keep, name="compat-run-keeper", daemon=True
                )
                try:
                    self._keeper.start()
                except RuntimeError:
                    # The interpreter is shutting down (an atexit handler, e.g. the shadow
                    # backend's drain) and refuses new threads. The run is still driven to its
                    # end by the calling thread, only without lease renewal and cancel watching.
                    self._keeper = None
                    _log.debug("run %s driven without a keeper (interpreter exit)", job.run_id)

    def done(self, run_id: str) -> None:
        with self._lock:
            self._jobs.pop(run_id, None)
            self._renewed.pop(run_id, None)
            _driven_here.discard(run_id)

    def job(self, run_id: str) -> Job | None:
        """The job driving ``run_id`` in this process, or None."""
        with self._lock:
            return self._jobs.get(run_id)

    def jobs(self) -> list[Job]:
        with self._lock:
            return list(self._jobs.values())

    # -- orphans ------------------------------------------------------------------------------
    def reap(self, record: Record) -> Record:
        """The run as it stands, expired first if its lease lapsed (checked in a transaction)."""
        if not lapsed(record, self.store.now_ms()):  # the store's clock: the database's
            return record
        run_id = record.data["id"]
        with self.store.transaction() as tx:
            current = tx.get("run", run_id)
            if current is None:
                return record
            if not lapsed(current, tx.now_ms()):
                return current
            return expire_run(tx, current, _LOST)

    def reap_thread(self, thread: Record) -> None:
        """Reap the thread's active run if its lease lapsed (before its messages are shown).

        Only a thread's active run can be lapsed (every move out of the active statuses frees
        the thread), so this costs nothing on an idle thread and one read by id on a busy one.
        """
        active = thread.meta.get("active_run_id")
        if not active:
            return
        record = self.store.get("run", active)
        if record is not None:
            self.reap(record)

    def reap_orphans(self, thread_id: str) -> None:
        """Reap every lapsed run of the thread (before a list shows them)."""
        page = self.store.list("run", parent_id=thread_id, limit=100)
        now = self.store.now_ms()
        for run in page.data:
            if run["status"] in lifecycle.ACTIVE:
                record = self.store.get("run", run["id"])
                if record is not None and lapsed(record, now):
                    self.reap(record)

    # -- the keeper ---------------------------------------------------------------------------
    def _keep(self) -> None:
        while True:
            self._wake.wait(POLL_SECONDS)
            self._wake.clear()
            jobs = self.jobs()
            if not jobs:
                with self._lock:
                    if not self._jobs:
                        self._keeper = None
                        return
                continue
            for job in jobs:
                try:
                    self._watch(job)
                except StoreError:
                    # The store is unreachable: keep trying; if it stays so, the lease lapses
                    # and the run is reaped once the store is back.
                    continue

    def _watch(self, job: Job) -> None:
        record = self.store.get("run", job.run_id)
        if record is None or record.data["status"] not in ("queued", "in_progress"):
            job.stop()  # cancelling, deleted with its thread, or reaped as an orphan
            return
        renewed = self._renewed.get(job.run_id)
        if renewed is None or time.monotonic() - renewed < job.renew_seconds:
            return
        self._renew(job)

    def _renew(self, job: Job) -> None:
        checkpoint = job.checkpoint()
        with self.store.transaction() as tx:
            current = tx.get("run", job.run_id)
            if current is None or current.data["status"] not in lifecycle.DRIVEN:
                return
            owner = (current.meta.get("lease") or {}).get("owner")
            if owner != worker_id():
                return
            tx.put(
                "run",
                current.data,
                dict(current.meta, lease=lease(tx.now_ms(), job.lease_seconds)),
            )
            keep_text(tx, checkpoint)
        with self._lock:
            if job.run_id in self._renewed:
                self._renewed[job.run_id] = time.monotonic()

    def _after_fork_in_child(self) -> None:
        # The parent's runs are the parent's: the child drives none of them.
        self._jobs = {}
        self._renewed = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._keeper = None


_instances: weakref.WeakSet[RunOwnership] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    _worker["id"] = uuid.uuid4().hex
    _driven_here.clear()
    for owners in list(_instances):
        owners._after_fork_in_child()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
