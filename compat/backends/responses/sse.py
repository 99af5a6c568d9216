"""A minimal server-sent-events reader: bytes in, ``data`` payloads out.

Rule 1: no I/O here; the caller owns the HTTP response and feeds its byte chunks.
Rule 2: only what the Responses stream needs: ``data:`` lines are joined with ``\\n`` per event
(the SSE algorithm), ``id:``, ``event:``, ``retry:`` and ``:`` comment lines (DashScope's
``:HTTP_STATUS/200``) are skipped, because events are typed by their JSON ``type``. This is the
hot path of every streamed run, so it works on whole chunks and touches each line once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

__all__ = ["iter_sse_data"]


def iter_sse_data(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Yield each event's data (bytes, lines joined with ``\\n``) as soon as the event ends.

    An event ends at a blank line, or at the end of the stream if data is pending. ``[DONE]``
    payloads are yielded like any other; the caller decides what they mean.
    """
    pending = b""
    data: list[bytes] = []
    for chunk in chunks:
        if pending:
            chunk = pending + chunk
        lines = chunk.split(b"\n")
        pending = lines.pop()
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                if data:
                    yield data[0] if len(data) == 1 else b"\n".join(data)
                    data = []
            elif line.startswith(b"data:"):
                value = line[5:]
                data.append(value[1:] if value.startswith(b" ") else value)
            # id:, event:, retry: and ":" comments carry nothing the translator uses.
    if pending.endswith(b"\r"):
        pending = pending[:-1]
    if pending.startswith(b"data:"):
        value = pending[5:]
        data.append(value[1:] if value.startswith(b" ") else value)
    if data:
        yield data[0] if len(data) == 1 else b"\n".join(data)
