"""The benchmarks' stream server: pre-built bytes on a stdlib socket, in a process of its own.

The streams are recorded once from compat's emulator (the DashScope flavor of the Responses
wire, and the Assistant API's SSE for the dashscope SDK), split into events and framed three
ways:

* ``bulk`` -- LF line ends, ``Content-Length``, written in 64 KiB pieces (the old benchmark's
  framing: a reader gets many events per read);
* ``lf``   -- one event per HTTP chunk (``Transfer-Encoding: chunked``), one ``send`` each, LF;
* ``crlf`` -- the same with CRLF line ends (every SSE line, not only the event boundary);
* ``paced`` -- ``lf`` with a pause (``PACE``) after each event, so that each arrives alone, as a
  token stream's do: every reader then also pays one socket read and one wake-up per event.
  Not in the default runs (it takes ~0.2 s per 1,000 events, whoever reads).

Each framing also has a short stream (``SHORT`` deltas), under ``<framing>-short``, for timing
the first delta over many requests without reading a long stream each time.

A token stream arrives the way ``lf`` / ``crlf`` frame it: one event per chunk. Every socket has
``TCP_NODELAY``. The server is started with ``--serve`` and writes its port to a file; a request
for ``/<framing>/compatible-mode/v1/responses`` gets the Responses stream, any other POST under
``/<framing>/api/v1/`` the Assistant stream (``<framing>-short`` likewise). Connections are kept
alive (HTTP/1.1).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

__all__ = [
    "DEFAULT_FRAMINGS",
    "FRAMINGS",
    "PACE",
    "SHORT",
    "build",
    "delta_pieces",
    "expected_chars",
    "machine",
    "record",
    "serve",
    "server",
]

FRAMINGS = ("bulk", "lf", "crlf", "paced")
DEFAULT_FRAMINGS = ("bulk", "lf", "crlf")
PACE = 0.0001  # seconds after each event of the paced framing (the OS makes it ~0.15 ms)
KINDS = ("responses", "assistants")
SHORT = 20  # deltas in the short streams
_PIECE = 65536
_HEAD = (
    b"HTTP/1.1 200 OK\r\n"
    b"Content-Type: text/event-stream;charset=UTF-8\r\n"
    b"Cache-Control: no-cache\r\n"
)

#: Non-ASCII text, as a Chinese answer streams: a few characters and a number per delta.
_WORDS = ("你好", "世界", "模型", "回答", "数据", "流式", "事件", "测试")


def machine(load_at_start: float) -> str:
    """Python, OS, CPUs, and the 1-minute load average then and now (other work skews timings)."""
    return (
        f"python {platform.python_version()} on {platform.system()} {platform.machine()}, "
        f"{os.cpu_count()} CPUs; 1-minute load average {load_at_start:.1f} at start, "
        f"{os.getloadavg()[0]:.1f} at end"
    )


def delta_pieces(deltas: int) -> list[str]:
    """The text of each delta: two CJK characters, a number, a full-width comma."""
    return [f"{_WORDS[i % len(_WORDS)]}{i}\uff0c" for i in range(deltas)]


def expected_chars(deltas: int) -> int:
    """How many characters of text every reader must count."""
    return sum(len(p) for p in delta_pieces(deltas))


def record(directory: Path, deltas: int, name: str) -> None:
    """Record ``responses-<name>.sse`` and ``assistants-<name>.sse``, LF, as the emulator does."""
    import urllib.request

    from compat.testing import Emulator, Scenario

    pieces = delta_pieces(deltas)
    scenario = Scenario.text("".join(pieces), chunks=pieces)

    with Emulator() as emu:
        auth = {"Authorization": f"Bearer {emu.api_key}", "Content-Type": "application/json"}

        def post(url: str, body: dict[str, object]) -> bytes:
            request = urllib.request.Request(url, json.dumps(body).encode(), auth, method="POST")
            with urllib.request.urlopen(request, timeout=120) as response:
                data: bytes = response.read()
                return data

        emu.queue(scenario)
        body = {"model": "qwen-plus", "input": "Count.", "stream": True}
        directory.joinpath(f"responses-{name}.sse").write_bytes(
            post(f"{emu.responses_base_url}/responses", body)
        )
        base = emu.assistants_base_url
        assistant = json.loads(post(f"{base}/assistants", {"model": "qwen-plus"}))
        messages = {"messages": [{"role": "user", "content": "Count."}]}
        thread = json.loads(post(f"{base}/threads", messages))
        emu.queue(scenario)
        run = {"assistant_id": assistant["id"], "stream": True}
        directory.joinpath(f"assistants-{name}.sse").write_bytes(
            post(f"{base}/threads/{thread['id']}/runs", run)
        )


def build(sse: bytes, framing: str) -> list[bytes]:
    """The whole HTTP response, as the list of writes the server makes for it."""
    events = [e + b"\n\n" for e in sse.split(b"\n\n") if e.strip()]
    if framing == "bulk":
        body = b"".join(events)
        head = _HEAD + b"Content-Length: %d\r\n\r\n" % len(body)
        return [head] + [body[i : i + _PIECE] for i in range(0, len(body), _PIECE)]
    if framing == "crlf":
        events = [e.replace(b"\n", b"\r\n") for e in events]
    elif framing not in ("lf", "paced"):
        raise ValueError(f"unknown framing {framing!r}; valid: {', '.join(FRAMINGS)}")
    head = _HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
    return [head] + [b"%x\r\n%s\r\n" % (len(e), e) for e in events] + [b"0\r\n\r\n"]


def _read_request(conn: socket.socket, buffer: bytearray) -> str | None:
    """Read one request (head and body) off ``conn``; its path, or None when the peer closed."""
    while b"\r\n\r\n" not in buffer:
        data = conn.recv(65536)
        if not data:
            return None
        buffer += data
    end = buffer.index(b"\r\n\r\n") + 4
    head = bytes(buffer[:end]).decode("latin-1")
    del buffer[:end]
    length = 0
    for line in head.split("\r\n")[1:]:
        name, _, value = line.partition(":")
        if name.strip().lower() == "content-length":
            length = int(value)
    while len(buffer) < length:
        data = conn.recv(65536)
        if not data:
            return None
        buffer += data
    del buffer[:length]
    return head.split(" ", 2)[1]


def serve(directory: str, port_file: str) -> None:
    """Serve the recorded streams in every framing until killed (the ``--serve`` process)."""
    folder = Path(directory)
    writes = {
        (framing + suffix, kind): build(folder.joinpath(f"{kind}-{name}.sse").read_bytes(), framing)
        for framing in FRAMINGS
        for kind in KINDS
        for suffix, name in (("", "long"), ("-short", "short"))
    }

    def handle(conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        buffer = bytearray()
        with conn, contextlib.suppress(OSError):
            while (path := _read_request(conn, buffer)) is not None:
                framing = path.split("/", 2)[1]
                kind = "responses" if path.endswith("/responses") else "assistants"
                pieces = writes.get((framing, kind))
                if pieces is None:
                    conn.sendall(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                    continue
                send = conn.sendall
                if framing.startswith("paced"):
                    for piece in pieces:
                        send(piece)
                        time.sleep(PACE)
                    continue
                for piece in pieces:
                    send(piece)

    listener = socket.create_server(("127.0.0.1", 0))
    Path(port_file + ".tmp").write_text(str(listener.getsockname()[1]))
    os.replace(port_file + ".tmp", port_file)  # the reader never sees half a number
    while True:
        conn, _ = listener.accept()
        threading.Thread(target=handle, args=(conn,), daemon=True).start()


@contextlib.contextmanager
def server(deltas: int) -> Iterator[str]:
    """Record the streams, start the server process; yields its base URL (no framing in it)."""
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        record(directory, deltas, "long")
        record(directory, SHORT, "short")
        port_file = directory / "port"
        process = subprocess.Popen(
            [sys.executable, os.path.abspath(__file__), "--serve", tmp, str(port_file)]
        )
        try:
            deadline = time.monotonic() + 30
            while not port_file.exists() or not port_file.read_text():
                if process.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit("the benchmark's stream server did not start")
                time.sleep(0.02)
            yield f"http://127.0.0.1:{port_file.read_text()}"
        finally:
            process.terminate()
            process.wait()


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        serve(sys.argv[2], sys.argv[3])
    else:
        raise SystemExit("usage: python benchmarks/_wire.py --serve DIR PORT_FILE")
