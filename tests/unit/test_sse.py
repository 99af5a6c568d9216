"""The SSE reader: DashScope's and OpenAI's framings, split anywhere, give the same payloads."""

from __future__ import annotations

import sys
import tracemalloc

import pytest

from compat.backends.responses.sse import InvalidEvent, iter_sse_data, iter_sse_json

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
