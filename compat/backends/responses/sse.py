"""A minimal server-sent-events reader: bytes in, event payloads out.

Rule 1: no I/O here; the caller owns the HTTP response and feeds its byte chunks.
Rule 2: only what the Responses stream needs. Events are split at blank lines; an event's
``data:`` lines are joined with ``\\n`` (the SSE algorithm); ``id:``, ``event:``, ``retry:`` and
``:`` comment lines (DashScope's ``:HTTP_STATUS/200``) are skipped, because events are typed by
their JSON ``type``. Lines end in LF or CRLF (a lone CR is not a line end here).

This is the hot path of every streamed run: the common event (one ``data:`` line) costs a
split, a ``find`` and, for JSON, one call of the C scanner, in one generator.
"""

from __future__ import annotations

import json
import json.scanner
from collections.abc import Iterable, Iterator
from typing import Any

__all__ = ["InvalidEvent", "iter_sse_data", "iter_sse_json"]

#: The C scanner behind json.loads, called directly: json.loads adds two Python-level calls and
#: two regex matches per event, which on a text stream cost more than the parse itself.
_scan_json = json.scanner.make_scanner(json.JSONDecoder())  # type: ignore[arg-type]  # typeshed


class InvalidEvent(ValueError):
    """An event's data is not one JSON object."""


def iter_sse_data(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Each event's data (bytes) as soon as its blank line arrives; pending data at the end too.

    ``[DONE]`` payloads are yielded like any other; the caller decides what they mean.
    """
    return _events(chunks, parse=False)  # type: ignore[return-value]


def iter_sse_json(chunks: Iterable[bytes]) -> Iterator[dict[str, Any]]:
    """Each event's data parsed as a JSON object; a ``[DONE]`` payload ends the stream.

    Raises ``InvalidEvent`` for data that is not exactly one JSON object.
    """
    return _events(chunks, parse=True)  # type: ignore[return-value]


def _events(chunks: Iterable[bytes], parse: bool) -> Iterator[bytes | dict[str, Any]]:
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
        blocks = chunk.split(b"\n\n")
        pending = blocks.pop() + pending_cr
        for block in blocks:
            if block.startswith(b"data:"):
                start = 5
            else:
                start = block.find(b"\ndata:")
                if start < 0:
                    continue
                start += 6
            if block.find(b"\n", start) < 0:
                data = block[start:]
                if data[:1] == b" ":
                    data = data[1:]
            else:
                data = _joined_data(block[start - 5 :])
            if not parse:
                yield data
            elif (event := _parse(data)) is None:
                return
            else:
                yield event
    if pending:
        data = _joined_data(pending.replace(b"\r\n", b"\n").rstrip(b"\r\n"))
        if b"data:" in pending:
            if not parse:
                yield data
            elif (event := _parse(data)) is not None:
                yield event


def _joined_data(block: bytes) -> bytes:
    """The data lines of ``block`` joined with ``\\n`` (the rare multi-line case)."""
    parts = []
    for line in block.split(b"\n"):
        if line.startswith(b"data:"):
            value = line[5:]
            parts.append(value[1:] if value.startswith(b" ") else value)
    return b"\n".join(parts)


def _parse(data: bytes) -> dict[str, Any] | None:
    """One JSON object; None for ``[DONE]``."""
    text = data.decode()
    try:
        event, end = _scan_json(text, 0)
    except (StopIteration, ValueError):
        event, end = None, 0
    if event.__class__ is not dict or (end != len(text) and text[end:].strip()):
        if text == "[DONE]":
            return None
        raise InvalidEvent(f"the Responses stream sent a non-JSON-object event: {text[:200]!r}")
    result: dict[str, Any] = event
    return result
