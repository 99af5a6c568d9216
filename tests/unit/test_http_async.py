"""compat.aio's transport parts that need no server: HTTP/1.1 framing, loop turns."""

from __future__ import annotations

import asyncio
import http.client
import time

import pytest

from compat.backends.responses._http_framing import ChunkedDecoder, parse_headers
from compat.backends.responses.turns import take_turn

BODY = [b"data: {}\n\n", b"x" * 300, b"", b"tail"]


def _chunked(pieces: list[bytes], trailer: bytes = b"") -> bytes:
    out = b"".join(b"%x;ext=1\r\n%s\r\n" % (len(p), p) if p else b"" for p in pieces)
    return out + b"0\r\n" + trailer + b"\r\n"


@pytest.mark.parametrize("trailer", [b"", b"X-Checksum: abc\r\n"])
def test_a_chunked_body_decodes_the_same_however_its_bytes_arrive(trailer: bytes) -> None:
    wire = _chunked(BODY, trailer) + b"HTTP/1.1 200 OK"
    for size in (1, 2, 3, 7, 64, len(wire)):
        decoder = ChunkedDecoder()
        body = b""
        for at in range(0, len(wire), size):
            body += decoder.feed(wire[at : at + size])
            if decoder.done:
                rest = decoder.rest + wire[at + size :]
                break
        assert (body, decoder.done, rest) == (b"".join(BODY), True, b"HTTP/1.1 200 OK"), size


@pytest.mark.parametrize(
    "wire",
    [b"zz\r\nab\r\n", b"-1\r\n", b"\r\n", b"2\r\nabXY", b"1" * 5000],
    ids=["not-hex", "negative", "empty-size", "no-crlf-after-data", "overlong-line"],
)
def test_malformed_chunked_framing_raises_value_error(wire: bytes) -> None:
    with pytest.raises(ValueError):
        ChunkedDecoder().feed(wire)


def test_header_fields_by_any_case_repeated_ones_joined_folded_ones_continued() -> None:
    raw = b"Content-Type: text/event-stream\r\nX-A: 1\r\nx-a: 2\r\nX-Long: one\r\n  two\r\n"
    headers = parse_headers(raw)
    assert headers.get("content-type") == headers.get("Content-Type") == "text/event-stream"
    assert (headers.get("X-A"), headers.get("x-long"), headers.get("nope", "-")) == (
        "1, 2",
        "one two",
        "-",
    )
    with pytest.raises(http.client.HTTPException):
        parse_headers(b"no colon here\r\n")


def test_turns_let_every_caller_through_in_order_and_the_loop_round_between() -> None:
    # 20 turns of at least 0.5 ms each are more than one pass's budget (turns.BUDGET): the loop
    # must come round (the counter task runs) between the first turn and the last.
    async def main() -> tuple[list[int], list[int]]:
        order: list[int] = []
        passes_seen: list[int] = []
        passes = 0
        done = False

        async def count_passes() -> None:
            nonlocal passes
            while not done:
                passes += 1
                await asyncio.sleep(0)

        async def caller(n: int) -> None:
            await take_turn()
            order.append(n)
            passes_seen.append(passes)
            busy_until = time.perf_counter() + 0.0005
            while time.perf_counter() < busy_until:
                pass  # a turn's work, holding the loop

        counter = asyncio.create_task(count_passes())
        await asyncio.gather(*(caller(n) for n in range(20)))
        done = True
        await counter
        return order, passes_seen

    order, passes_seen = asyncio.run(main())
    assert order == list(range(20))
    assert passes_seen[0] < passes_seen[-1]


def test_a_caller_cancelled_while_waiting_does_not_hold_up_the_others() -> None:
    async def main() -> list[int]:
        went: list[int] = []

        async def caller(n: int) -> None:
            await take_turn()
            went.append(n)
            busy_until = time.perf_counter() + 0.002  # more than a pass's budget
            while time.perf_counter() < busy_until:
                pass

        tasks = [asyncio.create_task(caller(n)) for n in range(6)]
        await asyncio.sleep(0)  # every caller is waiting or has gone
        for task in tasks[1:4]:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        return went

    assert asyncio.run(main()) == [0, 4, 5]
