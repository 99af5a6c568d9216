"""Runs on the Responses backend: start, drive, store, cancel, continue after tool outputs.

One run is one or more Responses (a function-call round trip continues the same run with a new
response). ``RunExecutor`` opens the upstream stream eagerly (so HTTP errors come back from the
call, as dashscope returns them), then either hands the translated events to the caller
(streamed runs) or drives them in a background thread (non-streamed runs).

The store is written at lifecycle points only: run created, message completed, run finished.
Which process drives a run, orphaned runs and the thread's active-run claim are ``ownership``'s.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from compat import _objects as o
from compat._ids import new_id, now_ms
from compat.backends import JSON, CallOptions, Reply, error_stream
from compat.backends.responses import request as rq
from compat.backends.responses.history import History, chain_cursor
from compat.backends.responses.ownership import ACTIVE, WORKER, RunOwnership
from compat.backends.responses.translate import ResponsesTranslator
from compat.backends.responses.upstream import (
    UpstreamBroken,
    UpstreamHTTPError,
    UpstreamStream,
    mapped_errors,
    upstream_for,
)
from compat.errors import TimeoutException, TranslationError
from compat.store import Record, Store
from compat.types import ThreadMessageDelta, convert_stream_item

__all__ = ["RunExecutor"]

#: The statuses ``Runs.wait`` returns at (requires_action included: the user must act).
_FINAL = frozenset({"completed", "failed", "cancelled", "expired", "requires_action"})


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


@dataclass
class _Job:
    """What one response of a run needs: the request, the translator and the open stream."""

    run: JSON
    request: JSON
    translator: ResponsesTranslator
    upstream: UpstreamStream | None = None
    #: set by Runs.cancel from another thread; a plain flag, read once per event
    cancelled: bool = False


class RunExecutor:
    """Starts and drives runs against one store."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.owners = RunOwnership(store)

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

        thread = store.get("thread", thread_id)
        if thread is None:
            return refuse(_error("InvalidParameter", o.not_found_message("thread")))
        assistant_record = store.get("assistant", params["assistant_id"])
        if assistant_record is None:
            return refuse(_error("InvalidParameter", o.not_found_message("assistant")))
        assistant = assistant_record.data

        run = o.run_object(
            new_id("run"), now_ms(), thread_id, assistant["id"], _run_fields(assistant, params)
        )
        busy = self.owners.claim_thread(thread_id, run["id"])
        if busy is not None:
            return refuse(_error("InvalidParameter", busy))
        try:
            history = History(store, thread_id, opts.settings.history)
            job = self._open(run, history, params, opts)
        except UpstreamHTTPError as exc:
            self.owners.release_thread(thread_id, run["id"])
            return refuse(exc.error)
        except BaseException:
            self.owners.release_thread(thread_id, run["id"])
            if created_thread is not None:
                store.delete("thread", created_thread["id"])
            raise
        meta: JSON = {
            "request": {"extra_body": params.get("extra_body")},
            "response_ids": [],
            "usage": None,
            "worker": WORKER,
        }
        self._launch_pending(job)
        store.put("run", run, meta)
        prefix = (
            [("thread.created", dict(created_thread, status_code=200))] if created_thread else []
        )
        return self._launch(job, stream, prefix)

    def _open(
        self,
        run: JSON,
        history: History,
        params: JSON,
        opts: CallOptions,
        *,
        continuation: JSON | None = None,
    ) -> _Job:
        """Build the request for the run's next response and open the upstream stream."""
        upstream = upstream_for(opts.settings, opts.api_key)
        tools = rq.map_tools(run["tools"])
        # run["instructions"] is already the effective text (override or assistant's, plus
        # additional_instructions); the Responses API needs it on every request of the run.
        instructions = run["instructions"] or None
        translator_args: JSON = {}
        if continuation is not None:
            translator_args = {
                "emit_run_start": False,
                "continuation_step": continuation["step"],
                "tool_outputs": continuation["outputs"],
                "prior_usage": continuation["usage"],
            }

        def request_for(previous: str | None, items: list[JSON]) -> JSON:
            return rq.build_request(
                run,
                instructions=instructions,
                tools=tools,
                input_items=items,
                previous_response_id=previous,
                sampling=run,
                extra_body=params.get("extra_body"),
            )

        previous, items = history.input_for(continuation)
        request = request_for(previous, items)
        timeout = opts.extra.get("request_timeout")
        try:
            opened = upstream.stream(request, timeout)
        except UpstreamHTTPError as exc:
            if previous is None or not _lost_previous_response(exc):
                raise
            # The chained response expired or is unknown upstream: resend the thread instead.
            request = request_for(*history.replay_input(continuation))
            opened = upstream.stream(request, timeout)
        translator = ResponsesTranslator(
            run,
            new_id=new_id,
            clock=now_ms,
            text_delta=ThreadMessageDelta.of_text,
            **translator_args,
        )
        return _Job(run=run, request=request, translator=translator, upstream=opened)

    # -- driving ----------------------------------------------------------------------------
    def _launch_pending(self, job: _Job) -> None:
        """Count the run as driven here before it is stored, so no reader takes it for an orphan."""
        self.owners.drive(job.run["id"], job)

    def _launch(self, job: _Job, stream: bool, prefix: list[tuple[str, JSON]]) -> Reply:
        if stream:
            items = self._stream(job, prefix)
            # Run it to its first (empty) yield: from there on, closing the stream or merely
            # dropping it runs _stream's cleanup, so the run is stored cancelled either way.
            next(items)
            return items  # type: ignore[return-value]
        worker = threading.Thread(
            target=self._drain, args=(job,), name=f"compat-run-{job.run['id']}", daemon=True
        )
        worker.start()
        return _ok(dict(job.run))

    def _drain(self, job: _Job) -> None:
        for _ in self._stream(job, []):
            pass

    def _stream(
        self, job: _Job, prefix: list[tuple[str, JSON]]
    ) -> Iterator[tuple[str | None, Any] | None]:
        """The run's events, typed (``types.convert_stream_item``); the store kept in step."""
        translator = job.translator
        feed = translator.feed
        upstream = job.upstream
        assert upstream is not None
        finished = False
        try:
            yield None  # see _launch
            yield from _typed(prefix)
            try:
                with mapped_errors():
                    if upstream.is_event_stream:
                        events = upstream.events()
                    else:
                        events = _json_body_events(upstream)
                    for event in events:
                        out = feed(event)
                        if not out:
                            continue
                        if len(out) == 1 and out[0][0] == "thread.message.delta":
                            # The hot path: the translator built the typed delta itself.
                            yield out[0]
                        else:
                            self._persist_progress(job, out)
                            yield from _typed(out)
                        if job.cancelled:
                            break
                out = translator.cancel() if job.cancelled else translator.finish()
            except UpstreamBroken as exc:
                out = translator.fail(exc.code, exc.message)
            except TranslationError as exc:
                out = translator.fail("invalid_stream", str(exc))
            self._persist_final(job)
            finished = True
            yield from _typed(out)
        except GeneratorExit:
            # The consumer closed the stream (or dropped it): the run is cancelled.
            if not finished:
                translator.cancel()
                self._persist_final(job)
                finished = True
            raise
        finally:
            upstream.close()
            if not finished:
                translator.fail("server_error", "the run was interrupted")
                self._persist_final(job)
            self.owners.done(job.run["id"])

    def _persist_progress(self, job: _Job, out: list[tuple[str, JSON]]) -> None:
        """Store completed messages (and their steps) as they complete."""
        items: list[Any] = []
        for event, payload in out:
            if event in ("thread.message.completed", "thread.message.incomplete"):
                items.append(("message", _clean(payload), {}))
            elif event.startswith("thread.run.step.") and event != "thread.run.step.delta":
                items.append(("step", _clean(payload), None))
            elif event == "thread.run.in_progress":
                items.append(("run", _clean(payload), None))
        if items:
            self.store.put_many(items)

    def _persist_final(self, job: _Job) -> None:
        """Store the run's end state, its messages and steps, and the thread's chain."""
        t = job.translator
        run = _clean(t.run)
        items: list[Any] = [("message", _clean(m), {}) for m in t.messages]
        items += [("step", _clean(s), None) for s in t.steps]
        record = self.store.get("run", run["id"])
        meta = dict(record.meta) if record else {}
        if t.response_id:
            meta["response_ids"] = [*meta.get("response_ids", []), t.response_id]
        meta["usage"] = run.get("usage")
        meta["pending"] = list(t.pending_tool_calls)
        meta["tool_step_id"] = _tool_step_id(t)
        items.append(("run", run, meta))
        self.store.put_many(items)
        thread_id = run["thread_id"]
        response_id = t.response_id if run["status"] in ("completed", "requires_action") else None
        cursor = chain_cursor(self.store, thread_id) if response_id else None

        def after_run(r: Record) -> Record:
            meta = dict(r.meta)
            if run["status"] != "requires_action" and meta.get("active_run_id") == run["id"]:
                meta["active_run_id"] = None
            if response_id:
                meta.update(last_response_id=response_id, chain_cursor=cursor)
            return Record(r.data, meta)

        self.store.update("thread", thread_id, after_run)

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
        record = self.store.get("run", run_id)
        if record is None or record.data.get("thread_id") != thread_id:
            return _error("InvalidParameter", o.not_found_message("run"))
        record = self.owners.reap(record)
        status = record.data["status"]
        if status not in ACTIVE:
            return _error("InvalidParameter", o.cannot_cancel_message(status))
        job = self.owners.job(run_id)
        if job is not None:
            job.cancelled = True
            data = dict(record.data, status="cancelling")
            self.store.update("run", run_id, lambda r: Record(data, r.meta))
            return _ok(data)
        # requires_action: nobody is driving it, so it is cancelled at once; the reply says
        # "cancelling", as the Assistant API acknowledges every cancel.
        data = dict(record.data, status="cancelled", cancelled_at=now_ms(), required_action=None)
        self.store.update("run", run_id, lambda r: Record(data, r.meta))
        self.owners.release_thread(thread_id, run_id)
        return _ok(dict(data, status="cancelling", cancelled_at=None))

    def submit_tool_outputs(
        self, thread_id: str, run_id: str, params: JSON, opts: CallOptions
    ) -> Reply:
        stream = bool(params.get("stream"))
        record = self.store.get("run", run_id)
        if record is None or record.data.get("thread_id") != thread_id:
            return _reply_error(_error("InvalidParameter", o.not_found_message("run")), stream)
        run = record.data
        if run["status"] != "requires_action":
            return _reply_error(
                _error("InvalidParameter", o.not_requires_action_message(run["status"])), stream
            )
        pending = record.meta.get("pending") or []
        outputs = o.match_tool_outputs([c["id"] for c in pending], params.get("tool_outputs"))
        if isinstance(outputs, str):
            return _reply_error(_error("InvalidParameter", outputs), stream)
        step_record = self.store.get("step", record.meta.get("tool_step_id") or "")
        if step_record is None:
            return _reply_error(_error("InvalidParameter", o.not_found_message("run")), stream)
        continuation = {
            "step": step_record.data,
            "outputs": outputs,
            "usage": record.meta.get("usage"),
            "calls": pending,
            "response_id": (record.meta.get("response_ids") or [None])[-1],
            "rounds": record.meta.get("rounds", []),
        }
        request_meta = record.meta.get("request") or {}
        run = dict(run, status="queued", required_action=None)
        history = History(self.store, thread_id, opts.settings.history)
        try:
            job = self._open(run, history, request_meta, opts, continuation=continuation)
        except UpstreamHTTPError as exc:
            return _reply_error(exc.error, stream)
        meta = dict(record.meta, worker=WORKER, pending=[])
        meta["rounds"] = [*continuation["rounds"], {"calls": pending, "outputs": outputs}]
        self._launch_pending(job)
        self.store.put("run", run, meta)
        return self._launch(job, stream, [])


def _typed(items: list[tuple[str, Any]]) -> list[tuple[str | None, Any]]:
    """Stream items as the caller gets them: ``status_code`` 200 on each payload, then typed.

    Text deltas come typed from the translator already (its ``text_delta`` builder).
    """
    for _, payload in items:
        if payload.__class__ is dict:
            payload["status_code"] = 200
    return [convert_stream_item(event, payload) for event, payload in items]


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


def _clean(payload: JSON) -> JSON:
    """A stored copy of an emitted payload, without the ``status_code`` added for the SDK view."""
    data = dict(payload)
    data.pop("status_code", None)
    return data
