"""A run's request before it is sent, and the replies the run calls answer.

``Start`` is a run claimed and stored queued; ``Opening`` is one response's request, built, with
its job; sending it is the sync or async shell's part (``runs.RunExecutor._open``/``_aopen``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from compat._ids import new_id
from compat._log import logger
from compat.backends import JSON, CallOptions, Reply, error_stream
from compat.backends.responses import request as rq
from compat.backends.responses.drive import Job
from compat.backends.responses.history import History
from compat.backends.responses.upstream import UpstreamBroken, UpstreamHTTPError

__all__ = [
    "Opening",
    "Start",
    "broken_error",
    "clean",
    "error",
    "lost_previous_response",
    "ok",
    "reply_error",
    "run_fields",
]

_log = logger("compat.backends.responses.runs")


def ok(obj: JSON) -> JSON:
    obj["status_code"] = 200
    obj["request_id"] = new_id("req")[4:]
    return obj


def error(code: str, message: str, status_code: int = 400) -> JSON:
    return {
        "status_code": status_code,
        "code": code,
        "message": message,
        "request_id": new_id("req")[4:],
    }


def reply_error(err: JSON, stream: bool) -> Reply:
    return error_stream(err) if stream else err


def broken_error(exc: UpstreamBroken) -> JSON:
    """A transport failure before the stream started, in dashscope's returned-error shape.

    compat's choice (dashscope raises requests' exception here): 504 for a timeout, 503 for a
    connection that could not be made or broke, with the code the run's ``last_error`` would
    carry had the stream started.
    """
    return error(exc.code, exc.message, 504 if exc.code == "timeout" else 503)


@dataclass
class Opening:
    """A response's request, built; sending it is the sync or async shell's part."""

    job: Job
    request: JSON
    history: History
    continuation: JSON | None
    cursor: str | None
    request_for: Any  # Input -> request
    opts: CallOptions

    def fallback(self, exc: UpstreamHTTPError) -> JSON | None:
        """The replay request when the chained response is gone upstream, else None."""
        sent = self.job.history
        if sent.previous is None or not lost_previous_response(exc):
            return None
        _log.info(
            "run %s: previous response %s is gone upstream (%s); resending the thread",
            self.job.run_id,
            sent.previous,
            exc.error.get("code"),
        )
        self.job.history = self.history.replay_input(self.continuation)
        request: JSON = self.request_for(self.job.history)
        return request

    def opened(self) -> Job:
        if self.job.history.cursor is None:
            self.job.history = self.job.history._replace(cursor=self.cursor)
        return self.job

    @property
    def timeout(self) -> float | None:
        value: float | None = self.opts.extra.get("request_timeout")
        return value


@dataclass
class Start:
    """A run claimed and stored queued, waiting for its first request to be sent."""

    run: JSON
    stream: bool
    created_thread: JSON | None
    prefix: list[tuple[str, JSON]] = field(default_factory=list)
    #: the thread's meta as the claim read it (its chain: the history needs no read of its own)
    thread_meta: JSON | None = None


def run_fields(assistant: JSON, params: JSON) -> JSON:
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


def lost_previous_response(exc: UpstreamHTTPError) -> bool:
    # (inferred) DashScope does not document its error for an unknown or expired
    # previous_response_id; OpenAI answers 400/404 with code previous_response_not_found.
    text = f"{exc.error.get('code')} {exc.error.get('message')}".lower()
    return exc.status_code in (400, 404) and "previous_response" in text


def clean(payload: JSON) -> JSON:
    """A stored copy of an emitted payload, without the ``status_code`` added for the SDK view."""
    data = dict(payload)
    data.pop("status_code", None)
    return data
