"""compat's own HTTP client for the Responses API's streams: the stdlib, nothing else.

Why not the openai client here (measured, see benchmarks/ and the README): importing openai
costs about 0.7 s of CPU in every fresh process, its request transformation about 1 ms per
request, and its HTTP stack (httpx2 over httpcore2 and h11) about 11 µs per streamed event,
against about 1.7 µs for ``http.client``'s own chunked reader. What the network path needs from
a client is small, and all of it is here:

* the base URL and ``Authorization: Bearer``;
* a JSON body (``extra_body`` merged in, as the openai client merges it);
* connect and read timeouts (``COMPAT_TIMEOUT``, a call's ``request_timeout``);
* retries of connection failures and of 408, 409, 429 and 5xx answers (``COMPAT_MAX_RETRIES``),
  with backoff and ``Retry-After``, as the openai client retries;
* HTTP errors in dashscope's returned shape; transport failures as ``UpstreamBroken``;
* ``HTTPS_PROXY`` / ``HTTP_PROXY`` / ``NO_PROXY`` as the standard library reads them;
* kept-alive connections, reused once a response was read to its end (after a stream's last
  event, the rest of its body is waited for up to ``_TAIL_WAIT``, 5 ms).

Every exception the standard library can raise here is mapped in ``_mapped`` (one place).
"""

from __future__ import annotations

import contextlib
import http.client
import json
import random
import socket
import ssl
import threading
import time
import urllib.request
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from compat import __version__
from compat._log import logger, redact
from compat.errors import ConfigurationError

__all__ = [
    "RETRY_STATUSES",
    "Origin",
    "RawClient",
    "RawResponse",
    "encode_body",
    "error_shape",
    "log_retry",
    "request_headers",
    "retry_delay",
]

JSON = dict[str, Any]
_log = logger("compat.backends.responses.upstream")

#: Answers worth another attempt (the openai client retries the same ones).
RETRY_STATUSES = frozenset({408, 409, 429, 500, 502, 503, 504})
_MAX_BACKOFF = 8.0
_MAX_RETRY_AFTER = 60.0
_READ_SIZE = 65536
#: How long a finished stream waits for the rest of its body, and how much of it it reads, so
#: that its connection serves the next request (see ``RawResponse.close``).
_TAIL_WAIT = 0.005
_TAIL_LIMIT = 65536


class RawResponse:
    """A response whose body is read as it arrives; ``close()`` releases or keeps the socket."""

    def __init__(
        self,
        client: RawClient,
        conn: http.client.HTTPConnection,
        response: Any,
        sock: socket.socket | None,
    ) -> None:
        self._client = client
        self._conn = conn
        self._response = response
        # http.client lets go of the socket of a "Connection: close" answer: keep it to wake
        self._sock = sock
        self._waking = threading.Lock()  # a wake-up never reaches the connection's next user
        self.status: int = response.status
        self.headers = response.headers
        self.content_type: str = response.headers.get("content-type", "")
        self._done = False

    def iter_chunks(self) -> Iterator[bytes]:
        """The body's bytes, as ``http.client`` hands them over (chunked encoding removed)."""
        read1 = self._response.read1
        with _mapped("the Responses stream broke"):
            while True:
                chunk = read1(_READ_SIZE)
                if not chunk:
                    self._done = True
                    return
                yield chunk

    def read(self) -> bytes:
        with _mapped("the Responses answer broke"):
            body: bytes = self._response.read()
        self._done = True
        return body

    def close(self, finished: bool = False) -> None:
        """Keep the connection for the next request if the body was read to its end.

        ``finished``: the stream's last event was read, and the reader stops there. What is left
        of the body (the chunked encoding's end, a ``[DONE]``) is then read and dropped if it
        comes within ``_TAIL_WAIT``, so that the connection (and its TLS session) is kept.
        """
        conn, self._conn = self._conn, None  # type: ignore[assignment]
        if conn is None:
            return
        if finished and not self._done and not self._response.will_close:
            self._done = self._read_tail()
        if self._done and not self._response.will_close:
            # Closed, or http.client refuses the connection's next response: a body with a
            # Content-Length read to its end is not closed by reading it.
            try:
                self._response.close()
            except (OSError, http.client.HTTPException, ValueError):
                pass  # not kept: closed below
            else:
                with self._waking:  # a cancel arriving from now on has nothing left to wake
                    self._sock = None
                self._client._release(conn)
                return
        with contextlib.suppress(OSError, http.client.HTTPException, ValueError):
            self._response.close()  # the socket's file first, or the socket outlives close()
        with contextlib.suppress(OSError):
            conn.close()

    def _read_tail(self) -> bool:
        """Read the rest of the body if it comes soon (whether it did); errors mean no."""
        sock = self._sock
        if sock is None:
            return False
        deadline = time.monotonic() + _TAIL_WAIT
        left = _TAIL_LIMIT
        with contextlib.suppress(OSError, http.client.HTTPException, ValueError):
            while left > 0 and (wait := deadline - time.monotonic()) > 0:
                sock.settimeout(wait)  # a timeout raises: a chunk is never half-read here
                chunk = self._response.read1(left)
                if not chunk:
                    return True
                left -= len(chunk)
        return False

    def interrupt(self) -> None:
        """Wake a read blocked on this response from another thread (a cancel arrived)."""
        with self._waking:
            sock = self._sock
            if sock is not None:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


class Origin:
    """Where a base URL's requests go: scheme, host, port, path prefix, and the proxy if any.

    Shared by the sync client and ``compat.aio``'s (``upstream_async``): no I/O.
    """

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigurationError(f"the Responses base URL {base_url!r} is not an http(s) URL")
        self.base_url = base_url.rstrip("/")
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        self.path = parts.path.rstrip("/")
        self.proxy = _proxy_for(base_url)

    def target(self, path: str) -> str:
        """The request target of ``path``: absolute through a plain-HTTP proxy."""
        target = self.path + path
        if self.proxy is not None and not self.https:
            target = f"http://{self.host}:{self.port}{target}"  # a plain-HTTP proxy's form
        return target

    def address(self) -> tuple[str, int]:
        """Where the connection goes: the proxy, else the origin."""
        if self.proxy is not None:
            proxy = urlsplit(self.proxy)
            return proxy.hostname or "", proxy.port or 80
        return self.host, self.port


def request_headers(api_key: str) -> dict[str, str]:
    """The headers of every Responses request (both clients)."""
    return {
        "Authorization": f"Bearer {api_key}",
        "Content-Type": "application/json",
        "Accept": "text/event-stream, application/json",
        "User-Agent": f"compat/{__version__}",
    }


def encode_body(body: JSON) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def retry_delay(attempt: int, max_retries: int, headers: Any = None) -> float | None:
    """Seconds to wait before the next attempt, or None when ``attempt`` was the last allowed.

    ``headers``: those of a retryable HTTP answer (their ``Retry-After`` wins over backoff).
    """
    if attempt >= max_retries:
        return None
    wait = None if headers is None else _retry_after(headers)
    return _backoff(attempt + 1) if wait is None else min(wait, _MAX_RETRY_AFTER)


def log_retry(retry: int, url: str) -> None:
    _log.info("retrying the Responses request (retry %d): %s", retry, redact(url))


class RawClient:
    """POSTs to one Responses API base URL with one key, over kept-alive connections."""

    def __init__(
        self, base_url: str, api_key: str, timeout: float, connect_timeout: float, max_retries: int
    ) -> None:
        self.origin = origin = Origin(base_url)
        self.base_url = origin.base_url
        self._https = origin.https
        self._host = origin.host
        self._port = origin.port
        self._api_key = api_key
        self.timeout = timeout
        self.connect_timeout = min(connect_timeout, timeout)
        self.max_retries = max_retries
        self._proxy = origin.proxy
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._context = ssl.create_default_context() if self._https else None

    def post(self, path: str, body: JSON, timeout: float | None = None) -> RawResponse:
        """POST ``body`` as JSON; the response once its headers arrived (2xx), else raises.

        Raises ``upstream.UpstreamHTTPError`` for an HTTP error (after the retries), and
        ``upstream.UpstreamBroken`` when no answer could be had.
        """
        from compat.backends.responses.upstream import UpstreamHTTPError

        data = encode_body(body)
        headers = request_headers(self._api_key)
        read_timeout = self.timeout if timeout is None else timeout
        attempt = 0
        while True:
            try:
                response = self._send(path, data, headers, read_timeout)
            except _Retryable as exc:
                delay = retry_delay(attempt, self.max_retries)
                if delay is None:
                    raise exc.broken from None
            else:
                if response.status < 400:
                    return response
                error = _error_of(response)
                delay = None
                if response.status in RETRY_STATUSES:
                    delay = retry_delay(attempt, self.max_retries, response.headers)
                if delay is None:
                    raise UpstreamHTTPError(error)
            attempt += 1
            log_retry(attempt, self.base_url + path)
            time.sleep(delay)

    def _send(
        self, path: str, data: bytes, headers: dict[str, str], read_timeout: float
    ) -> RawResponse:
        conn = self._acquire()
        target = self.origin.target(path)
        try:
            with _mapped("could not reach the Responses API", retryable=True):
                if conn.sock is None:
                    conn.timeout = self.connect_timeout
                    conn.connect()
                conn.sock.settimeout(read_timeout)
                conn.request("POST", target, body=data, headers=headers)
                sock = conn.sock
                response = conn.getresponse()
        except BaseException:
            with contextlib.suppress(OSError):
                conn.close()
            raise
        return RawResponse(self, conn, response, sock)

    def _acquire(self) -> http.client.HTTPConnection:
        with self._lock:
            while self._idle:
                conn = self._idle.pop()
                if _still_open(conn):
                    return conn
                with contextlib.suppress(OSError):
                    conn.close()
        return self._new_connection()

    def _release(self, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            if len(self._idle) < 32:
                self._idle.append(conn)
                return
        with contextlib.suppress(OSError):
            conn.close()

    def _new_connection(self) -> http.client.HTTPConnection:
        host, port = self.origin.address()
        conn: http.client.HTTPConnection
        if self._https:
            conn = http.client.HTTPSConnection(host, port, context=self._context)
            if self._proxy is not None:
                conn.set_tunnel(self._host, self._port)
        else:
            conn = http.client.HTTPConnection(host, port)
        return conn

    def close_idle(self) -> None:
        """Close the kept-alive connections (at exit: nothing else would)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            with contextlib.suppress(OSError):
                conn.close()

    def forget_connections(self) -> None:
        """Drop idle connections without closing them (a forked child must not use them)."""
        with self._lock:
            self._idle = []
        self._lock = threading.Lock()


class _Retryable(Exception):
    def __init__(self, broken: Exception) -> None:
        super().__init__(str(broken))
        self.broken = broken


@contextlib.contextmanager
def _mapped(what: str, *, retryable: bool = False) -> Iterator[None]:
    """The one place the standard library's network exceptions become compat's."""
    from compat.backends.responses.upstream import UpstreamBroken

    try:
        yield
    except TimeoutError as exc:  # socket.timeout is TimeoutError since 3.10
        broken = UpstreamBroken("timeout", f"{what}: no answer in time")
        if retryable:
            raise _Retryable(broken) from exc
        raise broken from exc
    except (OSError, http.client.HTTPException, ValueError) as exc:
        # OSError: refused, reset, unreachable, TLS (ssl.SSLError); HTTPException: a malformed
        # answer or a connection dropped mid-body (IncompleteRead, RemoteDisconnected);
        # ValueError: a chunk size that is not a number.
        broken = UpstreamBroken("connection_error", f"{what}: {exc!r}")
        if retryable:
            raise _Retryable(broken) from exc
        raise broken from exc


def _error_of(response: RawResponse) -> JSON:
    """dashscope's error shape from an HTTP error answer (DashScope's body, or OpenAI's)."""
    try:
        raw = response.read()
    except Exception:  # the error stands even if its body cannot be read
        raw = b""
    finally:
        response.close()
    return error_shape(response.status, response.headers, raw)


def error_shape(status: int, headers: Any, raw: bytes) -> JSON:
    """dashscope's error shape from an HTTP error's status, headers and body (both clients)."""
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    nested = body.get("error")
    detail: JSON = nested if isinstance(nested, dict) else body
    return {
        "status_code": status,
        "code": detail.get("code") or detail.get("type") or http.client.responses.get(status, ""),
        "message": detail.get("message") or raw[:200].decode(errors="replace") or f"HTTP {status}",
        "request_id": body.get("request_id") or headers.get("x-request-id"),
    }


def _retry_after(headers: Any) -> float | None:
    value = headers.get("retry-after-ms")
    with contextlib.suppress(TypeError, ValueError):
        if value is not None:
            return float(value) / 1000
    value = headers.get("retry-after")
    with contextlib.suppress(TypeError, ValueError):
        if value is not None:
            return float(value)
    return None


def _backoff(attempt: int) -> float:
    """0.5 s doubling per attempt up to 8 s, less up to a quarter of jitter."""
    delay: float = min(0.5 * 2.0 ** (attempt - 1), _MAX_BACKOFF)
    return delay * (1 - 0.25 * random.random())


def _proxy_for(url: str) -> str | None:
    parts = urlsplit(url)
    if urllib.request.proxy_bypass(parts.hostname or ""):
        return None
    return urllib.request.getproxies().get(parts.scheme)


def _still_open(conn: http.client.HTTPConnection) -> bool:
    """A kept-alive connection the server has not closed meanwhile."""
    sock = conn.sock
    if sock is None:
        return False
    try:
        sock.setblocking(False)
        try:
            return sock.recv(1, socket.MSG_PEEK) != b""
        except BlockingIOError:
            return True
        finally:
            sock.setblocking(True)
    except OSError:
        return False
