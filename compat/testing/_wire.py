"""The emulator's own Assistant-API wire objects, written from the documented field lists.

The emulator is the oracle of compat's parity tests, so it must not share compat's object
builders (``compat._objects``): a field wrong there would be wrong on both sides and no test
would notice. Everything here is written from the documented wire format: DashScope's docs and
the dashscope SDK's types, as the project's reference notes (assistant-api.md: §2 types, §3
stream payloads, §4 bodies and errors, §6 the example stream) record them, and nothing in compat.

Rule 1: every field the reference lists for a type is present, ``None`` when it has no value
(dashscope turns some absent keys into ``AttributeError`` on read). Rule 2: pure, ids and
times come in as arguments (``_clock`` makes them).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

__all__ = [
    "ASSISTANT_SETTABLE",
    "LIMIT_MESSAGE",
    "ORDER_MESSAGE",
    "SAMPLING",
    "active_run_message",
    "assistant",
    "builtin_call",
    "cannot_cancel_message",
    "deleted",
    "error_body",
    "function_call",
    "list_page",
    "message",
    "message_creation",
    "message_delta",
    "not_found_message",
    "not_requires_action_message",
    "required_action",
    "run",
    "run_usage",
    "step",
    "step_delta",
    "step_usage",
    "text_part",
    "thread",
    "tool_calls",
    "updated",
]

JSON = dict[str, Any]

#: The sampling parameters of dashscope 2.0.2 (assistants and runs; absent in 1.x).
SAMPLING = ("top_p", "top_k", "temperature", "max_tokens")

#: Assistant fields a create/update body may set (§1 Assistants: the request builder's keys).
ASSISTANT_SETTABLE = (
    "model",
    "name",
    "description",
    "instructions",
    "tools",
    "file_ids",
    "metadata",
    *SAMPLING,
)

# Each object's fields in wire order, with the value an unset field takes. A value that is a
# list or dict is copied per object (the tables are never handed out).
_ASSISTANT: Mapping[str, Any] = {
    "model": None,
    "name": None,
    "description": None,
    "instructions": None,
    "tools": [],  # never null: dashscope's Assistant raises TypeError on it
    "file_ids": [],
    "metadata": {},
    **dict.fromkeys(SAMPLING),
}
_RUN_TIMES = ("started_at", "expires_at", "cancelled_at", "failed_at", "completed_at")
_STEP_TIMES = ("completed_at", "cancelled_at", "failed_at", "expired_at")


def _fresh(value: Any) -> Any:
    return type(value)(value) if isinstance(value, (list, dict)) else value


def _filled(table: Mapping[str, Any], values: Mapping[str, Any]) -> JSON:
    """``table``'s fields from ``values``; a missing or null one takes the table's value."""
    out: JSON = {}
    for key, unset in table.items():
        value = values.get(key)
        out[key] = _fresh(unset) if value is None else value
    return out


def assistant(assistant_id: str, created_at: int, settings: Mapping[str, Any]) -> JSON:
    """An ``assistant`` (§2 Assistant; §6 item 1 for the reply's keys)."""
    head = {"id": assistant_id, "object": "assistant", "created_at": created_at}
    return {**head, **_filled(_ASSISTANT, settings)}


def updated(obj: Mapping[str, Any], changes: Mapping[str, Any]) -> JSON:
    """``obj`` after an update: dashscope sends null for what it leaves alone (§1)."""
    out = dict(obj)
    out.update((k, v) for k, v in changes.items() if v is not None and k in ASSISTANT_SETTABLE)
    return out


def thread(thread_id: str, created_at: int, metadata: Mapping[str, Any] | None) -> JSON:
    """A ``thread`` (§2 Thread: id, created_at, metadata, object)."""
    return {
        "id": thread_id,
        "object": "thread",
        "created_at": created_at,
        "metadata": dict(metadata or {}),
    }


def deleted(object_id: str, kind: str) -> JSON:
    """A delete's answer (§4): ``{"id", "object": "<kind>.deleted", "deleted": true}``."""
    return {"id": object_id, "object": kind + ".deleted", "deleted": True}


def list_page(data: Sequence[JSON], has_more: bool) -> JSON:
    """A list (§4): ``object``, ``data``, ``first_id``, ``last_id``, ``has_more``."""
    return {
        "object": "list",
        "data": list(data),
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }


def error_body(code: str, message: str, request_id: str) -> JSON:
    """The Assistant API's error body (§4), as a reply and as a stream's ``error`` event."""
    return {"code": code, "message": message, "request_id": request_id}


# --- messages ----------------------------------------------------------------------------------


def text_part(value: str) -> JSON:
    """One ``content`` item of type text (§2 ThreadMessage: ``text{value, annotations}``)."""
    return {"type": "text", "text": {"value": value, "annotations": []}}


def message(
    message_id: str,
    created_at: int,
    thread_id: str,
    role: str,
    content: Sequence[JSON],
    *,
    status: str = "completed",
    run: Mapping[str, Any] | None = None,
    file_ids: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> JSON:
    """A ``thread.message``; ``run`` is the run that wrote it (its assistant and id)."""
    return {
        "id": message_id,
        "object": "thread.message",
        "created_at": created_at,
        "thread_id": thread_id,
        "role": role,
        "status": status,
        "content": list(content),
        "assistant_id": run["assistant_id"] if run is not None else None,
        "run_id": run["id"] if run is not None else None,
        "file_ids": list(file_ids or []),
        "metadata": dict(metadata or {}),
    }


def message_delta(message_id: str, text: str) -> JSON:
    """A ``thread.message.delta``: ``delta.content`` must be an array (§2 ThreadMessageDelta)."""
    part = {"index": 0, **text_part(text)}
    return {
        "id": message_id,
        "object": "thread.message.delta",
        "delta": {"role": "assistant", "content": [part]},
    }


# --- runs ----------------------------------------------------------------------------------------


def run(
    run_id: str, created_at: int, thread_id: str, assistant_id: str, settings: Mapping[str, Any]
) -> JSON:
    """A queued ``thread.run`` (§2 Run) with ``settings``: model, instructions, tools, metadata,
    and the sampling parameters."""
    return {
        "id": run_id,
        "object": "thread.run",
        "created_at": created_at,
        "assistant_id": assistant_id,
        "thread_id": thread_id,
        "status": "queued",
        "model": settings.get("model"),
        "instructions": settings.get("instructions") or "",
        "tools": list(settings.get("tools") or []),  # never null (TypeError in dashscope)
        "file_ids": [],
        "metadata": dict(settings.get("metadata") or {}),
        "required_action": None,
        "last_error": None,
        "usage": None,
        **dict.fromkeys(_RUN_TIMES),
        **{key: settings.get(key) for key in SAMPLING},
    }


def run_usage(tokens: tuple[int, int]) -> JSON:
    """A run's ``usage``: a plain dict of the three counts (§2: ``Run.usage`` stays a dict)."""
    prompt, completion = tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
    }


def step_usage(tokens: tuple[int, int]) -> JSON:
    """A step's ``usage``: dashscope 2.0.2's ``Usage`` needs all five counts (§2 Usage)."""
    prompt, completion = tokens
    return {
        **run_usage(tokens),
        "input_tokens": prompt,
        "output_tokens": completion,
    }


def required_action(calls: Sequence[JSON]) -> JSON:
    """``required_action`` for the function calls ``calls`` (as :func:`function_call` makes)."""
    pending = [
        {
            "id": call["id"],
            "type": "function",
            "function": {
                "name": call["function"]["name"],
                "arguments": call["function"]["arguments"],
            },
        }
        for call in calls
    ]
    return {"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": pending}}


# --- steps ---------------------------------------------------------------------------------------


def step(step_id: str, created_at: int, of_run: Mapping[str, Any], details: JSON) -> JSON:
    """An in-progress ``thread.run.step`` of ``of_run`` (§2 RunStep)."""
    return {
        "id": step_id,
        "object": "thread.run.step",
        "created_at": created_at,
        "run_id": of_run["id"],
        "assistant_id": of_run["assistant_id"],
        "thread_id": of_run["thread_id"],
        "type": details["type"],
        "status": "in_progress",
        "step_details": details,  # never null (TypeError in dashscope)
        "last_error": None,
        "usage": None,
        "metadata": {},
        **dict.fromkeys(_STEP_TIMES),
    }


def message_creation(message_id: str) -> JSON:
    """``step_details`` of a message-creation step."""
    return {"type": "message_creation", "message_creation": {"message_id": message_id}}


def tool_calls(calls: Sequence[JSON]) -> JSON:
    """``step_details`` of a tool-calls step."""
    return {"type": "tool_calls", "tool_calls": list(calls)}


def builtin_call(
    call_id: str, tool: str, arguments: str, output: str | None, index: int = 0
) -> JSON:
    """A call of a built-in tool: ``{"type": T, T: {"arguments", "output"}}``.

    DashScope's shape, not OpenAI's ``input``/``outputs`` (§2 CodeInterpreter: a non-empty
    ``outputs`` crashes dashscope); quark_search and the others share it (inferred, §3).
    """
    return {
        "index": index,
        "id": call_id,
        "type": tool,
        tool: {"arguments": arguments, "output": output},
    }


def function_call(
    call_id: str, name: str, arguments: str, output: str | None = None, index: int = 0
) -> JSON:
    """A function tool call (§2 Tool calls: ``function{name, arguments, output}``)."""
    body = {"name": name, "arguments": arguments, "output": output}
    return {"index": index, "id": call_id, "type": "function", "function": body}


def step_delta(step_id: str, calls: Sequence[JSON]) -> JSON:
    """A ``thread.run.step.delta`` with tool-call fragments (§2 RunStepDelta, §6 example)."""
    return {
        "id": step_id,
        "object": "thread.run.step.delta",
        "delta": {"step_details": tool_calls(calls)},
    }


# --- error messages ------------------------------------------------------------------------------


def not_found_message(thing: str) -> str:
    """An unknown or deleted id: HTTP 400 with this message (§4 "Unknown ids")."""
    return f"The specified {thing} has been deleted or does not exist."


# The reference quotes no text for the errors below: these are the emulator's own wording.


def active_run_message(thread_id: str, run_id: str) -> str:
    return f"Thread {thread_id} already has an active run {run_id}."


def cannot_cancel_message(status: str) -> str:
    return f"Cannot cancel a run with status '{status}'."


def not_requires_action_message(status: str) -> str:
    return f"The run is not waiting for tool outputs (status '{status}')."


LIMIT_MESSAGE = "limit must be an integer between 1 and 100."
ORDER_MESSAGE = "order must be 'asc' or 'desc'."
