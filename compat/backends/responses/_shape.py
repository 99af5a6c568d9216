"""Reads of upstream values for the translator: a wrong shape is a protocol error.

Every read names the JSON type it expects. A field that is absent or ``null`` reads as absent
(``None``, or an empty ``{}`` / ``[]`` where that means the same); a field of any other wrong type
raises ``TranslationError`` naming the field, so the caller fails the run with ``invalid_stream``
instead of a traceback. Values are read where they are used, not checked in a separate pass.
Below the field accessors: the readers of a finished item's contents (text, logs, hosted calls).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from compat.errors import TranslationError

__all__ = [
    "code_logs",
    "hosted_parts",
    "item_key",
    "json_type",
    "map_error",
    "message_text",
    "obj",
    "opt_int",
    "opt_list",
    "opt_str",
    "prior_counts",
    "response_counts",
    "token_counts",
    "tool_call_id",
]

JSON = dict[str, Any]

#: Content part type → the key holding its text; ``text`` is DashScope's message part.
_TEXT_PARTS = {"output_text": "text", "text": "text", "refusal": "refusal"}
#: Item keys that are not a hosted call's request: bookkeeping and results.
_NOT_ARGUMENTS = frozenset({"id", "type", "status", "output", "outputs", "results", "error"})
_HEX = frozenset("0123456789abcdef")


def json_type(value: object) -> str:
    """The JSON name of a parsed value's type, for error messages (never the value itself)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _wrong(what: str, key: str, value: object, expected: str) -> TranslationError:
    return TranslationError(f"{what}: {key} is {json_type(value)}, not {expected}")


def map_error(code: object, message: object) -> JSON:
    """A ``last_error`` from an upstream error code and message.

    The upstream code is kept (``rate_limit_exceeded``, ``server_error``, ``invalid_prompt``,
    ``insufficient_quota``, ...); a missing one is ``server_error``. DashScope reports its rate
    limit as ``server_error`` with "rate limit" in the message (HTTP 200): that one becomes
    ``rate_limit_exceeded``, the code legacy retry logic looks for.
    """
    text = message if isinstance(message, str) and message else "the upstream response failed"
    name = code if isinstance(code, str) and code else "server_error"
    if name == "server_error" and "rate limit" in text.lower():
        name = "rate_limit_exceeded"
    return {"code": name, "message": text}


def obj(parent: JSON, key: str, what: str, *, required: bool = False) -> JSON:
    """``parent[key]`` as an object; ``{}`` if absent (unless ``required``)."""
    value = parent.get(key)
    if isinstance(value, dict):
        return value
    if value is None and not required:
        return {}
    raise _wrong(what, key, value, "an object")


def opt_str(parent: JSON, key: str, what: str) -> str | None:
    """``parent[key]`` as a string, or None if absent."""
    value = parent.get(key)
    if value is None or isinstance(value, str):
        return value
    raise _wrong(what, key, value, "a string")


def opt_list(parent: JSON, key: str, what: str) -> list[Any]:
    """``parent[key]`` as an array; ``[]`` if absent."""
    value = parent.get(key)
    if isinstance(value, list):
        return value
    if value is None:
        return []
    raise _wrong(what, key, value, "an array")


def opt_int(parent: JSON, key: str, what: str) -> int | None:
    """``parent[key]`` as a non-negative integer (an index, a count), or None if absent."""
    value = parent.get(key)
    if value is None or (value.__class__ is int and value >= 0):
        return value
    raise _wrong(what, key, value, "a non-negative integer")


def token_counts(usage: object, prompt_key: str, completion_key: str, what: str) -> tuple[int, int]:
    """``(prompt, completion)`` counts of a usage object; an absent count is 0.

    A count that is not a non-negative integer (a string, a float, a boolean, an object) is a
    protocol error rather than a guess: usage is billed, so a wrong number must not be stored.
    """
    if not isinstance(usage, dict):
        raise _wrong(what, "usage", usage, "an object")
    return (
        opt_int(usage, prompt_key, f"{what} usage") or 0,
        opt_int(usage, completion_key, f"{what} usage") or 0,
    )


# -- a finished item's contents ----------------------------------------------------------------
def item_key(item: JSON, what: str) -> tuple[str | None, str | None]:
    """An output item's ``(id, type)``, either None if absent."""
    return opt_str(item, "id", what), opt_str(item, "type", what)


def message_text(item: JSON) -> str:
    """The text of a finished ``message`` item: its text-bearing content parts, joined.

    Parts of other types (images, audio, ...) are skipped; a part that is not an object, or
    a text part whose text is not a string, is malformed.
    """
    chunks: list[str] = []
    for part in opt_list(item, "content", "message item"):
        if not isinstance(part, dict):
            raise TranslationError("message item: a content part is not an object")
        key = _TEXT_PARTS.get(opt_str(part, "type", "content part") or "")
        text = opt_str(part, key, "content part") if key else None
        if text:
            chunks.append(text)
    return "".join(chunks)


def code_logs(item: JSON) -> str:
    """A finished code_interpreter_call's logs (image outputs have no Assistant shape)."""
    logs: list[str] = []
    for output in opt_list(item, "outputs", "code_interpreter_call item"):
        if not isinstance(output, dict):
            raise TranslationError("code_interpreter_call item: an output is not an object")
        if opt_str(output, "type", "code_interpreter_call output") == "logs":
            logs.append(opt_str(output, "logs", "code_interpreter_call output") or "")
    return "".join(logs)


def hosted_parts(tool_type: str, item: JSON) -> tuple[str, str]:
    """``(arguments, output)`` strings of a finished hosted call other than code_interpreter.

    quark_search (a ``web_search_call``): ``{"query": q}`` and the ``sources`` list, per
    EVENTS.md; a non-search action (``open_page``, ``find_in_page``) gives the action itself as
    arguments. Other hosted calls: the item's request fields (everything but id, type, status and
    results) as a JSON object, and the first of ``output`` / ``results`` / ``error`` (a string
    kept, anything else as JSON; "" if none).
    """
    if tool_type == "quark_search":
        what = "web_search_call action"
        action = obj(item, "action", "web_search_call item")
        if (opt_str(action, "type", what) or "search") == "search":
            queries = opt_list(action, "queries", what)
            query = opt_str(action, "query", what) or (queries[0] if queries else "")
            arguments = _dumps({"query": query})
        else:
            arguments = _dumps({k: v for k, v in action.items() if k != "sources"})
        return arguments, _dumps(opt_list(action, "sources", what))
    arguments = _dumps({k: v for k, v in item.items() if k not in _NOT_ARGUMENTS})
    for key in ("output", "results", "error"):
        value = item.get(key)
        if value is not None:
            return arguments, value if isinstance(value, str) else _dumps(value)
    return arguments, ""


def tool_call_id(item_id: object, new_id: Callable[[str], str]) -> str:
    """A built-in tool call's id: ``call_`` + the item id's 32 hex digits, else a new id.

    DashScope's item ids are ``<prefix>_<uuid>``: that gives a DashScope-shaped ``call_<hex>``,
    stable across retranslations. OpenAI's longer ids do not fit, so they get a new one.
    """
    if isinstance(item_id, str):
        tail = item_id.partition("_")[2].replace("-", "")
        if len(tail) == 32 and _HEX.issuperset(tail):
            return f"call_{tail}"
    return new_id("call")


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False)


def prior_counts(usage: object) -> tuple[int, int] | None:
    """A stored run's ``(prompt, completion)`` tokens (compat wrote them; None if unknown)."""
    if not isinstance(usage, dict):
        return None
    prompt, completion = usage.get("prompt_tokens"), usage.get("completion_tokens")
    return (
        prompt if isinstance(prompt, int) else 0,
        completion if isinstance(completion, int) else 0,
    )


def response_counts(response: JSON) -> tuple[int, int] | None:
    """A response's ``(input, output)`` tokens; None without usage (checked: usage is billed)."""
    usage = response.get("usage")
    if usage is None:
        return None
    return token_counts(usage, "input_tokens", "output_tokens", "response")
