"""The Assistant API's HTTP surface: routes, request parsing, JSON and SSE framing (pure).

The SSE form is what dashscope 2.0.2's ``_handle_stream`` parses: one ``event:NAME`` line (no
space after the colon: dashscope compares the raw value with ``done``/``error``), one
single-line ``data:JSON`` line, a blank line; the stream ends with ``event:done`` /
``data:[DONE]``. See /work/shared/reference/assistant-api.md §3.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from compat import _objects as o
from compat._types_base import BaseObject

__all__ = [
    "DONE",
    "PREFIX",
    "ROUTES",
    "ApiError",
    "Route",
    "error_body",
    "json_bytes",
    "list_query",
    "match",
    "message_delta",
    "parse_body",
    "sse",
    "text_delta_frame",
    "wire_dict",
]

JSON = dict[str, Any]

#: Where the API lives, as in DashScope's base URL ``https://dashscope.aliyuncs.com/api/v1``.
PREFIX = "/api/v1"

DONE = b"event:done\ndata:[DONE]\n\n"


class ApiError(Exception):
    """An answer in the Assistant API's error shape: HTTP status, ``code``, ``message``."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    @classmethod
    def not_found(cls, thing: str) -> ApiError:
        return cls(400, "InvalidParameter", o.not_found_message(thing))

    @classmethod
    def invalid(cls, message: str) -> ApiError:
        return cls(400, "InvalidParameter", message)


@dataclass(frozen=True)
class Route:
    """One endpoint: its method, path pattern (``*`` is an id) and handler name."""

    method: str
    pattern: tuple[str, ...]
    name: str

    @property
    def template(self) -> str:
        """The path with ids as placeholders, for the request log (never the ids themselves)."""
        return PREFIX + "/" + "/".join("{id}" if p == "*" else p for p in self.pattern)


_T = ("threads", "*")
_R = (*_T, "runs", "*")
ROUTES: tuple[Route, ...] = (
    Route("POST", ("assistants",), "create_assistant"),
    Route("GET", ("assistants",), "list_assistants"),
    Route("GET", ("assistants", "*"), "retrieve_assistant"),
    Route("POST", ("assistants", "*"), "update_assistant"),
    Route("DELETE", ("assistants", "*"), "delete_assistant"),
    Route("POST", ("threads",), "create_thread"),
    Route("POST", ("threads", "runs"), "create_thread_and_run"),
    Route("GET", _T, "retrieve_thread"),
    Route("POST", _T, "update_thread"),
    Route("DELETE", _T, "delete_thread"),
    Route("POST", (*_T, "messages"), "create_message"),
    Route("GET", (*_T, "messages"), "list_messages"),
    Route("GET", (*_T, "messages", "*"), "retrieve_message"),
    Route("POST", (*_T, "messages", "*"), "update_message"),
    Route("POST", (*_T, "runs"), "create_run"),
    Route("GET", (*_T, "runs"), "list_runs"),
    Route("GET", _R, "retrieve_run"),
    Route("POST", _R, "update_run"),
    Route("POST", (*_R, "cancel"), "cancel_run"),
    Route("POST", (*_R, "submit_tool_outputs"), "submit_tool_outputs"),
    Route("GET", (*_R, "steps"), "list_steps"),
    Route("GET", (*_R, "steps", "*"), "retrieve_step"),
)


def match(method: str, path: str) -> tuple[Route, list[str]] | None:
    """The route for ``method path`` and the ids in the path, or ``None``."""
    if not path.startswith(PREFIX + "/"):
        return None
    segments = [s for s in path[len(PREFIX) :].split("/") if s]
    for route in ROUTES:
        if route.method != method or len(route.pattern) != len(segments):
            continue
        pairs = list(zip(route.pattern, segments, strict=True))
        # A fixed word wins over an id: "threads/runs" is create_thread_and_run, not a thread.
        if all(p == s or (p == "*" and s not in ("runs", "messages")) for p, s in pairs):
            return route, [s for p, s in pairs if p == "*"]
    return None


def parse_body(raw: bytes) -> JSON:
    """The request body as a dict; dashscope sends the JSON string ``""`` for an empty thread."""
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise ApiError.invalid("The request body is not valid JSON.") from None
    if body == "" or body is None:
        return {}
    if not isinstance(body, dict):
        raise ApiError.invalid("The request body must be a JSON object.")
    return body


def list_query(query_string: bytes) -> JSON:
    """``limit``, ``order``, ``after``, ``before`` from a query string (absent ones are None)."""
    values = parse_qs(query_string.decode("latin-1"), keep_blank_values=True)
    query: JSON = {
        k: (values[k][-1] if k in values else None) for k in ("order", "after", "before")
    }
    limit = values.get("limit", [None])[-1]
    if limit is not None:
        try:
            query["limit"] = int(limit)
        except ValueError:
            raise ApiError.invalid(o.LIMIT_MESSAGE) from None
    else:
        query["limit"] = None
    return query


def wire_dict(obj: Any) -> JSON:
    """The JSON object the API sends for a compat object (or dict): its fields, no status_code."""
    data = obj.to_dict() if isinstance(obj, BaseObject) else dict(obj)
    data.pop("status_code", None)
    return data


def message_delta(data: Any) -> JSON:
    """A message delta's wire dict: ``delta.content`` an array again.

    compat's ``ThreadMessageDelta`` keeps one content item, as dashscope's does (its
    constructor keeps the last element of the wire array); the wire carries the array.
    """
    out = wire_dict(data)
    delta = out.get("delta")
    if isinstance(delta, dict):
        content = delta.get("content")
        if isinstance(content, dict):
            delta["content"] = [content]
        elif content is None:
            delta["content"] = []
    return out


_DELTA_FIELDS = frozenset({"id", "object", "delta"})  # as the translator builds them
_DELTA_CONTENT_FIELDS = frozenset({"role", "content"})
_TEXT_ITEM_FIELDS = (frozenset({"type", "text"}), frozenset({"index", "type", "text"}))
_TEXT_FIELDS = frozenset({"value", "annotations"})


def text_delta_frame(data: Any) -> bytes | None:
    """The hot path: a plain text delta's event, built from its fields without ``to_dict``.

    None when the delta has any other shape (``message_delta`` then frames it); the test
    suite checks both give the same bytes.
    """
    fields = data.__dict__
    if fields.keys() - {"status_code"} != _DELTA_FIELDS:
        return None
    delta = fields["delta"]
    inner = getattr(delta, "__dict__", None)
    if inner is None or inner.keys() != _DELTA_CONTENT_FIELDS:
        return None
    content = inner["content"]
    item = getattr(content, "__dict__", None)
    if item is None or item.keys() not in _TEXT_ITEM_FIELDS or item["type"] != "text":
        return None
    text = getattr(item["text"], "__dict__", None)
    if text is None or text.keys() != _TEXT_FIELDS or text["annotations"] != []:
        return None
    wire_item = dict(item)
    wire_item["text"] = {"value": text["value"], "annotations": []}
    wire = {
        "id": fields["id"],
        "object": fields["object"],
        "delta": {"role": inner["role"], "content": [wire_item]},
    }
    return b"event:thread.message.delta\ndata:" + json_bytes(wire) + b"\n\n"


def _default(value: Any) -> Any:
    if isinstance(value, BaseObject):
        return wire_dict(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def json_bytes(value: Any) -> bytes:
    """Compact single-line JSON; compat objects nested in dicts are written as wire dicts."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_default).encode()


def error_body(code: str, message: str, request_id: str | None = None) -> JSON:
    return {"code": code, "message": message, "request_id": request_id or str(uuid.uuid4())}


def sse(event: str, data: Any) -> bytes:
    """One event as dashscope parses it (``json.dumps`` escapes newlines: one data line)."""
    return b"event:" + event.encode() + b"\ndata:" + json_bytes(data) + b"\n\n"
