"""One response's output items as Assistant steps and messages (the translator's item half).

Pure, like ``translate``: ids and time are injected. ``OutputItems`` is owned by
``ResponsesTranslator``, which checks the response's state before calling in; a
``TranslationError`` raised here means the items arrived in an impossible order or malformed.

Which item an event is about: its id first (every id an item was seen under). An item event
whose id is new is about the unfinished item of the same type at the same ``output_index``
(one OpenAI-compatible server changes an item's id from event to event), else, for a message,
about the open message (only one is open at a time), else, for a function call, about the one
with the same ``call_id``; else it is a new item. ``output_item.added`` is never matched by
position: DashScope's ``output_index`` is unreliable (its own example adds an item at 0 and
finishes it at 1), so a position is only trusted when the id does not match. An item of
``response.completed.output`` whose id is new is matched by its position in that list (the
item's first ``output_index``, else the order the stream first showed the items in), and only
to an item of the same type that no other output entry matched by id.
"""

from __future__ import annotations

from collections.abc import Callable
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
from compat.backends.responses._item import Item
from compat.backends.responses._shape import (
    code_logs,
    hosted_parts,
    item_key,
    message_text,
    opt_list,
    opt_str,
    tool_call_id,
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


def emit(name: str, obj: JSON) -> Event:
    """An event carrying a copy of a snapshot: the caller may add keys, the snapshot moves on."""
    return (name, dict(obj))


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
        self._items: dict[str, Item] = {}  # every id an item was seen under → the item
        self._seen: list[Item] = []  # every item, in the order the stream showed them
        self._open: list[Item] = []  # messages and tools whose step is open, in order
        self._deferred: JSON | None = None  # a completed message's step, awaiting its event
        self._last_text = ""  # the last finished message's text (see ``known_text``)
        self._call_step: JSON | None = None

    # -- item events ------------------------------------------------------------------------
    def add(self, item: JSON, position: int | None) -> tuple[list[Event], Item]:
        """``output_item.added``: open the item's step (and message)."""
        item_id, kind = item_key(item, "output item")
        if item_id is not None and item_id in self._items:
            raise TranslationError(f"output item {item_id} added twice")
        out = self._start_run()
        opened: list[Event] = []
        if kind == "message" and self.message is not None:
            if self.message.item_id is not None:
                raise TranslationError("a message item started while another is open")
            rec = self.message  # the message opened by id-less deltas
        elif kind == "message":
            opened, rec = self._open_message(item_id)
        elif kind == "function_call":
            opened, rec = self._open_call(item, item_id)
        elif kind in HOSTED_TOOLS:
            opened, rec = self._open_tool(item_id, HOSTED_TOOLS[kind])
        else:
            if kind not in IGNORED_ITEMS:
                name = kind or "<no type>"
                self.unknown[name] = self.unknown.get(name, 0) + 1
            rec = Item("hidden", item_id)
        self._register(rec, item_id, kind, position)
        return out + opened, rec

    def done(self, item: JSON, position: int | None) -> list[Event]:
        """``output_item.done``: finish the item (opening it first if never added)."""
        item_id, kind = item_key(item, "output item")
        rec = self._find(item_id, kind, position, item)
        if rec is not None and rec.done:
            raise TranslationError(f"output item {item_id} finished twice")
        return self._finish(rec, item, position)

    def code_delta(self, item_id: str | None, position: int | None, text: object) -> Event:
        rec = self._delta_target(item_id, position, "code_interpreter_call")
        if rec is None or rec.name != "code_interpreter":
            raise TranslationError("code delta for no open code_interpreter call")
        if not isinstance(text, str):
            raise TranslationError("code delta without a string delta")
        rec.add_text(text)
        return self._tool_delta(rec, text, "")

    def arguments_delta(self, item_id: str | None, position: int | None, text: object) -> Event:
        rec = self._delta_target(item_id, position, "function_call")
        if rec is None or rec.kind != "call" or rec.final is not None:
            raise TranslationError("arguments delta for no open function call")
        if not isinstance(text, str):
            raise TranslationError("arguments delta without a string delta")
        rec.add_text(text)
        return self._call_delta(rec, text)

    def message_text_delta(self, text: str, position: int | None) -> list[Event]:
        """A text delta (a string): for the open message, else for one it opens first.

        DashScope's deltas have no item_id, and DashScope may skip ``output_item.added``.
        """
        rec = self.message
        out: list[Event] = []
        if rec is None:
            out, rec = self.open_message(position)
        rec.add_text(text)
        out.append(("thread.message.delta", self.text_delta(rec.object_id, text)))
        return out

    def partial_message(self) -> JSON | None:
        """The open message with its text so far, as a new dict; None if none is open.

        Called from the lease keeper's thread while the driver's thread streams (see ``_item``).
        """
        rec = self.message
        if rec is None:
            return None
        text = rec.text_so_far()
        return dict(rec.message, status="in_progress", content=[text_content(text)])

    def text_done(self, text: object) -> None:
        """``output_text.done``: where it is the open message's text so far, that text is kept
        as one string from here on (the deltas' pieces let go; nothing else changes)."""
        rec = self.message
        if rec is not None and rec.text is not None and isinstance(text, str):
            rec.text.adopt(text)

    def known_text(self) -> list[str] | None:
        """The open message's text so far, in pieces; else the last finished message's."""
        rec = self.message
        if rec is not None:
            buffer = rec.text  # read once (see ``_item``)
            if buffer is not None:
                return buffer.pieces()
            return [rec.final] if rec.final else None
        return [self._last_text] if self._last_text else None

    def answer_calls(self, step: JSON, outputs: dict[str, str]) -> Event:
        """A continued run's stored function step, completed with the tool outputs given."""
        step = dict(step)
        calls = [
            dict(c, function=dict(c["function"], output=outputs[c["id"]]))
            if c.get("type") == "function" and c["id"] in outputs
            else c
            for c in step["step_details"]["tool_calls"]
        ]
        self.steps.append(step)
        return self._complete_step(step, None, tool_calls_details(calls))

    # -- the end of the response ------------------------------------------------------------
    def settle(self, response: JSON, usage: JSON | None) -> list[Event]:
        """At ``response.completed``: finish what the stream left open, end the last step.

        The response's ``output`` is the final word on items the stream never finished; an
        open item missing from it is finished from what was streamed.
        """
        entries = []
        for entry in opt_list(response, "output", "response.completed response"):
            if not isinstance(entry, dict):
                raise TranslationError("response.completed response: an output item is no object")
            item_id, kind = item_key(entry, "response.completed output item")
            entries.append((entry, kind, self._items.get(item_id) if item_id else None))
        taken = {id(rec) for _, _, rec in entries if rec is not None}
        out: list[Event] = []
        for position, (entry, kind, rec) in enumerate(entries):
            if rec is None:  # a new id: the item at the same place, if it is of the same type
                rec = self._at(position, kind, taken) or self._find(None, kind, None, entry, taken)
                if rec is not None:
                    taken.add(id(rec))
            if rec is None or not rec.done:
                out += self._finish(rec, entry, position)
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
                text = rec.end_text() or ""
                rec.message.update(status="incomplete", content=[text_content(text)])
                out.append(emit("thread.message.incomplete", rec.message))
                self.messages.append(rec.message)
            elif rec.kind == "tool":
                partial = tool_call(rec.object_id, rec.name, rec.end_text() or "", None, rec.index)
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
            function_call(r.object_id, r.name, r.text_so_far(), None, r.index) for r in self.calls
        ]

    # -- which item --------------------------------------------------------------------------
    def _register(
        self, rec: Item, item_id: str | None, kind: str | None, position: int | None
    ) -> None:
        """Remember ``rec`` under ``item_id`` too; a new item also gets its type and place."""
        if rec.order < 0:
            rec.item_type, rec.order = kind, len(self._seen)
            self._seen.append(rec)
        if rec.position is None:
            rec.position = position
        if item_id is not None:
            self._items[item_id] = rec
            if rec.item_id is None:
                rec.item_id = item_id

    def _find(
        self,
        item_id: str | None,
        kind: str | None,
        position: int | None,
        item: JSON,
        taken: frozenset[int] | set[int] = frozenset(),
    ) -> Item | None:
        """The item a finished ``item`` is about (see the module docstring); None if new."""
        rec = self._items.get(item_id) if item_id is not None else None
        if rec is not None:
            return rec
        call_id = opt_str(item, "call_id", "output item") if kind == "function_call" else None
        for rec in self._seen:
            if rec.done or rec.item_type != kind or id(rec) in taken:
                continue
            if rec.call_id is not None and call_id is not None:
                if rec.call_id == call_id:  # a function call's own id outranks any position
                    return rec
            elif position is not None and rec.position == position:
                return rec
        message = self.message
        if kind == "message" and message is not None and id(message) not in taken:
            return message  # only one message is open at a time
        return None

    def _at(self, position: int, kind: str | None, taken: set[int]) -> Item | None:
        """The item at ``position`` of ``response.completed.output``, if of type ``kind``."""
        free = [r for r in self._seen if r.item_type == kind and id(r) not in taken]
        for rec in free:
            if rec.position == position:
                return rec
        for rec in free:
            if rec.order == position:
                return rec
        return None

    def _delta_target(self, item_id: str | None, position: int | None, kind: str) -> Item | None:
        """The unfinished item a code or arguments delta is for: by id, else by position."""
        rec = self._items.get(item_id) if item_id is not None else None
        if rec is None and position is not None:
            open_here = (r for r in self._seen if not r.done and r.position == position)
            rec = next((r for r in open_here if r.item_type == kind), None)
            if rec is not None and item_id is not None:
                self._items[item_id] = rec
        return None if rec is None or rec.done else rec

    def _finish(self, rec: Item | None, item: JSON, position: int | None) -> list[Event]:
        """Finish ``rec`` with the finished ``item``; no ``rec``: a new item, added first."""
        out: list[Event] = []
        if rec is None:  # first seen finished (DashScope's function calls and hosted tools)
            out, rec = self.add(item, position)
        else:
            self._register(rec, *item_key(item, "output item"), position)
        rec.done = True
        if rec.kind == "message":
            out += self._finish_message(rec, item)
        elif rec.kind == "tool":
            out += self._finish_tool(rec, item)
        elif rec.kind == "call":
            out += self._finish_call(rec, item)
        return out

    # -- opening and finishing --------------------------------------------------------------
    def open_message(self, position: int | None) -> tuple[list[Event], Item]:
        """Open a message for a text delta that came before (or without) its item."""
        out, rec = self._open_message(None)
        self._register(rec, None, "message", position)
        return out, rec

    def _open_message(self, item_id: str | None) -> tuple[list[Event], Item]:
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
        finished = message_text(item)  # read (and checked) even when the deltas had it all
        incomplete = opt_str(item, "status", "message item") == "incomplete"
        streamed = rec.end_text(finished)  # as it should be, ``finished`` itself: one copy
        text = finished if streamed is None else streamed
        if streamed is None and text:  # text only on the finished item: one delta with all of it
            out.append(("thread.message.delta", self.text_delta(rec.object_id, text)))
        status = "incomplete" if incomplete else "completed"
        self._last_text = text
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
        rec = Item(
            "tool", item_id, step, object_id=tool_call_id(item_id, self._new_id), name=tool_type
        )
        self._open.append(rec)
        return out + self._step_opened(step), rec

    def _finish_tool(self, rec: Item, item: JSON) -> list[Event]:
        out: list[Event] = []
        if rec.name == "code_interpreter":
            code = opt_str(item, "code", "code_interpreter_call item")
            output = code_logs(item)
            streamed = rec.end_text(code)
            arguments = rec.final = (streamed or "") if code is None else code
            if streamed is None:  # no code deltas (DashScope): the whole code in one
                out.append(self._tool_delta(rec, arguments, ""))
        else:
            arguments, output = hosted_parts(rec.name, item)
            out.append(self._tool_delta(rec, arguments, ""))
        out.append(self._tool_delta(rec, "", output))
        self._open.remove(rec)
        call = tool_call(rec.object_id, rec.name, arguments, output, rec.index)
        out.append(self._complete_step(rec.step, None, tool_calls_details([call])))
        return out

    def _open_call(self, item: JSON, item_id: str | None) -> tuple[list[Event], Item]:
        call_id = opt_str(item, "call_id", "function_call item")
        name = opt_str(item, "name", "function_call item")
        out = self._begin_visible()
        if self._call_step is None:  # one step holds every function call of the response
            self._call_step = self._new_step(self._clock(), tool_calls_details([]))
            out += self._step_opened(self._call_step)
        object_id = call_id or self._new_id("call")
        rec = Item("call", item_id, self._call_step, object_id=object_id, index=len(self.calls))
        rec.name, rec.call_id = name or "", call_id or None
        self.calls.append(rec)
        out.append(self._call_delta(rec, ""))
        return out, rec

    def _finish_call(self, rec: Item, item: JSON) -> list[Event]:
        arguments = opt_str(item, "arguments", "function_call item")
        name = opt_str(item, "name", "function_call item")
        streamed = rec.end_text(arguments)
        rec.final = (streamed or "") if arguments is None else arguments
        rec.name = rec.name or name or ""
        # No argument deltas (DashScope): the whole arguments string as one fragment.
        return [] if streamed is not None else [self._call_delta(rec, rec.final)]

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
