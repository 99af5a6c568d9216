"""A loopback proxy that forwards to the Responses API and records every SSE stream it relays.

``http://127.0.0.1:PORT/<label>/compatible-mode/v1/...`` is forwarded to ``UPSTREAM/...`` (the
``/compatible-mode/v1`` base of the real host), byte for byte and as it arrives. A streamed reply
(``text/event-stream``) is also parsed: each ``data:`` line's JSON object is written, one a line,
to ``DIR/<label>-<n>.jsonl``, with anything that looks like a key masked (``compat._log.redact``).
Those files are what ``tests/unit/test_live_fixtures.py`` replays through the translator.

The label lets one proxy tell the live programs' streams apart without touching compat: each
program's ``COMPAT_RESPONSES_BASE_URL`` names its own label. Standard library only.
"""

from __future__ import annotations

import http.client
import itertools
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from compat._log import redact

__all__ = ["RecordingProxy"]

_HOP_HEADERS = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "host", "content-length", "accept-encoding"}
)


class RecordingProxy:
    """``with RecordingProxy(upstream, directory) as proxy: proxy.base_url("label")``."""

    def __init__(self, upstream: str, directory: Path) -> None:
        self.upstream = urlsplit(upstream.rstrip("/"))
        self.directory = directory
        self.recorded: list[Path] = []
        self._counter = itertools.count(1)
        self._lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                proxy._relay(self)

            def do_GET(self) -> None:
                proxy._relay(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def __enter__(self) -> RecordingProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def base_url(self, label: str) -> str:
        """The ``COMPAT_RESPONSES_BASE_URL`` that records under ``label``."""
        port = self._server.server_address[1]
        return f"http://127.0.0.1:{port}/{label}/compatible-mode/v1"

    def _target(self, label: str) -> Path:
        with self._lock:
            path = self.directory / f"{label}-{next(self._counter)}.jsonl"
            self.recorded.append(path)
        return path

    def _relay(self, handler: BaseHTTPRequestHandler) -> None:
        label, _, rest = handler.path.lstrip("/").partition("/")
        suffix = rest.removeprefix("compatible-mode/v1")
        length = int(handler.headers.get("content-length") or 0)
        body = handler.rfile.read(length) if length else None
        headers = {k: v for k, v in handler.headers.items() if k.lower() not in _HOP_HEADERS}
        connection_type = (
            http.client.HTTPSConnection
            if self.upstream.scheme == "https"
            else http.client.HTTPConnection
        )
        upstream = connection_type(self.upstream.netloc, timeout=300)
        try:
            upstream.request(handler.command, self.upstream.path + suffix, body, headers)
            reply = upstream.getresponse()
            handler.send_response(reply.status)
            for key, value in reply.getheaders():
                if key.lower() not in _HOP_HEADERS:
                    handler.send_header(key, value)
            handler.send_header("Transfer-Encoding", "chunked")
            handler.send_header("Connection", "close")
            handler.end_headers()
            if "text/event-stream" in (reply.getheader("content-type") or ""):
                with open(self._target(label), "w", encoding="utf-8") as record:
                    self._copy(reply, handler, record)
            else:
                self._copy(reply, handler, None)
        finally:
            upstream.close()

    @staticmethod
    def _copy(reply: Any, handler: BaseHTTPRequestHandler, record: Any) -> None:
        pending = b""
        while True:
            chunk = reply.read1(65536) if hasattr(reply, "read1") else reply.read(65536)
            if not chunk:
                break
            handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            handler.wfile.flush()
            if record is None:
                continue
            pending += chunk
            *lines, pending = pending.split(b"\n")
            for line in lines:
                _record_line(line, record)
        if record is not None and pending:
            _record_line(pending, record)
        handler.wfile.write(b"0\r\n\r\n")
        handler.wfile.flush()


def _record_line(line: bytes, record: Any) -> None:
    text = line.decode("utf-8", "replace").rstrip("\r")
    if not text.startswith("data:"):
        return
    payload = text[5:].strip()
    try:
        event = json.loads(payload)
    except ValueError:
        return  # "[DONE]" or a fragment: not an event
    if isinstance(event, dict):
        record.write(redact(json.dumps(event, ensure_ascii=False)) + "\n")
