"""What each candidate HTTP client costs per event on a stream of one event per chunk.

Per event, on a token stream, the HTTP client's own work (a socket read, chunk parsing, a few
Python calls per chunk) is most of what a reader pays. This measures it alone: the same
Responses stream (``--deltas`` non-ASCII deltas, one event per HTTP chunk, chunked transfer
encoding, from ``_wire.py``'s server process) read by each candidate, in two ways:

* ``raw`` -- the body's chunks, counted and dropped;
* ``sse`` -- the chunks fed to compat's SSE parser (``compat.backends.responses.sse``), as
  compat's responses backend does; every event parsed.

Candidates: httpx2 (the openai SDK's HTTP client since openai 3.50; ``iter_bytes`` as compat
reads it today, and ``iter_raw``), httpx, ``http.client`` with a raw chunked reader on its
buffered socket file (and with its own ``read1``), urllib3 (``read_chunked``) and requests
(``iter_content``; dashscope's stack). CPU time of this process per event, median of
``--rounds``, the order rotated each round. Nothing in compat changes with this: it informs a
choice.

    python benchmarks/http_clients.py [--deltas 10000] [--rounds 5] [--framing lf]
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _wire  # the benchmarks' own helper, beside this file

from compat.backends.responses.sse import iter_sse_json

BODY = {"model": "qwen-plus", "input": "Count.", "stream": True}
HEADERS = {"Authorization": "Bearer sk-bench", "Content-Type": "application/json"}

#: A candidate: given the stream's URL, the body's chunks (one per event where it can).
Candidate = Callable[[str], Iterator[bytes]]


def candidates() -> dict[str, Candidate]:
    import httpx
    import httpx2
    import requests
    import urllib3

    h2 = httpx2.Client(timeout=120)
    h1 = httpx.Client(timeout=120)
    pool = urllib3.PoolManager()
    session = requests.Session()
    connections: dict[str, http.client.HTTPConnection] = {}
    payload = json.dumps(BODY).encode()

    def httpx2_iter_bytes(url: str) -> Iterator[bytes]:
        with h2.stream("POST", url, content=payload, headers=HEADERS) as response:
            yield from response.iter_bytes()

    def httpx2_iter_raw(url: str) -> Iterator[bytes]:
        with h2.stream("POST", url, content=payload, headers=HEADERS) as response:
            yield from response.iter_raw()

    def httpx_iter_bytes(url: str) -> Iterator[bytes]:
        with h1.stream("POST", url, content=payload, headers=HEADERS) as response:
            yield from response.iter_bytes()

    def connection(url: str) -> tuple[http.client.HTTPConnection, str]:
        parts = urlsplit(url)
        conn = connections.get(parts.netloc)
        if conn is None:
            conn = connections[parts.netloc] = http.client.HTTPConnection(parts.netloc, timeout=120)
        return conn, parts.path

    def http_client_chunked(url: str) -> Iterator[bytes]:
        conn, path = connection(url)
        conn.request("POST", path, body=payload, headers=HEADERS)
        response = conn.getresponse()
        if not response.chunked:  # Content-Length: its body in pieces
            yield from _pieces(response)
            return
        # The chunked framing read off the buffered socket file: size line, data, CRLF.
        fp = response.fp
        assert fp is not None
        readline, read = fp.readline, fp.read
        while True:
            size = int(readline(), 16)  # int() ignores the CRLF; no chunk extensions here
            if not size:
                while readline() not in (b"\r\n", b"\n", b""):  # trailers, then the end
                    pass
                break
            yield read(size)
            readline()
        response.close()  # the connection stays open for the next request

    def http_client_read1(url: str) -> Iterator[bytes]:
        conn, path = connection(url)
        conn.request("POST", path, body=payload, headers=HEADERS)
        yield from _pieces(conn.getresponse())

    def urllib3_read_chunked(url: str) -> Iterator[bytes]:
        response = pool.request("POST", url, body=payload, headers=HEADERS, preload_content=False)
        try:
            if response.chunked:
                yield from response.read_chunked(decode_content=False)
            else:
                yield from response.stream(65536, decode_content=False)
        finally:
            response.release_conn()

    def requests_iter_content(url: str) -> Iterator[bytes]:
        with session.post(url, data=payload, headers=HEADERS, stream=True) as response:
            yield from response.iter_content(chunk_size=None)

    return {
        "httpx2 iter_bytes": httpx2_iter_bytes,
        "httpx2 iter_raw": httpx2_iter_raw,
        "httpx iter_bytes": httpx_iter_bytes,
        "http.client chunked": http_client_chunked,
        "http.client read1": http_client_read1,
        "urllib3 read_chunked": urllib3_read_chunked,
        "requests iter_content": requests_iter_content,
    }


def _pieces(response: http.client.HTTPResponse) -> Iterator[bytes]:
    """The body as ``read1`` gives it (one chunk at most per call), then the response closed."""
    read1 = response.read1
    while piece := read1(65536):
        yield piece
    response.close()  # a Content-Length body read to its end is not closed by read1


def consume_raw(chunks: Iterable[bytes]) -> int:
    """The number of body bytes."""
    return sum(len(chunk) for chunk in chunks)


def consume_sse(chunks: Iterable[bytes]) -> int:
    """The number of events, parsed by compat's SSE reader."""
    count = 0
    for _ in iter_sse_json(chunks):
        count += 1
    return count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deltas", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--framing", default="lf", choices=_wire.FRAMINGS)
    args = parser.parse_args()
    load = os.getloadavg()[0]

    with _wire.server(args.deltas) as origin:
        url = f"{origin}/{args.framing}/compatible-mode/v1/responses"
        readers = candidates()
        modes = {"raw": consume_raw, "sse": consume_sse}
        names = list(readers)
        cpu: dict[tuple[str, str], list[float]] = {(n, m): [] for n in names for m in modes}
        results: dict[tuple[str, str], int] = {}
        for round_index in range(-1, args.rounds):  # round -1 warms up and is not kept
            shift = max(round_index, 0) % len(names)
            for name in names[shift:] + names[:shift]:
                for mode, consume in modes.items():
                    gc.collect()
                    started = time.process_time()
                    result = consume(readers[name](url))
                    spent = time.process_time() - started
                    if results.setdefault((mode, "expected"), result) != result:
                        raise SystemExit(f"{name} ({mode}) read {result}, others {results}")
                    if round_index >= 0:
                        cpu[name, mode].append(spent)
    events = results["sse", "expected"]

    print(
        f"http_clients: one Responses stream of {events:,} events ({args.deltas:,} non-ASCII "
        f"deltas), framing {args.framing}, median of {args.rounds} rounds"
    )
    print(_wire.machine(load))
    print("CPU time of the reading process per event; the server is a separate process")
    print(f"  {'candidate':<22} {'raw us/event':>12} {'+ sse us/event':>15}")
    medians = {key: statistics.median(values) * 1e6 / events for key, values in cpu.items()}
    for name in sorted(names, key=lambda n: medians[n, "raw"]):
        print(f"  {name:<22} {medians[name, 'raw']:12.2f} {medians[name, 'sse']:15.2f}")
    cheapest = min(names, key=lambda n: medians[n, "sse"])
    current = medians["httpx2 iter_bytes", "sse"]
    print(
        f"cheapest per event (with the SSE parse): {cheapest}, "
        f"{medians[cheapest, 'sse']:.2f} us; httpx2 iter_bytes (compat today): {current:.2f} us"
    )


if __name__ == "__main__":
    main()
