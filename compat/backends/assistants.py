"""The ``assistants`` backend: a pass-through to the dashscope SDK's Assistant API.

Every call goes to the dashscope method of the same name with the caller's arguments; what comes
back (objects, returned HTTP errors) is turned into plain dicts holding exactly the values
dashscope produced, for the facade to type; stream items are typed here, as the seam asks.
dashscope's own exceptions are mapped to ``compat.errors`` in one place (``_mapped_errors``);
HTTP failures are returned by dashscope and so stay returned.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from http import HTTPStatus
from typing import Any

import dashscope as _dashscope
from dashscope.common import error as ds_error

from compat import errors
from compat.backends import JSON, CallOptions, Reply, StreamItems
from compat.types import convert_stream_item

__all__ = ["AssistantsBackend", "to_plain"]

# dashscope's stubs declare its Assistant-API classes without their classmethods; compat uses
# them untyped (their signatures are pinned by tests/unit/test_facade.py instead).
dashscope: Any = _dashscope

# Runs.wait: the statuses it stops at and its polling interval, as in dashscope.
_WAIT_DONE = frozenset({"cancelled", "failed", "completed", "expired", "requires_action"})
_WAIT_INTERVAL = 1.0

# dashscope exception -> compat exception, most specific first.
_ERROR_MAP: tuple[tuple[type[BaseException], type[errors.CompatError]], ...] = (
    (ds_error.InputRequired, errors.InputRequired),
    (ds_error.ModelRequired, errors.ModelRequired),
    (ds_error.InvalidParameter, errors.InvalidParameter),
    (ds_error.AuthenticationError, errors.AuthenticationError),
    (ds_error.TimeoutException, errors.TimeoutException),
)


@contextlib.contextmanager
def _mapped_errors() -> Iterator[None]:
    try:
        yield
    except ds_error.DashScopeException as exc:
        for ds_type, compat_type in _ERROR_MAP:
            if isinstance(exc, ds_type):
                raise compat_type(str(exc)) from exc
        raise errors.DashScopeException(str(exc)) from exc


def to_plain(value: Any) -> Any:
    """A dashscope object (or list/dict of them) as plain JSON-like data.

    Only the attributes the object actually holds are kept, so a field the server did not send
    stays absent, exactly as on the dashscope object.
    """
    if isinstance(value, dict):
        return {k: to_plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [to_plain(v) for v in value]
    if isinstance(value, ds_error.AssistantError):
        return {
            "request_id": getattr(value, "request_id", None),
            "code": getattr(value, "code", None),
            "message": getattr(value, "message", None),
        }
    if hasattr(value, "__dict__") and type(value).__module__.startswith("dashscope"):
        return {k: to_plain(v) for k, v in vars(value).items()}
    return value


def _stream(items: Iterator[tuple[str | None, Any]]) -> StreamItems:
    try:
        with _mapped_errors():
            for event, data in items:
                yield convert_stream_item(event, to_plain(data))
    finally:
        close = getattr(items, "close", None)
        if close is not None:
            close()


class AssistantsBackend:
    """Calls ``dashscope.Assistants/Threads/Messages/Runs/Steps`` and returns plain dicts."""

    name = "assistants"

    def _call(
        self, method: Callable[..., Any], *args: Any, opts: CallOptions, **params: Any
    ) -> Any:
        kwargs = dict(opts.extra)
        kwargs["workspace"] = opts.workspace
        # compat resolves the key and the base URL as dashscope would (in code, then the
        # environment, then dashscope's files) but on every call: dashscope reads the
        # environment once, at its import, so an explicit value is passed each time.
        kwargs["api_key"] = opts.settings.key(opts.api_key)
        base_url = opts.settings.assistants_base_url
        if base_url and "base_address" not in kwargs:
            kwargs["base_address"] = base_url
        with _mapped_errors():
            return method(*args, **params, **kwargs)

    def _one(
        self, method: Callable[..., Any], *args: Any, opts: CallOptions, **params: Any
    ) -> JSON:
        result: JSON = to_plain(self._call(method, *args, opts=opts, **params))
        return result

    def _reply(
        self, method: Callable[..., Any], *args: Any, opts: CallOptions, **params: Any
    ) -> Reply:
        result = self._call(method, *args, opts=opts, **params)
        if params.get("stream"):
            return _stream(result)
        plain: JSON = to_plain(result)
        return plain

    # assistants
    def create_assistant(self, params: JSON, opts: CallOptions) -> JSON:
        return self._one(dashscope.Assistants.create, opts=opts, **params)

    def retrieve_assistant(self, assistant_id: str, opts: CallOptions) -> JSON:
        return self._one(dashscope.Assistants.retrieve, assistant_id, opts=opts)

    def list_assistants(self, query: JSON, opts: CallOptions) -> JSON:
        return self._one(dashscope.Assistants.list, opts=opts, **query)

    def update_assistant(self, assistant_id: str, params: JSON, opts: CallOptions) -> JSON:
        return self._one(dashscope.Assistants.update, assistant_id, opts=opts, **params)

    def delete_assistant(self, assistant_id: str, opts: CallOptions) -> JSON:
        return self._one(dashscope.Assistants.delete, assistant_id, opts=opts)

    # threads
    def create_thread(self, params: JSON, opts: CallOptions) -> JSON:
        return self._one(dashscope.Threads.create, opts=opts, **params)

    def retrieve_thread(self, thread_id: str, opts: CallOptions) -> JSON:
        return self._one(dashscope.Threads.retrieve, thread_id, opts=opts)

    def update_thread(self, thread_id: str, params: JSON, opts: CallOptions) -> JSON:
        return self._one(dashscope.Threads.update, thread_id, opts=opts, **params)

    def delete_thread(self, thread_id: str, opts: CallOptions) -> JSON:
        return self._one(dashscope.Threads.delete, thread_id, opts=opts)

    # messages
    def create_message(self, thread_id: str, params: JSON, opts: CallOptions) -> JSON:
        return self._one(dashscope.Messages.create, thread_id, opts=opts, **params)

    def retrieve_message(self, thread_id: str, message_id: str, opts: CallOptions) -> JSON:
        return self._one(dashscope.Messages.retrieve, message_id, thread_id=thread_id, opts=opts)

    def list_messages(self, thread_id: str, query: JSON, opts: CallOptions) -> JSON:
        return self._one(dashscope.Messages.list, thread_id, opts=opts, **query)

    def update_message(
        self, thread_id: str, message_id: str, params: JSON, opts: CallOptions
    ) -> JSON:
        return self._one(
            dashscope.Messages.update, message_id, thread_id=thread_id, opts=opts, **params
        )

    # runs
    def create_run(self, thread_id: str, params: JSON, opts: CallOptions) -> Reply:
        return self._reply(dashscope.Runs.create, thread_id, opts=opts, **params)

    def create_thread_and_run(self, params: JSON, opts: CallOptions) -> Reply:
        if "stream" in params:
            return self._reply(dashscope.Runs.create_thread_and_run, opts=opts, **params)
        return self._one(dashscope.Threads.create_and_run, opts=opts, **params)

    def retrieve_run(self, thread_id: str, run_id: str, opts: CallOptions) -> JSON:
        return self._one(dashscope.Runs.retrieve, run_id, thread_id=thread_id, opts=opts)

    def list_runs(self, thread_id: str, query: JSON, opts: CallOptions) -> JSON:
        return self._one(dashscope.Runs.list, thread_id, opts=opts, **query)

    def update_run(self, thread_id: str, run_id: str, params: JSON, opts: CallOptions) -> JSON:
        return self._one(dashscope.Runs.update, run_id, thread_id=thread_id, opts=opts, **params)

    def cancel_run(self, thread_id: str, run_id: str, opts: CallOptions) -> JSON:
        return self._one(dashscope.Runs.cancel, run_id, thread_id=thread_id, opts=opts)

    def submit_tool_outputs(
        self, thread_id: str, run_id: str, params: JSON, opts: CallOptions
    ) -> Reply:
        return self._reply(
            dashscope.Runs.submit_tool_outputs, run_id, thread_id=thread_id, opts=opts, **params
        )

    def wait_run(
        self, thread_id: str, run_id: str, timeout_seconds: float, opts: CallOptions
    ) -> JSON:
        # dashscope's Runs.wait polls Runs.get every second but drops **kwargs (so a per-call
        # base_address is lost); this is the same loop over the same call, with kwargs kept.
        started = time.perf_counter()
        while True:
            run = self.retrieve_run(thread_id, run_id, opts)
            if run.get("status_code") != HTTPStatus.OK or run.get("status") in _WAIT_DONE:
                return run
            if "status" not in run:
                return run
            if time.perf_counter() - started > timeout_seconds:
                raise errors.TimeoutException("Wait run complete timeout")
            time.sleep(_WAIT_INTERVAL)

    # steps
    def list_steps(self, thread_id: str, run_id: str, query: JSON, opts: CallOptions) -> JSON:
        return self._one(dashscope.Steps.list, run_id, thread_id=thread_id, opts=opts, **query)

    def retrieve_step(self, thread_id: str, run_id: str, step_id: str, opts: CallOptions) -> JSON:
        return self._one(
            dashscope.Steps.retrieve, step_id, thread_id=thread_id, run_id=run_id, opts=opts
        )
