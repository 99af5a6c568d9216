"""A minimal server-sent-events reader: bytes in, event payloads out.

Rule 1: no I/O here; the caller owns the HTTP response and feeds its byte chunks.
Rule 2: only what the Responses stream needs. Events are split at blank lines; an event's
``data:`` lines are joined with ``\\n`` (the SSE algorithm); ``id:``, ``event:``, ``retry:`` and
``:`` comment lines (DashScope's ``:HTTP_STATUS/200``) are skipped, because events are typed by
their JSON ``type``. Lines end in LF or CRLF (a lone CR is not a line end here).

This is the hot path of every streamed run: the common event (one ``data:`` line) costs its
share of one decode and one split per chunk, a ``find`` or two and one call of the C scanner,
in one generator.
"""

from __future__ import annotations

import json
import json.scanner
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator
from typing import Any

__all__ = ["InvalidEvent", "aiter_sse_json", "iter_sse_data", "iter_sse_json"]

#: Bytes of complete events from which on a chunk is decoded in place rather than sliced first.
_BIG = 1 << 16
#: The C scanner behind json.loads, called directly: json.loads adds two Python-level calls and
#: two regex matches per event, which on a text stream cost more than the parse itself.
_scan_json = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]  # typeshed


class InvalidEvent(ValueError):
    """An event's data is not one JSON object."""


def iter_sse_data(chunks: Iterable[bytes]) -> Iterator[str]:
    """Each event's data (text) as soon as its blank line arrives; pending data at the end too.

    ``[DONE]`` payloads are yielded like any other; the caller decides what they mean. Data that
    is not UTF-8 raises ``InvalidEvent`` when its event is reached.
    """
    return _events(chunks, parse=False)  # type: ignore[return-value]


def iter_sse_json(chunks: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    """Each event's data parsed as a JSON object; a ``[DONE]`` payload ends the stream.

    Raises ``InvalidEvent`` for data that is not exactly one JSON object (or not UTF-8).
    """
    return _events(chunks, parse=True)  # type: ignore[return-value]


async def aiter_sse_json(chunks: AsyncIterable[bytes]) -> AsyncIterator[dict[str, Any]]:
    """``iter_sse_json`` over chunks that arrive asynchronously (the same parser).

    Each arrival's complete events go through ``_events`` at once; the incomplete rest waits
    for the next chunk, so an event is never parsed in pieces. Line ends are normalised to LF
    here (a CR at a chunk's end may be half of a CRLF: it waits too).
    """
    pending = b""
    async for chunk in chunks:
        data = pending + chunk if pending else chunk
        cr = b""
        if b"\r" in data:
            if data.endswith(b"\r"):
                data, cr = data[:-1], b"\r"
            data = data.replace(b"\r\n", b"\n")
        cut = data.rfind(b"\n\n")
        if cut < 0:
            pending = data + cr
            continue
        pending = data[cut + 2 :] + cr
        for event in _events((data[: cut + 2],), parse=True):
            yield event  # type: ignore[misc]
    if pending:
        for event in _events((pending,), parse=True):
            yield event  # type: ignore[misc]


def _events(chunks: Iterable[bytes], parse: bool) -> Iterator[str | dict[str, Any]]:
    scan = _scan_json
    pending = b""
    for chunk in chunks:
        if pending:
            chunk = pending + chunk
        pending_cr = b""
        if b"\r" in chunk:
            # A CRLF split across chunks leaves a CR at the end: keep it for the next chunk.
            if chunk.endswith(b"\r"):
                chunk, pending_cr = chunk[:-1], b"\r"
            chunk = chunk.replace(b"\r\n", b"\n")
        cut = chunk.rfind(b"\n\n")
        if cut < 0:
            pending = chunk + pending_cr
            continue
        pending = chunk[cut + 2 :] + pending_cr
        # Every complete event of the chunk is decoded at once: an event boundary is ASCII, so
        # no character is split. Undecodable bytes fall back to one event at a time, so the
        # events before them are still delivered.
        bad = None
        try:
            if cut < _BIG:
                blocks = chunk[:cut].decode().split("\n\n")
            else:  # decoded where it stands: a slice would copy it first
                blocks = str(memoryview(chunk)[:cut], "utf-8").split("\n\n")
        except UnicodeDecodeError:
            blocks, bad = _decodable(chunk[:cut].split(b"\n\n"))
        # Neither the chunk nor an event's block is kept while the event is handled (a final
        # event carries all the text): the blocks are popped, the block let go before a yield.
        chunk = b""
        blocks.reverse()
        while blocks:
            block = blocks.pop()
            if block.startswith("data:"):
                start = 5
            else:
                start = block.find("\ndata:")
                if start < 0:
                    continue
                start += 6
            # The data is read where it stands in the block, not sliced out (a copy).
            if block.find("\n", start) >= 0:
                block, start = _joined_data(block[start - 5 :]), 0
            elif block.startswith(" ", start):
                start += 1
            if not parse:
                data, block = block[start:], ""
                yield data
                continue
            # The C scanner, inlined: json.loads would add two calls and two regex matches.
            try:
                event, end = scan(block, start)
            except (StopIteration, ValueError):
                event, end = None, start
            if event.__class__ is not dict or end != len(block):
                event = _parsed(block[start:], event, end - start)
                if event is None:  # [DONE]
                    return
            block = ""
            yield event
            event = None  # let go before the next chunk is read
        if bad is not None:
            raise bad
    if pending:
        tail = _decoded(pending.replace(b"\r\n", b"\n").rstrip(b"\r\n"))
        if "data:" in tail:
            data = _joined_data(tail)
            if not parse:
                yield data
            elif (event := _parse(data)) is not None:
                yield event


def _decoded(raw: bytes) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError as exc:
        raise InvalidEvent(
            f"the Responses stream sent bytes that are not UTF-8: {raw[:200]!r}"
        ) from exc


def _decodable(blocks: list[bytes]) -> tuple[list[str], InvalidEvent | None]:
    """The blocks decoded up to the first that is not UTF-8, and the error that one raises."""
    decoded = []
    for block in blocks:
        try:
            decoded.append(_decoded(block))
        except InvalidEvent as exc:
            return decoded, exc
    return decoded, None


def _joined_data(block: str) -> str:
    """The data lines of ``block`` joined with ``\\n`` (the rare multi-line case)."""
    parts = []
    for line in block.split("\n"):
        if line.startswith("data:"):
            value = line[5:]
            parts.append(value[1:] if value.startswith(" ") else value)
    return "\n".join(parts)


def _parse(data: str) -> dict[str, Any] | None:
    """One JSON object; None for ``[DONE]``."""
    try:
        event, end = _scan_json(data, 0)
    except (StopIteration, ValueError):
        event, end = None, 0
    return _parsed(data, event, end)


def _parsed(data: str, event: Any, end: int) -> dict[str, Any] | None:
    """What the scanner's ``(event, end)`` means: the object, None for ``[DONE]``, or raises."""
    if event.__class__ is dict and (end == len(data) or not data[end:].strip()):
        result: dict[str, Any] = event
        return result
    if data == "[DONE]":
        return None
    raise InvalidEvent(f"the Responses stream sent a non-JSON-object event: {data[:200]!r}")
