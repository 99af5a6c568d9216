"""Driving one response of a run: what the sync and async stream loops share, and the loops.

``Drive`` is the run's side of the loop, with no network I/O: it stores what the translated
events say (the run started, messages and steps as they move) and the response's end, as one
lifecycle move (``compat.store.transition``), and decides the closing events. The two shells,
``stream_sync`` and ``stream_async``, only pull events and feed them; they are the same loop
written once with ``for`` and once with ``async for``.

Reading stops at the first terminal event: what the upstream sends after it is not parsed (the
rest of the body is read and dropped if it arrives at once, so the connection is kept). An
event is emitted after the store has what it says (the terminal event after the run's end);
a batch that creates nothing waits for the next one and shares its write (``Drive.progress``).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

from compat import lifecycle
from compat._ids import now_ms
from compat._log import logger, once, redact
from compat.backends import JSON
from compat.backends.responses.history import Input
from compat.backends.responses.offload import StoreCalls
from compat.backends.responses.ownership import REQUIRES_ACTION_SECONDS
from compat.backends.responses.translate import ResponsesTranslator
from compat.backends.responses.upstream import UpstreamBroken, mapped_errors
from compat.errors import StoreError, TranslationError
from compat.store import Kind, Record, RunGone, Tx, transition
from compat.types import convert_stream_item

if TYPE_CHECKING:
    from compat.backends.responses.runs import RunExecutor

__all__ = ["Drive", "Job", "json_body_events", "stream_async", "stream_sync", "typed"]

_log = logger("compat.backends.responses.runs")

#: The translator's outcome → the lifecycle move that stores it.
_OUTCOME_MOVES = {
    "completed": "complete",
    "failed": "fail",
    "requires_action": "require_action",
    "cancelled": "cancelled",
}
#: The events that end a stream: a run's outcome, or the raw ``error`` event that reports a
#: failed run instead (the translator's nested-``error`` case).
_ERROR = "error"
_TERMINAL_EVENTS = frozenset(f"thread.run.{status}" for status in _OUTCOME_MOVES) | {_ERROR}
#: A message is stored when it is created (so a crash leaves no step pointing at nothing)
#: and once more when it is finished; never per delta.
_MESSAGE_WRITES = frozenset(
    {"thread.message.created", "thread.message.completed", "thread.message.incomplete"}
)
_DELTA = "thread.message.delta"

Items = list[tuple[str, Any]]


class Job:
    """One response of a run being driven here: translator, stream, cancel flag."""

    def __init__(
        self,
        run: JSON,
        history: Input,
        translator: ResponsesTranslator,
        lease_seconds: float,
        system: str | None,
        renew_seconds: float | None = None,
    ) -> None:
        self.run_id: str = run["id"]
        self.thread_id: str = run["thread_id"]
        self.history = history
        self.translator = translator
        self.lease_seconds = lease_seconds
        self.renew_seconds = lease_seconds / 3 if renew_seconds is None else renew_seconds
        #: the instructions sent as a system message (they stay in the chain), or None
        self.system = system
        self.upstream: Any = None  # UpstreamStream or AsyncUpstreamStream, once opened
        #: set by a cancel, here or (through the keeper) elsewhere; read once per event
        self.cancelled = False
        #: finished messages already stored (the final write skips them)
        self.stored_messages: set[str] = set()

    def stop(self) -> None:
        """Cancel: the driver ends the run at its next event, or now if the read is blocked."""
        self.cancelled = True
        upstream = self.upstream
        if upstream is not None:
            upstream.interrupt()

    def checkpoint(self) -> JSON | None:
        """The open message with its text so far (stored with each lease renewal)."""
        return self.translator.partial_message()


class Drive:
    """The store's side of one response's loop (no network I/O)."""

    def __init__(self, executor: RunExecutor, job: Job) -> None:
        self.store = executor.store
        self.owners = executor.owners
        self.job = job
        self.finished = False
        #: events held back with their write until the next batch (see ``progress``)
        self.held: Items = []

    def progress(self, out: Items) -> list[tuple[str | None, Any]]:
        """Store what these (non-terminal) events say; return the events to emit now, typed.

        A batch that creates nothing (the run began, a message finished) is held back with its
        write until the next batch arrives (or the upstream's next event, or the response's
        end): both are stored in one transaction and emitted after it. An event never runs
        ahead of the store, and a plain run costs three commits (the claim, the start with its
        first message and step, the end with the message's completion).
        """
        job = self.job
        if self.held:
            out, self.held = [*self.held, *out], []
            holding = False
        else:
            holding = True
        # A record the batch moves twice (created, then in progress) is written once, as it
        # stands last, in the place of its first write.
        items: dict[tuple[Kind, str], JSON] = {}
        started = False
        for event, payload in out:
            if event in _MESSAGE_WRITES:
                items["message", payload["id"]] = _clean(payload)
                holding = holding and event != "thread.message.created"
            elif event.startswith("thread.run.step.") and event != "thread.run.step.delta":
                items["step", payload["id"]] = _clean(payload)
                holding = holding and event != "thread.run.step.created"
            elif event == "thread.run.in_progress":
                started = True
        if not (items or started):
            return typed(out)
        if holding:
            self.held = out
            return []
        with self.store.transaction() as tx:
            try:
                if started:
                    transition(tx, job.run_id, "start", _driver_fields(job.translator.run))
                elif tx.get("run", job.run_id) is None:
                    raise RunGone(job.run_id)
            except (RunGone, lifecycle.IllegalMove):
                # Deleted with its thread, cancelling, or reaped: write nothing; end it.
                job.stop()
                return typed(out)
            for (kind, _), data in items.items():
                tx.put(kind, data, {})
                if kind == "message" and data["status"] != "in_progress":
                    job.stored_messages.add(data["id"])
        return typed(out)

    def end(self, out: Items, error: BaseException | None) -> list[tuple[str | None, Any]]:
        """The response ended (``out``: its terminal events, if the loop saw them)."""
        t = self.job.translator
        held, self.held = self.held, []
        if not t.settled:
            if isinstance(error, TranslationError):
                out = t.fail("invalid_stream", str(error))
            elif isinstance(error, StoreError):
                out = t.fail("store_error", f"compat's store failed mid-run: {error}")
            elif self.job.cancelled:
                out = t.cancel()
            elif isinstance(error, UpstreamBroken):
                out = t.fail(error.code, error.message)
            else:
                out = t.finish()
        self.finished = True
        return typed(self.settle([*held, *out]))

    def abort(self) -> None:
        """The consumer closed the stream (or dropped it, or its task was cancelled)."""
        if not self.finished:
            self.finished = True
            self.settle(self.job.translator.cancel())

    def cleanup(self) -> None:
        if not self.finished:
            self.finished = True
            self.settle(self.job.translator.fail("server_error", "the run was interrupted"))
        self.owners.done(self.job.run_id)

    def settle(self, out: Items) -> Items:
        """Store the response's end as one move, with its messages and steps, and the thread's.

        Returns the events to emit: ``out``, its terminal event carrying the stored run (the
        one the store had already moved on, if it was cancelled or reaped elsewhere).
        """
        job = self.job
        t = job.translator
        run = _driver_fields(t.run)
        trigger = _OUTCOME_MOVES.get(run["status"])
        if trigger is None:  # nothing settled (a double close): nothing to store
            return out
        error = run.get("last_error")
        _log.info(
            "run %s %s%s", run["id"], run["status"], f": {redact(str(error))}" if error else ""
        )
        for kind in t.unknown_events:
            once(_log, "event", kind, "ignored unknown Responses event type %r", kind)
        for kind in t.unknown_items:
            once(_log, "item", kind, "ignored unknown Responses output item type %r", kind)
        if run["status"] == "requires_action":
            run["expires_at"] = now_ms() + REQUIRES_ACTION_SECONDS * 1000
        # A write that failed on a connection the store lost is tried once more (the move is a
        # compare-and-set: if the first attempt did commit, the second finds the run moved on).
        attempts = 1 if (error or {}).get("code") == "store_error" else 2
        raw_error = bool(out) and out[-1][0] == _ERROR
        ended: tuple[JSON, bool] | None = None
        for attempt in range(attempts):
            try:
                with self.store.transaction() as tx:
                    ended = self._store_end(tx, trigger, run)
                break
            except StoreError as exc:
                if attempt + 1 < attempts:
                    continue
                # Not stored: say so; the lease lapses and a reader reaps the run later.
                _log.warning("run %s: its end could not be stored: %s", run["id"], redact(str(exc)))
                return out if raw_error else _with_terminal(out, _unstored(run, exc))
        if ended is None:
            return out
        stored, moved = ended
        if moved and raw_error:
            return out  # stored failed; reported as the Assistant API reports it, raw
        return _with_terminal(out, stored)

    def _store_end(self, tx: Tx, trigger: str, run: JSON) -> tuple[JSON, bool] | None:
        """Write the end in ``tx``: the run as stored afterwards and whether this move stored
        it (False: it had moved on), or None if it is gone."""
        job = self.job
        t = job.translator
        record = tx.get("run", job.run_id)
        if record is None:
            return None  # its thread was deleted: nothing to write back
        response_ids = [t.response_id] if t.response_id else []
        meta = {
            "response_ids": [*record.meta.get("response_ids", []), *response_ids],
            "usage": t.total_usage,
            "pending": list(t.pending_tool_calls),
            "tool_step_id": _tool_step_id(t),
            "cursor": job.history.cursor,
            "system": job.system,
            "lease": None,
        }
        try:
            stored = transition(tx, job.run_id, trigger, run, meta)
        except lifecycle.IllegalMove:
            return record.data, False  # cancelled, reaped, or (a retry) already stored
        for message in t.messages:
            if message["id"] not in job.stored_messages:
                tx.put("message", _clean(message), {})
        for step in t.steps:
            tx.put("step", _clean(step))
        _after_run(tx, stored, t.response_id)
        return stored.data, True


def stream_sync(
    executor: RunExecutor, job: Job, prefix: Items
) -> Iterator[tuple[str | None, Any] | None]:
    """The run's events, typed; the store kept in step (see the module docstring)."""
    drive = Drive(executor, job)
    translator = job.translator
    feed = translator.feed
    upstream = job.upstream
    finished = False  # the upstream's stream was read to its last event
    try:
        yield None  # primed by the caller: from here on, a close or a drop cancels the run
        yield from typed(prefix)
        out: Items = []
        error: BaseException | None = None
        try:
            with mapped_errors():
                # A long final event gets the answer the translator holds, not a parsed copy.
                known = translator.known_text
                events = upstream.events(known) if upstream.is_event_stream else None
                if events is None:
                    events = iter(json_body_events(upstream.json_body()))
                for event in events:
                    if job.cancelled:
                        break
                    out = feed(event)
                    del event  # not kept while the next is read (a final one holds all the text)
                    if not out:
                        if drive.held:  # the next event came: what was held waits no longer
                            yield from drive.progress([])
                        continue
                    if len(out) == 1 and out[0][0] == _DELTA and not drive.held:
                        yield out[0]  # the hot path: the translator typed the delta itself
                        continue
                    if translator.settled:
                        finished = True
                        break
                    yield from drive.progress(out)
                else:
                    finished = True
                _let_go(events)
        except (UpstreamBroken, TranslationError, StoreError) as exc:
            error = exc
        yield from drive.end(out, error)
    except GeneratorExit:
        drive.abort()
        raise
    finally:
        upstream.close(finished)  # finished: the connection is kept if the body ends at once
        drive.cleanup()


async def stream_async(
    executor: RunExecutor, job: Job, prefix: Items
) -> AsyncIterator[tuple[str | None, Any] | None]:
    """``stream_sync``'s loop over the async client's stream; the store called off the loop."""
    drive = Drive(executor, job)
    store = StoreCalls(executor.store)
    translator = job.translator
    feed = translator.feed
    upstream = job.upstream
    try:
        yield None
        for item in typed(prefix):
            yield item
        out: Items = []
        error: BaseException | None = None
        try:
            with mapped_errors():
                if upstream.is_event_stream:
                    events = upstream.aevents(translator.known_text)
                else:
                    events = _aiter(json_body_events(await upstream.json_body()))
                async for event in events:
                    if job.cancelled:
                        break
                    out = feed(event)
                    del event
                    if not out:
                        if drive.held:
                            for item in await store(drive.progress, []):
                                yield item
                        continue
                    if len(out) == 1 and out[0][0] == _DELTA and not drive.held:
                        yield out[0]
                        continue
                    if translator.settled:
                        break
                    for item in await store(drive.progress, out):
                        yield item
                await _alet_go(events)
        except (UpstreamBroken, TranslationError, StoreError) as exc:
            error = exc
        for item in await store(drive.end, out, error):
            yield item
    except (GeneratorExit, asyncio.CancelledError):
        await store(drive.abort)
        raise
    finally:
        await upstream.aclose()
        await store(drive.cleanup)


def _let_go(events: Iterator[JSON]) -> None:
    """Close the reader the loop left at its terminal event: a suspended reader still holds
    the last event it yielded, and the terminal one repeats the whole text (while the end is
    stored, it would be held twice)."""
    close = getattr(events, "close", None)
    if close is not None:
        close()


async def _alet_go(events: AsyncIterator[JSON]) -> None:
    """``_let_go`` for the async reader."""
    close = getattr(events, "aclose", None)
    if close is not None:
        await close()


async def _aiter(events: list[JSON]) -> AsyncIterator[JSON]:
    for event in events:
        yield event


def typed(items: Items) -> list[tuple[str | None, Any]]:
    """Stream items as the caller gets them: ``status_code`` 200 on each payload, then typed.

    Text deltas come typed from the translator already (its ``text_delta`` builder). An
    ``error`` event's data has no ``status_code``, as dashscope's ``AssistantError`` has none.
    """
    for event, payload in items:
        if payload.__class__ is dict and event != _ERROR:
            payload["status_code"] = 200
    return [convert_stream_item(event, payload) for event, payload in items]


def json_body_events(body: JSON) -> list[JSON]:
    """A JSON body where a stream was expected, as events (DashScope's HTTP-200 rate limit)."""
    if body.get("object") == "response" and body.get("status") == "failed":
        return [
            {"type": "response.created", "response": body},
            {"type": "response.failed", "response": body},
        ]
    detail = (body.get("error") or {}) if isinstance(body.get("error"), dict) else {}
    raise UpstreamBroken(
        str(detail.get("code") or body.get("code") or "invalid_stream"),
        str(
            detail.get("message")
            or body.get("message")
            or "the Responses API answered JSON where an event stream was expected"
        ),
    )


def _after_run(tx: Tx, run: Record, response_id: str | None) -> None:
    """Free the thread once the run is over; advance its chain when the run completed."""
    data = run.data
    thread = tx.get("thread", data["thread_id"])
    if thread is None:
        return
    meta = dict(thread.meta)
    if data["status"] not in lifecycle.ACTIVE and meta.get("active_run_id") == data["id"]:
        meta["active_run_id"] = None
    # Only a completed response may be chained: one that ended in function calls would make
    # the next request carry unanswered calls (a cancelled requires_action run).
    if data["status"] == "completed" and response_id:
        meta.update(
            last_response_id=response_id,
            chain_cursor=run.meta.get("cursor"),
            chain_instructions=run.meta.get("system"),
        )
    tx.put("thread", thread.data, meta)


def _with_terminal(out: Items, stored: JSON) -> Items:
    """``out`` with its terminal run event replaced by the stored run's own."""
    kept = [(event, payload) for event, payload in out if event not in _TERMINAL_EVENTS]
    return [*kept, (f"thread.run.{stored['status']}", dict(stored))]


def _unstored(run: JSON, exc: StoreError) -> JSON:
    """The run's terminal payload when the store would not take its end: failed, store_error."""
    return dict(
        run,
        status="failed",
        failed_at=run.get("failed_at") or now_ms(),
        completed_at=None,
        cancelled_at=None,
        required_action=None,
        last_error={"code": "store_error", "message": f"compat's store failed: {exc}"},
    )


def _tool_step_id(t: ResponsesTranslator) -> str | None:
    for step in t.steps:
        if step.get("type") == "tool_calls" and step.get("status") == "in_progress":
            return str(step["id"])
    return None


def _driver_fields(run: JSON) -> JSON:
    """The fields of the translator's run snapshot that the driver owns (not ``metadata``)."""
    data = _clean(run)
    data.pop("metadata", None)
    return data


def _clean(payload: JSON) -> JSON:
    """A stored copy of an emitted payload, without the ``status_code`` added for the SDK view."""
    data = dict(payload)
    data.pop("status_code", None)
    return data
