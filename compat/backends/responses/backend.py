"""The ``responses`` backend: Assistant-API objects in a local store, runs on the Responses API.

CRUD on assistants, threads, messages, runs and steps is served from the ``Store``; runs are
driven by ``runs.RunExecutor``. Replies and errors have the Assistant API's shapes (unknown ids:
HTTP 400 ``InvalidParameter``, "The specified thread has been deleted or does not exist.").

A store that fails (unreachable, full, locked) is a failure on the service's side, answered as
the Assistant API answers its own: HTTP 500 ``InternalError``, returned, never raised (see
``store_failed``; every backend method, sync, async and streamed, goes through it).
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import threading
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from compat import _objects as o
from compat._config import Settings
from compat._ids import new_id, now_ms
from compat._log import logger, redact
from compat.backends import JSON, Backend, CallOptions, Reply, error_stream
from compat.backends.responses import request as rq
from compat.backends.responses.runs import RunExecutor
from compat.errors import StoreError
from compat.store import Record, Store, default_store_path, open_store

__all__ = ["ResponsesBackend", "store_failed"]

_log = logger(__name__)
_C = TypeVar("_C", bound=type)


def ok(obj: JSON) -> JSON:
    """A successful reply: the object plus ``status_code`` and a ``request_id``."""
    obj["status_code"] = 200
    obj["request_id"] = new_id("req")[4:]
    return obj


def error(status_code: int, code: str, message: str) -> JSON:
    return {
        "status_code": status_code,
        "code": code,
        "message": message,
        "request_id": new_id("req")[4:],
    }


def not_found(thing: str) -> JSON:
    return error(400, "InvalidParameter", o.not_found_message(thing))


def _spec(settings: Settings) -> str:
    return settings.store or str(default_store_path())


def store_failed(exc: StoreError) -> JSON:
    """What a call answers when compat's store fails: the Assistant API's own server failure."""
    return error(500, "InternalError", f"compat's store failed: {exc}")


def _answered(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` answering a StoreError as ``store_failed`` (as a stream's one item if streamed),
    whether it is raised by the call or by the awaitable the call returns (``compat.aio``)."""

    @functools.wraps(method)
    def call(self: Any, *args: Any) -> Any:
        streamed = any(isinstance(arg, dict) and arg.get("stream") for arg in args)
        try:
            reply = method(self, *args)
        except StoreError as exc:
            return _failed(method.__name__, exc, streamed)
        if inspect.isawaitable(reply):
            return _awaited_or_failed(method.__name__, reply, streamed)
        return reply

    return call


async def _awaited_or_failed(name: str, reply: Awaitable[Any], streamed: bool) -> Any:
    try:
        return await reply
    except StoreError as exc:
        return _failed(name, exc, streamed)


def _failed(name: str, exc: StoreError, streamed: bool) -> Reply:
    _log.warning("%s: compat's store failed: %s", name, redact(str(exc)))
    err = store_failed(exc)
    return error_stream(err) if streamed else err


def _store_failures_answered(cls: _C) -> _C:
    """Wrap every method of the ``Backend`` protocol in ``_answered``."""
    for name, member in vars(Backend).items():
        if callable(member) and not name.startswith("_"):
            setattr(cls, name, _answered(getattr(cls, name)))
    return cls


def _page(store: Store, kind: Any, parent_id: str | None, query: JSON) -> JSON:
    """A list reply with the Assistant API's checks (the emulator's ``paginate`` has the same)."""
    limit = 20 if query.get("limit") is None else query["limit"]
    if not isinstance(limit, int) or not 1 <= limit <= 100:
        return error(400, "InvalidParameter", o.LIMIT_MESSAGE)
    order = query.get("order") or "desc"
    if order not in ("asc", "desc"):
        return error(400, "InvalidParameter", o.ORDER_MESSAGE)
    parent_key = {"message": "thread_id", "run": "thread_id", "step": "run_id"}.get(kind)
    for cursor in (query.get("after"), query.get("before")):
        if cursor is None:
            continue
        record = store.get(kind, cursor)
        if record is None or (parent_key and record.data.get(parent_key) != parent_id):
            return not_found(kind)
    page = store.list(
        kind,
        parent_id=parent_id,
        limit=limit,
        order=order,
        after=query.get("after"),
        before=query.get("before"),
    )
    return ok(
        o.list_object(
            page.data, has_more=page.has_more, first_id=page.first_id, last_id=page.last_id
        )
    )


@_store_failures_answered
class ResponsesBackend:
    """Serves every facade method from the store and DashScope's Responses API."""

    name = "responses"

    def __init__(self) -> None:
        self._stores: dict[str, Store] = {}
        self._lock = threading.Lock()
        self._executors: dict[str, RunExecutor] = {}

    # -- plumbing ---------------------------------------------------------------------------
    def store(self, opts: CallOptions) -> Store:
        spec = _spec(opts.settings)
        with self._lock:
            store = self._stores.get(spec)
            if store is None:
                store = self._stores[spec] = open_store(spec)
        return store

    def opened_store(self, settings: Settings) -> Store | None:
        """The store ``settings`` name if a call opened it already (``compat.aio``)."""
        return self._stores.get(_spec(settings))

    def executor(self, opts: CallOptions) -> RunExecutor:
        store = self.store(opts)
        key = opts.settings.store or "default"
        with self._lock:
            executor = self._executors.get(key)
            if executor is None or executor.store is not store:
                executor = self._executors[key] = RunExecutor(store)
        return executor

    # -- assistants -------------------------------------------------------------------------
    def create_assistant(self, params: JSON, opts: CallOptions) -> JSON:
        refusal = _refusal(params)
        if refusal is not None:
            return refusal
        body = o.assistant_body(params)
        obj = o.assistant_object(new_id("asst"), now_ms(), body)
        self.store(opts).put("assistant", obj)
        return ok(obj)

    def retrieve_assistant(self, assistant_id: str, opts: CallOptions) -> JSON:
        record = self.store(opts).get("assistant", assistant_id)
        return ok(record.data) if record else not_found("assistant")

    def list_assistants(self, query: JSON, opts: CallOptions) -> JSON:
        return _page(self.store(opts), "assistant", None, query)

    def update_assistant(self, assistant_id: str, params: JSON, opts: CallOptions) -> JSON:
        refusal = _refusal(params)
        if refusal is not None:
            return refusal
        body = o.assistant_body(params)
        record = self.store(opts).update(
            "assistant", assistant_id, lambda r: Record(o.apply_update(r.data, body), r.meta)
        )
        return ok(record.data) if record else not_found("assistant")

    def delete_assistant(self, assistant_id: str, opts: CallOptions) -> JSON:
        if not self.store(opts).delete("assistant", assistant_id):
            return not_found("assistant")
        return ok(o.delete_response(assistant_id, "assistant"))

    # -- threads ----------------------------------------------------------------------------
    def create_thread(self, params: JSON, opts: CallOptions) -> JSON:
        refusal = _refusal(params)
        if refusal is not None:
            return refusal
        thread, items = self._new_thread(params)
        self.store(opts).put_many(items)
        return ok(thread)

    def _new_thread(self, params: JSON) -> tuple[JSON, list[Any]]:
        created = now_ms()
        thread = o.thread_object(new_id("thread"), created, params.get("metadata"))
        items: list[Any] = [("thread", thread, {"last_response_id": None})]
        for message in params.get("messages") or ():
            items.append(("message", self._new_message(thread["id"], message, created), {}))
        return thread, items

    @staticmethod
    def _new_message(thread_id: str, params: JSON, created_at: int | None = None) -> JSON:
        return o.message_object(
            new_id("msg"),
            created_at or now_ms(),
            thread_id,
            role=params.get("role") or "user",
            text=str(params.get("content") or ""),
            file_ids=params.get("file_ids"),
            metadata=params.get("metadata"),
        )

    def retrieve_thread(self, thread_id: str, opts: CallOptions) -> JSON:
        record = self._read_thread(thread_id, opts)
        return ok(record.data) if record else not_found("thread")

    def _read_thread(self, thread_id: str, opts: CallOptions) -> Record | None:
        """The thread, its orphaned run (if any) reaped first: its message then reads as left."""
        record = self.store(opts).get("thread", thread_id)
        if record is not None:
            self.executor(opts).owners.reap_thread(record)
        return record

    def update_thread(self, thread_id: str, params: JSON, opts: CallOptions) -> JSON:
        metadata = params.get("metadata")
        record = self.store(opts).update(
            "thread",
            thread_id,
            lambda r: Record(o.apply_update(r.data, {"metadata": metadata}), r.meta),
        )
        return ok(record.data) if record else not_found("thread")

    def delete_thread(self, thread_id: str, opts: CallOptions) -> JSON:
        executor = self.executor(opts)
        with executor.store.transaction() as tx:
            if tx.get("thread", thread_id) is None:
                return not_found("thread")
            # Its active run is cancelled first, in the same transaction: its driver finds the
            # run gone and writes nothing back, so no record of the thread survives.
            cancelled = executor.cancel_thread_runs(tx, thread_id)
            tx.delete("thread", thread_id)
        executor.stop_local(cancelled)
        return ok(o.delete_response(thread_id, "thread"))

    # -- messages ---------------------------------------------------------------------------
    def create_message(self, thread_id: str, params: JSON, opts: CallOptions) -> JSON:
        refusal = _refusal(params)
        if refusal is not None:
            return refusal
        store = self.store(opts)
        if store.get("thread", thread_id) is None:
            return not_found("thread")
        message = self._new_message(thread_id, params)
        store.put("message", message, {})
        return ok(message)

    def retrieve_message(self, thread_id: str, message_id: str, opts: CallOptions) -> JSON:
        if self._read_thread(thread_id, opts) is None:
            return not_found("thread")
        record = self.store(opts).get("message", message_id)
        if record is None or record.data.get("thread_id") != thread_id:
            return not_found("message")
        return ok(record.data)

    def list_messages(self, thread_id: str, query: JSON, opts: CallOptions) -> JSON:
        if self._read_thread(thread_id, opts) is None:
            return not_found("thread")
        return _page(self.store(opts), "message", thread_id, query)

    def update_message(
        self, thread_id: str, message_id: str, params: JSON, opts: CallOptions
    ) -> JSON:
        store = self.store(opts)
        if store.get("thread", thread_id) is None:
            return not_found("thread")
        return _update_owned(store, "message", message_id, thread_id, params)

    # -- runs -------------------------------------------------------------------------------
    def create_run(self, thread_id: str, params: JSON, opts: CallOptions) -> Reply:
        refusal = _refusal(params)
        if refusal is not None:
            return _as_reply(refusal, params)
        return self.executor(opts).start(thread_id, params, opts)

    def create_thread_and_run(self, params: JSON, opts: CallOptions) -> Reply:
        refusal = _refusal(params) or _refusal(params.get("thread") or {})
        if refusal is not None:
            return _as_reply(refusal, params)
        store = self.store(opts)
        if store.get("assistant", params["assistant_id"]) is None:
            return _as_reply(not_found("assistant"), params)
        thread, items = self._new_thread(params.get("thread") or {})
        store.put_many(items)
        try:
            return self.executor(opts).start(thread["id"], params, opts, created_thread=thread)
        except StoreError:
            # Nothing the failed call created survives it, if the store takes the delete.
            with contextlib.suppress(StoreError):
                store.delete("thread", thread["id"])
            raise

    def retrieve_run(self, thread_id: str, run_id: str, opts: CallOptions) -> JSON:
        run = self.executor(opts).read_run(thread_id, run_id)
        return ok(run) if run else not_found("run")

    def list_runs(self, thread_id: str, query: JSON, opts: CallOptions) -> JSON:
        store = self.store(opts)
        if store.get("thread", thread_id) is None:
            return not_found("thread")
        self.executor(opts).owners.reap_orphans(thread_id)
        return _page(store, "run", thread_id, query)

    def update_run(self, thread_id: str, run_id: str, params: JSON, opts: CallOptions) -> JSON:
        return _update_owned(self.store(opts), "run", run_id, thread_id, params)

    def cancel_run(self, thread_id: str, run_id: str, opts: CallOptions) -> JSON:
        return self.executor(opts).cancel(thread_id, run_id)

    def submit_tool_outputs(
        self, thread_id: str, run_id: str, params: JSON, opts: CallOptions
    ) -> Reply:
        return self.executor(opts).submit_tool_outputs(thread_id, run_id, params, opts)

    def wait_run(
        self, thread_id: str, run_id: str, timeout_seconds: float, opts: CallOptions
    ) -> Any:
        executor = self.executor(opts)
        if opts.asynchronous:
            return _awaited(executor.await_run(thread_id, run_id, timeout_seconds))
        run = executor.wait(thread_id, run_id, timeout_seconds)
        return ok(run) if run else not_found("run")

    # -- steps ------------------------------------------------------------------------------
    def list_steps(self, thread_id: str, run_id: str, query: JSON, opts: CallOptions) -> JSON:
        store = self.store(opts)
        run = store.get("run", run_id)
        if run is None or run.data.get("thread_id") != thread_id:
            return not_found("run")
        return _page(store, "step", run_id, query)

    def retrieve_step(self, thread_id: str, run_id: str, step_id: str, opts: CallOptions) -> JSON:
        store = self.store(opts)
        record = store.get("step", step_id)
        if (
            record is None
            or record.data.get("run_id") != run_id
            or record.data.get("thread_id") != thread_id
        ):
            return not_found("step")
        return ok(record.data)


def _update_owned(store: Store, kind: Any, object_id: str, thread_id: str, params: JSON) -> JSON:
    """Update the metadata of a message or run, if it belongs to ``thread_id``."""
    body = {"metadata": params.get("metadata")}

    def apply(r: Record) -> Record | None:
        if r.data.get("thread_id") != thread_id:
            return None
        return Record(o.apply_update(r.data, body), r.meta)

    record = store.update(kind, object_id, apply)
    if record is None or record.data.get("thread_id") != thread_id:
        return not_found(kind)
    return ok(record.data)


def _refusal(params: JSON) -> JSON | None:
    """An error object for tools or parameters the Responses API cannot serve, else None."""
    try:
        if params.get("tools") is not None:
            rq.map_tools(params["tools"])
        rq.check_sampling(params)
        rq.check_files(params)
        for message in params.get("messages") or ():
            rq.check_files(message)
    except rq.Refused as exc:
        return error(400, exc.code, exc.message)
    return None


async def _awaited(waiting: Awaitable[JSON | None]) -> JSON:
    run = await waiting
    return ok(run) if run else not_found("run")


def _as_reply(err: JSON, params: JSON) -> Reply:
    """An error as the reply: the object, or in a stream the single ``(None, {...})`` item."""
    if params.get("stream"):
        return error_stream(err)
    return err
