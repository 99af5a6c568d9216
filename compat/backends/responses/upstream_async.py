"""The Responses API through the openai SDK's async client, for ``compat.aio``.

The same requests, error mapping (``upstream.mapped_errors``) and SSE parser as the sync
client; only the I/O is awaited. A client holds connections bound to one event loop, so clients
are shared per loop.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import AsyncIterator
from typing import Any

from compat._config import Settings
from compat.backends.responses.sse import Known, aiter_sse_json
from compat.backends.responses.upstream import (
    JSON,
    _log,
    _log_request,
    _on_attempt_async,
    _timeout,
    client_key,
    interrupt_response,
    mapped_errors,
    parse_json_body,
    request_body,
)
from compat.errors import ConfigurationError

__all__ = ["AsyncUpstream", "AsyncUpstreamStream", "async_upstream_for"]


class AsyncUpstreamStream:
    """A started Responses stream on the async client (``UpstreamStream``'s twin)."""

    def __init__(self, response: Any, manager: Any) -> None:
        self._response = response
        self._manager = manager
        content_type = response.headers.get("content-type", "")
        self.is_event_stream = "text/event-stream" in content_type

    def aevents(self, known: Known | None = None) -> AsyncIterator[JSON]:
        """The event dicts; iterate inside ``mapped_errors()``. ``known``: see ``sse``."""
        return aiter_sse_json(self._response.http_response.aiter_bytes(), known)

    async def json_body(self) -> JSON:
        with mapped_errors():
            raw = await self._response.http_response.aread()
        return parse_json_body(raw)

    async def aclose(self) -> None:
        await self._manager.__aexit__(None, None, None)

    def interrupt(self) -> None:
        interrupt_response(self._response.http_response)


class AsyncUpstream:
    """An ``openai.AsyncOpenAI`` client bound to one base URL and key, and one event loop."""

    def __init__(self, base_url: str, api_key: str, timeout: float, max_retries: int) -> None:
        try:
            import openai
        except ImportError as exc:
            raise ConfigurationError(
                "compat.aio on the responses backend needs the openai package, which is not "
                "installed: pip install 'dashscope-compat[responses]'"
            ) from exc

        self.base_url = base_url
        self.client = openai.AsyncOpenAI(
            base_url=base_url,
            api_key=api_key,
            timeout=_timeout(timeout),
            max_retries=max_retries,
            http_client=openai.DefaultAsyncHttpxClient(
                event_hooks={"request": [_on_attempt_async]}
            ),
        )

    async def stream(self, request: JSON, timeout: float | None = None) -> AsyncUpstreamStream:
        if _log.isEnabledFor(logging.DEBUG):
            _log_request(self.base_url, request, timeout)
        options: JSON = {} if timeout is None else {"timeout": _timeout(timeout)}
        # The body is compat's own, passed as ``extra_body``: the SDK's typed transformation of
        # the input items costs ~0.3 ms per item (a replayed long thread paid ~70 ms a run), and
        # the client still does auth, retries, timeouts and errors.
        body = request_body(request)
        model, _ = body.pop("model"), body.pop("stream")
        manager = self.client.responses.with_streaming_response.create(
            model=model, stream=True, extra_body=body, **options
        )
        with mapped_errors():
            response = await manager.__aenter__()
        return AsyncUpstreamStream(response, manager)


_clients: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, dict[tuple[str, str, float, int], AsyncUpstream]
] = weakref.WeakKeyDictionary()


def async_upstream_for(settings: Settings, api_key: str | None) -> AsyncUpstream:
    """The running loop's shared async client for these settings and key."""
    cache_key = client_key(settings, api_key)
    per_loop = _clients.setdefault(asyncio.get_running_loop(), {})
    client = per_loop.get(cache_key)
    if client is None:
        client = per_loop[cache_key] = AsyncUpstream(*cache_key)
    return client
