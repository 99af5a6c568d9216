"""The ``shadow`` backend: serve from ``assistants``, repeat each run on ``responses``, compare.

Every call is answered by the assistants backend (what dashscope gives, unchanged). Each run is
then repeated, in the background, on the responses backend against a shadow copy of the thread,
and the two outputs are compared after normalisation (``compat._shadow_compare``); each compared
run is one JSON line in ``COMPAT_SHADOW_REPORT`` (default ``compat-shadow.jsonl`` in the current
directory); ``python -m compat shadow-report FILE`` summarises it. A program that ends normally
waits up to a minute for the shadow runs still queued (the primary's answers are all given by then).

The shadow side never slows, fails or changes the primary side: its work goes to a bounded
queue consumed by one daemon thread (a full queue drops the work and counts it), every exception
there is caught and written to the report, and a primary stream is passed through as it is read
(its items are recorded as they pass and handed to the queue when it ends).

The shadow copy lives in its own store (``COMPAT_SHADOW_STORE``; default: memory when
``COMPAT_STORE`` is memory, else ``compat-shadow.sqlite3`` beside the store) and keeps the
primary's ids: the shadow thread of a thread has the thread's id (the mapping is the identity, and
a separate store keeps it from colliding with anything). User messages and assistants are mirrored
from the primary (read back from the Assistant API by the worker); the runs' own messages are each
side's own. Tool outputs submitted on the primary are submitted, by position, to the shadow run.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, cast

from compat import _shadow_compare as cmp
from compat._log import logger
from compat.backends import JSON, CallOptions, Reply, StreamItems
from compat.cli.importer import clean, thread_meta
from compat.store import Kind

__all__ = ["REPORT_ENV", "STORE_ENV", "ShadowBackend", "ShadowWorker"]

REPORT_ENV = "COMPAT_SHADOW_REPORT"
STORE_ENV = "COMPAT_SHADOW_STORE"
DEFAULT_REPORT = "compat-shadow.jsonl"
#: Runs waiting for the worker; more are dropped (and counted) rather than slow the primary.
QUEUE_SIZE = 64
#: How long the worker waits for a non-streamed primary run to finish before comparing.
WAIT_SECONDS = 600.0

#: How long a program ending normally waits for the shadow runs still queued.
EXIT_SECONDS = 60.0

_log = logger(__name__)
Job = Callable[[], None]


def write_report(entry: JSON) -> None:
    """Append one line to the report (the path is read per write, so a test can move it)."""
    path = os.environ.get(REPORT_ENV) or DEFAULT_REPORT
    line = json.dumps(dict(entry, time=int(time.time())), ensure_ascii=False, default=str)
    with _report_lock, open(path, "a", encoding="utf-8") as file:
        file.write(line + "\n")


_report_lock = threading.Lock()


class ShadowWorker:
    """A bounded queue of jobs run one at a time by a daemon thread; errors are reported."""

    def __init__(self, maxsize: int = QUEUE_SIZE) -> None:
        self.queue: queue.Queue[tuple[str, Job]] = queue.Queue(maxsize)
        self.dropped = 0
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, what: str, job: Job) -> bool:
        """Queue ``job``; False (and one more dropped) if the queue is full. Never blocks."""
        self._start()
        try:
            self.queue.put_nowait((what, job))
        except queue.Full:
            with self._lock:
                self.dropped += 1
            return False
        return True

    def drain(self, timeout: float) -> bool:
        """Wait until every queued job is done; False if ``timeout`` seconds pass first."""
        with self.queue.all_tasks_done:
            return self.queue.all_tasks_done.wait_for(
                lambda: self.queue.unfinished_tasks == 0, timeout
            )

    def _start(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._work, name="compat-shadow", daemon=True
                )
                self._thread.start()
                atexit.register(self._at_exit)

    def _at_exit(self) -> None:
        """A program that ends normally waits (up to ``EXIT_SECONDS``) for its shadow runs."""
        if not self.drain(EXIT_SECONDS):
            _log.warning("shadow runs still queued at exit were not compared")

    def _work(self) -> None:
        while True:
            what, job = self.queue.get()
            try:
                job()
            except BaseException as exc:  # nothing on the shadow side may escape
                self.report_error(what, exc)
            finally:
                self.queue.task_done()

    def report_error(self, what: str, exc: BaseException) -> None:
        try:
            _log.warning("shadow %s failed: %s: %s", what, type(exc).__name__, exc)
            write_report(
                {
                    "kind": "run" if what.startswith("run") else "mirror",
                    "what": what,
                    "verdict": "error",
                    "differences": [{"kind": "shadow_error", "shadow": f"{type(exc).__name__}"}],
                    "error": f"{type(exc).__name__}: {exc}",
                    "dropped": self.dropped,
                }
            )
        except Exception:  # the report itself cannot be written: the log has it
            _log.warning("shadow report not writable", exc_info=True)


def _is_run_event(event: str | None) -> bool:
    """A ``thread.run.*`` event about the run itself (not one of its steps)."""
    return event is not None and event.startswith("thread.run.") and ".step." not in f"{event}."


def _with_backend(opts: CallOptions, backend: str, store: str | None = None) -> CallOptions:
    settings = replace(opts.settings, backend=backend)
    if store is not None:
        settings = replace(settings, store=store)
    return replace(opts, settings=settings)


def shadow_store_spec(store: str | None) -> str:
    """Where the shadow copies live (module docstring)."""
    chosen = os.environ.get(STORE_ENV)
    if chosen:
        return chosen
    if store == "memory":
        return "memory"
    from compat.store import default_store_path

    primary = Path(store).expanduser() if store else default_store_path()
    return str(primary.with_name("compat-shadow.sqlite3"))


class ShadowBackend:
    """Answers from the assistants backend; repeats runs on the responses backend (docstring)."""

    name = "shadow"

    def __init__(self, maxsize: int = QUEUE_SIZE) -> None:
        from compat.backends.assistants import AssistantsBackend
        from compat.backends.responses.backend import ResponsesBackend

        self.primary = AssistantsBackend()
        self.shadow = ResponsesBackend()
        self.worker = ShadowWorker(maxsize)
        #: primary run id -> (thread id, shadow run id): shadow runs waiting for tool outputs
        self._waiting: dict[str, tuple[str, str]] = {}

    # -- plumbing ---------------------------------------------------------------------------
    def _p(self, opts: CallOptions) -> CallOptions:
        return _with_backend(opts, "assistants")

    def _s(self, opts: CallOptions) -> CallOptions:
        return _with_backend(opts, "responses", shadow_store_spec(opts.settings.store))

    def _later(self, what: str, job: Job) -> None:
        try:
            self.worker.submit(what, job)
        except Exception:  # a queue that cannot even take the job: the primary goes on
            _log.warning("shadow queue failed", exc_info=True)

    def _recorded(self, items: StreamItems, done: Callable[[list[Any]], None]) -> StreamItems:
        """``items`` passed through as read; ``done(recording)`` queued when they end."""
        recording: list[Any] = []
        try:
            for item in items:
                recording.append(item)
                yield item
        finally:
            try:
                done(recording)
            finally:
                close = getattr(items, "close", None)
                if close is not None:
                    close()

    # -- mirroring (worker thread) ------------------------------------------------------------
    def _mirror_assistant(self, assistant_id: str, opts: CallOptions) -> None:
        store = self.shadow.store(self._s(opts))
        if store.get("assistant", assistant_id) is None:
            reply = self.primary.retrieve_assistant(assistant_id, self._p(opts))
            if reply.get("status_code") == 200:
                store.put("assistant", clean(reply), {})

    def _mirror_thread(self, thread_id: str, opts: CallOptions, until: int | None = None) -> None:
        """Copy the thread and its user messages (up to ``until`` ms) not yet in the shadow."""
        store = self.shadow.store(self._s(opts))
        popts = self._p(opts)
        if store.get("thread", thread_id) is None:
            reply = self.primary.retrieve_thread(thread_id, popts)
            if reply.get("status_code") != 200:
                return
            store.put("thread", clean(reply), thread_meta("shadow"))
        after: str | None = None
        while True:
            query: JSON = {"limit": 100, "order": "asc"}
            if after:
                query["after"] = after
            page = self.primary.list_messages(thread_id, query, popts)
            data = page.get("data") or []
            for message in data:
                if message.get("run_id") or (until is not None and message["created_at"] > until):
                    continue
                if store.get("message", message["id"]) is None:
                    store.put("message", message, {})
            if not page.get("has_more") or not data:
                return
            after = data[-1]["id"]

    def _forget(self, kind: Kind, object_id: str, opts: CallOptions) -> None:
        self.shadow.store(self._s(opts)).delete(kind, object_id)

    # -- runs (worker thread) ----------------------------------------------------------------
    def _shadow_run(
        self,
        thread_id: str,
        params: JSON,
        primary: JSON,
        primary_run: JSON,
        opts: CallOptions,
        waiting_key: str | None = None,
    ) -> None:
        sopts = self._s(opts)
        if waiting_key is None:
            self._mirror_assistant(params["assistant_id"], opts)
            self._mirror_thread(thread_id, opts, primary_run.get("created_at"))
            try:
                reply = self.shadow.create_run(thread_id, dict(params, stream=True), sopts)
            except Exception as exc:  # the responses side refused to start: that is a finding
                _log.warning("shadow run on %s refused: %s: %s", thread_id, type(exc).__name__, exc)
                reply = {"code": type(exc).__name__, "message": str(exc)}
        else:
            if waiting_key not in self._waiting:
                return  # no shadow run waits for these outputs (dropped, or it did not ask)
            thread_id, waiting_run = self._waiting.pop(waiting_key)
            reply = self._submit_shadow(thread_id, waiting_run, params, sopts)
        # sync calls only (compat.aio runs the shadow backend's sync calls in threads)
        items = list(cast(StreamItems, reply)) if not isinstance(reply, dict) else [(None, reply)]
        shadow = cmp.normalise(items)
        shadow_runs = [cmp.plain(d) for e, d in items if _is_run_event(e)]
        shadow_run_id: str | None = shadow_runs[-1].get("id") if shadow_runs else None
        if shadow["status"] == "requires_action" and shadow_run_id:
            if primary["status"] == "requires_action" and primary_run.get("id"):
                self._waiting[primary_run["id"]] = (thread_id, shadow_run_id)
            else:  # the primary went on: free the shadow thread for the next run
                self.shadow.cancel_run(thread_id, shadow_run_id, sopts)
        differences = cmp.compare(primary, shadow)
        write_report(
            {
                "kind": "run",
                "thread_id": thread_id,
                "run_id": primary_run.get("id"),
                "shadow_run_id": shadow_run_id,
                "continuation": waiting_key is not None,
                "verdict": "different" if differences else "identical",
                "differences": differences,
                "dropped": self.worker.dropped,
            }
        )

    def _submit_shadow(
        self, thread_id: str, run_id: str, params: JSON, sopts: CallOptions
    ) -> Reply:
        """Submit the primary's tool outputs to the shadow run, matched by position."""
        run = self.shadow.retrieve_run(thread_id, run_id, sopts)
        calls = ((run.get("required_action") or {}).get("submit_tool_outputs") or {}).get(
            "tool_calls"
        ) or []
        outputs = [
            dict(output, tool_call_id=call["id"])
            for call, output in zip(calls, params.get("tool_outputs") or (), strict=False)
        ]
        return self.shadow.submit_tool_outputs(
            thread_id, run_id, dict(params, tool_outputs=outputs, stream=True), sopts
        )

    def _after_stream(
        self, thread_id: str | None, params: JSON, opts: CallOptions, key: str | None = None
    ) -> Callable[[list[Any]], None]:
        def done(recording: list[Any]) -> None:
            def job() -> None:
                primary = cmp.normalise(recording)
                if thread_id is None:
                    # create_thread_and_run: the shadow thread is a mirror, its run a plain run
                    primary["events"] = [e for e in primary["events"] if e != "thread.created"]
                runs = [cmp.plain(d) for e, d in recording if _is_run_event(e)]
                run = runs[0] if runs else {}
                target = thread_id or run.get("thread_id")
                if not target:  # the primary call failed before any run existed
                    return
                self._shadow_run(target, params, primary, run, opts, key)

            self._later("run", job)

        return done

    def _after_call(
        self, thread_id: str | None, params: JSON, reply: JSON, opts: CallOptions, key: str | None
    ) -> None:
        """A non-streamed run: wait for it on the primary (worker), then compare outcomes."""
        if reply.get("status_code") != 200 or not reply.get("id"):
            return
        target = thread_id or reply["thread_id"]

        def job() -> None:
            popts = self._p(opts)
            run = self.primary.wait_run(target, reply["id"], WAIT_SECONDS, popts)
            page = self.primary.list_messages(target, {"limit": 100, "order": "asc"}, popts)
            messages = [m for m in page.get("data") or () if m.get("run_id") == reply["id"]]
            steps = self.primary.list_steps(target, reply["id"], {"order": "asc"}, popts)
            primary = cmp.outcome(run, messages, steps.get("data") or ())
            self._shadow_run(target, params, primary, reply, opts, key)

        self._later("run", job)

    def _run_reply(
        self, reply: Reply, thread_id: str | None, params: JSON, opts: CallOptions, key: str | None
    ) -> Reply:
        if isinstance(reply, dict):
            self._after_call(thread_id, params, reply, opts, key)
            return reply
        stream = cast(StreamItems, reply)  # sync calls only, as above
        return self._recorded(stream, self._after_stream(thread_id, params, opts, key))

    # -- runs -------------------------------------------------------------------------------
    def create_run(self, thread_id: str, params: JSON, opts: CallOptions) -> Reply:
        reply = self.primary.create_run(thread_id, params, self._p(opts))
        return self._run_reply(reply, thread_id, params, opts, None)

    def create_thread_and_run(self, params: JSON, opts: CallOptions) -> Reply:
        reply = self.primary.create_thread_and_run(params, self._p(opts))
        run_params = {k: v for k, v in params.items() if k != "thread"}
        return self._run_reply(reply, None, run_params, opts, None)

    def submit_tool_outputs(
        self, thread_id: str, run_id: str, params: JSON, opts: CallOptions
    ) -> Reply:
        reply = self.primary.submit_tool_outputs(thread_id, run_id, params, self._p(opts))
        return self._run_reply(reply, thread_id, params, opts, run_id)

    # -- mirrored writes --------------------------------------------------------------------
    def create_assistant(self, params: JSON, opts: CallOptions) -> JSON:
        reply = self.primary.create_assistant(params, self._p(opts))
        if reply.get("status_code") == 200:
            self._later("mirror", lambda: self._mirror_assistant(reply["id"], opts))
        return reply

    def update_assistant(self, assistant_id: str, params: JSON, opts: CallOptions) -> JSON:
        reply = self.primary.update_assistant(assistant_id, params, self._p(opts))
        if reply.get("status_code") == 200:
            data = clean(reply)
            self._later("mirror", lambda: self.shadow.store(self._s(opts)).put("assistant", data))
        return reply

    def delete_assistant(self, assistant_id: str, opts: CallOptions) -> JSON:
        reply = self.primary.delete_assistant(assistant_id, self._p(opts))
        self._later("mirror", lambda: self._forget("assistant", assistant_id, opts))
        return reply

    def create_thread(self, params: JSON, opts: CallOptions) -> JSON:
        reply = self.primary.create_thread(params, self._p(opts))
        if reply.get("status_code") == 200:
            self._later("mirror", lambda: self._mirror_thread(reply["id"], opts))
        return reply

    def delete_thread(self, thread_id: str, opts: CallOptions) -> JSON:
        reply = self.primary.delete_thread(thread_id, self._p(opts))
        self._later("mirror", lambda: self._forget("thread", thread_id, opts))
        return reply

    def create_message(self, thread_id: str, params: JSON, opts: CallOptions) -> JSON:
        reply = self.primary.create_message(thread_id, params, self._p(opts))
        if reply.get("status_code") == 200:
            self._later("mirror", lambda: self._mirror_thread(thread_id, opts))
        return reply

    # -- served by the primary only -----------------------------------------------------------
    def __getattr__(self, name: str) -> Any:
        """Reads, updates of metadata, cancels, waits and steps: the primary's, unchanged."""
        if name.startswith("_"):
            raise AttributeError(name)
        method = getattr(self.primary, name)

        def call(*args: Any) -> Any:
            *rest, opts = args
            return method(*rest, self._p(opts))

        return call
