"""Runs on the Responses backend: start, drive, store, cancel, continue after tool outputs.

One run is one or more Responses (a function-call round trip continues the same run with a new
response). ``RunExecutor`` claims the thread and stores the queued run in one transaction,
opens the upstream stream (so HTTP errors come back from the call, as dashscope returns them;
the run is then withdrawn), then either hands the translated events to the caller (streamed
runs) or drives them in a background thread (non-streamed runs).

Every change of the stored run is a ``compat.lifecycle`` move applied by the store in one
transaction (``compat.store.transition``): the driver never writes its snapshot over the stored
run, so a cancel, a reap or a ``Runs.update`` from elsewhere is never lost. The store is written
at lifecycle points only (run started, message created or completed, step moves, run finished,
the lease), never per delta. Leases, orphans and the thread's claim are ``ownership``'s.
"""

from __future__ import annotations

import atexit
import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

from compat import _objects as o
from compat import lifecycle
from compat._ids import new_id, now_ms
from compat._log import logger, once, redact
from compat.backends import JSON, CallOptions, Reply, error_stream
from compat.backends.responses import request as rq
from compat.backends.responses.history import History, Input
from compat.backends.responses.ownership import (
    REQUIRES_ACTION_SECONDS,
    RunOwnership,
    claim_thread,
    expire_run,
    lapsed,
    lease,
    release_thread,
)
from compat.backends.responses.translate import ResponsesTranslator
from compat.backends.responses.upstream import (
    UpstreamBroken,
    UpstreamHTTPError,
    UpstreamStream,
    mapped_errors,
    upstream_for,
)
from compat.errors import StoreError, TimeoutException, TranslationError
from compat.store import Record, RunGone, Store, Tx, transition
from compat.types import ThreadMessageDelta, convert_stream_item

__all__ = ["RunExecutor"]

_log = logger(__name__)

#: The statuses ``Runs.wait`` returns at (requires_action included: the user must act).
_FINAL = lifecycle.TERMINAL | {"requires_action"}
#: The translator's outcome → the lifecycle move that stores it.
_OUTCOME_MOVES = {
    "completed": "complete",
    "failed": "fail",
    "requires_action": "require_action",
    "cancelled": "cancelled",
}
_TERMINAL_EVENTS = frozenset(f"thread.run.{status}" for status in _OUTCOME_MOVES)
#: A message is stored when it is created (so a crash leaves no step pointing at nothing)
#: and once more when it is finished; never per delta.
_MESSAGE_WRITES = frozenset(
    {"thread.message.created", "thread.message.completed", "thread.message.incomplete"}
)


def _ok(obj: JSON) -> JSON:
    obj["status_code"] = 200
    obj["request_id"] = new_id("req")[4:]
    return obj


def _error(code: str, message: str, status_code: int = 400) -> JSON:
    return {
        "status_code": status_code,
        "code": code,
        "message": message,
        "request_id": new_id("req")[4:],
    }


def _reply_error(err: JSON, stream: bool) -> Reply:
    return error_stream(err) if stream else err


def _broken_error(exc: UpstreamBroken) -> JSON:
    """A transport failure before the stream started, in dashscope's returned-error shape.

    compat's choice (dashscope raises requests' exception here): 504 for a timeout, 503 for a
    connection that could not be made or broke, with the code the run's ``last_error`` would
    carry had the stream started.
    """
    return _error(exc.code, exc.message, 504 if exc.code == "timeout" else 503)


class _Job:
    """One response of a run being driven here: request, translator, stream, cancel flag."""

    def __init__(
        self,
        run: JSON,
        history: Input,
        translator: ResponsesTranslator,
        lease_seconds: float,
        system: str | None,
    ) -> None:
        self.run_id: str = run["id"]
        #: the instructions sent as a system message (they stay in the chain), or None
        self.system = system
        self.thread_id: str = run["thread_id"]
        self.history = history
        self.translator = translator
        self.lease_seconds = lease_seconds
        self.upstream: UpstreamStream | None = None
        #: set by a cancel, here or (through the keeper) elsewhere; read once per event
        self.cancelled = False
        #: finished messages already stored (the final write skips them)
        self.stored_messages: set[str] = set()

    def stop(self) -> None:
        """Cancel: the driver ends the run at its next event, or now if the read is blocked."""
        self.cancelled = True
        upstream = self.upstream
        if upstream is not None:
            upstream.interrupt()

    def checkpoint(self) -> JSON | None:
        """The open message with its text so far (stored with each lease renewal)."""
        item = self.translator._items.message
        if item is None:
            return None
        text = "".join(list(item.chunks))
        return dict(item.message, status="in_progress", content=[o.text_content(text)])


class RunExecutor:
    """Starts and drives runs against one store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.owners = RunOwnership(store)
        self._background: dict[str, threading.Thread] = {}
        self._background_lock = threading.Lock()
        _executors.append(self)

    # -- starting ---------------------------------------------------------------------------
    def start(
        self, thread_id: str, params: JSON, opts: CallOptions, created_thread: JSON | None = None
    ) -> Reply:
        stream = bool(params.get("stream"))
        store = self.store

        def refuse(err: JSON) -> Reply:
            # Nothing the failed call created survives it (create_thread_and_run's thread).
            if created_thread is not None:
                store.delete("thread", created_thread["id"])
            return _reply_error(err, stream)

        assistant_record = store.get("assistant", params["assistant_id"])
        if assistant_record is None:
            return refuse(_error("InvalidParameter", o.not_found_message("assistant")))
        assistant = assistant_record.data
        run = o.run_object(
            new_id("run"), now_ms(), thread_id, assistant["id"], _run_fields(assistant, params)
        )
        seconds = opts.settings.lease_seconds
        with store.transaction() as tx:
            thread = tx.get("thread", thread_id)
            if thread is None:
                refusal: str | None = o.not_found_message("thread")
            else:
                meta: JSON = {
                    "request": {"extra_body": params.get("extra_body")},
                    "response_ids": [],
                    "usage": None,
                    "lease": lease(tx.now_ms(), seconds),
                }
                refusal = claim_thread(tx, thread, run, meta)
        if refusal is not None:
            _log.info("run refused on thread %s: %s", thread_id, refusal)
            return refuse(_error("InvalidParameter", refusal))
        _log.info(
            "run %s started on thread %s: model=%s stream=%s history=%s",
            run["id"],
            thread_id,
            run["model"],
            stream,
            opts.settings.history,
        )
        try:
            job = self._open(run, params, opts)
        except BaseException as exc:
            self._withdraw(run)
            if isinstance(exc, UpstreamHTTPError):
                _log.info(
                    "run %s refused upstream: HTTP %s %s",
                    run["id"],
                    exc.status_code,
                    exc.error.get("code"),
                )
                return refuse(exc.error)
            if isinstance(exc, UpstreamBroken):
                return refuse(_broken_error(exc))
            if created_thread is not None:
                store.delete("thread", created_thread["id"])
            raise
        prefix = (
            [("thread.created", dict(created_thread, status_code=200))] if created_thread else []
        )
        return self._launch(job, stream, prefix)

    def _withdraw(self, run: JSON) -> None:
        """Remove a run whose first request failed before its stream: the call returns an error."""
        self.owners.done(run["id"])
        with self.store.transaction() as tx:
            release_thread(tx, run["thread_id"], run["id"])
            tx.delete("run", run["id"])

    def _open(
        self,
        run: JSON,
        params: JSON,
        opts: CallOptions,
        *,
        continuation: JSON | None = None,
        cursor: str | None = None,
    ) -> _Job:
        """Build the request for the run's next response and open the upstream stream.

        The job is watched (its lease renewed, a cancel noticed) from before the request goes
        out, so a slow time-to-headers cannot make the run look orphaned.
        """
        upstream = upstream_for(opts.settings, opts.api_key)
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
        sent = history.input_for(continuation)
        job = _Job(run, sent, translator, opts.settings.lease_seconds, system)
        self.owners.drive(job)
        timeout = opts.extra.get("request_timeout")
        try:
            try:
                job.upstream = upstream.stream(request_for(sent), timeout)
            except UpstreamHTTPError as exc:
                if sent.previous is None or not _lost_previous_response(exc):
                    raise
                # The chained response expired or is unknown upstream: resend the thread instead.
                _log.info(
                    "run %s: previous response %s is gone upstream (%s); resending the thread",
                    run["id"],
                    sent.previous,
                    exc.error.get("code"),
                )
                sent = job.history = history.replay_input(continuation)
                job.upstream = upstream.stream(request_for(sent), timeout)
        except BaseException:
            self.owners.done(job.run_id)
            raise
        if sent.cursor is None:
            job.history = sent._replace(cursor=cursor)
        return job

    # -- driving ----------------------------------------------------------------------------
    def _launch(self, job: _Job, stream: bool, prefix: list[tuple[str, JSON]]) -> Reply:
        if stream:
            items = self._stream(job, prefix)
            # Run it to its first (empty) yield: from there on, closing the stream or merely
            # dropping it runs _stream's cleanup, so the run is stored cancelled either way.
            next(items)
            return items  # type: ignore[return-value]
        worker = threading.Thread(
            target=self._drain, args=(job,), name=f"compat-run-{job.run_id}", daemon=True
        )
        with self._background_lock:
            self._background[job.run_id] = worker
        reply = _ok(_clean(job.translator.run))  # as stored before the worker starts: queued
        worker.start()
        return reply

    def _drain(self, job: _Job) -> None:
        try:
            for _ in self._stream(job, []):
                pass
        finally:
            with self._background_lock:
                self._background.pop(job.run_id, None)

    def _stream(
        self, job: _Job, prefix: list[tuple[str, JSON]]
    ) -> Iterator[tuple[str | None, Any] | None]:
        """The run's events, typed (``types.convert_stream_item``); the store kept in step.

        Reading stops at the first terminal event: what the upstream sends after it is not
        read. The terminal event is emitted after the store has taken the run's end.
        """
        translator = job.translator
        feed = translator.feed
        upstream = job.upstream
        assert upstream is not None
        finished = False
        try:
            yield None  # see _launch
            yield from _typed(prefix)
            out: list[Any] = []
            try:
                with mapped_errors():
                    if upstream.is_event_stream:
                        events = upstream.events()
                    else:
                        events = _json_body_events(upstream)
                    for event in events:
                        if job.cancelled:
                            break
                        out = feed(event)
                        if not out:
                            continue
                        if len(out) == 1 and out[0][0] == "thread.message.delta":
                            # The hot path: the translator built the typed delta itself.
                            yield out[0]
                            continue
                        if translator.settled:
                            break
                        self._persist_progress(job, out)
                        yield from _typed(out)
                        out = []
                if translator.settled:
                    pass
                elif job.cancelled:
                    out = translator.cancel()
                else:
                    out = translator.finish()
            except UpstreamBroken as exc:
                out = (
                    translator.cancel() if job.cancelled else translator.fail(exc.code, exc.message)
                )
            except TranslationError as exc:
                out = translator.fail("invalid_stream", str(exc))
            except StoreError as exc:
                out = translator.fail("store_error", f"compat's store failed mid-run: {exc}")
            out = self._settle(job, out)
            finished = True
            yield from _typed(out)
        except GeneratorExit:
            # The consumer closed the stream (or dropped it): the run is cancelled.
            if not finished:
                finished = True
                self._settle(job, translator.cancel())
            raise
        finally:
            upstream.close()
            if not finished:
                self._settle(job, translator.fail("server_error", "the run was interrupted"))
            self.owners.done(job.run_id)

    def _persist_progress(self, job: _Job, out: list[tuple[str, Any]]) -> None:
        """Store what the events say: the run started, messages and steps as they move."""
        items: list[tuple[Any, JSON]] = []
        started = False
        for event, payload in out:
            if event in _MESSAGE_WRITES:
                items.append(("message", _clean(payload)))
            elif event.startswith("thread.run.step.") and event != "thread.run.step.delta":
                items.append(("step", _clean(payload)))
            elif event == "thread.run.in_progress":
                started = True
        if not items and not started:
            return
        with self.store.transaction() as tx:
            try:
                if started:
                    transition(tx, job.run_id, "start", _driver_fields(job.translator.run))
                elif tx.get("run", job.run_id) is None:
                    raise RunGone(job.run_id)
            except RunGone:
                job.stop()  # deleted with its thread: write nothing back
                return
            except lifecycle.IllegalMove:
                job.stop()  # cancelling, or taken away: the driver ends the run
                return
            for kind, data in items:
                tx.put(kind, data, {})
                if kind == "message" and data["status"] != "in_progress":
                    job.stored_messages.add(data["id"])

    def _settle(self, job: _Job, out: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
        """Store the response's end as one move, with its messages and steps, and the thread's.

        Returns the events to emit: ``out``, its terminal event replaced by the stored run's
        when the store had already moved the run on (cancelled or reaped elsewhere).
        """
        t = job.translator
        run = _driver_fields(t.run)
        trigger = _OUTCOME_MOVES.get(run["status"])
        if trigger is None:  # nothing settled (a double close): nothing to store
            return out
        error = run.get("last_error")
        _log.info(
            "run %s %s%s", run["id"], run["status"], f": {redact(str(error))}" if error else ""
        )
        for kind in t.unknown_events:
            once(_log, "event", kind, "ignored unknown Responses event type %r", kind)
        for kind in t.unknown_items:
            once(_log, "item", kind, "ignored unknown Responses output item type %r", kind)
        if run["status"] == "requires_action":
            run["expires_at"] = now_ms() + REQUIRES_ACTION_SECONDS * 1000
        response_ids = [t.response_id] if t.response_id else []
        try:
            with self.store.transaction() as tx:
                record = tx.get("run", job.run_id)
                if record is None:
                    return out  # its thread was deleted: nothing to write back
                meta = {
                    "response_ids": [*record.meta.get("response_ids", []), *response_ids],
                    "usage": t.total_usage,
                    "pending": list(t.pending_tool_calls),
                    "tool_step_id": _tool_step_id(t),
                    "cursor": job.history.cursor,
                    "system": job.system,
                    "lease": None,
                }
                try:
                    stored = transition(tx, job.run_id, trigger, run, meta)
                except lifecycle.IllegalMove:
                    return _with_terminal(out, record.data)
                for message in t.messages:
                    if message["id"] not in job.stored_messages:
                        tx.put("message", _clean(message), {})
                for step in t.steps:
                    tx.put("step", _clean(step))
                self._after_run(tx, stored, t.response_id)
        except StoreError:
            # The end could not be stored: the lease lapses and a reader reaps the run later.
            return out
        return _with_terminal(out, stored.data)

    @staticmethod
    def _after_run(tx: Tx, run: Record, response_id: str | None) -> None:
        """Free the thread once the run is over; advance its chain when the run completed."""
        data = run.data
        thread = tx.get("thread", data["thread_id"])
        if thread is None:
            return
        meta = dict(thread.meta)
        if data["status"] not in lifecycle.ACTIVE and meta.get("active_run_id") == data["id"]:
            meta["active_run_id"] = None
        # Only a completed response may be chained: one that ended in function calls would make
        # the next request carry unanswered calls (a cancelled requires_action run).
        if data["status"] == "completed" and response_id:
            meta.update(
                last_response_id=response_id,
                chain_cursor=run.meta.get("cursor"),
                chain_instructions=run.meta.get("system"),
            )
        tx.put("thread", thread.data, meta)

    # -- reading ----------------------------------------------------------------------------
    def read_run(self, thread_id: str, run_id: str) -> JSON | None:
        record = self.store.get("run", run_id)
        if record is None or record.data.get("thread_id") != thread_id:
            return None
        return self.owners.reap(record).data

    def wait(self, thread_id: str, run_id: str, timeout_seconds: float) -> JSON | None:
        started = time.perf_counter()
        while True:
            run = self.read_run(thread_id, run_id)
            if run is None or run.get("status") in _FINAL:
                return run
            if time.perf_counter() - started > timeout_seconds:
                raise TimeoutException("Wait run complete timeout")
            time.sleep(0.02)

    # -- cancel and tool outputs ---------------------------------------------------------------
    def cancel(self, thread_id: str, run_id: str) -> JSON:
        with self.store.transaction() as tx:
            record = tx.get("run", run_id)
            if record is None or record.data.get("thread_id") != thread_id:
                return _error("InvalidParameter", o.not_found_message("run"))
            if lapsed(record, tx.now_ms()):
                record = expire_run(tx, record, _LOST_ON_CANCEL)
            status = record.data["status"]
            if status not in lifecycle.ACTIVE:
                return _error("InvalidParameter", o.cannot_cancel_message(status))
            stored = self._cancel_in(tx, record)
        job = self.owners.job(run_id)
        if job is not None:
            job.stop()  # driven here: no need to wait for the keeper's next look
        # The Assistant API acknowledges every cancel as "cancelling".
        return _ok(dict(stored.data, status="cancelling", cancelled_at=None))

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
    ) -> Reply:
        stream = bool(params.get("stream"))
        with self.store.transaction() as tx:
            claimed = self._claim_continuation(tx, thread_id, run_id, params, opts)
        if isinstance(claimed, dict):
            return _reply_error(claimed, stream)
        record, continuation = claimed
        try:
            job = self._open(
                record.data,
                record.meta.get("request") or {},
                opts,
                continuation=continuation,
                cursor=record.meta.get("cursor"),
            )
        except BaseException as exc:
            self._unsubmit(record)
            if isinstance(exc, UpstreamHTTPError):
                return _reply_error(exc.error, stream)
            if isinstance(exc, UpstreamBroken):
                return _reply_error(_broken_error(exc), stream)
            raise
        return self._launch(job, stream, [])

    def _claim_continuation(
        self, tx: Tx, thread_id: str, run_id: str, params: JSON, opts: CallOptions
    ) -> tuple[Record, JSON] | JSON:
        """Move ``requires_action → queued`` for this submit, or the error to answer."""
        record = tx.get("run", run_id)
        if record is None or record.data.get("thread_id") != thread_id:
            return _error("InvalidParameter", o.not_found_message("run"))
        if lapsed(record, tx.now_ms()):
            record = expire_run(tx, record, _LOST_ON_CANCEL)
        status = record.data["status"]
        if status != "requires_action":
            return _error("InvalidParameter", o.not_requires_action_message(status))
        pending = record.meta.get("pending") or []
        outputs = o.match_tool_outputs([c["id"] for c in pending], params.get("tool_outputs"))
        if isinstance(outputs, str):
            return _error("InvalidParameter", outputs)
        step = tx.get("step", record.meta.get("tool_step_id") or "")
        if step is None:
            return _error("InvalidParameter", o.not_found_message("run"))
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
        """Let non-streamed runs finish, up to ``timeout`` s; expire those still running."""
        deadline = time.monotonic() + timeout
        with self._background_lock:
            workers = dict(self._background)
        for worker in workers.values():
            worker.join(max(0.0, deadline - time.monotonic()))
        for run_id, worker in workers.items():
            if not worker.is_alive():
                continue
            with contextlib.suppress(StoreError), self.store.transaction() as tx:
                record = tx.get("run", run_id)
                if record is not None and record.data["status"] in lifecycle.DRIVEN:
                    expire_run(tx, record, _EXITED.format(timeout=timeout))
            job = self.owners.job(run_id)
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


atexit.register(_finish_all_background)


def _typed(items: list[tuple[str, Any]]) -> list[tuple[str | None, Any]]:
    """Stream items as the caller gets them: ``status_code`` 200 on each payload, then typed.

    Text deltas come typed from the translator already (its ``text_delta`` builder).
    """
    for _, payload in items:
        if payload.__class__ is dict:
            payload["status_code"] = 200
    return [convert_stream_item(event, payload) for event, payload in items]


def _with_terminal(out: list[tuple[str, Any]], stored: JSON) -> list[tuple[str, Any]]:
    """``out`` with its terminal run event replaced by the stored run's own."""
    kept = [(event, payload) for event, payload in out if event not in _TERMINAL_EVENTS]
    return [*kept, (f"thread.run.{stored['status']}", dict(stored))]


def _json_body_events(upstream: UpstreamStream) -> Iterator[JSON]:
    """A JSON body where a stream was expected, as events (DashScope's HTTP-200 rate limit)."""
    body = next(upstream.events())["body"]
    if body.get("object") == "response" and body.get("status") == "failed":
        yield {"type": "response.created", "response": body}
        yield {"type": "response.failed", "response": body}
        return
    detail = (body.get("error") or {}) if isinstance(body.get("error"), dict) else {}
    raise UpstreamBroken(
        str(detail.get("code") or body.get("code") or "invalid_stream"),
        str(
            detail.get("message")
            or body.get("message")
            or "the Responses API answered JSON where an event stream was expected"
        ),
    )


def _run_fields(assistant: JSON, params: JSON) -> JSON:
    """Model, instructions, tools and sampling: the run's overrides, else the assistant's."""
    fields: JSON = {
        "model": params.get("model") or assistant.get("model"),
        "instructions": rq.instructions_for(
            assistant, params, params.get("additional_instructions")
        ),
        "tools": params.get("tools") or assistant.get("tools") or [],
        "metadata": params.get("metadata") or {},
    }
    for key in ("top_p", "top_k", "temperature", "max_tokens"):
        value = params.get(key)
        fields[key] = value if value is not None else assistant.get(key)
    return fields


def _lost_previous_response(exc: UpstreamHTTPError) -> bool:
    # (inferred) DashScope does not document its error for an unknown or expired
    # previous_response_id; OpenAI answers 400/404 with code previous_response_not_found.
    text = f"{exc.error.get('code')} {exc.error.get('message')}".lower()
    return exc.status_code in (400, 404) and "previous_response" in text


def _tool_step_id(t: ResponsesTranslator) -> str | None:
    for step in t.steps:
        if step.get("type") == "tool_calls" and step.get("status") == "in_progress":
            return str(step["id"])
    return None


def _driver_fields(run: JSON) -> JSON:
    """The fields of the translator's run snapshot that the driver owns (not ``metadata``)."""
    data = _clean(run)
    data.pop("metadata", None)
    return data


def _clean(payload: JSON) -> JSON:
    """A stored copy of an emitted payload, without the ``status_code`` added for the SDK view."""
    data = dict(payload)
    data.pop("status_code", None)
    return data
