"""The SSE reader: DashScope's and OpenAI's framings, split anywhere, give the same payloads."""

from __future__ import annotations

import asyncio
import json
import sys
import tracemalloc
from collections.abc import AsyncIterator
from typing import Any

import pytest

from compat.backends.responses.sse import (
    InvalidEvent,
    Known,
    aiter_sse_json,
    iter_sse_data,
    iter_sse_json,
)

DASHSCOPE = (
    b"id:1\nevent:response.created\n:HTTP_STATUS/200\n"
    b'data:{"type":"response.created"}\n\n'
    b"id:2\nevent:response.output_text.delta\n:HTTP_STATUS/200\n"
    b'data:{"type":"response.output_text.delta","delta":"Hi"}\n\n'
)
OPENAI = (
    b'event: response.created\ndata: {"type":"response.created"}\n\n'
    b"event: response.output_text.delta\n"
    b'data: {"type":"response.output_text.delta","delta":"Hi"}\n\n'
)
EXPECTED = [
    '{"type":"response.created"}',
    '{"type":"response.output_text.delta","delta":"Hi"}',
]


@pytest.mark.parametrize("body", [DASHSCOPE, OPENAI, OPENAI.replace(b"\n", b"\r\n")])
@pytest.mark.parametrize("size", [1, 2, 7, 64, 100_000])
def test_payloads_are_the_same_whatever_the_framing_and_chunking(body: bytes, size: int) -> None:
    chunks = [body[i : i + size] for i in range(0, len(body), size)]
    assert list(iter_sse_data(chunks)) == EXPECTED


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert list(iter_sse_data([b'data: {\ndata: "a": 1}\n\n'])) == ['{\n"a": 1}']


def test_an_event_still_pending_at_the_end_of_the_stream_is_delivered() -> None:
    assert list(iter_sse_data([b'data:{"x":1}\n', b'data:{"y":2}'])) == ['{"x":1}\n{"y":2}']


def test_comments_ids_retries_and_events_without_data_yield_nothing() -> None:
    assert list(iter_sse_data([b": keep-alive\n\nid:4\nretry:10\nevent:ping\n\n"])) == []


def test_done_marker_is_passed_through_for_the_caller_to_judge() -> None:
    assert list(iter_sse_data([b"data: [DONE]\n\n"])) == ["[DONE]"]


def test_json_events_are_parsed_and_done_ends_the_stream() -> None:
    body = [
        b'data: {"type":"a"}\n\ndata: {"type":"b","x":[1]}\n\ndata: [DONE]\n\ndata: {"z":1}\n\n'
    ]
    assert list(iter_sse_json(body)) == [{"type": "a"}, {"type": "b", "x": [1]}]


@pytest.mark.parametrize("data", [b"not json", b"[1, 2]", b'{"a":1} {"b":2}', b'{"a":'])
def test_data_that_is_not_one_json_object_is_an_invalid_event(data: bytes) -> None:
    with pytest.raises(InvalidEvent, match="non-JSON-object event"):
        list(iter_sse_json([b"data: " + data + b"\n\n"]))


def test_only_one_leading_space_is_removed_per_data_line() -> None:
    assert list(iter_sse_data([b"data:  a\ndata:  b\n\ndata:  c\n\n"])) == [" a\n b", " c"]


@pytest.mark.parametrize("size", [1, 2, 3, 5, 100_000])
def test_characters_split_across_chunks_are_decoded_whole(size: int) -> None:
    body = 'data: {"delta":"多语言 ünïcode 🚀"}\n\ndata: {"delta":"é"}\n\n'.encode()
    chunks = [body[i : i + size] for i in range(0, len(body), size)]
    assert list(iter_sse_json(chunks)) == [{"delta": "多语言 ünïcode 🚀"}, {"delta": "é"}]


def test_bytes_that_are_not_utf8_are_an_invalid_event_after_the_events_before_them() -> None:
    events = iter_sse_json([b'data: {"n":1}\n\ndata: {"n":"\xff"}\n\ndata: {"n":3}\n\n'])
    assert next(events) == {"n": 1}
    with pytest.raises(InvalidEvent, match="not UTF-8"):
        next(events)


def test_whitespace_after_the_json_object_is_allowed() -> None:
    assert list(iter_sse_json([b'data: {"a":1}  \n\n'])) == [{"a": 1}]


def test_a_big_event_read_in_pieces_is_held_only_as_its_value_while_it_is_handled() -> None:
    # A final event repeats a reply's whole text. Once it is parsed, neither its bytes nor its
    # decoded text are kept by the reader while the caller handles it.
    text = "多语言 ünïcode 🚀" * 50_000
    body = ('data: {"text":"' + text + '"}\n\n').encode()
    pieces = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    events = iter_sse_json(iter([*pieces, b'data: {"n":1}\n\n']))
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        event = next(events)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert event == {"text": text}
    assert held < sys.getsizeof(text) + 65536
    assert list(events) == [{"n": 1}]


# -- long events (more than a read's worth of bytes) ----------------------------------------------
LONG_TEXT = '多语言 ünïcode 🚀\n"quoted" \\ tab\t' * 20_000  # escapes, and every UTF-8 width


def long_stream(crlf: bool = False) -> tuple[bytes, list[dict[str, object]]]:
    """Short events around three long ones (as a finished message's final events)."""
    events: list[dict[str, object]] = [
        {"type": "response.output_text.delta", "delta": "多"},
        {"type": "response.output_text.done", "text": LONG_TEXT},
        {"type": "response.output_item.done", "item": {"content": [{"text": LONG_TEXT}]}},
        {"type": "other", "a": [LONG_TEXT, {"b": LONG_TEXT}], "c": LONG_TEXT[:-1]},
        {"type": "response.completed"},
    ]
    body = b"".join(
        b"id:1\nevent:x\n:HTTP_STATUS/200\ndata:"
        + json.dumps(e, ensure_ascii=False).encode()
        + b"\n\n"
        for e in events
    )
    return (body.replace(b"\n", b"\r\n") if crlf else body), events


@pytest.mark.parametrize("crlf", [False, True])
@pytest.mark.parametrize("size", [65536, 70001, 1 << 20])
def test_long_events_split_anywhere_are_read_whole(crlf: bool, size: int) -> None:
    body, expected = long_stream(crlf)
    chunks = [body[i : i + size] for i in range(0, len(body), size)]
    assert list(iter_sse_json(chunks)) == expected
    assert list(iter_sse_json(chunks, lambda: [LONG_TEXT[:5000], LONG_TEXT[5000:]])) == expected


@pytest.mark.parametrize("size", [65536, 99_999])
def test_long_events_read_asynchronously_are_the_same(size: int) -> None:
    body, expected = long_stream()
    chunks = [body[i : i + size] for i in range(0, len(body), size)]

    async def read(known: Known | None) -> list[dict[str, Any]]:
        async def arrive() -> AsyncIterator[bytes]:
            for chunk in chunks:
                yield chunk

        return [event async for event in aiter_sse_json(arrive(), known)]

    assert asyncio.run(read(None)) == expected
    assert asyncio.run(read(lambda: [LONG_TEXT])) == expected


def test_a_long_event_that_repeats_the_known_text_gets_that_very_string() -> None:
    body, _ = long_stream()
    known = LONG_TEXT[:100] + LONG_TEXT[100:]  # equal to, not the same object as, LONG_TEXT
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    events = list(iter_sse_json(chunks, lambda: [known]))
    assert events[1]["text"] is known
    assert events[2]["item"]["content"][0]["text"] is known
    assert events[3]["a"][0] is known and events[3]["a"][1]["b"] is known
    assert events[3]["c"] == LONG_TEXT[:-1] and events[3]["c"] is not known


def test_a_known_text_is_put_back_only_where_a_whole_string_value_repeats_it() -> None:
    # Inside a longer string, as a key, or beside a string that looks like the marker, the
    # text is parsed as it stands.
    known = "x" * 70_000
    mark = "\x00compat-known\x00"
    events = [
        {"a": "y" + known},
        {known: 1},
        {"a": known, "b": mark},
        {"a": known + "\\"},
    ]
    body = b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    assert list(iter_sse_json(chunks, lambda: [known])) == events


def test_a_long_event_ending_the_stream_without_a_blank_line_is_delivered() -> None:
    body = ('data: {"text":"' + "多" * 100_000 + '"}').encode()
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    assert list(iter_sse_json(chunks)) == [{"text": "多" * 100_000}]


def test_a_long_event_with_bytes_that_are_not_utf8_is_an_invalid_event() -> None:
    body = b'data: {"n":1}\n\n' + b'data: {"t":"' + b"a" * 100_000 + b'\xff"}\n\n'
    events = iter_sse_json([body[i : i + 65536] for i in range(0, len(body), 65536)])
    assert next(events) == {"n": 1}
    with pytest.raises(InvalidEvent, match="not UTF-8"):
        next(events)


def test_a_long_event_with_several_data_lines_is_joined_and_done_still_ends() -> None:
    long = "a" * 70_000
    body = b'data: {"t":\ndata: "' + long.encode() + b'"}\n\ndata: [DONE]\n\ndata: {}\n\n'
    chunks = [body[i : i + 65536] for i in range(0, len(body), 65536)]
    assert list(iter_sse_json(chunks)) == [{"t": long}]
    assert list(iter_sse_data(chunks)) == ['{"t":\n"' + long + '"}', "[DONE]", "{}"]


ODD_EVENTS = (
    b'data: {"a":1}\n\n'  # one data line, a space after the colon
    b'id:2\ndata:{"b":2}\nretry:5\n\n'  # a line after the data line
    b'data: {\ndata: "c": 3}\n\n'  # two data lines
    b"id:4\nevent:ping\n\n"  # no data
    b": comment\n\n"
    b'data:{"d":"\xe5\xa4\x9a"}\n\n'
)


@pytest.mark.parametrize("body", [DASHSCOPE, OPENAI, ODD_EVENTS])
@pytest.mark.parametrize("crlf", [False, True])
def test_one_event_per_chunk_gives_what_one_chunk_gives(body: bytes, crlf: bool) -> None:
    if crlf:
        body = body.replace(b"\n", b"\r\n")
    separator = b"\r\n\r\n" if crlf else b"\n\n"
    chunks = [event + separator for event in body.split(separator) if event]
    assert list(iter_sse_data(chunks)) == list(iter_sse_data([body]))
    assert list(iter_sse_data(chunks))  # every body has data


def test_an_event_alone_in_its_chunk_that_is_not_utf8_is_an_invalid_event() -> None:
    events = iter_sse_json([b'data: {"n":1}\n\n', b'id:2\ndata: {"n":"\xff"}\n\n'])
    assert next(events) == {"n": 1}
    with pytest.raises(InvalidEvent, match="not UTF-8"):
        next(events)


def test_done_alone_in_its_chunk_ends_the_stream() -> None:
    chunks = [b'data: {"type":"a"}\n\n', b"data: [DONE]\n\n", b'data: {"z":1}\n\n']
    assert list(iter_sse_json(chunks)) == [{"type": "a"}]
