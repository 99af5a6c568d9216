"""Scenario turns rendered as the Assistant-API events of EVENTS.md, for the emulator.

Rendering updates the stored objects (:class:`RunState`, :class:`ThreadState`) as it goes and
collects each event encoded (:class:`Events`); a non-streamed run renders the same way with its
events discarded. :class:`StreamLog` keeps what a streamed reply changed, so that a client which
leaves mid-stream finds the run cancelled where it left (:meth:`StreamLog.cut`).
"""

from __future__ import annotations

import copy
import json
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from compat.testing import _wire as w
from compat.testing._clock import new_id, now_ms
from compat.testing.scenario import (
    CodeInterpreter,
    Conversation,
    Failure,
    FunctionCall,
    Item,
    Script,
    Search,
    Text,
    Turn,
)
from compat.testing.server import new_request_id

__all__ = [
    "DISCARD",
    "Advancer",
    "Events",
    "RunState",
    "StreamLog",
    "ThreadState",
    "TurnPlayer",
    "advance",
    "begin",
    "encode_event",
    "proceed",
    "render_stream",
]

JSON = dict[str, Any]
_DONE = b"event:done\ndata:[DONE]\n\n"
_MOVING = frozenset({"queued", "in_progress", "cancelling"})  # states that advance by themselves
Said = tuple[str, str]  # a ``(role, text)`` entry of a thread's history


def encode_event(name: str, payload: JSON) -> bytes:
    """``event:<name>\\ndata:<one-line JSON>\\n\\n``, exactly as dashscope's parser needs it."""
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return f"event:{name}\ndata:{data}\n\n".encode()


class Events:
    """Collects a stream's encoded events; ``Events(None)`` discards them (non-streamed runs).

    ``said`` pairs each history entry the rendering adds with the number of events before it, so
    that a stream cut short keeps the entries of what its client saw finish.
    """

    def __init__(self, chunks: list[bytes] | None) -> None:
        self.chunks = chunks
        self.said: list[tuple[int, Said]] = []

    def __call__(self, name: str, payload: JSON) -> None:
        if self.chunks is not None:
            self.chunks.append(encode_event(name, payload))

    def text_deltas(self, message_id: str, pieces: Sequence[str]) -> None:
        """The ``thread.message.delta`` events: the hot path of long streams, so from a template."""
        if self.chunks is None:
            return
        template = encode_event("thread.message.delta", w.message_delta(message_id, "\x00"))
        head, tail = template.split(b'"\\u0000"')  # json.dumps's spelling of the placeholder
        dumps = json.dumps
        self.chunks.extend(head + dumps(p, ensure_ascii=False).encode() + tail for p in pieces)

    def say(self, history: list[Said], entries: Sequence[Said]) -> None:
        """Add ``entries`` to ``history``, as said after the events collected so far."""
        history.extend(entries)
        if self.chunks is not None:
            self.said.extend((len(self.chunks), entry) for entry in entries)


DISCARD = Events(None)


@dataclass
class ThreadState:
    """A stored thread: its object, messages and runs, and what was said in it."""

    obj: JSON
    messages: dict[str, JSON] = field(default_factory=dict)
    runs: dict[str, RunState] = field(default_factory=dict)
    #: ``(role, text)`` of everything said in the thread, for the scenario engine.
    history: list[Said] = field(default_factory=list)


@dataclass
class RunState:
    """A stored run: its object and steps, and what playing it needs between requests."""

    obj: JSON
    thread: ThreadState
    script: Script
    steps: dict[str, JSON] = field(default_factory=dict)
    tokens: tuple[int, int] | None = None  # summed over the run's finished turns
    tool_step: JSON | None = None  # the function-call step waiting for outputs
    outputs: dict[str, str] | None = None  # submitted outputs not applied yet
    last_move: float = 0.0  # time.monotonic() of the last automatic advance
    #: The stream that rendered the run last, while its reply is alive and nothing changed since.
    stream: weakref.ref[StreamLog] | None = None


def begin(run: RunState, emit: Events) -> None:
    """The run starts (or resumes after tool outputs): ``in_progress``."""
    run.obj["status"] = "in_progress"
    run.obj["started_at"] = run.obj["started_at"] or now_ms()
    emit("thread.run.in_progress", run.obj)


def proceed(run: RunState, emit: Events) -> bool:
    """Apply submitted outputs, then play the next turn; False if the stream must just end."""
    if run.outputs is not None and run.tool_step is not None:
        step = run.tool_step
        said = []
        for call in step["step_details"]["tool_calls"]:
            output = run.outputs[call["id"]]
            call["function"]["output"] = output
            said.append(("tool", output))
        step.update(status="completed", completed_at=now_ms())
        emit("thread.run.step.completed", step)
        emit.say(run.thread.history, said)
        run.tool_step = run.outputs = None
    return TurnPlayer(run, emit).play()


def advance(run: RunState) -> None:
    """One step of a non-streamed run: queued → in_progress → final, cancelling → cancelled."""
    status = run.obj["status"]
    if status == "queued":
        begin(run, DISCARD)
    elif status == "in_progress":
        proceed(run, DISCARD)
    elif status == "cancelling":
        now = now_ms()
        run.obj.update(status="cancelled", cancelled_at=now, required_action=None)
        if run.tool_step is not None:
            run.tool_step.update(status="cancelled", cancelled_at=now)
            run.tool_step = None


class Advancer:
    """The non-streamed runs that move by themselves, each with :func:`advance`.

    One step per retrieve (:meth:`step`), and one per ``period`` seconds (``None``: never),
    applied lazily by :meth:`catch_up`.
    """

    def __init__(self, period: float | None) -> None:
        self.period = period
        self.runs: dict[str, RunState] = {}

    def add(self, run: RunState) -> None:
        run.last_move = time.monotonic()
        self.runs[run.obj["id"]] = run

    def step(self, run: RunState) -> None:
        if run.obj["id"] in self.runs:
            self._advance(run)
            run.last_move = time.monotonic()

    def catch_up(self) -> None:
        """Apply the timer: one state per period elapsed since a run's last move."""
        period = self.period
        if period is None:
            return
        now = time.monotonic()
        for run in list(self.runs.values()):
            while run.obj["id"] in self.runs and now - run.last_move >= period:
                self._advance(run)
                run.last_move += period

    def _advance(self, run: RunState) -> None:
        advance(run)
        if run.obj["status"] not in _MOVING:
            self.runs.pop(run.obj["id"], None)


def render_stream(run: RunState, emit: Events) -> StreamLog:
    """Render the rest of ``run`` onto the events in ``emit``; the log to cut them by.

    The stream ends with ``done``, unless a raw ``error`` event ends it.
    """
    log = StreamLog(run, emit)
    begin(run, emit)
    if proceed(run, emit):
        log.chunks.append(_DONE)
    log.seal()
    run.stream = weakref.ref(log)  # the reply keeps it alive while it is written, not longer
    return log


class TurnPlayer:
    """Renders the next turn of a run as Assistant-API events, updating the stored objects.

    Each item's history entries are said once the item is finished in the event list (a message
    when it is completed), so a stream cut before that point leaves them out.
    """

    def __init__(self, run: RunState, emit: Events) -> None:
        self.run, self.emit = run, emit
        tools = tuple(str(t.get("type")) for t in run.obj["tools"] if isinstance(t, dict))
        self.conversation = Conversation(tuple(run.thread.history), run.obj["instructions"], tools)
        self.open_message: JSON | None = None
        self.open_step: JSON | None = None
        self.open_said: list[Said] = []  # the history entries of the open item

    def play(self) -> bool:
        run = self.run
        turn = run.script.next_turn(self.conversation)
        usage = turn.usage_for(self.conversation)
        for item in turn.items:
            if isinstance(item, Text):
                self._text(item, usage)
            elif isinstance(item, CodeInterpreter):
                self._builtin("code_interpreter", item.pieces(), item.code, item.output)
            elif isinstance(item, Search):
                self._builtin("quark_search", [item.arguments()], item.arguments(), item.output())
            else:
                continue
            self.open_said = _said(item)
        failure = turn.failure
        if failure is not None:
            return self._fail(failure)
        self._close_open()
        run.tokens = usage if run.tokens is None else _add(run.tokens, usage)
        if turn.function_calls:
            self._call_functions(turn.function_calls)
        else:
            run.obj.update(status="completed", completed_at=now_ms(), usage=w.run_usage(run.tokens))
            self.emit("thread.run.completed", run.obj)
        return True

    def _say(self, emit: Events) -> None:
        emit.say(self.run.thread.history, self.open_said)
        self.open_said = []

    def _new_step(self, details: JSON) -> JSON:
        step = w.step(new_id("step"), now_ms(), self.run.obj, details)
        self.run.steps[step["id"]] = step
        self.emit("thread.run.step.created", step)
        self.emit("thread.run.step.in_progress", step)
        return step

    def _close_open(self) -> None:
        """Complete the item rendered last (items stay open in case a Failure follows)."""
        if self.open_message is not None:
            self.open_message["status"] = "completed"
            self.emit("thread.message.completed", self.open_message)
            self._say(self.emit)
        if self.open_step is not None:
            self.open_step.update(status="completed", completed_at=now_ms())
            self.emit("thread.run.step.completed", self.open_step)
        self._say(self.emit)
        self.open_message = self.open_step = None

    def _text(self, item: Text, usage: tuple[int, int]) -> None:
        self._close_open()
        run, emit = self.run, self.emit
        message_id = new_id("msg")
        step = self._new_step(w.message_creation(message_id))
        msg = w.message(
            message_id,
            now_ms(),
            run.thread.obj["id"],
            "assistant",
            [],
            status="in_progress",
            run=run.obj,
        )
        run.thread.messages[message_id] = msg
        emit("thread.message.created", msg)
        emit("thread.message.in_progress", msg)
        emit.text_deltas(message_id, item.pieces())
        msg["content"] = [w.text_part(item.text)]
        step["usage"] = w.step_usage(usage)
        self.open_message, self.open_step = msg, step

    def _builtin(self, tool: str, pieces: Sequence[str], arguments: str, output: str) -> None:
        self._close_open()
        call_id = new_id("call")
        step = self._new_step(w.tool_calls([]))
        for piece in pieces:
            delta = w.step_delta(step["id"], [w.builtin_call(call_id, tool, piece, "")])
            self.emit("thread.run.step.delta", delta)
        delta = w.step_delta(step["id"], [w.builtin_call(call_id, tool, "", output)])
        self.emit("thread.run.step.delta", delta)
        step["step_details"] = w.tool_calls([w.builtin_call(call_id, tool, arguments, output)])
        self.open_step = step

    def _call_functions(self, calls: tuple[FunctionCall, ...]) -> None:
        run = self.run
        step = self._new_step(w.tool_calls([]))
        full = []
        for index, call in enumerate(calls):
            call_id = call.call_id or new_id("call")
            for arguments in ("", call.arguments):
                delta = w.function_call(call_id, call.name, arguments, None, index)
                self.emit("thread.run.step.delta", w.step_delta(step["id"], [delta]))
            full.append(w.function_call(call_id, call.name, call.arguments, None, index))
        step["step_details"] = w.tool_calls(full)
        run.tool_step = step
        run.obj.update(status="requires_action", required_action=w.required_action(full))
        self.emit("thread.run.requires_action", run.obj)
        self.emit.say(run.thread.history, _said(*calls))

    def _fail(self, failure: Failure) -> bool:
        """The failure sequence; with ``error_event`` the same state, but a raw error event.

        The Responses-only modes (``incomplete``, ``drop``, ``stall``, ...) have no Assistant-API
        form: they play as ``run_failed`` with the same code and message, which is also how
        compat reports a Responses transport failure (``thread.run.failed``).
        """
        run = self.run
        raw_error = failure.mode == "error_event"
        emit = DISCARD if raw_error else self.emit
        # A "malformed" message may carry raw bytes as lone surrogates: shown as U+FFFD here.
        message = failure.message.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        error = {"code": failure.code, "message": message}
        now = now_ms()
        if self.open_message is not None:
            self.open_message["status"] = "incomplete"
            emit("thread.message.incomplete", self.open_message)
            self._say(emit)
        if self.open_step is not None:
            self.open_step.update(
                status="failed", failed_at=now, last_error=dict(error), usage=None
            )
            emit("thread.run.step.failed", self.open_step)
        # With ``emit`` the item is said where its end is sent: nowhere, with a raw error.
        self._say(emit)
        usage = w.run_usage(run.tokens) if run.tokens is not None else None
        run.obj.update(status="failed", failed_at=now, last_error=error, usage=usage)
        emit("thread.run.failed", run.obj)
        if not raw_error:
            return True
        self.emit("error", w.error_body(failure.code, message, new_request_id()))
        return False


class StreamLog:
    """What one streamed reply changed, to rebuild its run as cancelled after any of its events.

    Made before the rendering (it snapshots the run), :meth:`seal`-ed after it. The stream's events
    carry snapshots of everything it touched, so :meth:`cut` replays the first ones onto the
    snapshot and cancels what they leave open, as compat's Responses backend stores a run whose
    consumer closed the stream.
    """

    def __init__(self, run: RunState, emit: Events) -> None:
        assert emit.chunks is not None, "only a collected stream can be cut"
        self.run, self.chunks, self.said = run, emit.chunks, emit.said
        self._obj = copy.deepcopy(run.obj)
        self._steps = copy.deepcopy(run.steps)
        self._tokens = run.tokens
        self._messages_before = len(run.thread.messages)
        self._history = (len(run.thread.history), len(run.thread.history))
        self._new_messages: list[str] = []

    def seal(self) -> None:
        """Note what the rendering added: messages, and history entries."""
        thread = self.run.thread
        self._new_messages = list(thread.messages)[self._messages_before :]
        self._history = (self._history[0], len(thread.history))

    def cut(self, sent: int) -> None:
        """The client saw only the first ``sent`` events: the run is cancelled after them.

        A message they leave open ends ``incomplete`` with the text sent, an open step
        ``cancelled``; what they did not reach is gone. Nothing changes if they ended the run.
        """
        seen = _Replay(self._obj, self._steps)
        for chunk in self.chunks[:sent]:
            seen.apply(chunk)
        if seen.run["status"] not in ("queued", "in_progress"):
            return
        run, thread, now = self.run, self.run.thread, now_ms()
        said = [entry for position, entry in self.said if position <= sent]
        for message_id in self._new_messages:
            message, stored = seen.messages.get(message_id), thread.messages.get(message_id)
            if message is None or stored is None:
                thread.messages.pop(message_id, None)
                continue
            if message["status"] == "in_progress":
                text = "".join(seen.texts.get(message_id, ()))
                message.update(status="incomplete", content=[w.text_part(text)])
                said.append(("assistant", text))
            stored.update(status=message["status"], content=message["content"])
        for step_id in list(run.steps):
            step = seen.steps.get(step_id)
            if step is None:
                del run.steps[step_id]
                continue
            if step["status"] == "in_progress":
                step.update(status="cancelled", cancelled_at=now)
                calls = seen.calls.get(step_id)
                if calls:
                    step["step_details"] = w.tool_calls([calls[i] for i in sorted(calls)])
            run.steps[step_id] = step
        # Metadata is the one field a client may have updated since the events were sent.
        run.obj.update((k, v) for k, v in seen.run.items() if k != "metadata")
        usage = w.run_usage(self._tokens) if self._tokens is not None else None
        run.obj.update(status="cancelled", cancelled_at=now, required_action=None, usage=usage)
        run.tokens, run.tool_step, run.outputs = self._tokens, None, None
        start, end = self._history
        thread.history[start:end] = said


class _Replay:
    """The run's objects as the first events of a stream left them: snapshots, deltas summed."""

    def __init__(self, run: JSON, steps: dict[str, JSON]) -> None:
        self.run = copy.deepcopy(run)
        self.steps = copy.deepcopy(steps)
        self.messages: dict[str, JSON] = {}
        self.texts: dict[str, list[str]] = {}
        self.calls: dict[str, dict[int, JSON]] = {}  # step id → tool calls by index

    def apply(self, chunk: bytes) -> None:
        head, _, data = chunk.partition(b"\ndata:")
        name = head.decode().removeprefix("event:")
        if not name.startswith("thread.") or name == "thread.created":
            return  # done, error: no object changes
        payload = json.loads(data)
        if name == "thread.message.delta":
            text = payload["delta"]["content"][0]["text"]["value"]
            self.texts.setdefault(payload["id"], []).append(text)
        elif name == "thread.run.step.delta":
            calls = self.calls.setdefault(payload["id"], {})
            for call in payload["delta"]["step_details"]["tool_calls"]:
                _merge_call(calls, call)
        elif name.startswith("thread.message."):
            self.messages[payload["id"]] = payload
        elif name.startswith("thread.run.step."):
            self.steps[payload["id"]] = payload
        else:
            self.run = payload


def _merge_call(calls: dict[int, JSON], call: JSON) -> None:
    """Add a tool-call delta to the call at its index; an output not sent yet is ``None``."""
    known = calls.setdefault(call["index"], call)
    body, part = known[known["type"]], call[call["type"]]
    if known is not call:
        body["arguments"] += part["arguments"]
        body["output"] = (body["output"] or "") + (part["output"] or "")
    body["output"] = body["output"] or None


def _said(*items: Item) -> list[Said]:
    """What ``items`` add to the conversation: their share of :meth:`Turn.transcript`."""
    return Turn(items).transcript()


def _add(a: tuple[int, int], b: tuple[int, int]) -> tuple[int, int]:
    return a[0] + b[0], a[1] + b[1]
