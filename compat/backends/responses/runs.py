"""Runs on the Responses backend: start, cancel, continue after tool outputs, read.

One run is one or more Responses (a function-call round trip continues the same run with a new
response). ``RunExecutor`` claims the thread and stores the queued run in one transaction,
opens the upstream stream (so HTTP errors come back from the call, as dashscope returns them;
the run is then withdrawn), then either hands the translated events to the caller (streamed
runs) or drives them in the background (non-streamed runs). ``drive`` holds the loop.

Every change of the stored run is a ``compat.lifecycle`` move applied by the store in one
transaction (``compat.store.transition``): the driver never writes its snapshot over the stored
run, so a cancel, a reap or a ``Runs.update`` from elsewhere is never lost. The store is written
at lifecycle points only, never per delta. Leases, orphans and the thread's claim are
``ownership``'s.

Sync and async (``compat.aio``, ``CallOptions.asynchronous``) share everything but the network
calls: ``_prepare`` builds a response's request and job, ``_open``/``_aopen`` send it, and
``drive.stream_sync``/``drive.stream_async`` read it.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable
from typing import Any

from compat import _objects as o
from compat import lifecycle
from compat._exit import exiting, on_exit
from compat._ids import new_id, now_ms
from compat._log import logger
from compat.backends import JSON, CallOptions, Reply
from compat.backends.responses import request as rq
from compat.backends.responses.drive import Job, stream_async, stream_sync
from compat.backends.responses.history import History, Input
from compat.backends.responses.offload import StoreCalls
from compat.backends.responses.opening import (
    Opening,
    Start,
    broken_error,
    clean,
    error,
    ok,
    reply_error,
    run_fields,
)
from compat.backends.responses.ownership import (
    RunOwnership,
    claim_thread,
    expire_run,
    keep_text,
    lapsed,
    lease,
    release_thread,
)
from compat.backends.responses.translate import ResponsesTranslator
from compat.backends.responses.upstream import UpstreamBroken, UpstreamHTTPError, upstream_for
from compat.backends.responses.upstream_async import async_upstream_for
from compat.errors import StoreError, TimeoutException
from compat.store import Record, RunGone, Store, Tx, transition
from compat.types import ThreadMessageDelta

__all__ = ["RunExecutor"]

_log = logger(__name__)

#: The statuses ``Runs.wait`` returns at (requires_action included: the user must act).
_FINAL = lifecycle.TERMINAL | {"requires_action"}
#: How often ``Runs.wait`` reads the store.
_WAIT_POLL = 0.02


class RunExecutor:
    """Starts and drives runs against one store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.owners = RunOwnership(store)
        self._background: dict[str, threading.Thread] = {}
        self._background_lock = threading.Lock()
        self._tasks: set[asyncio.Task[None]] = set()
        _executors.append(self)

    # -- starting ---------------------------------------------------------------------------
    def start(
        self, thread_id: str, params: JSON, opts: CallOptions, created_thread: JSON | None = None
    ) -> Reply | Awaitable[Reply]:
        """Claim the thread, store the run queued, send its first request (awaitable if async)."""
        claimed = self._claim(thread_id, params, opts, created_thread)
        if not isinstance(claimed, Start):
            return claimed
        try:
            opening = self._prepare(claimed.run, params, opts, thread_meta=claimed.thread_meta)
            if opts.asynchronous:  # the store's part is done: the rest runs on the loop
                return self._astart(claimed, opening)
            job = self._open(opening)
        except BaseException as exc:
            return self._start_failed(claimed, exc)
        return self._launch(job, claimed.stream, claimed.prefix)

    async def _astart(self, claimed: Start, opening: Opening) -> Reply:
        try:
            job = await self._aopen(opening)
        except BaseException as exc:
            return await StoreCalls(self.store)(self._start_failed, claimed, exc)
        return await self._alaunch(job, claimed.stream, claimed.prefix)

    def _claim(
        self, thread_id: str, params: JSON, opts: CallOptions, created_thread: JSON | None
    ) -> Start | Reply:
        store, claimed = self.store, Start({}, bool(params.get("stream")), created_thread)
        assistant_record = store.get("assistant", params["assistant_id"])
        if assistant_record is None:
            return self._refuse(
                claimed, error("InvalidParameter", o.not_found_message("assistant"))
            )
        assistant = assistant_record.data
        run = o.run_object(
            new_id("run"), now_ms(), thread_id, assistant["id"], run_fields(assistant, params)
        )
        try:  # the assistant's own tools (imported or mirrored ones were never checked)
            rq.map_tools(run["tools"])
        except rq.Refused as exc:
            return self._refuse(claimed, error(exc.code, exc.message))
        with store.transaction() as tx:
            thread = tx.get("thread", thread_id)
            if thread is None:
                refusal: str | None = o.not_found_message("thread")
            else:
                meta: JSON = {
                    "request": {"extra_body": params.get("extra_body")},
                    "response_ids": [],
                    "usage": None,
                    "lease": lease(tx.now_ms(), opts.settings.lease_seconds),
                }
                refusal = claim_thread(tx, thread, run, meta)
        if refusal is not None:
            _log.info("run refused on thread %s: %s", thread_id, refusal)
            return self._refuse(claimed, error("InvalidParameter", refusal))
        _log.info(
            "run %s started on thread %s: model=%s stream=%s history=%s",
            run["id"],
            thread_id,
            run["model"],
            claimed.stream,
            opts.settings.history,
        )
        claimed.run, claimed.thread_meta = run, thread.meta if thread is not None else None
        if created_thread:
            claimed.prefix = [("thread.created", dict(created_thread, status_code=200))]
        return claimed

    def _refuse(self, claimed: Start, err: JSON) -> Reply:
        # Nothing the failed call created survives it (create_thread_and_run's thread).
        if claimed.created_thread is not None:
            self.store.delete("thread", claimed.created_thread["id"])
        return reply_error(err, claimed.stream)

    def _start_failed(self, claimed: Start, exc: BaseException) -> Reply:
        """The first request failed before its stream: withdraw the run, answer the error."""
        run = claimed.run
        self.owners.done(run["id"])
        with self.store.transaction() as tx:
            release_thread(tx, run["thread_id"], run["id"])
            tx.delete("run", run["id"])
        if isinstance(exc, UpstreamHTTPError):
            _log.info(
                "run %s refused upstream: HTTP %s %s",
                run["id"],
                exc.status_code,
                exc.error.get("code"),
            )
            return self._refuse(claimed, exc.error)
        if isinstance(exc, UpstreamBroken):
            return self._refuse(claimed, broken_error(exc))
        if claimed.created_thread is not None:
            self.store.delete("thread", claimed.created_thread["id"])
        raise exc

    def _prepare(
        self,
        run: JSON,
        params: JSON,
        opts: CallOptions,
        *,
        continuation: JSON | None = None,
        cursor: str | None = None,
        thread_meta: JSON | None = None,
    ) -> Opening:
        """Build the run's next request and its job (no network I/O); ``thread_meta``: the
        thread's as the claim read it, if it did. The job is watched (its lease renewed, a
        cancel noticed) from before the request goes out, so a slow time-to-headers cannot
        make the run look orphaned.
        """
        tools = rq.map_tools(run["tools"])
        # run["instructions"] is already the effective text (override or assistant's, plus
        # additional_instructions). As the field, every request of the run sends it (it is not
        # carried over previous_response_id); as a system message, History places it.
        instructions = run["instructions"] or None
        system = None
        if opts.settings.instructions == "message":
            instructions, system = None, instructions
        history = History(self.store, run["thread_id"], opts.settings.history, system)
        translator_args: JSON = {}
        if continuation is not None:
            translator_args = {
                "emit_run_start": False,
                "continuation_step": continuation["step"],
                "tool_outputs": continuation["outputs"],
                "prior_usage": continuation["usage"],
            }

        def request_for(sent: Input) -> JSON:
            return rq.build_request(
                run,
                instructions=instructions,
                tools=tools,
                input_items=sent.items,
                previous_response_id=sent.previous,
                sampling=run,
                extra_body=params.get("extra_body"),
            )

        translator = ResponsesTranslator(
            run,
            new_id=new_id,
            clock=now_ms,
            text_delta=ThreadMessageDelta.of_text,
            **translator_args,
        )
        sent = history.input_for(continuation, thread_meta)
        settings = opts.settings
        job = Job(run, sent, translator, settings.lease_seconds, system, settings.renew_seconds)
        self.owners.drive(job)
        return Opening(job, request_for(sent), history, continuation, cursor, request_for, opts)

    def _open(self, opening: Opening) -> Job:
        """Send the prepared request (the sync shell)."""
        job = opening.job
        try:
            upstream = upstream_for(opening.opts.settings, opening.opts.api_key)
            try:
                job.upstream = upstream.stream(opening.request, opening.timeout)
            except UpstreamHTTPError as exc:
                retry = opening.fallback(exc)
                if retry is None:
                    raise
                job.upstream = upstream.stream(retry, opening.timeout)
        except BaseException:
            self.owners.done(job.run_id)
            raise
        return opening.opened()

    async def _aopen(self, opening: Opening) -> Job:
        """Send the prepared request (the async shell)."""
        job = opening.job
        try:
            upstream = async_upstream_for(opening.opts.settings, opening.opts.api_key)
            try:
                job.upstream = await upstream.stream(opening.request, opening.timeout)
            except UpstreamHTTPError as exc:
                retry = opening.fallback(exc)
                if retry is None:
                    raise
                job.upstream = await upstream.stream(retry, opening.timeout)
        except BaseException:
            self.owners.done(job.run_id)
            raise
        return opening.opened()

    # -- driving ----------------------------------------------------------------------------
    def _launch(self, job: Job, stream: bool, prefix: list[tuple[str, JSON]]) -> Reply:
        if stream:
            items = stream_sync(self, job, prefix)
            # Run it to its first (empty) yield: from there on, closing the stream or merely
            # dropping it runs its cleanup, so the run is stored cancelled either way.
            next(items)
            return items  # type: ignore[return-value]
        worker = threading.Thread(
            target=self._drain, args=(job,), name=f"compat-run-{job.run_id}", daemon=True
        )
        with self._background_lock:
            self._background[job.run_id] = worker
        reply = ok(clean(job.translator.run))  # as stored before the worker starts: queued
        # Once compat's exit handler has begun nothing waits for a worker, and Python 3.12+
        # starts none in an atexit handler: the run is then driven here (the reply unchanged).
        if not exiting():
            try:
                worker.start()
                return reply
            except RuntimeError:
                pass
        self._drain(job)
        return reply

    def _drain(self, job: Job) -> None:
        try:
            for _ in stream_sync(self, job, []):
                pass
        finally:
            with self._background_lock:
                self._background.pop(job.run_id, None)

    async def _alaunch(self, job: Job, stream: bool, prefix: list[tuple[str, JSON]]) -> Reply:
        items = stream_async(self, job, prefix)
        await items.__anext__()  # primed, as in _launch
        if stream:
            return items  # type: ignore[return-value]
        reply = ok(clean(job.translator.run))
        # Driven by a task on the caller's loop (no thread); the loop must outlive the run.
        task = asyncio.get_running_loop().create_task(_adrain(items))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return reply

    # -- reading ----------------------------------------------------------------------------
    def read_run(self, thread_id: str, run_id: str) -> JSON | None:
        record = self.store.get("run", run_id)
        if record is None or record.data.get("thread_id") != thread_id:
            return None
        return self.owners.reap(record).data

    def wait(self, thread_id: str, run_id: str, timeout_seconds: float) -> JSON | None:
        deadline = time.perf_counter() + timeout_seconds
        while not self._waited(thread_id, run_id, deadline):
            time.sleep(_WAIT_POLL)
        return self.read_run(thread_id, run_id)

    async def await_run(self, thread_id: str, run_id: str, timeout_seconds: float) -> JSON | None:
        """``wait`` for ``compat.aio``: the same checks, sleeping on the event loop."""
        deadline = time.perf_counter() + timeout_seconds
        store = StoreCalls(self.store)
        while not await store(self._waited, thread_id, run_id, deadline):
            await asyncio.sleep(_WAIT_POLL)
        return await store(self.read_run, thread_id, run_id)

    def _waited(self, thread_id: str, run_id: str, deadline: float) -> bool:
        run = self.read_run(thread_id, run_id)
        if run is None or run.get("status") in _FINAL:
            return True
        if time.perf_counter() > deadline:
            raise TimeoutException("Wait run complete timeout")
        return False

    # -- cancel and tool outputs ---------------------------------------------------------------
    def cancel(self, thread_id: str, run_id: str) -> JSON:
        with self.store.transaction() as tx:
            record = tx.get("run", run_id)
            if record is None or record.data.get("thread_id") != thread_id:
                return error("InvalidParameter", o.not_found_message("run"))
            if lapsed(record, tx.now_ms()):
                record = expire_run(tx, record, _LOST_ON_CANCEL)
            status = record.data["status"]
            if status not in lifecycle.ACTIVE:
                return error("InvalidParameter", o.cannot_cancel_message(status))
            stored = self._cancel_in(tx, record)
        job = self.owners.job(run_id)
        if job is not None:
            job.stop()  # driven here: no need to wait for the keeper's next look
        # The Assistant API acknowledges every cancel as "cancelling".
        return ok(dict(stored.data, status="cancelling", cancelled_at=None))

    @staticmethod
    def _cancel_in(tx: Tx, record: Record) -> Record:
        """Cancel an active run in ``tx``: ``cancelling`` for its driver, or done at once."""
        stored = transition(tx, record.data["id"], "cancel")
        if stored.data["status"] == "cancelled":  # it was waiting for tool outputs
            now = tx.now_ms()
            step_id = record.meta.get("tool_step_id")
            step = tx.get("step", step_id) if step_id else None
            if step is not None and step.data.get("status") == "in_progress":
                tx.put("step", dict(step.data, status="cancelled", cancelled_at=now), step.meta)
            release_thread(tx, record.data["thread_id"], record.data["id"])
        return stored

    def cancel_thread_runs(self, tx: Tx, thread_id: str) -> list[str]:
        """Cancel the thread's active run in ``tx`` (before the thread is deleted)."""
        cancelled = []
        for record in tx.children("run", thread_id):
            if record.data["status"] in lifecycle.ACTIVE and record.data["status"] != "cancelling":
                self._cancel_in(tx, record)
                cancelled.append(record.data["id"])
        return cancelled

    def stop_local(self, run_ids: list[str]) -> None:
        for run_id in run_ids:
            job = self.owners.job(run_id)
            if job is not None:
                job.stop()

    def submit_tool_outputs(
        self, thread_id: str, run_id: str, params: JSON, opts: CallOptions
    ) -> Reply | Awaitable[Reply]:
        stream = bool(params.get("stream"))
        with self.store.transaction() as tx:
            claimed = self._claim_continuation(tx, thread_id, run_id, params, opts)
        if isinstance(claimed, dict):
            return reply_error(claimed, stream)
        record, continuation = claimed
        try:  # whatever fails before the stream (building the request too) gives the run back
            opening = self._prepare(
                record.data,
                record.meta.get("request") or {},
                opts,
                continuation=continuation,
                cursor=record.meta.get("cursor"),
            )
            if opts.asynchronous:
                return self._asubmit(record, opening, stream)
            job = self._open(opening)
        except BaseException as exc:
            return self._submit_failed(record, exc, stream)
        return self._launch(job, stream, [])

    async def _asubmit(self, record: Record, opening: Opening, stream: bool) -> Reply:
        try:
            job = await self._aopen(opening)
        except BaseException as exc:
            return await StoreCalls(self.store)(self._submit_failed, record, exc, stream)
        return await self._alaunch(job, stream, [])

    def _submit_failed(self, record: Record, exc: BaseException, stream: bool) -> Reply:
        self._unsubmit(record)
        if isinstance(exc, UpstreamHTTPError):
            return reply_error(exc.error, stream)
        if isinstance(exc, UpstreamBroken):
            return reply_error(broken_error(exc), stream)
        raise exc

    def _claim_continuation(
        self, tx: Tx, thread_id: str, run_id: str, params: JSON, opts: CallOptions
    ) -> tuple[Record, JSON] | JSON:
        """Move ``requires_action → queued`` for this submit, or the error to answer."""
        record = tx.get("run", run_id)
        if record is None or record.data.get("thread_id") != thread_id:
            return error("InvalidParameter", o.not_found_message("run"))
        if lapsed(record, tx.now_ms()):
            record = expire_run(tx, record, _LOST_ON_CANCEL)
        status = record.data["status"]
        if status != "requires_action":
            return error("InvalidParameter", o.not_requires_action_message(status))
        pending = record.meta.get("pending") or []
        outputs = o.match_tool_outputs([c["id"] for c in pending], params.get("tool_outputs"))
        if isinstance(outputs, str):
            return error("InvalidParameter", outputs)
        step = tx.get("step", record.meta.get("tool_step_id") or "")
        if step is None:
            return error("InvalidParameter", o.not_found_message("run"))
        continuation = {
            "step": step.data,
            "outputs": outputs,
            "usage": record.meta.get("usage"),
            "calls": pending,
            "response_id": (record.meta.get("response_ids") or [None])[-1],
            "rounds": record.meta.get("rounds", []),
        }
        meta = {
            "pending": [],
            "rounds": [*continuation["rounds"], {"calls": pending, "outputs": outputs}],
            "lease": lease(tx.now_ms(), opts.settings.lease_seconds),
            # what _unsubmit restores if the continuation's request fails before its stream
            "submitted": {
                "pending": pending,
                "rounds": continuation["rounds"],
                "required_action": record.data.get("required_action"),
                "expires_at": record.data.get("expires_at"),
            },
        }
        stored = transition(tx, run_id, "submit", {"expires_at": None}, meta)
        return stored, continuation

    def _unsubmit(self, record: Record) -> None:
        """Give a run back to ``requires_action`` when its continuation never started."""
        before = record.meta.get("submitted") or {}
        meta = {"pending": before.get("pending", []), "rounds": before.get("rounds", [])}
        meta["lease"] = None
        fields = {k: before.get(k) for k in ("required_action", "expires_at")}
        with contextlib.suppress(RunGone, lifecycle.IllegalMove), self.store.transaction() as tx:
            stored = transition(tx, record.data["id"], "unsubmit", fields, meta)
            if stored.data["status"] == "cancelled":  # cancelled meanwhile: it ends here
                release_thread(tx, stored.data["thread_id"], stored.data["id"])

    # -- process exit ------------------------------------------------------------------------
    def finish_background(self, timeout: float) -> None:
        """Let non-streamed runs finish, up to ``timeout`` s; expire those still running.

        An expired run's message keeps its text so far, as a lease renewal would have stored it.
        """
        deadline = time.monotonic() + timeout
        with self._background_lock:
            workers = dict(self._background)
        for worker in workers.values():
            worker.join(max(0.0, deadline - time.monotonic()))
        for run_id, worker in workers.items():
            if not worker.is_alive():
                continue
            job = self.owners.job(run_id)
            text_so_far = job.checkpoint() if job is not None else None
            with contextlib.suppress(StoreError), self.store.transaction() as tx:
                record = tx.get("run", run_id)
                if record is not None and record.data["status"] in lifecycle.DRIVEN:
                    keep_text(tx, text_so_far)
                    expire_run(tx, record, _EXITED.format(timeout=timeout))
            if job is not None:
                job.stop()


_LOST_ON_CANCEL = "the process driving this run stopped renewing its lease"
_EXITED = (
    "the process that started this run exited before it finished "
    "(it waited {timeout:g} s: COMPAT_EXIT_TIMEOUT)"
)
_executors: list[RunExecutor] = []


def _finish_all_background() -> None:
    from compat._config import current_settings

    try:
        timeout = current_settings().exit_timeout
    except Exception:  # a broken setting must not hide the runs' ends
        timeout = 30.0
    for executor in list(_executors):
        executor.finish_background(timeout)


on_exit(_finish_all_background)


async def _adrain(items: Any) -> None:
    async for _ in items:
        pass
