"""Translate one Responses event stream into the Assistant API's ``(event, data)`` stream.

A protocol core in the h11 manner: Responses event dicts go in through ``feed`` one at a time,
the Assistant events to emit now come out as ``(name, payload)`` lists (sequences per EVENTS.md,
payloads built by ``compat._objects``). The caller owns the HTTP stream, the wire and the store.
Apart from the feeding, the translator keeps the snapshots the caller stores (as openai's
``ResponseStreamState`` does): ``run``, ``messages``, ``steps``, ``pending_tool_calls``,
``usage``, ``response_id``, ``state``. This module is the response's lifecycle; ``_items`` turns
its output items into steps and messages.

Choices where the references leave room:

* Step usage: Responses reports usage once per response. The step of the response's *last*
  message carries it (``step_usage`` of the response's usage), so a completed message's
  ``thread.run.step.completed`` waits until the next visible item opens (then usage None) or the
  response ends (then the usage). Tool steps have usage None.
* Text, code or arguments that arrive only on the finished item (DashScope) are emitted as one
  delta, so a consumer that only prints deltas still sees them. An empty message gets none.
* ``response.completed.output`` is the final word on items the stream never finished.
* ``response.incomplete`` fails the run (DashScope's Run has no ``incomplete`` status):
  ``last_error.code`` is the reason (``max_output_tokens``, ``content_filter``, else
  ``incomplete``). An ``error`` event and the ``response.failed`` after it are one failure.
* The nested ``error`` event (the wire's form; it ends the stream) is the Assistant API's own
  ``error`` event: the run, messages and steps close as for any failure (in the snapshots), but
  the one event emitted is ``("error", {"code", "message", "request_id"})``. The flat form (the
  SDK's schema; ``response.failed`` follows) fails the run with ``thread.run.failed``.
* A failure or cancel before ``response.created`` first emits what ``response.created`` would
  have (every stream opens the same way), then the failure. A failure passes
  ``thread.run.in_progress`` first, as every Assistant-API run does (DashScope's HTTP-200 rate
  limit is ``response.created`` → ``response.failed``).
* ``fail()`` also closes a run whose stream broke the protocol (ERROR → FAILED), so the caller
  can end such a run with ``thread.run.failed``. Breaking the protocol includes any malformed
  event: not a JSON object, a ``type`` that is not a string, a field of the wrong JSON type
  (``_shape``), usage counts that are not non-negative integers (usage is billed: no guessing).
  ``feed`` raises nothing but ``TranslationError``. An event without a ``type`` is an unknown
  event; an error's ``code`` or ``message`` that is not a string gets the default.
* Once the response is over (completed, requires_action, failed, cancelled) later events change
  nothing: ``feed`` returns [] and counts them in ``late_events``. The one exception keeps the
  ``error`` + ``response.failed`` pair one failure: that ``response.failed`` only brings usage.
* Items are keyed by id, then by position: see ``_items``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from enum import Enum
from typing import Any

from compat._objects import (
    message_delta,
    required_action,
    run_usage,
    step_usage,
)
from compat.backends.responses._items import (
    Event,
    OutputItems,
    TextDelta,
    emit,
)
from compat.backends.responses._shape import (
    json_type,
    map_error,
    obj,
    opt_int,
    opt_str,
    prior_counts,
    response_counts,
)
from compat.errors import TranslationError

__all__ = ["IGNORED_EVENTS", "Event", "ResponsesTranslator", "State"]

JSON = dict[str, Any]


class State(Enum):
    IDLE = "idle"  # before response.created
    IN_PROGRESS = "in_progress"
    REQUIRES_ACTION = "requires_action"  # response.completed with function calls
    DONE = "done"  # response.completed, run completed
    FAILED = "failed"
    CANCELLED = "cancelled"
    ERROR = "error"  # an impossible event arrived; only fail() / cancel() leave it


# Rule 1: this table is the only place that says which moves are legal. Every state change goes
#   through ``ResponsesTranslator._move``; a move not listed here raises TranslationError, and
#   any TranslationError (an impossible item order, a malformed event) leaves the translator in
#   ERROR. Triggers: start (response.created), update (any event inside a response), complete /
#   require_action (response.completed), fail, cancel. A settled state has no moves: events
#   that arrive after it are late, counted and dropped before any handler runs.
# Rule 2: nothing here does I/O, reads a clock or draws randomness: ids and time come in
#   through ``new_id`` and ``clock``, so a recorded event list always translates the same.
_TRANSITIONS: dict[tuple[State, str], State] = {
    (State.IDLE, "start"): State.IN_PROGRESS,
    (State.IDLE, "fail"): State.FAILED,
    (State.IDLE, "cancel"): State.CANCELLED,
    (State.IN_PROGRESS, "update"): State.IN_PROGRESS,
    (State.IN_PROGRESS, "complete"): State.DONE,
    (State.IN_PROGRESS, "require_action"): State.REQUIRES_ACTION,
    (State.IN_PROGRESS, "fail"): State.FAILED,
    (State.IN_PROGRESS, "cancel"): State.CANCELLED,
    (State.ERROR, "fail"): State.FAILED,
    (State.ERROR, "cancel"): State.CANCELLED,
}
#: The response is over: the caller's finish / fail / cancel do nothing in these.
_SETTLED = frozenset({State.DONE, State.REQUIRES_ACTION, State.FAILED, State.CANCELLED})

#: Event types that carry nothing for the Assistant stream: text, code and arguments come from
#: the deltas handled below or from the finished item; progress of hosted tools and reasoning
#: are not shown. Legal only inside a response, like every item event. By group → event names.
_QUIET: dict[str, tuple[str, ...]] = {
    "content_part": ("added", "done"),
    "output_text": ("done", "annotation.added"),
    "refusal": ("delta", "done"),  # the refusal text is read from the finished message
    "function_call_arguments": ("done",),
    "code_interpreter_call_code": ("done",),
    "code_interpreter_call": ("in_progress", "interpreting", "completed"),
    "web_search_call": ("in_progress", "searching", "completed"),
    "file_search_call": ("in_progress", "searching", "completed"),
    "mcp_call": ("in_progress", "completed", "failed"),
    "mcp_call_arguments": ("delta", "done"),  # DashScope sends them before the item is added
    "mcp_list_tools": ("in_progress", "completed", "failed"),
    "custom_tool_call_input": ("delta", "done"),
    "reasoning_summary_part": ("added", "done"),
    "reasoning_summary_text": ("delta", "done"),
    "reasoning_text": ("delta", "done"),
}
IGNORED_EVENTS = frozenset(
    {"response.queued"}
    | {f"response.{group}.{name}" for group, names in _QUIET.items() for name in names}
)


class ResponsesTranslator:
    """Responses events in, Assistant events out, for one response of one run.

    ``run`` is the stored run (status queued); it is copied, never changed. For the response
    that continues a run after ``submit_tool_outputs``, pass ``emit_run_start=False``, the stored
    tool step as ``continuation_step`` and ``tool_outputs`` ({call_id: output}).
    ``prior_usage`` is the run's usage before this response (default: ``run["usage"]``).
    ``text_delta`` builds each ``thread.message.delta`` payload from (message id, text); the
    default is the wire dict (``_objects.message_delta``), and a caller that types the stream
    passes a builder of the typed object, so that no dict is built per delta only to be copied.
    """

    def __init__(
        self,
        run: JSON,
        *,
        new_id: Callable[[str], str],
        clock: Callable[[], int],
        emit_run_start: bool = True,
        continuation_step: JSON | None = None,
        tool_outputs: dict[str, str] | None = None,
        prior_usage: JSON | None = None,
        text_delta: TextDelta = message_delta,
    ) -> None:
        self.run: JSON = dict(run)
        self.state = State.IDLE
        self.response_id: str | None = None
        self.usage: JSON | None = None  # this response's usage, as run_usage
        self.steps: list[JSON] = []  # every step this response created or finished, in order
        self.pending_tool_calls: list[JSON] = []  # function_call dicts, at requires_action
        self.unknown_events: dict[str, int] = {}  # event types never seen before, counted
        self.late_events: dict[str, int] = {}  # event types that came after the response ended
        self._clock = clock
        self._new_id = new_id
        self._emit_run_start = emit_run_start
        self._continuation = continuation_step
        self._tool_outputs = dict(tool_outputs or {})
        prior = prior_usage if prior_usage is not None else run.get("usage")
        self._prior = prior_counts(prior)
        self._counts: tuple[int, int] | None = None  # this response's (input, output) tokens
        self._begun = False  # what response.created emits was emitted
        self._started = False  # thread.run.in_progress was emitted
        self._after_error = False  # failed by an `error` event: a response.failed may follow
        self._items = OutputItems(
            self.run, self.steps, new_id, clock, self._run_in_progress, text_delta
        )

    def partial_message(self) -> JSON | None:
        """The open message with its text so far (any thread may ask: a lease checkpoint)."""
        return self._items.partial_message()

    def known_text(self) -> list[str] | None:
        """The text a long event of this stream may repeat, in pieces (see ``sse``)."""
        return self._items.known_text()

    @property
    def messages(self) -> list[JSON]:
        """The assistant messages of this response that finished (completed or incomplete)."""
        return self._items.messages

    @property
    def unknown_items(self) -> dict[str, int]:
        """Output item types never seen before, counted (they are not shown)."""
        return self._items.unknown

    @property
    def failed(self) -> bool:
        return self.state is State.FAILED

    @property
    def last_error(self) -> JSON | None:
        error: JSON | None = self.run.get("last_error")
        return error

    @property
    def settled(self) -> bool:
        """The response is over: completed, requires_action, failed or cancelled."""
        return self.state in _SETTLED

    # -- the caller's side ------------------------------------------------------------------
    def feed(self, event: JSON) -> list[Event]:
        """The Assistant events one Responses event produces now (often none).

        Raises ``TranslationError`` (and enters ERROR) for an event that breaks the protocol,
        and nothing else. Once settled: ``[]``, the event counted in ``late_events``.
        """
        try:
            kind = event.get("type")
        except AttributeError:  # not a JSON object: the slow path says so
            return self._dispatch(event, None)
        if kind == "response.output_text.delta" and self.state is State.IN_PROGRESS:
            # The hot path, inlined: a text delta for the open message, after its first.
            # (IN_PROGRESS, update) maps to itself in the table: no move to make. Nothing here
            # can raise for any JSON object: ``delta`` is checked, the rest is our own.
            item = self._items.message
            text = event.get("delta")
            if item is not None and text.__class__ is str and item.text is not None:
                item.text.write(text)
                return [("thread.message.delta", self._items.text_delta(item.object_id, text))]
        return self._dispatch(event, kind)

    def finish(self) -> list[Event]:
        """The upstream stream ended: a failure unless a terminal event was seen."""
        if self.state in _SETTLED:
            return []
        return self._fail("server_error", "stream ended before the response finished")

    def fail(self, code: str, message: str) -> list[Event]:
        """A transport failure (or a TranslationError) ends the run as failed."""
        if self.state in _SETTLED:
            return []
        return self._fail(code, message)

    def cancel(self) -> list[Event]:
        """The caller closed the stream: the run is cancelled (the events are for the record)."""
        if self.state in _SETTLED:
            return []
        self._move("cancel", "cancel()")
        out = [] if self._begun else self._begin()
        now = self._clock()
        out += self._items.close("cancelled", now, None, self._step_usage())
        run = self.run
        run.update(status="cancelled", cancelled_at=now, required_action=None)
        run["usage"] = self.total_usage
        out.append(emit("thread.run.cancelled", run))
        return out

    # -- dispatch -----------------------------------------------------------------------------
    def _dispatch(self, event: object, kind: object) -> list[Event]:
        """Every event but the hot path's: late ones, malformed ones, the handlers' safety net."""
        if self.state in _SETTLED:
            return self._late(event, kind)
        try:
            return self._handle(event, kind)
        except TranslationError:
            self.state = State.ERROR
            raise
        except Exception as exc:  # a shape no reader checked: still the stream's fault
            self.state = State.ERROR
            name = kind if isinstance(kind, str) else "event"
            raise TranslationError(f"malformed {name} ({type(exc).__name__}: {exc})") from exc

    def _handle(self, event: object, kind: object) -> list[Event]:
        if not isinstance(event, dict):
            raise TranslationError(f"a Responses event is {json_type(event)}, not an object")
        if not isinstance(kind, str):
            if kind is not None:
                raise TranslationError(f"a Responses event's type is {json_type(kind)}")
            kind = ""
        handler = _HANDLERS.get(kind)
        if handler is not None:
            if self.state is State.ERROR:  # sticky: only fail() / cancel() leave it
                raise TranslationError(f"{kind} after the stream broke the protocol")
            return handler(self, event)
        if kind in IGNORED_EVENTS:
            if self.state is not State.IN_PROGRESS:
                self._move("update", kind)
            if kind == "response.output_text.done":  # nothing to emit; the text may be kept
                self._items.text_done(event.get("text"))
            return []
        key = kind or "<no type>"
        self.unknown_events[key] = self.unknown_events.get(key, 0) + 1
        return []

    def _late(self, event: object, kind: object) -> list[Event]:
        """An event after the response settled: counted, never a change of outcome."""
        if kind == "response.failed" and self._after_error and isinstance(event, dict):
            # The response.failed that follows an `error` event: the same failure, whose
            # usage is worth keeping if it is readable.
            self._after_error = False
            with contextlib.suppress(TranslationError):
                self._note(obj(event, "response", "response.failed"))
            self.run["usage"] = self.total_usage
            return []
        if not isinstance(event, dict):
            key = "<not an object>"
        elif isinstance(kind, str) or kind is None:
            key = kind or "<no type>"
        else:
            key = "<malformed type>"
        self.late_events[key] = self.late_events.get(key, 0) + 1
        return []

    # -- lifecycle events -------------------------------------------------------------------
    def _on_created(self, event: JSON) -> list[Event]:
        self._move("start", "response.created")
        self._note(obj(event, "response", "response.created"))
        return self._begin()

    def _on_in_progress(self, event: JSON) -> list[Event]:
        self._move("update", "response.in_progress")
        self._note(obj(event, "response", "response.in_progress"))
        return self._run_in_progress()

    def _on_completed(self, event: JSON) -> list[Event]:
        response = obj(event, "response", "response.completed")
        status = opt_str(response, "status", "response.completed response")
        if status == "failed":  # (inferred) trust the response's status over the event type
            return self._on_failed(event)
        if status == "incomplete":
            return self._on_incomplete(event)
        self._move("update", "response.completed")
        self._note(response)
        out = self._items.settle(response, self._step_usage())
        run = self.run
        run["usage"] = self.total_usage
        if self._items.calls:
            # A run shows no usage until it ends, as the Assistant API's (``total_usage``
            # keeps the count for the run's next response).
            run["usage"] = None
            self._move("require_action", "response.completed")
            self.pending_tool_calls = self._items.hold_calls()
            run.update(
                status="requires_action",
                required_action=required_action(self._items.call_objects()),
            )
            out.append(emit("thread.run.requires_action", run))
        else:
            self._move("complete", "response.completed")
            run.update(status="completed", completed_at=self._clock())
            out.append(emit("thread.run.completed", run))
        return out

    def _on_failed(self, event: JSON) -> list[Event]:
        response = obj(event, "response", "response.failed")
        error = obj(response, "error", "response.failed response")
        self._note(response)
        return self._fail(error.get("code"), error.get("message"), "response.failed")

    def _on_incomplete(self, event: JSON) -> list[Event]:
        what = "response.incomplete response"
        response = obj(event, "response", "response.incomplete")
        details = obj(response, "incomplete_details", what)
        reason = opt_str(details, "reason", f"{what} incomplete_details") or "incomplete"
        self._note(response)
        message = f"the response is incomplete: {reason}"
        return self._fail(reason, message, "response.incomplete")

    def _on_error(self, event: JSON) -> list[Event]:
        nested = event.get("error")  # the real OpenAI wire nests it; the SDK's schema does not
        error = event if nested is None else obj(event, "error", "error")
        raw = nested is not None  # the stream's own error: the Assistant API's `error` event
        out = self._fail(error.get("code"), error.get("message"), "error", raw=raw)
        self._after_error = True  # a response.failed may follow: the same failure
        return out

    # -- item events ------------------------------------------------------------------------
    def _on_item_added(self, event: JSON) -> list[Event]:
        what = "response.output_item.added"
        self._move("update", what)
        item = obj(event, "item", what, required=True)
        return self._items.add(item, opt_int(event, "output_index", what))[0]

    def _on_item_done(self, event: JSON) -> list[Event]:
        what = "response.output_item.done"
        self._move("update", what)
        item = obj(event, "item", what, required=True)
        return self._items.done(item, opt_int(event, "output_index", what))

    def _on_text_delta(self, event: JSON) -> list[Event]:
        # What ``feed``'s hot path does not take: a message's first delta, a delta outside a
        # response, a malformed one.
        what = "response.output_text.delta"
        self._move("update", what)
        text = event.get("delta")
        if not isinstance(text, str):
            raise TranslationError(f"{what} without a string delta")
        return self._items.message_text_delta(text, opt_int(event, "output_index", what))

    def _on_code_delta(self, event: JSON) -> list[Event]:
        what = "response.code_interpreter_call_code.delta"
        if self.state is not State.IN_PROGRESS:
            self._move("update", what)
        key = opt_str(event, "item_id", what), opt_int(event, "output_index", what)
        return [self._items.code_delta(*key, event.get("delta"))]

    def _on_arguments_delta(self, event: JSON) -> list[Event]:
        what = "response.function_call_arguments.delta"
        if self.state is not State.IN_PROGRESS:
            self._move("update", what)
        key = opt_str(event, "item_id", what), opt_int(event, "output_index", what)
        return [self._items.arguments_delta(*key, event.get("delta"))]

    # -- building blocks --------------------------------------------------------------------
    def _move(self, trigger: str, what: object) -> State:
        """Take the table's move for ``trigger`` and return the state left, or raise."""
        previous = self.state
        target = _TRANSITIONS.get((previous, trigger))
        if target is None:
            self.state = State.ERROR
            raise TranslationError(f"{what} is impossible in state {previous.name}")
        self.state = target
        return previous

    def _fail(
        self, code: object, message: object, what: str = "fail()", *, raw: bool = False
    ) -> list[Event]:
        """Fail the run; with ``raw``, its end is reported as one ``error`` event instead."""
        self._move("fail", what)
        out = ([] if self._begun else self._begin()) + self._run_in_progress()
        error = map_error(code, message)
        now = self._clock()
        closed = self._items.close("failed", now, error, self._step_usage())
        run = self.run
        run.update(status="failed", failed_at=now, last_error=error, required_action=None)
        run["usage"] = self.total_usage
        if raw:  # a request id as compat's replies have them (no prefix)
            return [*out, ("error", dict(error, request_id=self._new_id("req")[4:]))]
        return [*out, *closed, emit("thread.run.failed", run)]

    def _begin(self) -> list[Event]:
        """What response.created emits: run created + queued, or a continuation's opening."""
        self._begun = True
        run = self.run
        run.update(status="queued", required_action=None)
        if self._emit_run_start:
            return [emit("thread.run.created", run), emit("thread.run.queued", run)]
        out = [emit("thread.run.queued", run), *self._run_in_progress()]
        if self._continuation is not None:
            out.append(self._items.answer_calls(self._continuation, self._tool_outputs))
        return out

    def _run_in_progress(self) -> list[Event]:
        if self._started:
            return []
        self._started = True
        run = self.run
        run["status"] = "in_progress"
        if run.get("started_at") is None:  # a continuation keeps the run's first start
            run["started_at"] = self._clock()
        return [emit("thread.run.in_progress", run)]

    def _note(self, response: JSON) -> None:
        """Take the response id and usage from a lifecycle event's response (read first)."""
        response_id = opt_str(response, "id", "response")
        counts = response_counts(response)
        if self.response_id is None:
            self.response_id = response_id
        if counts is not None:
            self._counts = counts
            self.usage = run_usage(*counts)

    def _step_usage(self) -> JSON | None:
        return None if self._counts is None else step_usage(*self._counts)

    @property
    def total_usage(self) -> JSON | None:
        """The run's usage so far: every earlier response's plus this one's (None if none is
        known; shown on the run once it ends)."""
        if self._prior is None and self._counts is None:
            return None
        prior, this = self._prior or (0, 0), self._counts or (0, 0)
        return run_usage(prior[0] + this[0], prior[1] + this[1])


_Handler = Callable[[ResponsesTranslator, JSON], list[Event]]
#: The one dispatch table: Responses event type → handler.
_HANDLERS: dict[str, _Handler] = {
    "response.created": ResponsesTranslator._on_created,
    "response.in_progress": ResponsesTranslator._on_in_progress,
    "response.output_item.added": ResponsesTranslator._on_item_added,
    "response.output_item.done": ResponsesTranslator._on_item_done,
    "response.output_text.delta": ResponsesTranslator._on_text_delta,
    "response.code_interpreter_call_code.delta": ResponsesTranslator._on_code_delta,
    "response.function_call_arguments.delta": ResponsesTranslator._on_arguments_delta,
    "response.completed": ResponsesTranslator._on_completed,
    "response.failed": ResponsesTranslator._on_failed,
    "response.incomplete": ResponsesTranslator._on_incomplete,
    "error": ResponsesTranslator._on_error,
}
