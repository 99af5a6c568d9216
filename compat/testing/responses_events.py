"""Scenario turns rendered as Responses API stream events, on DashScope's wire or OpenAI's.

Event orders per item (``*``: one per chunk; ``[openai]``: only in the OpenAI flavor, because
DashScope documents no such events):

* reasoning: ``output_item.added`` → [openai] ``reasoning_summary_part.added`` →
  ``reasoning_summary_text.delta``* → ``reasoning_summary_text.done`` → [openai]
  ``reasoning_summary_part.done`` → ``output_item.done``
* text: ``output_item.added`` → ``content_part.added`` → ``output_text.delta``* (DashScope: no
  ``item_id`` / ``content_index``) → ``output_text.done`` → ``content_part.done`` →
  ``output_item.done``
* code: ``output_item.added`` → ``code_interpreter_call.in_progress`` → [openai]
  ``code_interpreter_call_code.delta``* → [openai] ``code_interpreter_call_code.done`` →
  ``.interpreting`` → ``.completed`` → ``output_item.done`` (the logs only on the item)
* search: ``output_item.added`` → ``web_search_call.in_progress`` → ``.searching`` →
  ``.completed`` → ``output_item.done`` (``action{type:"search", query, sources}``)
* function call: ``output_item.added`` (``arguments: ""``) → [openai]
  ``function_call_arguments.delta`` → [openai] ``.done`` → ``output_item.done``

An item stays open until the next one starts, so that a :class:`~compat.testing.Failure` after
it can leave it unfinished (see :meth:`TurnRenderer.play`).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any, Literal

from compat.testing.scenario import (
    CodeInterpreter,
    Failure,
    FunctionCall,
    Reasoning,
    Search,
    Text,
    Turn,
    split_words,
)

__all__ = ["FLAVORS", "EventWriter", "Flavor", "TurnRenderer", "new_item_id", "usage_object"]

JSON = dict[str, Any]
Flavor = Literal["dashscope", "openai"]
FLAVORS: tuple[Flavor, ...] = ("dashscope", "openai")

_ITEM_PREFIXES = {
    "message": "msg",
    "reasoning": "rs",
    "code_interpreter_call": "ci",
    "web_search_call": "ws",
    "function_call": "fc",
}


def new_item_id(flavor: Flavor, item_type: str) -> str:
    """DashScope: ``msg_<uuid>`` for every item type (its docs); OpenAI: ``fc_<hex>`` etc."""
    if flavor == "dashscope":
        return f"msg_{uuid.uuid4()}"
    return f"{_ITEM_PREFIXES.get(item_type, 'item')}_{uuid.uuid4().hex}"


def usage_object(flavor: Flavor, tokens: tuple[int, int]) -> JSON:
    """A Response's ``usage`` for ``(input, output)`` tokens.

    DashScope documents ``input_tokens_details{cached_tokens}`` and adds ``x_details``; OpenAI's
    (and its SDK's model) also has ``cache_write_tokens``.
    """
    prompt, completion = tokens
    details = (
        {"cached_tokens": 0}
        if flavor == "dashscope"
        else {"cached_tokens": 0, "cache_write_tokens": 0}
    )
    usage: JSON = {
        "input_tokens": prompt,
        "input_tokens_details": details,
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": prompt + completion,
    }
    if flavor == "dashscope":
        usage["x_details"] = [
            {
                "input_tokens": prompt,
                "output_tokens": completion,
                "total_tokens": prompt + completion,
                "x_billing_type": "response_api",
            }
        ]
    return usage


def _dumps(value: object) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


class EventWriter:
    """Numbers and frames one stream's events; with ``enabled=False`` it keeps none.

    DashScope frames an event as ``id:N\\nevent:T\\n:HTTP_STATUS/200\\ndata:{json}\\n\\n`` (its
    documented example: no spaces, a comment line); OpenAI as ``event: T\\ndata: {json}\\n\\n``.
    ``pauses`` collects :meth:`pause` points for :class:`~compat.testing.server.StreamReply`.
    """

    def __init__(self, flavor: Flavor, *, enabled: bool = True) -> None:
        self.flavor = flavor
        self.enabled = enabled
        self.chunks: list[bytes] = []
        self.pauses: dict[int, float] = {}
        self.seq = 0
        self._dashscope = flavor == "dashscope"

    def _frame(self, seq: int, kind: str, data: str) -> bytes:
        if self._dashscope:
            return f"id:{seq + 1}\nevent:{kind}\n:HTTP_STATUS/200\ndata:{data}\n\n".encode()
        return f"event: {kind}\ndata: {data}\n\n".encode()

    def raw(self, kind: str, data: str) -> None:
        """An event whose data is ``data`` as it is (not JSON); lone surrogates become bytes."""
        if not self.enabled:
            return
        seq = self.seq
        self.seq += 1
        empty = self._frame(seq, kind, "")  # both framings end in the data, then a blank line
        self.chunks.append(empty[:-2] + data.encode("utf-8", "surrogateescape") + b"\n\n")

    def __call__(self, kind: str, **fields: Any) -> None:
        if not self.enabled:
            return
        seq = self.seq
        self.seq += 1
        data = _dumps({"type": kind, **fields, "sequence_number": seq})
        self.chunks.append(self._frame(seq, kind, data))

    def deltas(self, kind: str, fields: JSON, key: str, pieces: Sequence[str]) -> None:
        """One ``kind`` event per piece, ``fields`` plus ``key: piece``: the hot path, templated."""
        if not self.enabled:
            return
        head = _dumps({"type": kind, **fields})[:-1] + f',"{key}":'
        dumps, frame, chunks = json.dumps, self._frame, self.chunks
        seq = self.seq
        for piece in pieces:
            data = f'{head}{dumps(piece, ensure_ascii=False)},"sequence_number":{seq}}}'
            chunks.append(frame(seq, kind, data))
            seq += 1
        self.seq = seq

    def pause(self, seconds: float) -> None:
        """Stay silent for ``seconds`` at this point of the stream."""
        self.pauses[len(self.chunks)] = seconds


# Finishes the open item with the given status ("completed" or "incomplete"); emit=False only
# fills the item in (for the output of a response that failed with the item open).
_Closer = Callable[[str, bool], None]


class TurnRenderer:
    """Renders one :class:`~compat.testing.Turn` into ``response`` (updated in place) and events.

    After :meth:`play`, ``response`` is the final Response object, ``calls`` the function-call
    items, and ``ending`` what the stream does after its last event: ``"close"``, or ``"drop"``
    (break the connection).
    """

    def __init__(
        self, turn: Turn, response: JSON, tokens: tuple[int, int], emit: EventWriter
    ) -> None:
        self.turn, self.response, self.tokens, self.emit = turn, response, tokens, emit
        self.flavor = emit.flavor
        self.openai = emit.flavor == "openai"
        self.output: list[JSON] = []
        self.calls: list[JSON] = []
        self.ending: Literal["close", "drop"] = "close"
        self._closer: _Closer | None = None

    def play(self) -> JSON:
        """Emit the turn's events and return the final Response object."""
        response, emit = self.response, self.emit
        # DashScope's response.created says "queued" (documented); OpenAI's "in_progress".
        emit(
            "response.created", response=self._snapshot("in_progress" if self.openai else "queued")
        )
        emit("response.in_progress", response=self._snapshot("in_progress"))
        for item in self.turn.items:
            if isinstance(item, Text):
                self._text(item)
            elif isinstance(item, Reasoning):
                self._reasoning(item)
            elif isinstance(item, CodeInterpreter):
                self._code(item)
            elif isinstance(item, Search):
                self._search(item)
            elif isinstance(item, FunctionCall):
                self._function_call(item)
        failure = self.turn.failure
        if failure is None:
            self._close("completed")
            self._finish("response.completed", "completed")
        else:
            self._fail(failure)
        return response

    # -- lifecycle ------------------------------------------------------------------------

    def _snapshot(self, status: str) -> JSON:
        return {**self.response, "status": status, "output": []}

    def _finish(self, event: str, status: str, **fields: Any) -> None:
        response = self.response
        response.update(status=status, output=self.output, **fields)
        if status == "completed":
            response["usage"] = usage_object(self.flavor, self.tokens)
            response["completed_at"] = int(time.time())
        self.emit(event, response=response)

    def _fail(self, failure: Failure) -> None:
        """The failure modes (see :class:`~compat.testing.Failure`); the open item stays open.

        A failed or incomplete response reports ``usage: null``: the Assistant side counts no
        tokens for a failed turn, so compat's summed run usage matches it.
        """
        emit, mode = self.emit, failure.mode
        error = {"code": failure.code, "message": failure.message}
        if mode == "stall":  # a slow server, not a broken one: after the silence, finish
            emit.pause(failure.seconds or 0.0)
            self._close("completed")
            self._finish("response.completed", "completed")
            return
        if mode == "incomplete":
            self._close("incomplete")
            reason = {"reason": failure.code}
            self._finish("response.incomplete", "incomplete", incomplete_details=reason)
            return
        self._close("incomplete", emit=False)  # the stored output shows what was produced
        self.response.update(status="failed", output=self.output, error=error)
        if mode == "error_event":
            # The nested form real OpenAI streams send; openai's SDK raises APIError on it.
            emit("error", error={"type": "server_error", **error, "param": None})
        elif mode == "error_event_flat":
            emit("error", **error, param=None)
            self._finish("response.failed", "failed")
        elif mode == "drop":
            self.ending = "drop"
        elif mode == "run_failed":
            self._finish("response.failed", "failed")
        elif mode == "malformed":
            emit.raw("response.failed", failure.message)
        # "truncate": a clean end of the stream, without a terminal event.

    def _close(self, status: str, *, emit: bool = True) -> None:
        if self._closer is not None:
            self._closer(status, emit)
            self._closer = None

    def _open(self, item: JSON) -> int:
        """Close the previous item, add ``item`` (a skeleton) and return its output index."""
        self._close("completed")
        index = len(self.output)
        self.output.append(item)
        self.emit("response.output_item.added", output_index=index, item=dict(item))
        return index

    def _done(self, index: int, item: JSON, emit: bool) -> None:
        if emit:
            self.emit("response.output_item.done", output_index=index, item=item)

    # -- items ----------------------------------------------------------------------------

    def _text(self, text: Text) -> None:
        emit, openai = self.emit, self.openai
        item_id = new_item_id(self.flavor, "message")
        item: JSON = {
            "id": item_id,
            "type": "message",
            "role": "assistant",
            "status": "in_progress",
            "content": [],
        }
        index = self._open(item)
        where = {"item_id": item_id, "output_index": index, "content_index": 0}
        part = {"type": "output_text", "text": "", "annotations": []}
        emit("response.content_part.added", **where, part=part)
        # DashScope's deltas carry neither item_id nor content_index (documented quirk).
        fields = {**where, "logprobs": []} if openai else {"output_index": index}
        emit.deltas("response.output_text.delta", fields, "delta", text.pieces())

        def close(status: str, emitting: bool) -> None:
            final = {"type": "output_text", "text": text.text, "annotations": []}
            if emitting:
                logprobs: JSON = {"logprobs": []} if openai else {}
                emit("response.output_text.done", **where, text=text.text, **logprobs)
                emit("response.content_part.done", **where, part=final)
            item.update(status=status, content=[final])
            self._done(index, item, emitting)

        self._closer = close

    def _reasoning(self, reasoning: Reasoning) -> None:
        emit, openai = self.emit, self.openai
        item_id = new_item_id(self.flavor, "reasoning")
        item: JSON = {"id": item_id, "type": "reasoning", "summary": []}
        index = self._open(item)
        where = {"item_id": item_id, "output_index": index, "summary_index": 0}
        if openai:
            emit("response.reasoning_summary_part.added", **where, part=_summary(""))
        pieces = split_words(reasoning.text)
        emit.deltas("response.reasoning_summary_text.delta", where, "delta", pieces)

        def close(status: str, emitting: bool) -> None:
            if emitting:
                emit("response.reasoning_summary_text.done", **where, text=reasoning.text)
                if openai:
                    part = _summary(reasoning.text)
                    emit("response.reasoning_summary_part.done", **where, part=part)
            item["summary"] = [_summary(reasoning.text)]
            if status != "completed":
                item["status"] = status
            self._done(index, item, emitting)

        self._closer = close

    def _code(self, call: CodeInterpreter) -> None:
        emit = self.emit
        item_id = new_item_id(self.flavor, "code_interpreter_call")
        item: JSON = {
            "id": item_id,
            "type": "code_interpreter_call",
            "status": "in_progress",
            "code": "",
            "outputs": [],
            "container_id": "",
        }
        index = self._open(item)
        where = {"item_id": item_id, "output_index": index}
        emit("response.code_interpreter_call.in_progress", **where)
        if self.openai:  # DashScope sends the code only on the finished item
            emit.deltas("response.code_interpreter_call_code.delta", where, "delta", call.pieces())
            emit("response.code_interpreter_call_code.done", **where, code=call.code)
        emit("response.code_interpreter_call.interpreting", **where)

        def close(status: str, emitting: bool) -> None:
            if emitting and status == "completed":
                emit("response.code_interpreter_call.completed", **where)
            outputs = [{"type": "logs", "logs": call.output}]
            item.update(status=status, code=call.code, outputs=outputs)
            self._done(index, item, emitting)

        self._closer = close

    def _search(self, search: Search) -> None:
        emit = self.emit
        item_id = new_item_id(self.flavor, "web_search_call")
        # The SDK requires ``action`` from the start; the query is known only when it is done.
        # (inferred: neither DashScope nor the reference shows the added skeleton in full)
        item: JSON = {
            "id": item_id,
            "type": "web_search_call",
            "status": "in_progress",
            "action": {"type": "search"},
        }
        index = self._open(item)
        where = {"item_id": item_id, "output_index": index}
        emit("response.web_search_call.in_progress", **where)
        emit("response.web_search_call.searching", **where)

        def close(status: str, emitting: bool) -> None:
            if emitting and status == "completed":
                emit("response.web_search_call.completed", **where)
            action = {"type": "search", "query": search.query, "sources": list(search.results)}
            item.update(status=status, action=action)
            self._done(index, item, emitting)

        self._closer = close

    def _function_call(self, call: FunctionCall) -> None:
        emit = self.emit
        item_id = new_item_id(self.flavor, "function_call")
        item: JSON = {
            "id": item_id,
            "type": "function_call",
            "status": "in_progress",
            "call_id": call.call_id or f"call_{uuid.uuid4().hex}",
            "name": call.name,
            "arguments": "",
        }
        index = self._open(item)
        where = {"item_id": item_id, "output_index": index}
        if self.openai:  # DashScope documents no argument events: arguments only on the item
            emit.deltas("response.function_call_arguments.delta", where, "delta", [call.arguments])
            emit("response.function_call_arguments.done", **where, arguments=call.arguments)
        item.update(status="completed", arguments=call.arguments)
        emit("response.output_item.done", output_index=index, item=item)
        self.calls.append(item)


def _summary(text: str) -> JSON:
    return {"type": "summary_text", "text": text}
