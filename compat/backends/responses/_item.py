"""One output item on its way through the stream, and its streamed text, held flat.

Pure, like ``translate``. A message's text, a code_interpreter call's code and a function
call's arguments arrive as many small deltas, a few characters each. The item writes them into
one growing buffer (``io.StringIO``: one string in the narrowest character width the text
needs, grown in place by C code, nothing translated), so it holds the text and not the deltas:
a list of the delta strings kept one object per delta, ~60 bytes of header and pointer around a
few characters (a 100,000-delta message held ~9 MiB for 1.5 MiB of text). Memory is the text's
(a quarter more at most while it grows), whatever the number of deltas.

``text_so_far`` may be called from another thread (the lease keeper's checkpoint) while the
driver's thread streams: each buffer call is one C call (atomic under the GIL), and
``end_text`` sets ``final`` before it lets the buffer go, so a reader sees one or the other.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Item"]

JSON = dict[str, Any]


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
    text: io.StringIO | None = None
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
            buffer = self.text = io.StringIO(newline="\n")  # "\n": line ends kept as they came
        buffer.write(delta)

    def text_so_far(self) -> str:
        """The text streamed so far ("" if none came); the finished text once it ended."""
        buffer = self.text  # read once: the driver's thread may end the text meanwhile
        if buffer is not None:
            return buffer.getvalue()
        return self.final or ""

    def end_text(self) -> str | None:
        """The streamed text, now final (kept as ``final``, the buffer let go); None if no
        delta came. Called again, the same (a finish that raised is followed by a close)."""
        buffer = self.text
        if buffer is None:
            return self.final
        self.final = buffer.getvalue()
        self.text = None  # after ``final`` is set: see the module docstring
        return self.final
