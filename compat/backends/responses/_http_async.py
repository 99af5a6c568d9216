"""compat's own HTTP client on asyncio, for ``compat.aio``'s Responses requests.

It follows the sync client's rules, shared with it from ``_http`` rather than copied: where a
base URL's requests go (``Origin``, proxies included), the headers and the JSON body, which
answers are retried and after how long (``retry_delay``), the error shape of an HTTP error
(``error_shape``) and the one mapping of the standard library's exceptions (``_http._mapped``).
Only the I/O differs: a connection is an ``asyncio.Protocol`` whose reader awaits the bytes
(with the read timeout between them), and HTTP/1.1's framing (chunked, ``Content-Length`` or up
to the close) is decoded by ``_http_framing``.

Why not the openai SDK's async client (measured, ``benchmarks/aio_loop_stall.py``): building a
request through it holds the event loop for 1 to 2 ms of CPU, so 32 runs starting at once held
it for 50 ms and more, and its first use imports openai (about a second of CPU) on the loop.
Here a whole run start (facade, store, request) costs the loop about 0.25 ms, its body included.
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import socket
import ssl
from collections.abc import AsyncIterator
from typing import Any

from compat.backends.responses._http import (
    JSON,
    RETRY_STATUSES,
    Origin,
    _mapped,
    _Retryable,
    encode_body,
    error_shape,
    log_retry,
    request_headers,
    retry_delay,
)
from compat.backends.responses._http_framing import ChunkedDecoder, Headers, parse_headers

__all__ = ["AsyncRawClient", "AsyncRawResponse"]

#: Unread bytes past which a connection stops reading until its reader catches up.
_HIGH_WATER = 1 << 20
#: The most bytes a backlog hands the reader at once (see ``AsyncRawResponse.iter_chunks``).
_PIECE = 1 << 14
#: The longest status line and headers accepted.
_MAX_HEAD = 1 << 16
#: Idle kept-alive connections kept per client.
_MAX_IDLE = 32

_context: ssl.SSLContext | None = None


async def _ssl_context() -> ssl.SSLContext:
    """One default TLS context for the process, made in a worker thread: loading the CA
    certificates takes 40 ms and more, which the loop would otherwise wait through."""
    global _context
    if _context is None:
        context = await asyncio.to_thread(ssl.create_default_context)
        if _context is None:
            _context = context
    return _context


class _Connection(asyncio.Protocol):
    """One HTTP/1.1 connection: arriving bytes wait in a buffer until the reader takes them.

    The read timeout bounds each wait for bytes. It is kept lazily: one timer per connection,
    re-armed only when it fires early, so a stream's many short waits cost no timer each.
    """

    def __init__(self) -> None:
        self.loop = asyncio.get_running_loop()
        self.transport: Any = None
        self.eof = False
        self.timeout = 0.0
        self._chunks: list[bytes] = []
        self._size = 0
        self._error: BaseException | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._since = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._paused = False

    # -- the protocol's side (called by the loop) -------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._chunks.append(data)
        self._size += len(data)
        if self._size > _HIGH_WATER and not self._paused:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.eof = True
        self._wake()
        return False  # the transport closes itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.eof = True
        if exc is not None:
            self._error = exc
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _check_timeout(self) -> None:
        self._timer = None
        waiter = self._waiter
        if waiter is None or waiter.done():
            return
        due = self._since + self.timeout
        if self.loop.time() >= due:
            waiter.set_exception(TimeoutError("no bytes from the Responses API in time"))
        else:
            self._timer = self.loop.call_at(due, self._check_timeout)

    # -- the reader's side ------------------------------------------------------------------
    @property
    def behind(self) -> bool:
        """Bytes are waiting already: the reader is behind the network."""
        return bool(self._chunks)

    async def read_some(self) -> bytes:
        """The bytes that arrived (up to about ``_PIECE``), waiting for some if none did;
        ``b""`` at the end."""
        chunks = self._chunks
        while not chunks:
            if self.eof:
                if self._error is not None:
                    raise self._error
                return b""
            waiter = self._waiter = self.loop.create_future()
            self._since = self.loop.time()
            if self._timer is None:
                self._timer = self.loop.call_at(self._since + self.timeout, self._check_timeout)
            try:
                await waiter
            finally:
                self._waiter = None
        if self._size <= _PIECE:
            data = chunks[0] if len(chunks) == 1 else b"".join(chunks)
            chunks.clear()
            self._size = 0
        else:  # a backlog: handed over a piece at a time (see AsyncRawResponse.iter_chunks)
            data = chunks[0]
            if len(data) > _PIECE:
                chunks[0] = data[_PIECE:]
                data = data[:_PIECE]
            else:
                del chunks[0]
            self._size -= len(data)
        if self._paused:
            self._paused = False
            self.transport.resume_reading()
        return data

    def unread(self, data: bytes) -> None:
        """Put bytes read past a boundary back in front of the buffer."""
        if data:
            self._chunks.insert(0, data)
            self._size += len(data)

    @property
    def reusable(self) -> bool:
        """Still open, nothing unread, nobody waiting: fit for the next request."""
        transport = self.transport
        return (
            not self.eof
            and not self._chunks
            and transport is not None
            and not transport.is_closing()
        )

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        transport = self.transport
        if transport is not None:
            transport.abort()

    def interrupt(self) -> None:
        """Wake a pending read from any thread: shut the socket down (a cancel arrived)."""
        transport = self.transport
        sock = None if transport is None else transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


async def _read_head(conn: _Connection) -> tuple[int, bytes, Headers]:
    """An answer's status, HTTP version and headers (interim 1xx answers skipped)."""
    while True:
        buf = b""
        while True:
            data = await conn.read_some()
            if not data:
                raise http.client.RemoteDisconnected("the Responses API closed the connection")
            buf += data
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(buf) > _MAX_HEAD:
                raise http.client.LineTooLong("the Responses API's answer headers")
        conn.unread(buf[end + 4 :])
        line, _, fields = buf[:end].partition(b"\r\n")
        parts = line.split(None, 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
            raise http.client.BadStatusLine(line.decode("latin-1"))
        status = int(parts[1])
        if 100 <= status < 200 and status != 101:
            continue
        return status, parts[0], parse_headers(fields)


class AsyncRawResponse:
    """A response whose body is read as it arrives; ``close()`` keeps or drops the connection."""

    def __init__(
        self,
        client: AsyncRawClient,
        conn: _Connection,
        status: int,
        version: bytes,
        headers: Headers,
    ) -> None:
        self._client = client
        self._conn: _Connection | None = conn
        self.status = status
        self.headers = headers
        self.content_type: str = headers.get("content-type", "")
        self._done = False
        self._chunked: ChunkedDecoder | None = None
        self._left: int | None = None  # Content-Length still to read; None: chunked or to EOF
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self._chunked = ChunkedDecoder()
        elif (length := headers.get("content-length")) is not None:
            if not length.strip().isdigit():
                raise http.client.HTTPException(f"invalid Content-Length {length!r}")
            self._left = int(length)
        self._will_close = (
            version == b"HTTP/1.0"
            or "close" in headers.get("connection", "").lower()
            or (self._chunked is None and self._left is None)
        )
        if self._left == 0:
            self._done = True

    async def _piece(self) -> bytes:
        """The next body bytes, b"" at the body's end."""
        conn = self._conn
        if self._done or conn is None:
            return b""
        while True:
            data = await conn.read_some()
            decoder = self._chunked
            if decoder is not None:
                if not data:
                    raise http.client.IncompleteRead(b"")
                body = decoder.feed(data)
                if decoder.done:
                    self._done = True
                    conn.unread(decoder.rest)
                if body or self._done:
                    return body
            elif self._left is not None:
                if not data:
                    raise http.client.IncompleteRead(b"", self._left)
                if len(data) >= self._left:
                    conn.unread(data[self._left :])
                    data, self._left, self._done = data[: self._left], 0, True
                else:
                    self._left -= len(data)
                return data
            else:
                if not data:
                    self._done = True
                return data

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive (the transfer coding removed).

        A reader behind the network (bytes waiting already) would never wait for the socket,
        so its whole backlog would be read, parsed and translated in one callback: it gets
        the backlog a piece at a time instead, and lets the loop take a pass between pieces.
        """
        with _mapped("the Responses stream broke"):
            while data := await self._piece():
                yield data
                conn = self._conn
                if conn is not None and conn.behind:
                    await asyncio.sleep(0)

    async def read(self) -> bytes:
        parts = []
        with _mapped("the Responses answer broke"):
            while data := await self._piece():
                parts.append(data)
        return b"".join(parts)

    def close(self) -> None:
        """Keep the connection for the next request if the body was read to its end."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if self._done and not self._will_close and conn.reusable:
            self._client._release(conn)
        else:
            conn.close()

    def interrupt(self) -> None:
        """Wake a read waiting on this response, from any thread (a cancel arrived)."""
        conn = self._conn
        if conn is not None:
            conn.interrupt()


class AsyncRawClient:
    """POSTs to one Responses API base URL with one key, on one event loop."""

    def __init__(
        self, base_url: str, api_key: str, timeout: float, connect_timeout: float, max_retries: int
    ) -> None:
        self.origin = Origin(base_url)
        self.base_url = self.origin.base_url
        self.timeout = timeout
        self.connect_timeout = min(connect_timeout, timeout)
        self.max_retries = max_retries
        origin = self.origin
        host = f"[{origin.host}]" if ":" in origin.host else origin.host
        default_port = 443 if origin.https else 80
        self._authority = host if origin.port == default_port else f"{host}:{origin.port}"
        fields = {
            "Host": self._authority,
            "Accept-Encoding": "identity",
            **request_headers(api_key),
        }
        self._fields = "".join(f"{name}: {value}\r\n" for name, value in fields.items())
        #: a value that would split the head (a key with a line break): refused when sent
        self._broken_header = any("\r" in value or "\n" in value for value in fields.values())
        self._idle: list[_Connection] = []

    async def post(self, path: str, body: JSON, timeout: float | None = None) -> AsyncRawResponse:
        """POST ``body`` as JSON; the response once its headers arrived (2xx), else raises.

        Raises ``upstream.UpstreamHTTPError`` for an HTTP error (after the retries), and
        ``upstream.UpstreamBroken`` when no answer could be had (``_http.RawClient.post``).
        """
        from compat.backends.responses.upstream import UpstreamHTTPError

        read_timeout = self.timeout if timeout is None else timeout
        with _mapped("could not send the Responses request"):
            if self._broken_header:
                raise ValueError("Invalid header value: a line break")
            data = encode_body(body)
            head = f"POST {self.origin.target(path)} HTTP/1.1\r\n{self._fields}"
            payload = f"{head}Content-Length: {len(data)}\r\n\r\n".encode("latin-1") + data
        attempt = 0
        while True:
            try:
                response = await self._send(payload, read_timeout)
            except _Retryable as exc:
                delay = retry_delay(attempt, self.max_retries)
                if delay is None:
                    raise exc.broken from None
            else:
                if response.status < 400:
                    return response
                error = await _error_of(response)
                delay = None
                if response.status in RETRY_STATUSES:
                    delay = retry_delay(attempt, self.max_retries, response.headers)
                if delay is None:
                    raise UpstreamHTTPError(error)
            attempt += 1
            log_retry(attempt, self.base_url + path)
            await asyncio.sleep(delay)

    async def _send(self, payload: bytes, read_timeout: float) -> AsyncRawResponse:
        conn: _Connection | None = None
        try:
            with _mapped("could not reach the Responses API", retryable=True):
                conn = self._acquire() or await self._connect()
                conn.timeout = read_timeout
                conn.transport.write(payload)
                status, version, headers = await _read_head(conn)
                return AsyncRawResponse(self, conn, status, version, headers)
        except BaseException:
            if conn is not None:
                conn.close()
            raise

    def _acquire(self) -> _Connection | None:
        idle = self._idle
        while idle:
            conn = idle.pop()
            if conn.reusable:
                return conn
            conn.close()
        return None

    def _release(self, conn: _Connection) -> None:
        if len(self._idle) < _MAX_IDLE:
            self._idle.append(conn)
        else:
            conn.close()

    async def _connect(self) -> _Connection:
        origin = self.origin
        loop = asyncio.get_running_loop()
        host, port = origin.address()
        tunnel = origin.https and origin.proxy is not None
        context = await _ssl_context() if origin.https and not tunnel else None
        try:
            _, conn = await asyncio.wait_for(
                loop.create_connection(
                    _Connection,
                    host,
                    port,
                    ssl=context,
                    server_hostname=origin.host if context is not None else None,
                ),
                self.connect_timeout,
            )
        except asyncio.TimeoutError:  # not TimeoutError itself before Python 3.11
            raise TimeoutError("could not connect in time") from None
        if tunnel:
            await self._tunnel(conn)
        return conn

    async def _tunnel(self, conn: _Connection) -> None:
        """HTTPS through a proxy: CONNECT, then TLS on the tunnel (as ``http.client`` does)."""
        origin = self.origin
        authority = f"{origin.host}:{origin.port}"
        conn.timeout = self.connect_timeout
        conn.transport.write(f"CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n".encode())
        status, _, _ = await _read_head(conn)
        if status != 200:
            conn.close()
            raise OSError(f"Tunnel connection failed: {status}")
        try:
            conn.transport = await asyncio.get_running_loop().start_tls(
                conn.transport,
                conn,
                await _ssl_context(),
                server_hostname=origin.host,
                ssl_handshake_timeout=self.connect_timeout,
            )
        except asyncio.TimeoutError:
            raise TimeoutError("the TLS handshake did not end in time") from None

    def close_idle(self) -> None:
        idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


async def _error_of(response: AsyncRawResponse) -> JSON:
    """dashscope's error shape from an HTTP error answer (``_http._error_of``'s twin)."""
    try:
        raw = await response.read()
    except Exception:  # the error stands even if its body cannot be read
        raw = b""
    finally:
        response.close()
    return error_shape(response.status, response.headers, raw)
