"""One output item on its way through the stream, and its streamed text, held flat.

Pure, like ``translate``. A message's text, a code_interpreter call's code and a function
call's arguments arrive as many small deltas, a few characters each. A list of the delta strings
keeps one object per delta, ~60 bytes of header and pointer around a few characters (a
100,000-delta message held ~9 MiB for 1.5 MiB of text). The item's ``TextBuffer`` folds its
deltas into blocks as they come, so it holds the text and not the deltas, on every Python
(``io.StringIO`` does so only from 3.12: before, it kept a list of the pieces written, too).

``text_so_far`` may be called from another thread (the lease keeper's checkpoint) while the
driver's thread streams: a buffer's reads and folds are each one C call on its list (atomic
under the GIL), and ``end_text`` sets ``final`` before it lets the buffer go, so a reader sees
one or the other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["Item", "TextBuffer"]

JSON = dict[str, Any]

#: Deltas joined into one block at a time.
_DELTAS_PER_BLOCK = 64
#: Characters from which on a block is no longer folded into a bigger one.
_BLOCK_CHARS = 1 << 16


class TextBuffer:
    """A growing text made of small pieces, held as a few large strings.

    ``parts`` is ``[block, ..., block, delta, ..., delta]``. Every ``_DELTAS_PER_BLOCK`` deltas
    are joined into a block, and a block at least as long as the one before it is joined with
    it (a binary counter) while that one is shorter than ``_BLOCK_CHARS``: past the full-size
    blocks, blocks shrink from first to last, and each character is copied O(log
    ``_BLOCK_CHARS``) times in all. No fold copies more than ~2 ``_BLOCK_CHARS`` at once (an
    unbounded counter's last fold copies most of the text while the text is still held).
    """

    __slots__ = ("_blocks", "_parts")

    def __init__(self) -> None:
        self._parts: list[str] = []
        self._blocks = 0  # how many of ``_parts`` (at the front) are blocks

    def write(self, delta: str) -> None:
        parts = self._parts
        parts.append(delta)
        blocks = self._blocks
        if len(parts) - blocks < _DELTAS_PER_BLOCK:
            return
        # Each slice assignment is one C call: a reader (``getvalue``) sees before or after.
        parts[blocks:] = ["".join(parts[blocks:])]
        blocks += 1
        while blocks > 1:
            before = len(parts[blocks - 2])
            if before >= _BLOCK_CHARS or len(parts[blocks - 1]) < before:
                break
            parts[blocks - 2 : blocks] = [parts[blocks - 2] + parts[blocks - 1]]
            blocks -= 1
        self._blocks = blocks

    def getvalue(self) -> str:
        return "".join(self._parts)

    def pieces(self) -> list[str]:
        """The text so far as its pieces (a new list; nothing joined)."""
        return self._parts[:]

    def adopt(self, text: str) -> None:
        """Hold the text so far as ``text`` itself, if it is that text (else change nothing)."""
        if self.equals(text):
            self._parts[:] = [text]
            self._blocks = 1

    def equals(self, text: str) -> bool:
        """Whether the text so far is ``text``, compared piece by piece (nothing joined)."""
        parts = self._parts
        if sum(map(len, parts)) != len(text):
            return False
        at = 0
        for part in parts:
            if not text.startswith(part, at):
                return False
            at += len(part)
        return True


@dataclass(eq=False)
class Item:
    """One visible or hidden output item on its way through the stream."""

    kind: str  # "message" | "tool" | "call" | "hidden"
    item_id: str | None  # the first id it was seen under
    step: JSON = field(default_factory=dict)  # its step; a response's function calls share one
    message: JSON = field(default_factory=dict)
    object_id: str = ""  # the message id, or the tool call id
    name: str = ""  # the tool type, or the function name
    index: int = 0
    #: the text streamed so far: None before the first delta, and once the text ended
    text: TextBuffer | None = None
    #: the finished text (a function call's: its arguments; None while the call is open)
    final: str | None = None
    item_type: str | None = None  # the upstream item type
    position: int | None = None  # the first output_index the stream gave it
    order: int = -1  # how many items the stream showed before it
    done: bool = False
    call_id: str | None = None  # a function call's upstream call_id

    def add_text(self, delta: str) -> None:
        """One delta of the item's text (``feed``'s hot path writes to ``text`` itself)."""
        buffer = self.text
        if buffer is None:
            buffer = self.text = TextBuffer()
        buffer.write(delta)

    def text_so_far(self) -> str:
        """The text streamed so far ("" if none came); the finished text once it ended."""
        buffer = self.text  # read once: the driver's thread may end the text meanwhile
        if buffer is not None:
            return buffer.getvalue()
        return self.final or ""

    def end_text(self, finished: str | None = None) -> str | None:
        """The streamed text, now final (kept as ``final``, the buffer let go); None if no
        delta came. Called again, the same (a finish that raised is followed by a close).

        ``finished``: the text as the finished item has it. When the deltas made just that, it
        is the one kept (and returned): the streamed text is never joined into a second copy.
        """
        buffer = self.text
        if buffer is None:
            return self.final
        if finished is not None and buffer.equals(finished):
            self.final = finished
        else:
            self.final = buffer.getvalue()
        self.text = None  # after ``final`` is set: see the module docstring
        return self.final
