"""The SSE reader: DashScope's and OpenAI's framings, split anywhere, give the same payloads."""

from __future__ import annotations

import pytest

from compat.backends.responses.sse import iter_sse_data

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
    b'{"type":"response.created"}',
    b'{"type":"response.output_text.delta","delta":"Hi"}',
]


@pytest.mark.parametrize("body", [DASHSCOPE, OPENAI, OPENAI.replace(b"\n", b"\r\n")])
@pytest.mark.parametrize("size", [1, 2, 7, 64, 100_000])
def test_payloads_are_the_same_whatever_the_framing_and_chunking(body: bytes, size: int) -> None:
    chunks = [body[i : i + size] for i in range(0, len(body), size)]
    assert list(iter_sse_data(chunks)) == EXPECTED


def test_multi_line_data_is_joined_with_newlines() -> None:
    assert list(iter_sse_data([b'data: {\ndata: "a": 1}\n\n'])) == [b'{\n"a": 1}']


def test_an_event_still_pending_at_the_end_of_the_stream_is_delivered() -> None:
    assert list(iter_sse_data([b'data:{"x":1}\n', b'data:{"y":2}'])) == [b'{"x":1}\n{"y":2}']


def test_comments_ids_retries_and_events_without_data_yield_nothing() -> None:
    assert list(iter_sse_data([b": keep-alive\n\nid:4\nretry:10\nevent:ping\n\n"])) == []


def test_done_marker_is_passed_through_for_the_caller_to_judge() -> None:
    assert list(iter_sse_data([b"data: [DONE]\n\n"])) == [b"[DONE]"]
