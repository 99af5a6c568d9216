"""One response's output items as Assistant steps and messages (the translator's item half).

Pure, like ``translate``: ids and time are injected. ``OutputItems`` is owned by
``ResponsesTranslator``, which checks the response's state before calling in; a
``TranslationError`` raised here means the items arrived in an impossible order.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from compat._objects import (
    function_call,
    message_creation_details,
    message_delta,
    message_object,
    step_delta,
    step_object,
    text_content,
    tool_call,
    tool_calls_details,
)
from compat.errors import TranslationError

__all__ = [
    "HOSTED_TOOLS",
    "IGNORED_ITEMS",
    "Event",
    "Item",
    "OutputItems",
    "complete_step",
    "emit",
    "map_error",
]

JSON = dict[str, Any]
#: ``(event name, payload)``: a dict, except a text delta from an injected ``text_delta`` builder.
Event = tuple[str, Any]
#: Builds a ``thread.message.delta`` payload from (message id, text): ``message_delta`` by default.
TextDelta = Callable[[str, str], Any]

#: Hosted-tool item types → the tool type of their Assistant tool call. ``web_search`` is
#: DashScope's ``quark_search`` (DESIGN 5); the others keep the Responses tool's name. Only
#: ``code_interpreter`` has a dashscope type: users get the others as dicts either way.
HOSTED_TOOLS: dict[str, str] = {
    "code_interpreter_call": "code_interpreter",
    "web_search_call": "quark_search",
    "web_extractor_call": "web_extractor",
    "web_search_image_call": "web_search_image",
    "image_search_call": "image_search",
    "file_search_call": "file_search",
    "mcp_call": "mcp",
}
#: Output item types with nothing to show in an Assistant stream (reasoning above all: no leak).
IGNORED_ITEMS = frozenset(
    {"reasoning", "compaction", "mcp_list_tools", "mcp_approval_request", "function_call_output"}
)

#: Content part type → the key holding its text; ``text`` is DashScope's message part.
_TEXT_PARTS = {"output_text": "text", "text": "text", "refusal": "refusal"}
#: Item keys that are not a hosted call's request: bookkeeping and results.
_NOT_ARGUMENTS = frozenset({"id", "type", "status", "output", "outputs", "results", "error"})
_HEX = frozenset("0123456789abcdef")


def emit(name: str, obj: JSON) -> Event:
    """An event carrying a copy of a snapshot: the caller may add keys, the snapshot moves on."""
    return (name, dict(obj))


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


@dataclass(eq=False)
class Item:
    """One visible or hidden output item on its way through the stream."""

    kind: str  # "message" | "tool" | "call" | "hidden"
    item_id: str | None
    step: JSON = field(default_factory=dict)  # its step; a response's function calls share one
    message: JSON = field(default_factory=dict)
    object_id: str = ""  # the message id, or the tool call id
    name: str = ""  # the tool type, or the function name
    index: int = 0
    chunks: list[str] = field(default_factory=list)
    final: str | None = None  # a function call's finished arguments


class OutputItems:
    """The output items of one response, turned into steps, messages and their events.

    ``start_run`` is called before any item opens (it emits ``thread.run.in_progress`` once).
    ``steps`` and ``messages`` are the translator's snapshot lists, appended to here.
    """

    def __init__(
        self,
        run: JSON,
        steps: list[JSON],
        new_id: Callable[[str], str],
        clock: Callable[[], int],
        start_run: Callable[[], list[Event]],
        text_delta: TextDelta = message_delta,
    ) -> None:
        self.run = run
        self.steps = steps
        self.messages: list[JSON] = []  # finished (completed / incomplete) messages
        self.unknown: dict[str, int] = {}  # item types never seen before, counted
        self.message: Item | None = None  # the open message, where text deltas go
        self.calls: list[Item] = []
        self._new_id = new_id
        self._clock = clock
        self._start_run = start_run
        self.text_delta = text_delta
        self._items: dict[str, Item] = {}
        self._done: set[str] = set()
        self._open: list[Item] = []  # messages and tools whose step is open, in order
        self._deferred: JSON | None = None  # a completed message's step, awaiting its event
        self._call_step: JSON | None = None

    # -- item events ------------------------------------------------------------------------
    def add(self, item: JSON) -> tuple[list[Event], Item]:
        """``output_item.added``: open the item's step (and message)."""
        item_id = item.get("id")
        if item_id in self._items:
            raise TranslationError(f"output item {item_id} added twice")
        kind = item.get("type")
        out = self._start_run()
        opened: list[Event] = []
        if kind == "message" and self.message is not None:
            if self.message.item_id is not None:
                raise TranslationError("a message item started while another is open")
            rec = self.message  # the message opened by id-less deltas
            rec.item_id = item_id
        elif kind == "message":
            opened, rec = self.open_message(item_id)
        elif kind == "function_call":
            opened, rec = self._open_call(item, item_id)
        elif kind in HOSTED_TOOLS:
            opened, rec = self._open_tool(item_id, HOSTED_TOOLS[kind])
        else:
            if kind not in IGNORED_ITEMS:
                name = kind if isinstance(kind, str) else "<no type>"
                self.unknown[name] = self.unknown.get(name, 0) + 1
            rec = Item("hidden", item_id)
        if item_id is not None:
            self._items[item_id] = rec
        return out + opened, rec

    def done(self, item: JSON) -> list[Event]:
        """``output_item.done``: finish the item (opening it first if never added)."""
        item_id = item.get("id")
        if item_id is not None and item_id in self._done:
            raise TranslationError(f"output item {item_id} finished twice")
        out: list[Event] = []
        rec = self._items.get(item_id) if item_id is not None else None
        message = self.message
        if rec is None and item.get("type") == "message" and message and message.item_id is None:
            rec = message  # the message opened by id-less deltas
            rec.item_id = item_id
        if rec is None:  # first seen finished (DashScope's function calls and hosted tools)
            out, rec = self.add(item)
        if item_id is not None:
            self._done.add(item_id)
        if rec.kind == "message":
            out += self._finish_message(rec, item)
        elif rec.kind == "tool":
            out += self._finish_tool(rec, item)
        elif rec.kind == "call":
            out += self._finish_call(rec, item)
        return out

    def code_delta(self, item_id: object, text: object) -> Event:
        rec = self._items.get(item_id) if isinstance(item_id, str) else None
        if rec is None or rec.name != "code_interpreter" or item_id in self._done:
            raise TranslationError("code delta for no open code_interpreter call")
        if not isinstance(text, str):
            raise TranslationError("code delta without a string delta")
        rec.chunks.append(text)
        return self._tool_delta(rec, text, "")

    def arguments_delta(self, item_id: object, text: object) -> Event:
        rec = self._items.get(item_id) if isinstance(item_id, str) else None
        if rec is None or rec.kind != "call" or rec.final is not None:
            raise TranslationError("arguments delta for no open function call")
        if not isinstance(text, str):
            raise TranslationError("arguments delta without a string delta")
        rec.chunks.append(text)
        return self._call_delta(rec, text)

    # -- the end of the response ------------------------------------------------------------
    def settle(self, response: JSON, usage: JSON | None) -> list[Event]:
        """At ``response.completed``: finish what the stream left open, end the last step.

        The response's ``output`` is the final word on items the stream never finished; an
        open item missing from it is finished from what was streamed.
        """
        out: list[Event] = []
        for item in response.get("output") or ():
            if isinstance(item, dict) and isinstance(item.get("id"), str):
                out += [] if item["id"] in self._done else self.done(item)
        for rec in list(self._open):
            if rec.kind == "tool":
                out += self._finish_tool(rec, {})
            elif rec.message["status"] == "in_progress":
                out += self._finish_message(rec, {})
            else:  # a message that ended incomplete inside a completed response
                self._open.remove(rec)
                out.append(self._complete_step(rec.step, None))
        for rec in self.calls:
            if rec.final is None:
                out += self._finish_call(rec, {})
        return out + self._flush(usage)

    def hold_calls(self) -> list[JSON]:
        """For requires_action: the function step keeps the full calls (outputs None)."""
        assert self._call_step is not None
        self._call_step["step_details"] = tool_calls_details(self.call_objects())
        return self.call_objects()

    def close(self, status: str, now: int, error: JSON | None, usage: JSON | None) -> list[Event]:
        """End every open message (incomplete, partial text kept) and step (failed/cancelled)."""
        out = self._flush(usage)  # that message did complete
        for rec in self._open:
            details = None
            if rec.kind == "message" and rec.message["status"] == "in_progress":
                rec.message.update(status="incomplete", content=[text_content("".join(rec.chunks))])
                out.append(emit("thread.message.incomplete", rec.message))
                self.messages.append(rec.message)
            elif rec.kind == "tool":
                partial = tool_call(rec.object_id, rec.name, "".join(rec.chunks), None, rec.index)
                details = tool_calls_details([partial])
            out.append(self._end_step(rec.step, status, now, error, details))
        self._open.clear()
        self.message = None
        if self._call_step is not None and self._call_step["status"] == "in_progress":
            details = tool_calls_details(self.call_objects())
            out.append(self._end_step(self._call_step, status, now, error, details))
        return out

    def call_objects(self) -> list[JSON]:
        """The response's function calls as fresh dicts, arguments as far as known."""
        return [
            function_call(
                r.object_id,
                r.name,
                "".join(r.chunks) if r.final is None else r.final,
                None,
                r.index,
            )
            for r in self.calls
        ]

    # -- opening and finishing --------------------------------------------------------------
    def open_message(self, item_id: str | None) -> tuple[list[Event], Item]:
        out = self._begin_visible()
        run, now, message_id = self.run, self._clock(), self._new_id("msg")
        message = message_object(
            message_id,
            now,
            run["thread_id"],
            role="assistant",
            text=None,
            status="in_progress",
            assistant_id=run["assistant_id"],
            run_id=run["id"],
        )
        step = self._new_step(now, message_creation_details(message_id))
        rec = Item("message", item_id, step, message, message_id)
        self._open.append(rec)
        self.message = rec
        out += self._step_opened(step)
        out.append(emit("thread.message.created", message))
        out.append(emit("thread.message.in_progress", message))
        return out, rec

    def _finish_message(self, rec: Item, item: JSON) -> list[Event]:
        out: list[Event] = []
        text = "".join(rec.chunks) if rec.chunks else _message_text(item)
        if not rec.chunks and text:  # text only on the finished item: one delta with all of it
            out.append(("thread.message.delta", self.text_delta(rec.object_id, text)))
        status = "incomplete" if item.get("status") == "incomplete" else "completed"
        rec.message.update(status=status, content=[text_content(text)])
        out.append(emit(f"thread.message.{status}", rec.message))
        self.messages.append(rec.message)
        self.message = None
        if status == "completed":  # an incomplete message's step stays open for the failure
            self._open.remove(rec)
            self._deferred = rec.step
        return out

    def _open_tool(self, item_id: str | None, tool_type: str) -> tuple[list[Event], Item]:
        out = self._begin_visible()
        step = self._new_step(self._clock(), tool_calls_details([]))
        rec = Item("tool", item_id, step, object_id=_call_id(item_id, self._new_id), name=tool_type)
        self._open.append(rec)
        return out + self._step_opened(step), rec

    def _finish_tool(self, rec: Item, item: JSON) -> list[Event]:
        out: list[Event] = []
        if rec.name == "code_interpreter":
            code = item.get("code")
            arguments = code if isinstance(code, str) else "".join(rec.chunks)
            output = "".join(
                o.get("logs") or ""  # logs only: image outputs have no Assistant shape
                for o in item.get("outputs") or ()
                if isinstance(o, dict) and o.get("type") == "logs"
            )
            if not rec.chunks:  # no code deltas (DashScope): the whole code in one
                out.append(self._tool_delta(rec, arguments, ""))
        else:
            arguments, output = _hosted_parts(rec.name, item)
            out.append(self._tool_delta(rec, arguments, ""))
        out.append(self._tool_delta(rec, "", output))
        self._open.remove(rec)
        call = tool_call(rec.object_id, rec.name, arguments, output, rec.index)
        out.append(self._complete_step(rec.step, None, tool_calls_details([call])))
        return out

    def _open_call(self, item: JSON, item_id: str | None) -> tuple[list[Event], Item]:
        out = self._begin_visible()
        if self._call_step is None:  # one step holds every function call of the response
            self._call_step = self._new_step(self._clock(), tool_calls_details([]))
            out += self._step_opened(self._call_step)
        call_id = item.get("call_id") or self._new_id("call")
        rec = Item("call", item_id, self._call_step, object_id=call_id, index=len(self.calls))
        rec.name = item.get("name") or ""
        self.calls.append(rec)
        out.append(self._call_delta(rec, ""))
        return out, rec

    def _finish_call(self, rec: Item, item: JSON) -> list[Event]:
        arguments = item.get("arguments")
        rec.final = arguments if isinstance(arguments, str) else "".join(rec.chunks)
        rec.name = rec.name or item.get("name") or ""
        # No argument deltas (DashScope): the whole arguments string as one fragment.
        return [] if rec.chunks else [self._call_delta(rec, rec.final)]

    # -- steps ------------------------------------------------------------------------------
    def _begin_visible(self) -> list[Event]:
        """Before a visible item opens: the run is in progress, an earlier message step ends."""
        return self._start_run() + self._flush(None)

    def _flush(self, usage: JSON | None) -> list[Event]:
        """Complete the deferred message step: ``usage`` is known only for the response's last."""
        step, self._deferred = self._deferred, None
        return [] if step is None else [self._complete_step(step, usage)]

    def _new_step(self, now: int, details: JSON) -> JSON:
        step = step_object(self._new_id("step"), now, self.run, step_details=details)
        self.steps.append(step)
        return step

    def _step_opened(self, step: JSON) -> list[Event]:
        return [emit("thread.run.step.created", step), emit("thread.run.step.in_progress", step)]

    def _complete_step(self, step: JSON, usage: JSON | None, details: JSON | None = None) -> Event:
        return complete_step(step, self._clock(), usage, details)

    @staticmethod
    def _end_step(
        step: JSON, status: str, now: int, error: JSON | None, details: JSON | None
    ) -> Event:
        if status == "failed":
            step.update(status=status, failed_at=now, last_error=dict(error or {}))
        else:
            step.update(status=status, cancelled_at=now)
        if details is not None:
            step["step_details"] = details
        return emit(f"thread.run.step.{status}", step)

    @staticmethod
    def _tool_delta(rec: Item, arguments: str, output: str) -> Event:
        call = tool_call(rec.object_id, rec.name, arguments, output, rec.index)
        return ("thread.run.step.delta", step_delta(rec.step["id"], [call]))

    @staticmethod
    def _call_delta(rec: Item, arguments: str) -> Event:
        call = function_call(rec.object_id, rec.name, arguments, None, rec.index)
        return ("thread.run.step.delta", step_delta(rec.step["id"], [call]))


def complete_step(step: JSON, now: int, usage: JSON | None, details: JSON | None = None) -> Event:
    """Mark ``step`` completed (new details if given) and emit it."""
    step.update(status="completed", completed_at=now, usage=usage)
    if details is not None:
        step["step_details"] = details
    return emit("thread.run.step.completed", step)


def _message_text(item: JSON) -> str:
    """The text of a finished ``message`` item: its text-bearing content parts, joined."""
    chunks: list[str] = []
    for part in item.get("content") or ():
        key = _TEXT_PARTS.get(str(part.get("type")), "") if isinstance(part, dict) else ""
        if key and isinstance(part.get(key), str):
            chunks.append(part[key])
    return "".join(chunks)


def _hosted_parts(tool_type: str, item: JSON) -> tuple[str, str]:
    """``(arguments, output)`` strings of a finished hosted call other than code_interpreter.

    quark_search (a ``web_search_call``): ``{"query": q}`` and the ``sources`` list, per
    EVENTS.md; a non-search action (``open_page``, ``find_in_page``) gives the action itself as
    arguments. Other hosted calls: the item's request fields (everything but id, type, status and
    results) as a JSON object, and the first of ``output`` / ``results`` / ``error`` (a string
    kept, anything else as JSON; "" if none).
    """
    if tool_type == "quark_search":
        action = item.get("action") or {}
        if action.get("type", "search") == "search":
            query = action.get("query") or next(iter(action.get("queries") or ()), "")
            arguments = _dumps({"query": query})
        else:
            arguments = _dumps({k: v for k, v in action.items() if k != "sources"})
        return arguments, _dumps(action.get("sources") or [])
    arguments = _dumps({k: v for k, v in item.items() if k not in _NOT_ARGUMENTS})
    for key in ("output", "results", "error"):
        value = item.get(key)
        if value is not None:
            return arguments, value if isinstance(value, str) else _dumps(value)
    return arguments, ""


def _call_id(item_id: object, new_id: Callable[[str], str]) -> str:
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
