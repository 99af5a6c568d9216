"""The one place compat talks to the Responses API, and the one place its errors are mapped.

Sync runs go through compat's own stdlib client (``_http.RawClient``): base URL, auth, JSON
body, timeouts, retries and HTTP errors, at a fraction of the openai client's cost per process,
per request and per event (``_http``'s docstring has the figures). ``compat.aio`` uses its
asyncio twin (``_http_async``, through ``upstream_async``) on the same shared rules. Either way
the event bytes are parsed by ``sse``, and every failure is mapped by ``mapped_errors``.

Neither ``openai`` nor ``httpx2`` is imported here: no run imports them, and ``mapped_errors``
only recognises their exceptions when something else imported them.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import sys
import threading
from collections.abc import Iterator
from typing import Any

from compat._config import CONNECT_TIMEOUT, DEFAULT_TIMEOUT, Settings
from compat._log import logger, redact
from compat.backends.responses._http import RawClient, RawResponse
from compat.backends.responses.sse import InvalidEvent, Known, iter_sse_json
from compat.errors import AuthenticationError, ConfigurationError

__all__ = [
    "Upstream",
    "UpstreamBroken",
    "UpstreamHTTPError",
    "UpstreamStream",
    "client_key",
    "mapped_errors",
    "parse_json_body",
    "request_body",
    "upstream_for",
]

JSON = dict[str, Any]
_log = logger(__name__)


class UpstreamHTTPError(Exception):
    """The request failed before any event: ``error`` is dashscope's error shape."""

    def __init__(self, error: JSON) -> None:
        super().__init__(error.get("message"))
        self.error = error

    @property
    def status_code(self) -> int:
        return int(self.error.get("status_code") or 0)


class UpstreamBroken(Exception):
    """The stream broke after it started (dropped connection, read timeout, bad body)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _status_error(exc: Any) -> JSON:
    """dashscope's error shape from an ``openai.APIStatusError``."""
    # openai puts json["error"] in .body when present, else the whole JSON; DashScope's own errors
    # are top-level {"request_id", "code", "message"}.
    body = exc.body if isinstance(exc.body, dict) else {}
    return {
        "status_code": exc.status_code,
        "code": body.get("code") or exc.code or body.get("type"),
        "message": body.get("message") or exc.message,
        "request_id": body.get("request_id") or exc.request_id,
    }


@contextlib.contextmanager
def mapped_errors() -> Iterator[None]:
    """Map every failure of a Responses request or stream to compat's, most specific first.

    compat's own clients raise ``UpstreamHTTPError`` / ``UpstreamBroken`` already (their stdlib
    exceptions are mapped in ``_http._mapped``); the openai client's and httpx2's exceptions
    are recognised when those modules are loaded.
    """
    try:
        yield
    except (UpstreamHTTPError, UpstreamBroken):
        raise
    except InvalidEvent as exc:
        raise UpstreamBroken("invalid_stream", str(exc)) from exc
    except Exception as exc:
        mapped = _map_sdk_error(exc)
        if mapped is None:
            raise
        raise mapped from exc


def _map_sdk_error(exc: Exception) -> Exception | None:
    openai = sys.modules.get("openai")
    if openai is not None and isinstance(exc, openai.OpenAIError):
        if isinstance(exc, openai.APIStatusError):
            return UpstreamHTTPError(_status_error(exc))
        if isinstance(exc, openai.APITimeoutError):
            return UpstreamBroken("timeout", "the Responses API did not answer in time")
        if isinstance(exc, openai.APIConnectionError):
            return UpstreamBroken("connection_error", f"could not reach the Responses API: {exc}")
        if isinstance(exc, openai.APIError):
            return UpstreamBroken("server_error", exc.message)
        # the client's other failures (e.g. a content filter)
        return UpstreamBroken("server_error", f"the openai client failed: {exc}")
    httpx2 = sys.modules.get("httpx2")
    if httpx2 is not None:
        if isinstance(exc, httpx2.TimeoutException):
            return UpstreamBroken("timeout", "the Responses stream stalled (read timeout)")
        if isinstance(exc, httpx2.TransportError):
            return UpstreamBroken("connection_error", f"the Responses stream broke: {exc!r}")
        if isinstance(exc, httpx2.DecodingError):
            return UpstreamBroken("invalid_stream", f"undecodable Responses stream: {exc}")
        if isinstance(exc, httpx2.InvalidURL):
            return ConfigurationError(f"the Responses base URL is not a valid URL: {exc}")
        if isinstance(exc, (httpx2.HTTPError, httpx2.StreamError, httpx2.CookieConflict)):
            return UpstreamBroken("server_error", f"the HTTP client failed: {exc!r}")
    return None


def parse_json_body(raw: bytes) -> JSON:
    """The JSON object a non-stream answer carries, or ``UpstreamBroken``."""
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise UpstreamBroken(
            "invalid_stream",
            f"the Responses API answered neither a stream nor JSON: {raw[:200]!r}",
        ) from exc
    if not isinstance(body, dict):
        raise UpstreamBroken("invalid_stream", "the Responses API answered a non-object body")
    return body


class UpstreamStream:
    """A started Responses stream: ``events()`` gives the event dicts; ``close()`` releases it."""

    def __init__(self, response: RawResponse) -> None:
        self._response = response
        self.is_event_stream = "text/event-stream" in response.content_type

    def events(self, known: Known | None = None) -> Iterator[JSON]:
        """The event dicts of an event stream (``is_event_stream``; else see ``json_body``).

        Iterate inside ``mapped_errors()``: the reader is handed out bare, without a wrapping
        generator, because it is the hot path of every streamed run. ``known``: see
        ``sse.iter_sse_json``.
        """
        return iter_sse_json(self._response.iter_chunks(), known)

    def json_body(self) -> JSON:
        """A JSON body where a stream was expected (DashScope's HTTP-200 rate limit)."""
        return parse_json_body(self._response.read())

    def close(self, finished: bool = False) -> None:
        """Release the response; ``finished``: its last event was read (see ``RawResponse``)."""
        self._response.close(finished)

    def interrupt(self) -> None:
        """Wake the blocked read from another thread (a cancel arrived)."""
        self._response.interrupt()


class Upstream:
    """compat's client for one base URL and key, with compat's timeouts and retries."""

    def __init__(
        self,
        base_url: str,
        api_key: str,
        timeout: float = DEFAULT_TIMEOUT,
        max_retries: int = 0,
    ) -> None:
        self.base_url = base_url
        self.client = RawClient(base_url, api_key, timeout, CONNECT_TIMEOUT, max_retries)
        _log.debug(
            "client for %s: timeout %ss (connect %ss), max_retries %d",
            redact(base_url),
            timeout,
            min(CONNECT_TIMEOUT, timeout),
            max_retries,
        )

    def stream(self, request: JSON, timeout: float | None = None) -> UpstreamStream:
        """POST ``/responses`` with ``stream: true``; ``UpstreamHTTPError`` on HTTP errors.

        ``timeout`` (seconds, dashscope's ``request_timeout``) bounds the wait for each read;
        without it the client's (``COMPAT_TIMEOUT``) applies.
        """
        if _log.isEnabledFor(logging.DEBUG):
            _log_request(self.base_url, request, timeout)
        return UpstreamStream(self.client.post("/responses", request_body(request), timeout))


def request_body(request: JSON) -> JSON:
    """The JSON body of ``responses.create(stream=True, **request)``: ``extra_body`` merged in."""
    body = {key: value for key, value in request.items() if key != "extra_body"}
    body["stream"] = True
    extra = request.get("extra_body")
    if extra:
        body.update(extra)
    return body


def _log_request(base_url: str, request: JSON, timeout: float | None) -> None:
    """One line per upstream request: where, which model, how the history is sent, sizes."""
    items = request.get("input")
    chained = request.get("previous_response_id") is not None
    _log.debug(
        "POST %s/responses model=%s history=%s input_items=%d tools=%d instructions_chars=%d%s",
        redact(base_url.rstrip("/")),
        request.get("model"),
        "chained" if chained else "full",
        len(items) if isinstance(items, list) else int(items is not None),
        len(request.get("tools") or ()),
        len(request.get("instructions") or ""),
        "" if timeout is None else f" request_timeout={timeout}s",
    )


_clients: dict[tuple[str, str, float, int], Upstream] = {}
_lock = threading.Lock()


def client_key(settings: Settings, api_key: str | None) -> tuple[str, str, float, int]:
    """What a client is shared by: base URL, key, timeout, retries (raises if no key)."""
    key = settings.key(api_key)
    if not key:
        raise AuthenticationError(
            "No api key provided: pass api_key=..., call compat.configure(api_key=...), set "
            "compat.api_key or DASHSCOPE_API_KEY, or store it in ~/.dashscope/api_key "
            "(or the file DASHSCOPE_API_KEY_FILE_PATH names)"
        )
    timeout = settings.timeout or DEFAULT_TIMEOUT
    return (settings.responses_base_url, key, timeout, settings.max_retries)


def upstream_for(settings: Settings, api_key: str | None) -> Upstream:
    """The shared client for these settings and key (clients hold connection pools)."""
    cache_key = client_key(settings, api_key)
    with _lock:
        client = _clients.get(cache_key)
        if client is None:
            client = _clients[cache_key] = Upstream(*cache_key)
    return client


_inherited: list[Upstream] = []


def _after_fork_in_child() -> None:
    """A forked child opens its own connections: the parent's pooled sockets stay the parent's.

    The inherited clients are kept referenced and never closed: closing one would shut sockets
    the parent is still reading.
    """
    global _lock
    _lock = threading.Lock()
    for client in _clients.values():
        client.client.forget_connections()
    _inherited.extend(_clients.values())
    _clients.clear()


def _close_idle_connections() -> None:
    for client in list(_clients.values()):
        client.client.close_idle()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_close_idle_connections)
