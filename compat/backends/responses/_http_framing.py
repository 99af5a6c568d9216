"""HTTP/1.1 framing for compat's asyncio client (``_http_async``): bytes in, no I/O.

An answer's header fields by lower-case name, and the chunked transfer coding decoded as bytes
arrive. Malformed input raises what ``http.client`` raises for it (``HTTPException`` or
``ValueError``), so the one mapping (``_http._mapped``) takes it as a broken connection.
"""

from __future__ import annotations

import http.client
from typing import Any

__all__ = ["ChunkedDecoder", "Headers", "parse_headers"]

#: A chunk-size line (with its extensions) or trailer line longer than this is refused.
_MAX_LINE = 4096
_HEX = b"0123456789abcdefABCDEF"


class Headers(dict[str, str]):
    """An answer's headers by lower-case name (a repeated one: its values joined by ", ")."""

    def get(self, name: str, default: Any = None) -> Any:
        return super().get(name.lower(), default)


def parse_headers(fields: bytes) -> Headers:
    """The header lines of an answer's head (after its status line), CRLF-separated."""
    headers = Headers()
    key = ""
    for line in fields.decode("latin-1").split("\r\n"):
        if line[:1] in (" ", "\t") and key:  # an obsolete folded continuation
            headers[key] = f"{headers[key]} {line.strip()}"
            continue
        name, colon, value = line.partition(":")
        if not colon:
            if line.strip():
                raise http.client.HTTPException(f"a malformed header line: {line[:80]!r}")
            continue
        key, value = name.strip().lower(), value.strip()
        headers[key] = f"{headers[key]}, {value}" if key in headers else value
    return headers


class ChunkedDecoder:
    """HTTP/1.1 chunked transfer coding, bytes in, body bytes out (no I/O).

    ``feed`` returns the body bytes the data completes (possibly none); ``done`` is set at the
    last chunk's trailer end, and ``rest`` holds what followed it. Malformed framing raises
    ``ValueError`` (mapped as a broken connection, as ``http.client`` raises it).
    """

    __slots__ = ("_left", "_pending", "_state", "done", "rest")

    def __init__(self) -> None:
        self._pending = b""
        self._left = 0
        self._state = 0  # 0: size line, 1: data, 2: CRLF after data, 3: trailer lines
        self.done = False
        self.rest = b""

    def feed(self, data: bytes) -> bytes:
        buf = self._pending + data if self._pending else data
        out: list[bytes] = []
        pos, end = 0, len(buf)
        state, left = self._state, self._left
        while pos < end:
            if state == 1:
                take = min(left, end - pos)
                out.append(buf[pos : pos + take] if take < end or pos else buf)
                pos += take
                left -= take
                if not left:
                    state = 2
            elif state == 2:
                if end - pos < 2:
                    break
                if buf[pos : pos + 2] != b"\r\n":
                    raise ValueError("a chunk of the Responses stream was not followed by CRLF")
                pos += 2
                state = 0
            else:
                eol = buf.find(b"\r\n", pos)
                if eol < 0:
                    if end - pos > _MAX_LINE:
                        raise ValueError("the Responses stream sent an overlong chunk line")
                    break
                line = buf[pos:eol]
                pos = eol + 2
                if state == 3:
                    if not line:  # the blank line after the trailers: the body's end
                        self.done = True
                        self.rest = buf[pos:]
                        pos = end
                        break
                    continue
                size = line.split(b";", 1)[0].strip()
                if not size or size.lstrip(_HEX):
                    raise ValueError(f"invalid chunk size in the Responses stream: {line[:40]!r}")
                left = int(size, 16)
                state = 1 if left else 3
        self._pending = buf[pos:] if pos < end else b""
        self._state, self._left = state, left
        return out[0] if len(out) == 1 else b"".join(out)
