"""Streamed text: exact for any split of any text, held in memory proportional to the text.

An output item writes each delta of its text into one buffer (``_item.Item``) instead of keeping
the delta strings. These tests split hypothesis-chosen text (every plane, lone surrogates, CR
and LF) into hypothesis-chosen deltas, read the text so far at arbitrary points (as the lease
keeper's checkpoint does, from another thread, in a run), and check the end. Derandomized, no
deadline: the same examples on every run.
"""

from __future__ import annotations

import sys
import tracemalloc
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from compat._objects import run_object
from compat.backends.responses._item import Item, TextBuffer
from compat.backends.responses.translate import ResponsesTranslator

JSON = dict[str, Any]
_DELTA = "thread.message.delta"

EXAMPLES = settings(max_examples=300, derandomize=True, deadline=None, database=None)
#: Any code point, lone surrogates included (JSON can carry them: "\ud800").
ANY_CHAR = st.characters(exclude_categories=())
#: A stream's deltas: short pieces of any text (empty ones too), and whether the text so far is
#: read after each.
DELTAS = st.lists(st.tuples(st.text(ANY_CHAR, max_size=8), st.booleans()), max_size=60)


def counting_ids() -> Any:
    counts: dict[str, int] = {}

    def new_id(prefix: str) -> str:
        counts[prefix] = counts.get(prefix, 0) + 1
        return f"{prefix}_{counts[prefix]}"

    return new_id


def translator() -> ResponsesTranslator:
    run = run_object("run_1", 900, "thread_1", "asst_1", {"model": "qwen-plus"})
    clock = iter(range(1000, 10**9))
    return ResponsesTranslator(run, new_id=counting_ids(), clock=lambda: next(clock))


def response(status: str, output: list[JSON] | None = None) -> JSON:
    return {"id": "resp_1", "status": status, "output": output or []}


def message_item(text: str | None = None) -> JSON:
    content = [] if text is None else [{"type": "output_text", "text": text}]
    status = "in_progress" if text is None else "completed"
    return {"type": "message", "id": "msg_up", "status": status, "content": content}


def delta(text: str) -> JSON:
    return {"type": "response.output_text.delta", "delta": text}


def completed_text(events: list[tuple[str, Any]]) -> str:
    (message,) = [p for name, p in events if name == "thread.message.completed"]
    value: str = message["content"][0]["text"]["value"]
    return value


# -- the item -------------------------------------------------------------------------------------
@EXAMPLES
@given(DELTAS)
def test_the_text_is_exact_for_any_split_whenever_it_is_read(
    deltas: list[tuple[str, bool]],
) -> None:
    item = Item("message", None)
    so_far = ""
    for piece, read in deltas:
        item.add_text(piece)
        so_far += piece
        if read:
            assert item.text_so_far() == so_far
    ended = item.end_text()
    assert ended == (so_far if deltas else None)  # empty deltas are deltas: "" is not None
    assert (item.end_text(), item.text_so_far(), item.text) == (ended, so_far, None)


def test_text_widening_from_ascii_to_cjk_to_astral_across_many_deltas_is_exact() -> None:
    # The buffer starts one byte per character and is widened (and grown) as wider
    # characters arrive: every delta must come through whole, read in between or not.
    item = Item("message", None)
    pieces = [f"a{i}\r\n" for i in range(3000)]
    pieces += [f"你好{i}\uff0c" for i in range(3000)]
    pieces += [f"🚀{i}\ud800" for i in range(3000)]
    for index, piece in enumerate(pieces):
        item.add_text(piece)
        if index % 997 == 0:
            assert item.text_so_far() == "".join(pieces[: index + 1])
    assert item.end_text() == "".join(pieces)


def test_no_delta_means_no_text_and_the_text_so_far_is_empty() -> None:
    item = Item("message", None)
    assert (item.text_so_far(), item.end_text(), item.final) == ("", None, None)


# -- through the translator -----------------------------------------------------------------------
@EXAMPLES
@given(DELTAS, st.booleans())
def test_the_translator_streams_and_stores_exactly_the_deltas_it_was_fed(
    deltas: list[tuple[str, bool]], item_added: bool
) -> None:
    t = translator()
    out = t.feed({"type": "response.created", "response": response("queued")})
    if item_added:  # DashScope may skip it: the first delta opens the message
        out += t.feed({"type": "response.output_item.added", "item": message_item()})
    so_far = ""
    for piece, read in deltas:
        out += t.feed(delta(piece))
        so_far += piece
        if read:
            partial = t.partial_message()
            assert partial is not None and partial["status"] == "in_progress"
            assert partial["content"][0]["text"]["value"] == so_far
    whole = message_item(so_far)
    out += t.feed({"type": "response.output_item.done", "item": whole})
    out += t.feed({"type": "response.completed", "response": response("completed", [whole])})
    streamed = [p["delta"]["content"][0]["text"]["value"] for n, p in out if n == _DELTA]
    text_alone = not deltas and so_far  # no delta: the finished item's text as one delta
    assert streamed == ([so_far] if text_alone else [piece for piece, _ in deltas])
    assert completed_text(out) == so_far
    assert t.messages[0]["content"][0]["text"]["value"] == so_far
    assert t.partial_message() is None


def test_a_message_streamed_in_many_deltas_keeps_one_copy_of_its_text() -> None:
    t = translator()
    t.feed({"type": "response.created", "response": response("queued")})
    pieces = [f"你好{i}\uff0c" for i in range(2000)]
    for piece in pieces:
        t.feed(delta(piece))
    finished = "".join(pieces)
    t.feed({"type": "response.output_item.done", "item": message_item(finished)})
    # The finished item repeats the streamed text: the message keeps that one string.
    assert t.messages[0]["content"][0]["text"]["value"] is finished


def test_the_streamed_text_wins_over_a_finished_item_that_says_otherwise() -> None:
    t = translator()
    t.feed({"type": "response.created", "response": response("queued")})
    t.feed(delta("streamed"))
    out = t.feed({"type": "response.output_item.done", "item": message_item("different")})
    assert completed_text(out) == "streamed"


def test_the_partial_message_is_a_new_dict_that_leaves_the_snapshot_alone() -> None:
    t = translator()
    assert t.partial_message() is None
    t.feed({"type": "response.created", "response": response("queued")})
    t.feed(delta("Hel"))
    t.feed(delta("lo"))
    partial = t.partial_message()
    assert partial is not None and partial["content"][0]["text"]["value"] == "Hello"
    partial["status"] = "changed"
    again = t.partial_message()
    assert again is not None and again["status"] == "in_progress"


def test_a_failure_mid_message_keeps_the_text_so_far_on_the_incomplete_message() -> None:
    t = translator()
    t.feed({"type": "response.created", "response": response("queued")})
    for piece in ("多", "语", "言 🚀"):
        t.feed(delta(piece))
    out = t.fail("server_error", "the stream broke")
    (message,) = [p for name, p in out if name == "thread.message.incomplete"]
    assert message["content"][0]["text"]["value"] == "多语言 🚀"


def test_many_deltas_hold_memory_in_proportion_to_the_text_not_to_the_deltas() -> None:
    # Each event is built and dropped as the SSE reader's are. A list of the delta strings
    # held ~60 bytes per delta beyond the text (here over 3x the text); the buffer holds the
    # text, with room to grow.
    count = 20_000
    t = translator()
    t.feed({"type": "response.created", "response": response("queued")})
    t.feed(delta("你"))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for i in range(count):
            t.feed({"type": "response.output_text.delta", "delta": f"好{i}"})
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    text = t.partial_message()["content"][0]["text"]["value"]  # type: ignore[index]
    assert len(text) == 1 + sum(len(f"好{i}") for i in range(count))
    assert held < 1.5 * sys.getsizeof(text) + 4096


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=5), max_size=700))
def test_the_text_buffer_is_the_deltas_joined_at_every_point(deltas: list[str]) -> None:
    buffer, so_far = TextBuffer(), ""
    for delta in deltas:
        buffer.write(delta)
        so_far += delta
        assert buffer.getvalue() == so_far


def test_the_text_buffer_holds_few_objects_however_many_deltas() -> None:
    buffer = TextBuffer()
    for i in range(200_000):
        buffer.write(f"好{i % 10}")
    assert buffer.getvalue() == "".join(f"好{i % 10}" for i in range(200_000))
    assert len(buffer._parts) < 80  # blocks: O(log n); loose deltas: fewer than one block's


# -- the finished text: compared in pieces, kept once --------------------------------------------
@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(max_size=5), max_size=300), st.text(max_size=5))
def test_the_text_buffer_compares_in_pieces_and_adopts_only_an_equal_text(
    deltas: list[str], other: str
) -> None:
    buffer = TextBuffer()
    for delta in deltas:
        buffer.write(delta)
    so_far = "".join(deltas)
    assert "".join(buffer.pieces()) == so_far
    assert buffer.equals(so_far) and buffer.equals(so_far + other) == (other == "")
    buffer.adopt(so_far + other + "!")  # not the text: nothing changes
    assert buffer.getvalue() == so_far
    same = "".join([so_far])
    buffer.adopt(same)
    assert buffer.getvalue() == so_far
    if so_far:
        assert buffer.pieces() == [so_far] and buffer.pieces()[0] is same
    buffer.write("tail")  # deltas may follow (another content part)
    assert buffer.getvalue() == so_far + "tail"


def test_output_text_done_keeps_its_text_as_the_message_text_so_far() -> None:
    t = translator()
    t.feed({"type": "response.created", "response": response("queued")})
    pieces = [f"你好{i}\uff0c" for i in range(2000)]
    for piece in pieces:
        t.feed(delta(piece))
    assert "".join(t.known_text() or []) == "".join(pieces)
    done = "".join(pieces)
    assert t.feed({"type": "response.output_text.done", "text": done + "x"}) == []
    assert t.known_text() != [done]  # not the streamed text: the pieces stay
    assert t.feed({"type": "response.output_text.done", "text": done}) == []
    (kept,) = t.known_text() or []
    assert kept is done
    t.feed({"type": "response.output_item.done", "item": message_item(done)})
    assert t.messages[0]["content"][0]["text"]["value"] is done
    assert (t.known_text() or [None])[0] is done  # the last finished message's text


def test_the_blocks_of_a_long_text_stop_growing_at_a_bound() -> None:
    # Folding two blocks copies both: past the bound, blocks are left as they are, so no fold
    # copies most of the text while the text is held.
    buffer = TextBuffer()
    for i in range(400_000):
        buffer.write(f"好{i % 10}")
    assert max(map(len, buffer.pieces())) < 2 * (1 << 16) + 64 * 2
    assert buffer.getvalue() == "".join(f"好{i % 10}" for i in range(400_000))
