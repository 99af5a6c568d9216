"""DashScope's OpenAI-compatible Responses API as served by the emulator, for the ``openai`` SDK.

``POST /compatible-mode/v1/responses`` plays one turn of the scenario engine and answers it as a
stream (``responses_events``) or as one JSON Response. Every response is stored with its whole
conversation (its ``previous_response_id`` chain, its input and its output), so chaining works
until :meth:`ResponsesAPI.expire`.

Which scenario plays: a request whose input answers (``function_call_output``) the function calls
of an earlier response continues that response's script, as ``submit_tool_outputs`` continues a
run on the Assistant side; any other request takes the next queued scenario, else
:func:`~compat.testing.default_turn`. The model sees the same :class:`~compat.testing.Conversation`
the Assistant side builds for the same thread: ``(role, text)`` entries from messages, calls and
outputs, the request's ``instructions``, and its tools under their Assistant-API names.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from compat.testing.responses_events import (
    FLAVORS,
    EventWriter,
    Flavor,
    TurnRenderer,
)
from compat.testing.scenario import Conversation, Failure, ScenarioQueue, Script
from compat.testing.server import (
    APIError,
    JSONReply,
    Reply,
    Request,
    StreamReply,
    new_request_id,
)

__all__ = ["ResponsesAPI"]

JSON = dict[str, Any]

#: Responses tool type → the Assistant-API tool name the scenario engine knows it by.
_TOOL_NAMES = {"web_search": "quark_search"}
_MESSAGE_ROLES = ("user", "assistant", "system", "developer")
#: Input item types DashScope documents (plus the hosted-tool items its own output contains).
_INPUT_TYPES = (
    "message",
    "function_call",
    "function_call_output",
    "reasoning",
    "web_search_call",
    "code_interpreter_call",
)
_CONTENT_TYPES = {
    "dashscope": "text/event-stream;charset=UTF-8",
    "openai": "text/event-stream; charset=utf-8",
}


def _invalid(message: str) -> APIError:
    return APIError(400, "InvalidParameter", f"[400] {message}")


@dataclass
class _Stored:
    """A stored response: the conversation it saw (chain + input) and what it answered."""

    obj: JSON
    conversation: list[JSON]
    output: list[JSON]


class ResponsesAPI:
    """The ``/compatible-mode/v1`` routes: ``POST /responses``."""

    prefix = "/compatible-mode/v1"

    def __init__(
        self, scenarios: ScenarioQueue, *, api_key: str, flavor: Flavor = "dashscope"
    ) -> None:
        if flavor not in FLAVORS:
            raise ValueError(f"responses_flavor must be one of {FLAVORS}, not {flavor!r}")
        self._scenarios = scenarios
        self._api_key = api_key
        self._default_flavor: Flavor = flavor
        self.flavor: Flavor = flavor
        self.ignore_instructions = False
        self._lock = threading.Lock()
        self._responses: dict[str, _Stored] = {}
        self._scripts: dict[str, Script] = {}  # response id → its script, awaiting tool outputs
        self._call_owner: dict[str, str] = {}  # call_id → the response id that made the call

    def reset(self) -> None:
        with self._lock:
            self.flavor = self._default_flavor
            self.ignore_instructions = False
            self._responses.clear()
            self._scripts.clear()
            self._call_owner.clear()

    def expire(self) -> None:
        """Forget the stored responses (not the scripts waiting for tool outputs)."""
        with self._lock:
            self._responses.clear()

    def handle(self, request: Request, subpath: str) -> Reply:
        if request.bearer_token() != self._api_key:
            return _error(APIError(401, "InvalidApiKey", "Invalid API-key provided."))
        if request.method != "POST" or subpath.strip("/") != "responses":
            return _error(APIError(404, "NotFound", f"No route for {request.path}."))
        with self._lock:
            try:
                return self._create(request)
            except APIError as exc:
                return _error(exc)

    # --- POST /responses -----------------------------------------------------------------

    def _create(self, request: Request) -> Reply:
        body = request.json
        if request.invalid_json or not isinstance(body, dict):
            raise _invalid("invalid_request: The request body must be a JSON object.")
        model = body.get("model")
        if not model:
            raise _invalid("missing_required_parameter: model")
        if not isinstance(model, str):
            raise _invalid("invalid_type: model must be a string.")
        if "input" not in body:
            raise _invalid("missing_required_parameter: input")
        items = _input_items(body["input"])
        tools = _tools(body.get("tools"))
        instructions = body.get("instructions")
        if instructions is not None and not isinstance(instructions, str):
            raise _invalid("invalid_type: instructions must be a string.")
        previous_id = body.get("previous_response_id")
        history: list[JSON] = []
        if previous_id is not None:
            previous = self._responses.get(previous_id) if isinstance(previous_id, str) else None
            if previous is None:
                # DashScope does not document this error's text: OpenAI's error code
                # previous_response_not_found in DashScope's top-level error shape (inferred).
                raise _invalid(
                    "previous_response_not_found: "
                    f"Previous response with id '{previous_id}' not found."
                )
            history = previous.conversation + previous.output
            _check_answered(previous.output, items)
        _check_calls(history, items)

        owner, script = self._script_for(items)
        failure = script.take_http_error()
        if failure is not None and failure.status is not None:
            raise APIError(failure.status, failure.code, failure.message)
        conversation = history + items
        if self.ignore_instructions:
            instructions = None
        seen = _conversation(conversation, instructions or "", tools)
        turn = script.next_turn(seen)
        if owner is not None:
            self._forget_script(owner)

        response = _skeleton(body, model, previous_id)
        failure = turn.failure
        if failure is not None and failure.mode == "rate_limited_json":
            # DashScope's rate limit: HTTP 200, a failed Response as JSON even for a stream.
            error = {"code": failure.code, "message": failure.message}
            response.update(status="failed", error=error)
            self._responses[response["id"]] = _Stored(response, conversation, [])
            return JSONReply.of(200, response)

        stream = body.get("stream") is True
        writer = EventWriter(self.flavor, enabled=stream)
        renderer = TurnRenderer(turn, response, turn.usage_for(seen), writer)
        renderer.play()
        self._responses[response["id"]] = _Stored(response, conversation, renderer.output)
        if renderer.calls and response["status"] == "completed":
            self._scripts[response["id"]] = script
            for call in renderer.calls:
                self._call_owner[call["call_id"]] = response["id"]
        if stream:
            return StreamReply(
                writer.chunks,
                script.pace,
                pauses=writer.pauses,
                drop=renderer.ending == "drop",
                content_type=_CONTENT_TYPES[self.flavor],
            )
        return _json_reply(response, failure)

    def _script_for(self, items: list[JSON]) -> tuple[str | None, Script]:
        """The script of the response whose calls ``items`` answer, else the next queued one."""
        for item in reversed(items):
            if item.get("type") == "function_call_output":
                owner = self._call_owner.get(item["call_id"])
                if owner is not None and owner in self._scripts:
                    return owner, self._scripts[owner]
        return None, self._scenarios.take()

    def _forget_script(self, response_id: str) -> None:
        self._scripts.pop(response_id, None)
        for call_id in [c for c, owner in self._call_owner.items() if owner == response_id]:
            del self._call_owner[call_id]


def _error(exc: APIError) -> JSONReply:
    """DashScope's error body: top-level, not nested under ``error``."""
    body = {"request_id": new_request_id(), "code": exc.code, "message": exc.message}
    return JSONReply.of(exc.status, body)


def _json_reply(response: JSON, failure: Failure | None) -> Reply:
    """A non-streamed answer; the transport failures break or delay the JSON body instead."""
    body = json.dumps(response, ensure_ascii=False).encode()
    if failure is not None and failure.mode in ("drop", "truncate", "malformed"):
        return StreamReply([body[: len(body) // 2]], drop=True, content_type="application/json")
    if failure is not None and failure.mode == "stall":
        pauses = {0: failure.seconds or 0.0}
        return StreamReply([body], pauses=pauses, content_type="application/json")
    return JSONReply(200, body)


def _skeleton(body: JSON, model: str, previous_id: str | None) -> JSON:
    """A new Response (``in_progress``), echoing the request fields the Response carries."""
    return {
        # DashScope's ids are UUIDs; its error example shows them as resp_<uuid>.
        "id": f"resp_{uuid.uuid4()}",
        "object": "response",
        "created_at": int(time.time()),  # seconds, as the Responses API counts them
        "status": "in_progress",
        "model": model,
        "output": [],
        "error": None,
        "incomplete_details": None,
        "instructions": body.get("instructions"),
        "tools": body.get("tools") or [],
        "tool_choice": body.get("tool_choice", "auto"),
        "parallel_tool_calls": False,  # DashScope echoes false whatever was sent
        "previous_response_id": previous_id,
        "temperature": body.get("temperature"),
        "top_p": body.get("top_p"),
        "max_output_tokens": body.get("max_output_tokens"),
        "usage": None,
    }


# --- input ---------------------------------------------------------------------------------


def _input_items(value: Any) -> list[JSON]:
    """The request's ``input`` as a list of checked items (a string is one user message)."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if not isinstance(value, list):
        raise _invalid("invalid_type: input must be a string or an array of items.")
    for index, item in enumerate(value):
        _check_item(item, f"input[{index}]")
    return list(value)


def _check_item(item: Any, where: str) -> None:
    if not isinstance(item, dict):
        raise _invalid(f"invalid_type: {where} must be an object.")
    kind = item.get("type", "message")
    if kind not in _INPUT_TYPES:
        raise _invalid(f"invalid_value: {where}.type {kind!r} is not supported.")
    if kind == "message":
        if item.get("role") not in _MESSAGE_ROLES:
            raise _invalid(f"invalid_value: {where}.role must be one of {list(_MESSAGE_ROLES)}.")
        if not isinstance(item.get("content"), (str, list)):
            raise _invalid(f"invalid_type: {where}.content must be a string or an array.")
    elif kind == "function_call":
        for key in ("call_id", "name", "arguments"):
            if not isinstance(item.get(key), str):
                raise _invalid(f"missing_required_parameter: {where}.{key}")
    elif kind == "function_call_output":
        if not isinstance(item.get("call_id"), str):
            raise _invalid(f"missing_required_parameter: {where}.call_id")
        if not isinstance(item.get("output"), (str, list)):
            raise _invalid(f"missing_required_parameter: {where}.output")


def _check_calls(history: list[JSON], items: list[JSON]) -> None:
    """Every function output answers a known call, right after it if the call is in ``items``.

    The adjacency rule is DashScope's ("must immediately follow its function_call"); the unknown
    call_id error is OpenAI's (inferred for DashScope).
    """
    in_input = {i["call_id"] for i in items if i.get("type") == "function_call"}
    known = in_input | {i["call_id"] for i in history if i.get("type") == "function_call"}
    for index, item in enumerate(items):
        if item.get("type") != "function_call_output":
            continue
        call_id = item["call_id"]
        if call_id not in known:
            raise _invalid(
                f"invalid_value: No tool call found for function call output with call_id "
                f"{call_id}."
            )
        before = items[index - 1] if index else {}
        if call_id in in_input and not (
            before.get("type") == "function_call" and before.get("call_id") == call_id
        ):
            raise _invalid(
                f"invalid_value: The function_call_output with call_id {call_id} must "
                "immediately follow its function_call."
            )


def _check_answered(output: list[JSON], items: list[JSON]) -> None:
    """A request chained to a response that ended in function calls must answer every one.

    OpenAI's rule and error text (inferred for DashScope, whose docs do not say).
    """
    answered = {i.get("call_id") for i in items if i.get("type") == "function_call_output"}
    for item in output:
        if item.get("type") == "function_call" and item.get("call_id") not in answered:
            raise _invalid(
                f"invalid_request: No tool output found for function call {item.get('call_id')}."
            )


def _tools(value: Any) -> list[str]:
    """The tools' Assistant-API names (``web_search`` is ``quark_search`` there)."""
    if value is None:
        return []
    if not isinstance(value, list) or not all(
        isinstance(t, dict) and isinstance(t.get("type"), str) for t in value
    ):
        raise _invalid("invalid_type: tools must be an array of objects, each with a 'type'.")
    return [_TOOL_NAMES.get(t["type"], t["type"]) for t in value]


def _text(content: Any) -> str:
    """A message's text: the string, or its text parts joined (images and files ignored)."""
    if isinstance(content, str):
        return content
    parts = content if isinstance(content, list) else ()
    return "".join(
        str(p.get("text") or "")
        for p in parts
        if isinstance(p, dict) and p.get("type") in ("input_text", "output_text", "text")
    )


def _conversation(items: list[JSON], instructions: str, tools: list[str]) -> Conversation:
    """What the scenario engine sees, entry for entry as ``Turn.transcript`` and the Assistant
    side's thread history write it; system and developer messages join the instructions."""
    messages: list[tuple[str, str]] = []
    extra: list[str] = []
    for item in items:
        kind = item.get("type", "message")
        if kind == "message":
            role, text = item.get("role"), _text(item.get("content"))
            if role in ("system", "developer"):
                extra.append(text)
            else:
                messages.append((str(role), text))
        elif kind == "function_call":
            messages.append(("assistant", f"{item.get('name')}({item.get('arguments')})"))
        elif kind == "function_call_output":
            messages.append(("tool", _text(item.get("output"))))
        elif kind == "code_interpreter_call":
            logs = "".join(
                str(o.get("logs") or "")
                for o in item.get("outputs") or ()
                if isinstance(o, dict) and o.get("type") == "logs"
            )
            messages += [("assistant", str(item.get("code") or "")), ("tool", logs)]
        elif kind == "web_search_call":
            action = item.get("action") or {}
            sources = json.dumps(action.get("sources") or [], ensure_ascii=False)
            messages += [("assistant", str(action.get("query") or "")), ("tool", sources)]
    joined = "\n\n".join([instructions, *extra] if instructions else extra)
    return Conversation(tuple(messages), joined, tuple(tools))
