"""A minimal server-sent-events reader: bytes in, event payloads out.

Rule 1: no I/O here; the caller owns the HTTP response and feeds its byte chunks.
Rule 2: only what the Responses stream needs. Events are split at blank lines; an event's
``data:`` lines are joined with ``\\n`` (the SSE algorithm); ``id:``, ``event:``, ``retry:`` and
``:`` comment lines (DashScope's ``:HTTP_STATUS/200``) are skipped, because events are typed by
their JSON ``type``. Lines end in LF or CRLF (a lone CR is not a line end here).

This is the hot path of every streamed run: the common event (one ``data:`` line) costs its
share of one decode and one split per chunk, a ``find`` or two and one call of the C scanner,
in one generator. A chunk that is exactly one event (a token stream's: one event per HTTP
chunk) skips the split: its data line is found in the bytes and only that line is decoded.
"""

from __future__ import annotations

import codecs
import json
import json.scanner
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Iterator, Sequence
from typing import Any

__all__ = ["InvalidEvent", "Known", "aiter_sse_json", "iter_sse_data", "iter_sse_json"]

#: Bytes of complete events from which on a chunk is decoded in place rather than sliced first;
#: an event still incomplete after this many bytes is a long one (see ``_Long``).
_BIG = 1 << 16
#: The text a long event may repeat (the stream's text so far, in pieces), or None.
Known = Callable[[], Sequence[str] | None]
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


def iter_sse_json(chunks: Iterable[bytes], known: Known | None = None) -> Iterator[dict[str, Any]]:
    """Each event's data parsed as a JSON object; a ``[DONE]`` payload ends the stream.

    Raises ``InvalidEvent`` for data that is not exactly one JSON object (or not UTF-8).
    ``known``: where a long event repeats that text as a string, the event gets the text
    ``known`` gave (joined), not a copy parsed from the event (see ``_long_event``).
    """
    return _events(chunks, parse=True, known=known)  # type: ignore[return-value]


async def aiter_sse_json(
    chunks: AsyncIterable[bytes], known: Known | None = None
) -> AsyncIterator[dict[str, Any]]:
    """``iter_sse_json`` over chunks that arrive asynchronously (the same parser).

    Each arrival's complete events go through ``_events`` at once; the incomplete rest waits
    for the next chunk, so an event is never parsed in pieces. Line ends are normalised to LF
    here (a CR at a chunk's end may be half of a CRLF: it waits too). A long event is decoded
    as it arrives (``_Long``), as ``_events`` does.
    """
    pending = b""
    long: _Long | None = None
    async for chunk in chunks:
        data = pending + chunk if pending else chunk
        cr = b""
        if b"\r" in data:
            if data.endswith(b"\r"):
                data, cr = data[:-1], b"\r"
            data = data.replace(b"\r\n", b"\n")
        if long is not None:
            end = data.find(b"\n\n")
            if end < 0:
                pending = long.add(data) + cr
                continue
            event = _long_event([long.end(data[:end])], True, known)
            long, data = None, data[end + 2 :]
            if event is None:  # [DONE]
                return
            if event is not _SKIP:
                yield event
            event = None
        cut = data.rfind(b"\n\n")
        if cut < 0:
            if len(data) < _BIG:
                pending = data + cr
            else:
                long = _Long()
                pending = long.add(data) + cr
            continue
        pending = data[cut + 2 :] + cr
        for event in _events((data[: cut + 2],), parse=True):
            yield event  # type: ignore[misc]
    if long is not None:
        tail = _decoded_slices(long.end(pending.replace(b"\r\n", b"\n").rstrip(b"\r\n")))
        if "data:" in tail and (event := _parse(_joined_data(tail))) is not None:
            yield event
    elif pending:
        for event in _events((pending,), parse=True):
            yield event  # type: ignore[misc]


def _events(
    chunks: Iterable[bytes], parse: bool, known: Known | None = None
) -> Iterator[str | dict[str, Any]]:
    scan = _scan_json
    pending = b""
    long: _Long | None = None  # an event longer than _BIG, decoded as it arrives
    for chunk in chunks:
        if pending:
            chunk = pending + chunk
        pending_cr = b""
        if 13 in chunk:  # a CR: an int is looked for with memchr, a bytes needle ~10x slower
            # A CRLF split across chunks leaves a CR at the end: keep it for the next chunk.
            if chunk[-1] == 13:
                chunk, pending_cr = chunk[:-1], b"\r"
            chunk = chunk.replace(b"\r\n", b"\n")
        if long is not None:
            end = chunk.find(b"\n\n")
            if end < 0:
                pending = long.add(chunk) + pending_cr
                continue
            item = _long_event([long.end(chunk[:end])], parse, known)
            long, chunk = None, chunk[end + 2 :]
            if item is None:  # [DONE]
                return
            if item is not _SKIP:
                yield item
            item = None
        cut = chunk.find(b"\n\n")
        if cut < 0:
            if len(chunk) < _BIG:
                pending = chunk + pending_cr
            else:  # no end in sight: decoded as it comes, not gathered as bytes first
                long = _Long()
                pending = long.add(chunk) + pending_cr
            continue
        if cut == len(chunk) - 2 and cut < _BIG and not pending_cr:
            # One whole short event (a token stream's chunk): its data line is found in the
            # bytes, and only that is decoded.
            pending = b""
            if chunk.startswith(b"data:"):
                start = 5
            else:
                start = chunk.find(b"\ndata:", 0, cut) + 6
                if start < 6:
                    continue
            if chunk.find(b"\n", start, cut) < 0:  # else more lines: the general case below
                if chunk[start] == 32:  # b" "
                    start += 1
                try:
                    data = chunk[start:cut].decode()
                except UnicodeDecodeError:
                    data = _decoded(chunk[start:cut])  # raises InvalidEvent
                chunk = b""
                if not parse:
                    yield data
                    continue
                try:
                    event, end = scan(data, 0)
                except (StopIteration, ValueError):
                    event, end = None, 0
                if event.__class__ is not dict or end != len(data):
                    event = _parsed(data, event, end)
                    if event is None:  # [DONE]
                        return
                data = ""
                yield event
                event = None
                continue
        cut = chunk.rfind(b"\n\n")
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
    if pending or long is not None:
        raw = pending.replace(b"\r\n", b"\n").rstrip(b"\r\n")
        tail = _decoded(raw) if long is None else _decoded_slices(long.end(raw))
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


# -- long events ---------------------------------------------------------------------------------
# A long event (a finished message's four final events each repeat its whole text) gathered by
# concatenation and decoded at once costs, beside the answer the run already holds: its bytes
# twice while they are gathered, then its bytes plus twice their length as text while they are
# decoded (the UTF-8 decoder sizes its buffer for one character per byte, as wide as the widest
# character met), then its text and the parsed copy of the answer in it. Here its bytes grow in
# one buffer; an answer it repeats as a string (``known``) is found in the bytes and left out
# of what is decoded and parsed: the event gets the answer ``known`` gave. Any other long event
# is decoded a slice at a time.

#: ``_long_event``'s answer for a block without data.
_SKIP: Any = object()
#: Stands in the JSON for a known text while the rest of the event is parsed.
_MARK = "\x00compat-known\x00"
_MARK_JSON = json.dumps(_MARK)
#: Characters of a known text compared at a time, and bytes decoded at a time.
_SLICE = 1 << 16
#: A known text whose first piece is shorter is not looked for (a short answer costs little).
_PROBE = 1024
_escape = json.encoder.encode_basestring


class _Long:
    """A long event's bytes, gathered in one buffer as they arrive."""

    __slots__ = ("data",)

    def __init__(self) -> None:
        self.data = bytearray()

    def add(self, data: bytes) -> bytes:
        """Take ``data`` (no event end in it); a last LF (half an end, maybe) is given back."""
        if data.endswith(b"\n"):
            self.data += memoryview(data)[:-1]
            return b"\n"
        self.data += data
        return b""

    def end(self, data: bytes) -> bytearray:
        """The whole event's bytes, ``data`` its last."""
        self.data += data
        whole, self.data = self.data, bytearray()
        return whole


def _long_event(box: list[bytearray], parse: bool, known: Known | None) -> Any:
    """A long event's data (``box`` holds its bytes, taken out here), as ``_events`` reads a
    short one's: the data, the parsed event, ``_SKIP`` (no data) or None (``[DONE]``)."""
    raw = box.pop()
    if raw.startswith(b"data:"):
        start = 5
    else:
        start = raw.find(b"\ndata:")
        if start < 0:
            return _SKIP
        start += 6
    if raw.find(b"\n", start) >= 0:  # more than one data line: joined as a short one's
        data = _joined_data(_decoded_slices(raw))
        raw = bytearray()
        return data if not parse else _parse(data)
    if raw.startswith(b" ", start):
        start += 1
    if parse:
        parts = known() if known is not None else None
        if parts and len(parts[0]) >= _PROBE:
            spans = _spans(raw, start, parts)
            event = _scan_marked(raw, start, spans) if spans else None
            if event is not None:
                raw = bytearray()  # let go before the known text is joined
                _put_back(event, parts[0] if len(parts) == 1 else "".join(parts))
                return event
    del raw[:start]
    text = _decoded_slices(raw)
    raw = bytearray()
    return _parse(text) if parse else text


def _decoded_slices(raw: bytearray) -> str:
    """``raw`` as text, decoded ``_SLICE`` bytes at a time and joined."""
    decode = codecs.getincrementaldecoder("utf-8")().decode
    view = memoryview(raw)
    try:
        pieces = [decode(view[at : at + _SLICE]) for at in range(0, len(raw), _SLICE)]
        pieces.append(decode(b"", True))
    except UnicodeDecodeError as exc:
        raise InvalidEvent(
            f"the Responses stream sent bytes that are not UTF-8: {bytes(raw[:200])!r}"
        ) from exc
    finally:
        view.release()
    return "".join(pieces)


def _slices(parts: Sequence[str]) -> Iterator[bytes]:
    """``parts``' JSON escapes (without quotes) as UTF-8, ``_SLICE`` characters at a time."""
    for part in parts:
        for at in range(0, len(part), _SLICE):
            yield _escape(part[at : at + _SLICE])[1:-1].encode()


def _spans(raw: bytearray, start: int, parts: Sequence[str]) -> list[tuple[int, int]]:
    """Where ``raw`` has the text of ``parts`` as a JSON string: (its opening quote, one past
    its closing quote), as far as the bytes tell (``_scan_marked`` checks the rest)."""
    probe = b'"' + _escape(parts[0][:_PROBE])[1:-1].encode()
    spans = []
    at = raw.find(probe, start)
    while at >= 0:
        end = at + 1
        for piece in _slices(parts):
            if not raw.startswith(piece, end):
                break
            end += len(piece)
        else:
            if raw.startswith(b'"', end):
                spans.append((at, end + 1))
                at = end
        at = raw.find(probe, at + 1)
    return spans


def _scan_marked(raw: bytearray, start: int, spans: list[tuple[int, int]]) -> dict[str, Any] | None:
    """The event with ``_MARK`` for the known text at each of ``spans``; None unless each
    span is one whole string value (the marker found as a value once per span, nowhere else)."""
    pieces = []
    at = start
    for begin, end in spans:
        pieces.append(raw[at:begin])
        at = end
    pieces.append(raw[at:])
    try:
        small = _MARK_JSON.join(piece.decode() for piece in pieces)
    except UnicodeDecodeError:
        return None  # decoded as a whole, it raises as it should
    if small.count(_MARK_JSON) != len(spans):
        return None
    try:
        event, end = _scan_json(small, 0)
    except (StopIteration, ValueError):
        return None
    if event.__class__ is not dict or end != len(small):
        return None
    return event if _put_back(event, _MARK) == len(spans) else None


def _put_back(value: Any, text: str) -> int:
    """Put ``text`` where ``value`` (parsed JSON) holds ``_MARK`` as a value; how many times."""
    found = 0
    items: Iterable[tuple[Any, Any]]
    if isinstance(value, dict):
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return 0
    for key, item in list(items):
        if item.__class__ is str:
            if item == _MARK:
                value[key] = text
                found += 1
        elif isinstance(item, (dict, list)):
            found += _put_back(item, text)
    return found
