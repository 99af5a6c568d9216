"""Builders for Assistant-API wire objects, as plain dicts.

One definition of every object's field set, shared by the emulator's Assistant-API side, the
Responses translator and the Responses backend's CRUD, so that the two backends cannot drift apart
in which keys they send. Pure: ids and timestamps are always passed in.

Rule: a key that the Assistant API sends with a null value is present here with ``None``; the
dashscope SDK turns some absent keys into ``AttributeError`` on read, so never leave one out.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ACTIVE_RUN_MESSAGE",
    "ASSISTANT_FIELDS",
    "LIMIT_MESSAGE",
    "ORDER_MESSAGE",
    "RUN_FIELDS",
    "apply_update",
    "assistant_body",
    "assistant_object",
    "cannot_cancel_message",
    "code_interpreter_call",
    "delete_response",
    "function_call",
    "list_object",
    "match_tool_outputs",
    "message_creation_details",
    "message_delta",
    "message_object",
    "not_found_message",
    "not_requires_action_message",
    "required_action",
    "run_object",
    "run_usage",
    "step_delta",
    "step_object",
    "step_usage",
    "text_content",
    "thread_object",
    "tool_call",
    "tool_calls_details",
]

JSON = dict[str, Any]

#: Assistant fields a caller may set (create/update), besides id/object/created_at.
ASSISTANT_FIELDS = (
    "model",
    "name",
    "description",
    "instructions",
    "tools",
    "file_ids",
    "metadata",
    "top_p",
    "top_k",
    "temperature",
    "max_tokens",
)

#: Run fields copied from the create request (besides ids).
RUN_FIELDS = (
    "model",
    "instructions",
    "tools",
    "metadata",
    "top_p",
    "top_k",
    "temperature",
    "max_tokens",
)


def assistant_object(assistant_id: str, created_at: int, fields: JSON) -> JSON:
    """An ``assistant`` object; ``tools`` is always a list (dashscope crashes on null)."""
    obj: JSON = {"id": assistant_id, "object": "assistant", "created_at": created_at}
    for key in ASSISTANT_FIELDS:
        obj[key] = fields.get(key)
    obj["tools"] = list(obj["tools"] or [])
    obj["file_ids"] = list(obj["file_ids"] or [])
    obj["metadata"] = obj["metadata"] or {}
    return obj


def thread_object(thread_id: str, created_at: int, metadata: JSON | None = None) -> JSON:
    return {
        "id": thread_id,
        "object": "thread",
        "created_at": created_at,
        "metadata": metadata or {},
    }


def delete_response(object_id: str, kind: str) -> JSON:
    """``{"id", "object": "<kind>.deleted", "deleted": true}``."""
    return {"id": object_id, "object": f"{kind}.deleted", "deleted": True}


def text_content(value: str) -> JSON:
    return {"type": "text", "text": {"value": value, "annotations": []}}


def message_object(
    message_id: str,
    created_at: int,
    thread_id: str,
    *,
    role: str,
    text: str | None,
    status: str = "completed",
    assistant_id: str | None = None,
    run_id: str | None = None,
    file_ids: list[str] | None = None,
    metadata: JSON | None = None,
) -> JSON:
    """A ``thread.message``; ``text=None`` gives the empty content of a message just created."""
    return {
        "id": message_id,
        "object": "thread.message",
        "created_at": created_at,
        "thread_id": thread_id,
        "role": role,
        "status": status,
        "content": [] if text is None else [text_content(text)],
        "assistant_id": assistant_id,
        "run_id": run_id,
        "file_ids": list(file_ids or []),
        "metadata": metadata or {},
    }


def message_delta(message_id: str, value: str) -> JSON:
    """A ``thread.message.delta``; ``delta.content`` is a one-item array on the wire."""
    return {
        "id": message_id,
        "object": "thread.message.delta",
        "delta": {
            "role": "assistant",
            "content": [{"index": 0, "type": "text", "text": {"value": value, "annotations": []}}],
        },
    }


def run_object(
    run_id: str,
    created_at: int,
    thread_id: str,
    assistant_id: str,
    fields: JSON,
    *,
    status: str = "queued",
) -> JSON:
    """A ``thread.run`` in ``status``; ``fields`` holds the RUN_FIELDS values."""
    obj: JSON = {
        "id": run_id,
        "object": "thread.run",
        "created_at": created_at,
        "assistant_id": assistant_id,
        "thread_id": thread_id,
        "status": status,
    }
    for key in RUN_FIELDS:
        obj[key] = fields.get(key)
    obj["instructions"] = obj["instructions"] or ""
    obj["tools"] = list(obj["tools"] or [])
    obj["metadata"] = obj["metadata"] or {}
    obj.update(
        file_ids=[],
        required_action=None,
        last_error=None,
        usage=None,
        started_at=None,
        expires_at=None,
        cancelled_at=None,
        failed_at=None,
        completed_at=None,
    )
    return obj


def run_usage(prompt_tokens: int, completion_tokens: int) -> JSON:
    """A run's ``usage``: the three OpenAI-style counts (dashscope reads it as a plain dict)."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def step_usage(prompt_tokens: int, completion_tokens: int) -> JSON:
    """A step's ``usage``: all five counts, which dashscope's ``Usage`` type requires."""
    usage = run_usage(prompt_tokens, completion_tokens)
    usage.update(input_tokens=prompt_tokens, output_tokens=completion_tokens)
    return usage


def step_object(
    step_id: str,
    created_at: int,
    run: JSON,
    *,
    step_details: JSON,
    status: str = "in_progress",
) -> JSON:
    """A ``thread.run.step`` of ``run``; its type is ``step_details["type"]``."""
    return {
        "id": step_id,
        "object": "thread.run.step",
        "created_at": created_at,
        "run_id": run["id"],
        "assistant_id": run["assistant_id"],
        "thread_id": run["thread_id"],
        "type": step_details["type"],
        "status": status,
        "step_details": step_details,
        "last_error": None,
        "usage": None,
        "metadata": {},
        "completed_at": None,
        "cancelled_at": None,
        "failed_at": None,
        "expired_at": None,
    }


def message_creation_details(message_id: str) -> JSON:
    return {"type": "message_creation", "message_creation": {"message_id": message_id}}


def tool_calls_details(tool_calls: list[JSON]) -> JSON:
    return {"type": "tool_calls", "tool_calls": tool_calls}


def tool_call(
    call_id: str, tool_type: str, arguments: str, output: str | None, index: int = 0
) -> JSON:
    """A tool call of a built-in tool: ``{"type": T, T: {"arguments", "output"}}``.

    ``code_interpreter`` and DashScope's other streaming tools (quark_search, ...) share this shape;
    dashscope's own type keeps only ``code_interpreter``, the others reach users as dicts.
    """
    return {
        "index": index,
        "id": call_id,
        "type": tool_type,
        tool_type: {"arguments": arguments, "output": output},
    }


def code_interpreter_call(call_id: str, code: str, output: str | None, index: int = 0) -> JSON:
    return tool_call(call_id, "code_interpreter", code, output, index)


def function_call(
    call_id: str, name: str, arguments: str, output: str | None = None, index: int = 0
) -> JSON:
    return {
        "index": index,
        "id": call_id,
        "type": "function",
        "function": {"name": name, "arguments": arguments, "output": output},
    }


def step_delta(step_id: str, calls: list[JSON]) -> JSON:
    """A ``thread.run.step.delta`` carrying tool-call fragments."""
    return {
        "id": step_id,
        "object": "thread.run.step.delta",
        "delta": {"step_details": tool_calls_details(calls)},
    }


def list_object(
    data: list[JSON], *, has_more: bool, first_id: str | None, last_id: str | None
) -> JSON:
    return {
        "object": "list",
        "data": data,
        "first_id": first_id,
        "last_id": last_id,
        "has_more": has_more,
    }


def required_action(calls: list[JSON]) -> JSON:
    """``required_action`` for function calls (``calls`` as built by ``function_call``)."""
    return {
        "type": "submit_tool_outputs",
        "submit_tool_outputs": {
            "tool_calls": [
                {
                    "id": c["id"],
                    "type": "function",
                    "function": {
                        "name": c["function"]["name"],
                        "arguments": c["function"]["arguments"],
                    },
                }
                for c in calls
            ]
        },
    }


def not_found_message(thing: str) -> str:
    """The Assistant API's message for an unknown or deleted id (it answers HTTP 400)."""
    return f"The specified {thing} has been deleted or does not exist."


#: The message for a run started on a thread whose run is still active.
ACTIVE_RUN_MESSAGE = "Thread {thread_id} already has an active run {run_id}."


def assistant_body(params: JSON) -> JSON:
    """The request body dashscope sends for ``Assistants.create/update(**params)``.

    model, name, description and instructions only when truthy; tools when not None; file_ids
    and metadata always (metadata may be null); sampling parameters when not None.
    """
    body: JSON = {}
    for key in ("model", "name", "description", "instructions"):
        if params.get(key):
            body[key] = params[key]
    if params.get("tools") is not None:
        body["tools"] = params["tools"]
    body["file_ids"] = params.get("file_ids") or []
    body["metadata"] = params.get("metadata")
    for key in ("top_p", "top_k", "temperature", "max_tokens"):
        if params.get(key) is not None:
            body[key] = params[key]
    return body


def apply_update(obj: JSON, body: JSON) -> JSON:
    """``obj`` with the update ``body`` applied: a null value leaves that field unchanged."""
    updated = dict(obj)
    for key, value in body.items():
        if value is not None and key not in ("id", "object", "created_at"):
            updated[key] = value
    return updated


def cannot_cancel_message(status: str) -> str:
    return f"Cannot cancel a run with status '{status}'."


def not_requires_action_message(status: str) -> str:
    return f"The run is not waiting for tool outputs (status '{status}')."


LIMIT_MESSAGE = "limit must be an integer between 1 and 100."
ORDER_MESSAGE = "order must be 'asc' or 'desc'."


def match_tool_outputs(pending_ids: list[str], outputs: Any) -> dict[str, str] | str:
    """Submitted tool outputs by call id, or the error message the Assistant API answers.

    A single output without ``tool_call_id`` is accepted when exactly one call is pending
    (DashScope's own docs submit it that way).
    """
    if not isinstance(outputs, list) or not outputs:
        return "Missing required parameter 'tool_outputs'."
    if not all(isinstance(o, dict) and isinstance(o.get("output"), str) for o in outputs):
        return "Each tool output needs a string 'output'."
    if len(outputs) == 1 and len(pending_ids) == 1 and not outputs[0].get("tool_call_id"):
        return {pending_ids[0]: outputs[0]["output"]}
    matched: dict[str, str] = {}
    for output in outputs:
        call_id = output.get("tool_call_id")
        if call_id not in pending_ids:
            return f"Tool call '{call_id}' is not pending on this run."
        if call_id in matched:
            return f"Tool call '{call_id}' has more than one output."
        matched[call_id] = output["output"]
    missing = [call_id for call_id in pending_ids if call_id not in matched]
    if missing:
        return f"Missing tool outputs for tool calls: {', '.join(missing)}."
    return matched
