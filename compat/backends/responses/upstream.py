"""The one place compat talks to the Responses API, and the one place its errors are mapped.

The ``openai`` client supplies the base URL, auth, retries (connect errors, 408/409/429/5xx) and
HTTP error classes; the event bytes are read raw and parsed by ``sse.iter_sse_json``, because
building an openai model object per event costs ~20x the parse.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
from collections.abc import Iterator
from typing import Any

import httpx2
import openai

from compat._config import Settings
from compat.backends.responses.sse import InvalidEvent, iter_sse_json
from compat.errors import AuthenticationError, ConfigurationError

__all__ = [
    "Upstream",
    "UpstreamBroken",
    "UpstreamHTTPError",
    "UpstreamStream",
    "mapped_errors",
    "upstream_for",
]

JSON = dict[str, Any]


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


def _status_error(exc: openai.APIStatusError) -> JSON:
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
    """Map openai / httpx2 failures to compat's, most specific first."""
    try:
        yield
    except openai.APIStatusError as exc:
        raise UpstreamHTTPError(_status_error(exc)) from exc
    except openai.APITimeoutError as exc:
        raise UpstreamBroken("timeout", "the Responses API did not answer in time") from exc
    except openai.APIConnectionError as exc:
        raise UpstreamBroken(
            "connection_error", f"could not reach the Responses API: {exc}"
        ) from exc
    except openai.APIError as exc:
        raise UpstreamBroken("server_error", exc.message) from exc
    except InvalidEvent as exc:
        raise UpstreamBroken("invalid_stream", str(exc)) from exc
    except openai.OpenAIError as exc:  # the client's other failures (e.g. a content filter)
        raise UpstreamBroken("server_error", f"the openai client failed: {exc}") from exc
    except httpx2.TimeoutException as exc:
        raise UpstreamBroken("timeout", "the Responses stream stalled (read timeout)") from exc
    except httpx2.TransportError as exc:
        raise UpstreamBroken("connection_error", f"the Responses stream broke: {exc!r}") from exc
    except httpx2.DecodingError as exc:
        raise UpstreamBroken("invalid_stream", f"undecodable Responses stream: {exc}") from exc
    except httpx2.InvalidURL as exc:
        raise ConfigurationError(f"the Responses base URL is not a valid URL: {exc}") from exc
    except (httpx2.HTTPError, httpx2.StreamError, httpx2.CookieConflict) as exc:
        raise UpstreamBroken("server_error", f"the HTTP client failed: {exc!r}") from exc


class UpstreamStream:
    """A started Responses stream: ``events()`` gives the event dicts; ``close()`` releases it."""

    def __init__(self, response: Any, manager: Any) -> None:
        self._response = response
        self._manager = manager
        content_type = response.headers.get("content-type", "")
        self.is_event_stream = "text/event-stream" in content_type

    def events(self) -> Iterator[JSON]:
        """The events; a JSON body where a stream was expected comes as one pseudo-event.

        Iterate inside ``mapped_errors()``: the reader is handed out bare, without a wrapping
        generator, because it is the hot path of every streamed run.
        """
        if not self.is_event_stream:
            return iter([self._json_body()])
        return iter_sse_json(self._response.iter_bytes())

    def _json_body(self) -> JSON:
        """A JSON body where a stream was expected: handed over as one pseudo-event."""
        with mapped_errors():
            raw = self._response.http_response.read()
        try:
            body = json.loads(raw)
        except ValueError as exc:
            raise UpstreamBroken(
                "invalid_stream",
                f"the Responses API answered neither a stream nor JSON: {raw[:200]!r}",
            ) from exc
        if not isinstance(body, dict):
            raise UpstreamBroken("invalid_stream", "the Responses API answered a non-object body")
        return {"type": "compat.json_body", "body": body}

    def close(self) -> None:
        self._manager.__exit__(None, None, None)

    def interrupt(self) -> None:
        """Wake a read blocked on this stream, from another thread (a cancel arrived).

        Shutting the socket down makes the blocked read fail at once, which closing it from
        another thread would not; the reader then finds its job cancelled.
        """
        try:
            stream = self._response.http_response.extensions["network_stream"]
            sock = stream.get_extra_info("socket")
            sock.shutdown(socket.SHUT_RDWR)
        except (AttributeError, KeyError, TypeError, OSError):
            pass  # already closed, or a transport without a socket: the next event will do


class Upstream:
    """An openai client bound to one base URL and key."""

    def __init__(self, base_url: str, api_key: str) -> None:
        self.client = openai.OpenAI(base_url=base_url, api_key=api_key)

    def stream(self, request: JSON, timeout: float | None = None) -> UpstreamStream:
        """``responses.create(stream=True, **request)``; ``UpstreamHTTPError`` on HTTP errors.

        ``timeout`` (seconds, dashscope's ``request_timeout``) bounds the wait for each read;
        without it the openai client's default applies.
        """
        options: JSON = {} if timeout is None else {"timeout": timeout}
        manager = self.client.responses.with_streaming_response.create(
            stream=True, **request, **options
        )
        with mapped_errors():
            response = manager.__enter__()
        return UpstreamStream(response, manager)


_clients: dict[tuple[str, str], Upstream] = {}
_lock = threading.Lock()


def upstream_for(settings: Settings, api_key: str | None) -> Upstream:
    """The shared client for this base URL and key (clients hold connection pools)."""
    key = api_key or settings.api_key
    if not key:
        raise AuthenticationError(
            "No api key provided: pass api_key=..., set DASHSCOPE_API_KEY, "
            "or call compat.configure(api_key=...)"
        )
    cache_key = (settings.responses_base_url, key)
    with _lock:
        client = _clients.get(cache_key)
        if client is None:
            client = _clients[cache_key] = Upstream(settings.responses_base_url, key)
    return client
