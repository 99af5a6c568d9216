"""The Responses API for ``compat.aio``: compat's own asyncio client (``_http_async``).

The same requests, settings (base URL, key, ``COMPAT_TIMEOUT``, ``COMPAT_MAX_RETRIES``), error
mapping (``upstream.mapped_errors``) and SSE parser as the sync client; only the I/O is
awaited. A client holds connections bound to one event loop, so clients are shared per loop,
and their idle connections are closed when the loop shuts down (``asyncio.run``'s end).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import weakref
from collections.abc import AsyncGenerator, AsyncIterator

from compat._config import CONNECT_TIMEOUT, Settings
from compat.backends.responses._http_async import AsyncRawClient, AsyncRawResponse
from compat.backends.responses.sse import Known, aiter_sse_json
from compat.backends.responses.turns import take_turn
from compat.backends.responses.upstream import (
    JSON,
    _log,
    _log_request,
    client_key,
    mapped_errors,
    parse_json_body,
    request_body,
)

__all__ = ["AsyncUpstream", "AsyncUpstreamStream", "async_upstream_for"]


class AsyncUpstreamStream:
    """A started Responses stream on the async client (``UpstreamStream``'s twin)."""

    def __init__(self, response: AsyncRawResponse) -> None:
        self._response = response
        self.is_event_stream = "text/event-stream" in response.content_type

    def aevents(self, known: Known | None = None) -> AsyncIterator[JSON]:
        """The event dicts; iterate inside ``mapped_errors()``. ``known``: see ``sse``."""
        return aiter_sse_json(self._response.iter_chunks(), known)

    async def json_body(self) -> JSON:
        with mapped_errors():
            raw = await self._response.read()
        return parse_json_body(raw)

    async def aclose(self) -> None:
        self._response.close()

    def interrupt(self) -> None:
        """Wake the pending read, from any thread (a cancel arrived)."""
        self._response.interrupt()


class AsyncUpstream:
    """compat's async client for one base URL and key, on one event loop."""

    def __init__(self, base_url: str, api_key: str, timeout: float, max_retries: int) -> None:
        self.base_url = base_url
        self.client = AsyncRawClient(base_url, api_key, timeout, CONNECT_TIMEOUT, max_retries)

    async def stream(self, request: JSON, timeout: float | None = None) -> AsyncUpstreamStream:
        """``Upstream.stream`` on the loop: ``UpstreamHTTPError`` on HTTP errors."""
        if _log.isEnabledFor(logging.DEBUG):
            _log_request(self.base_url, request, timeout)
        response = await self.client.post("/responses", request_body(request), timeout)
        try:  # what follows the answer's head (the run's first events) waits for its turn
            await take_turn()
        except BaseException:
            response.close()
            raise
        return AsyncUpstreamStream(response)


class _LoopClients:
    """One loop's clients; a started async generator whose closing closes their connections.

    ``asyncio.run`` (and ``loop.shutdown_asyncgens()``) closes every async generator still
    open on the loop before it closes the loop: this one's ``finally`` closes the idle
    connections then, so none is left for the garbage collector to find open, and forgets the
    loop's entry (the generator holds the loop's finalizer hook: kept, it would keep the loop).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.clients: dict[tuple[str, str, float, int], AsyncUpstream] = {}
        self._closer = self._close_at_shutdown(loop)
        with contextlib.suppress(StopIteration):  # run to its yield: the loop now tracks it
            self._closer.asend(None).send(None)

    async def _close_at_shutdown(
        self, loop: asyncio.AbstractEventLoop
    ) -> AsyncGenerator[None, None]:
        try:
            yield
        finally:
            if _loops.get(loop) is self:
                del _loops[loop]
            for client in self.clients.values():
                client.client.close_idle()


_loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClients] = (
    weakref.WeakKeyDictionary()
)


def async_upstream_for(settings: Settings, api_key: str | None) -> AsyncUpstream:
    """The running loop's shared async client for these settings and key."""
    cache_key = client_key(settings, api_key)
    loop = asyncio.get_running_loop()
    per_loop = _loops.get(loop)
    if per_loop is None:
        per_loop = _loops[loop] = _LoopClients(loop)
    client = per_loop.clients.get(cache_key)
    if client is None:
        client = per_loop.clients[cache_key] = AsyncUpstream(*cache_key)
    return client
