"""A minimal server-sent-events reader: bytes in, ``data`` payloads out.

Rule 1: no I/O here; the caller owns the HTTP response and feeds its byte chunks.
Rule 2: only what the Responses stream needs. Events are split at blank lines; an event's
``data:`` lines are joined with ``\\n`` (the SSE algorithm); ``id:``, ``event:``, ``retry:`` and
``:`` comment lines (DashScope's ``:HTTP_STATUS/200``) are skipped, because events are typed by
their JSON ``type``. Lines end in LF or CRLF (a lone CR is not a line end here).

This is the hot path of every streamed run, so the common event (one ``data:`` line) costs a
split and a ``find`` on bytes, never a loop over its lines in Python.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

__all__ = ["iter_sse_data"]


def iter_sse_data(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Yield each event's data (bytes) as soon as the event's blank line arrives.

    Data still pending when the stream ends is yielded too. ``[DONE]`` payloads are yielded like
    any other; the caller decides what they mean.
    """
    pending = b""
    for chunk in chunks:
        if pending:
            chunk = pending + chunk
        if b"\r" in chunk:
            # A CRLF split across chunks leaves a CR at the end: keep it for the next chunk.
            keep_cr = chunk.endswith(b"\r")
            chunk = chunk.replace(b"\r\n", b"\n")
            if keep_cr:
                chunk, pending_cr = chunk[:-1], b"\r"
            else:
                pending_cr = b""
        else:
            pending_cr = b""
        blocks = chunk.split(b"\n\n")
        pending = blocks.pop() + pending_cr
        for block in blocks:
            data = _event_data(block)
            if data is not None:
                yield data
    if pending:
        data = _event_data(pending.replace(b"\r\n", b"\n").rstrip(b"\r\n"))
        if data is not None:
            yield data


def _event_data(block: bytes) -> bytes | None:
    """The data of one event block (its lines without the blank line), or None if it has none."""
    if block.startswith(b"data:"):
        start = 5
    else:
        start = block.find(b"\ndata:")
        if start < 0:
            return None
        start += 6
    end = block.find(b"\n", start)
    if end < 0:
        first = block[start:]
        return first[1:] if first.startswith(b" ") else first
    # More lines after the first data line: collect every data line (rare).
    parts = []
    for line in block[start - 5 :].split(b"\n"):
        if line.startswith(b"data:"):
            value = line[5:]
            parts.append(value[1:] if value.startswith(b" ") else value)
    return b"\n".join(parts)
