"""A finished stream's connection serves the next run; one whose body does not end is closed.

A small loopback HTTP/1.1 server (kept-alive connections, counted) replays one stream, with a
Content-Length, chunked, or chunked without its end (the body stays open until the client goes).
"""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import compat
from tests.pg import consumer_store

from .test_upstream_edges import GOOD

pytestmark = pytest.mark.skipif(
    os.environ.get("COMPAT_BACKEND", "responses") != "responses",
    reason="responses backend only",
)

HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"


def _events(*, done: bool, extra: int = 0) -> list[bytes]:
    """The stream's events, with ``extra`` more text deltas (so that a body outgrows buffers)."""
    events = [b"data: " + json.dumps(e).encode() + b"\n\n" for e in GOOD]
    events[3:3] = [b"data: " + json.dumps(GOOD[2]).encode() + b"\n\n"] * extra
    return [*events, b"data: [DONE]\n\n"] if done else events


class _Server:
    """Answers every POST with the stream in ``framing``; counts the connections it accepted."""

    def __init__(self, framing: str) -> None:
        self.framing = framing
        self.connections = 0
        self.extra = 0  # text deltas added to the stream
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.accepting = threading.Thread(target=self._accept, daemon=True)
        self.accepting.start()

    def _accept(self) -> None:
        self.listener.settimeout(0.05)  # to see ``stopping``: closing would not wake accept()
        while not self.stopping.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        buffer = b""
        with conn:
            while not self.stopping.is_set():
                while b"\r\n\r\n" not in buffer:
                    data = conn.recv(65536)
                    if not data:
                        return
                    buffer += data
                head, _, buffer = buffer.partition(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                while len(buffer) < length:
                    buffer += conn.recv(65536)
                buffer = buffer[length:]
                if self.framing == "length":
                    body = b"".join(_events(done=False, extra=self.extra))
                    conn.sendall(HEAD + b"Content-Length: %d\r\n\r\n" % len(body) + body)
                    continue
                events = _events(done=True, extra=self.extra)
                chunks = [b"%x\r\n%s\r\n" % (len(e), e) for e in events]
                head = HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
                if self.framing == "chunked":  # one write: the end is there with the last event
                    conn.sendall(head + b"".join(chunks) + b"0\r\n\r\n")
                    continue
                conn.sendall(head + b"".join(chunks))
                # "open": the body never ends; wait until the client closes the connection.
                while conn.recv(65536):
                    pass
                return

    def close(self) -> None:
        self.stopping.set()
        self.accepting.join()
        self.listener.close()


@pytest.fixture(params=["length", "chunked", "open"])
def server(request: Any) -> Iterator[_Server]:
    server = _Server(request.param)
    compat.configure(
        backend="responses",
        store=consumer_store(),
        api_key="sk-test",
        responses_base_url=f"http://127.0.0.1:{server.port}/v1",
    )
    try:
        yield server
    finally:
        compat.configure(reset=True)
        server.close()


def test_a_finished_stream_leaves_its_connection_to_the_next_run(server: _Server) -> None:
    assistant = compat.Assistants.create(model="qwen-plus")
    for _ in range(3):
        thread = compat.Threads.create(messages=[{"role": "user", "content": "Hi"}])
        events = list(compat.Runs.create(thread.id, assistant_id=assistant.id, stream=True))
        assert events[-1][0] == "thread.run.completed"
        texts = [d.delta.content.text.value for e, d in events if e == "thread.message.delta"]
        assert texts == ["Hi"]
    # The body's end was read after the last event (a [DONE] too), so one connection served
    # every run; a body that never ends is not waited for: its connection is closed.
    assert server.connections == (3 if server.framing == "open" else 1)


def test_a_plain_run_after_a_stream_works_on_the_connection_it_left(
    server: _Server,
) -> None:
    assistant = compat.Assistants.create(model="qwen-plus")
    thread = compat.Threads.create(messages=[{"role": "user", "content": "Hi"}])
    assert list(compat.Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    run = compat.Runs.create(thread.id, assistant_id=assistant.id)
    done = compat.Runs.wait(run.id, thread_id=thread.id, timeout_seconds=30)
    assert done.status == "completed"
    assert compat.Messages.list(thread.id).data[0].content[0].text.value == "Hi"


def test_a_late_wake_up_does_not_reach_the_connection_s_next_request(server: _Server) -> None:
    from compat.backends.responses._http import RawClient

    if server.framing == "open":
        pytest.skip("a body that never ends is never kept")
    client = RawClient(f"http://127.0.0.1:{server.port}/v1", "sk-test", 30.0, 10.0, 0)
    first = client.post("/responses", {"stream": True})
    assert b"response.completed" in b"".join(first.iter_chunks())
    first.close()
    server.extra = 20_000  # ~1.5 MB: most of it is still to be read after the wake-up
    second = client.post("/responses", {"stream": True})  # on the connection first left
    first.interrupt()  # a cancel of the first that came late: it must not shut the socket
    assert b"response.completed" in b"".join(second.iter_chunks())
    second.close()
    client.close_idle()
    assert server.connections == 1
