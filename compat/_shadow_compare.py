"""Shadow runs: normalise two runs' outputs and list their differences (pure functions).

A run's output is normalised to what should agree between the Assistant API and compat's
responses backend, leaving out what never can (ids, timestamps, how text is cut into deltas):

- ``events``: the event names in order, consecutive deltas of one kind merged into one;
- ``texts``: the final text of each message the run wrote;
- ``status``: the run's last status;
- ``tool_calls``: the function calls asked for (name, arguments parsed as JSON);
- ``steps``: each completed step's type, with its tool calls' types;
- ``error``: the code of an error item (``(None, {...})``), if any.

A non-streamed run has no events; its outcome is compared without them (``outcome``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

__all__ = ["FIELDS", "compare", "normalise", "outcome", "plain"]

JSON = dict[str, Any]
FIELDS = ("events", "texts", "status", "tool_calls", "steps", "error")


def plain(data: Any) -> Any:
    """A typed compat object as a dict; a dict or anything else as it is."""
    to_dict = getattr(data, "to_dict", None)
    return to_dict() if callable(to_dict) else data


def _text(message: JSON) -> str:
    parts = []
    for content in message.get("content") or ():
        text = (content or {}).get("text") if isinstance(content, dict) else None
        if isinstance(text, dict):
            parts.append(str(text.get("value") or ""))
    return "".join(parts)


def _arguments(raw: Any) -> Any:
    try:
        return json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return raw


def tool_calls(run: JSON) -> list[JSON]:
    """The function calls a run in ``requires_action`` asks for."""
    action = run.get("required_action") or {}
    calls = (action.get("submit_tool_outputs") or {}).get("tool_calls") or ()
    return [
        {
            "name": (call.get("function") or {}).get("name"),
            "arguments": _arguments((call.get("function") or {}).get("arguments")),
        }
        for call in calls
    ]


def _step(step: JSON) -> JSON:
    details = step.get("step_details") or {}
    kinds = [call.get("type") for call in details.get("tool_calls") or () if isinstance(call, dict)]
    return {"type": step.get("type"), "tools": kinds}


def normalise(items: Iterable[tuple[str | None, Any]]) -> JSON:
    """The comparable summary of a streamed run's ``(event, data)`` items."""
    out: JSON = {field: [] for field in ("events", "texts", "tool_calls", "steps")}
    out["status"] = None
    out["error"] = None
    for event, raw in items:
        data = plain(raw)
        name = event or "error"
        if not (name.endswith(".delta") and out["events"] and out["events"][-1] == name):
            out["events"].append(name)
        if not isinstance(data, dict):
            continue
        if event is None or name == "error":
            out["error"] = data.get("code")
        elif name in ("thread.message.completed", "thread.message.incomplete"):
            out["texts"].append(_text(data))
        elif name == "thread.run.step.completed":
            out["steps"].append(_step(data))
        elif name.startswith("thread.run.") and not name.startswith("thread.run.step."):
            out["status"] = data.get("status", out["status"])
            if name == "thread.run.requires_action":
                out["tool_calls"] = tool_calls(data)
    return out


def outcome(run: JSON, messages: Iterable[JSON], steps: Iterable[JSON] = ()) -> JSON:
    """The comparable summary of a finished non-streamed run (no events)."""
    return {
        "events": None,
        "texts": [_text(m) for m in messages],
        "status": run.get("status"),
        "tool_calls": tool_calls(run) if run.get("status") == "requires_action" else [],
        "steps": [_step(s) for s in steps if s.get("status") == "completed"],
        "error": None if run.get("status_code", 200) == 200 else run.get("code"),
    }


def compare(primary: JSON, shadow: JSON) -> list[JSON]:
    """``{"kind", "primary", "shadow"}`` for each field that differs (events only if both have)."""
    differences = []
    for field in FIELDS:
        mine, theirs = primary.get(field), shadow.get(field)
        if field == "events" and (mine is None or theirs is None):
            continue
        if mine != theirs:
            differences.append({"kind": field, "primary": mine, "shadow": theirs})
    return differences
