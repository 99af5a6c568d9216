"""A record's JSON as UTF-8, its long strings encoded a slice at a time into one buffer.

``dumps(value).encode()`` holds three copies of a long string beside the value's own: the JSON
encoder's escaped copy, the JSON text it joins, and the UTF-8 of that text (a finished 1.5 MiB
answer cost ~4.5 MiB at once). Here a string of at least ``LONG`` characters is left out of the
JSON (a marker stands in its place), escaped and encoded ``LONG`` characters at a time, and
written into one buffer of the exact size, between the JSON's pieces: one copy, as UTF-8.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from .base import dumps

__all__ = ["LONG", "dumps_utf8"]

#: Strings from this many characters on are encoded a slice of this many at a time.
LONG = 1 << 16
#: The escaped-JSON form of one string (with its quotes), as ``json.dumps`` writes it.
_escape = json.encoder.encode_basestring
#: Marks a long string's place in the JSON; a string made of it is written as ``"\u0000..."``.
_MARK = "\x00compat-long-{}\x00"
#: Values ``_marked`` returns as they are, without a look inside.
_LEAVES = frozenset({int, float, bool, type(None)})


def dumps_utf8(value: dict[str, Any]) -> bytes | bytearray:
    """``dumps(value).encode()``, without a whole copy of any long string but the UTF-8 one.

    Returns ``bytes``, or a ``bytearray`` when ``value`` holds a long string.
    """
    longs: list[str] = []
    skeleton = _marked(value, longs)
    text = dumps(skeleton)
    if not longs:
        return text.encode()
    marks = [json.dumps(_MARK.format(index)) for index in range(len(longs))]
    pieces: list[bytes] = []
    rest = text
    for mark in marks:
        before, found, rest = rest.partition(mark)
        if not found or mark in rest:  # a string of the value's own is a marker
            return dumps(value).encode()
        pieces.append(before.encode())
    pieces.append(rest.encode())
    size = sum(map(len, pieces)) + sum(
        2 + sum(map(len, _encoded(long))) for long in longs
    )  # the strings' quotes and escaped UTF-8, measured a slice at a time (nothing kept)
    out = bytearray(size)
    view = memoryview(out)
    at = 0
    for index, piece in enumerate(pieces):
        view[at : at + len(piece)] = piece
        at += len(piece)
        if index < len(longs):
            view[at : at + 1] = b'"'
            at += 1
            for part in _encoded(longs[index]):
                view[at : at + len(part)] = part
                at += len(part)
            view[at : at + 1] = b'"'
            at += 1
    view.release()
    assert at == size
    return out


def _encoded(text: str) -> Iterator[bytes]:
    """``text``'s escaped JSON (without its quotes) as UTF-8, ``LONG`` characters at a time."""
    for start in range(0, len(text), LONG):
        yield _escape(text[start : start + LONG])[1:-1].encode()


def _marked(value: Any, longs: list[str]) -> Any:
    """``value`` with each long string replaced by its marker (appended to ``longs``); the
    containers on the way to one are copied, everything else is ``value``'s own."""
    if value.__class__ is str:
        if len(value) < LONG:
            return value
        longs.append(value)
        return _MARK.format(len(longs) - 1)
    if isinstance(value, dict):
        changed: dict[Any, Any] | None = None
        for key, item in value.items():
            kind = item.__class__
            if kind in _LEAVES or (kind is str and len(item) < LONG):
                continue  # most of a record: no call for it
            new = _marked(item, longs)
            if new is not item:
                if changed is None:
                    changed = dict(value)
                changed[key] = new
        return value if changed is None else changed
    if isinstance(value, (list, tuple)):
        items = [_marked(item, longs) for item in value]
        if any(new is not old for new, old in zip(items, value, strict=True)):
            return items
        return value
    return value
