"""Assistant-API tools, parameters and thread history → a Responses ``create`` request.

Everything here is pure: the backend passes in the stored assistant, run and messages. What the
Responses endpoint would silently ignore is refused (``Refused``) with a message that names the
tool or parameter and what to use instead; migration_guide.md lists each fate.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

__all__ = [
    "Refused",
    "build_request",
    "check_files",
    "check_sampling",
    "instructions_for",
    "map_tools",
    "message_input",
]

JSON = dict[str, Any]


class Refused(Exception):
    """A request compat will not translate; answered as a 400 error object, never dropped."""

    def __init__(self, message: str, code: str = "UnsupportedByResponsesAPI") -> None:
        super().__init__(message)
        self.code = code
        self.message = message


# Assistant-API tool type -> why it cannot be served, and what to use instead.
_REFUSED_TOOLS = {
    "wanx": "DashScope's Responses API has no image-generation tool; call the image synthesis "
    "API yourself and offer it to the model as a function tool",
    "text_to_image": "DashScope's Responses API has no image-generation tool; call the image "
    "synthesis API yourself and offer it to the model as a function tool",
    "calculator": "the Responses API has no calculator tool; use {'type': 'code_interpreter'}",
}
_PLUGIN_HINT = (
    "it has no Responses API equivalent (DashScope plugins are not offered there); "
    "expose it as a function tool, or use web_search / code_interpreter"
)


def map_tools(tools: Iterable[JSON] | None) -> list[JSON]:
    """Assistant-API tools as Responses tools (DESIGN decision 5); unknown ones are refused."""
    mapped: list[JSON] = []
    for tool in tools or ():
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind == "code_interpreter":
            # DashScope documents the bare form; OpenAI's container option does not exist there.
            mapped.append({"type": "code_interpreter"})
        elif kind in ("search", "quark_search"):
            mapped.append({"type": "web_search"})
        elif kind == "function":
            function = tool.get("function") or {}
            if not function.get("name"):
                raise Refused("a function tool needs function.name", code="InvalidParameter")
            flat: JSON = {"type": "function", "name": function["name"]}
            if function.get("description") is not None:
                flat["description"] = function["description"]
            flat["parameters"] = function.get("parameters") or {"type": "object", "properties": {}}
            mapped.append(flat)
        elif kind in _REFUSED_TOOLS:
            raise Refused(
                f"tool {kind!r} is not supported on the responses backend: {_REFUSED_TOOLS[kind]}"
            )
        else:
            raise Refused(
                f"tool {kind!r} is not supported on the responses backend: {_PLUGIN_HINT}"
            )
    return mapped


def check_sampling(params: JSON) -> None:
    """Refuse sampling parameters the Responses endpoint would ignore."""
    if params.get("top_k") is not None:
        raise Refused(
            "top_k is not supported by DashScope's Responses API (it would be ignored); "
            "remove it and use temperature or top_p"
        )


def check_files(params: JSON) -> None:
    """Refuse file attachments: nothing would send them to the Responses API."""
    if params.get("file_ids"):
        raise Refused(
            "file_ids are not supported on the responses backend (compat sends no files to the "
            "Responses API); put the content in the message text instead"
        )


def instructions_for(assistant: JSON, run: JSON, additional: str | None) -> str | None:
    """Instructions for one request: the run's override, else the assistant's, plus additional.

    The Responses API does not carry instructions over ``previous_response_id``, so every request
    of a run sends them again.
    """
    base = run.get("instructions") or assistant.get("instructions") or ""
    if additional:
        base = f"{base}\n\n{additional}" if base else additional
    return base or None


def message_text(message: JSON) -> str:
    """The text of a stored message (its text content parts joined)."""
    parts = []
    for part in message.get("content") or ():
        if isinstance(part, dict) and part.get("type") == "text":
            parts.append(part.get("text", {}).get("value", ""))
    return "".join(parts)


def message_input(message: JSON) -> JSON:
    """A thread message as a Responses input item (the "easy message" form DashScope accepts)."""
    role = message.get("role") or "user"
    return {
        "role": role if role in ("user", "assistant", "system") else "user",
        "content": message_text(message),
    }


def function_call_items(calls: Iterable[JSON], outputs: dict[str, str]) -> list[JSON]:
    """Each function call immediately followed by its output (DashScope's adjacency rule)."""
    items: list[JSON] = []
    for call in calls:
        function = call["function"]
        items.append(
            {
                "type": "function_call",
                "call_id": call["id"],
                "name": function["name"],
                "arguments": function["arguments"],
            }
        )
        items.append(
            {"type": "function_call_output", "call_id": call["id"], "output": outputs[call["id"]]}
        )
    return items


def build_request(
    run: JSON,
    *,
    instructions: str | None,
    tools: list[JSON],
    input_items: list[JSON],
    previous_response_id: str | None,
    sampling: JSON,
    extra_body: JSON | None,
) -> JSON:
    """The keyword arguments of ``responses.create`` for one response of ``run``."""
    request: JSON = {"model": run["model"], "input": input_items}
    if instructions:
        request["instructions"] = instructions
    if tools:
        request["tools"] = tools
    if previous_response_id:
        request["previous_response_id"] = previous_response_id
    if sampling.get("temperature") is not None:
        request["temperature"] = sampling["temperature"]
    if sampling.get("top_p") is not None:
        request["top_p"] = sampling["top_p"]
    if sampling.get("max_tokens") is not None:
        request["max_output_tokens"] = sampling["max_tokens"]
    if extra_body:
        request["extra_body"] = dict(extra_body)
    return request
