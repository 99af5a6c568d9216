"""The ASGI application: DashScope's Assistant API over HTTP, served by ``compat.aio``.

Raw ASGI (no framework): the routes are a table (``wire.ROUTES``), each a ``compat.aio`` call
(``calls``). Streams are written in the SSE form dashscope parses. Shutdown is graceful: when
the server is asked to stop, every open stream is interrupted, the facade stores its run
cancelled (``aclose()``, the same as a client closing its stream), the client gets a final
``thread.run.cancelled`` event and ``done``, and the response ends. A client that leaves
mid-stream cancels its run the same way.
"""

from __future__ import annotations

import asyncio
import signal
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from types import FrameType
from typing import Any

from compat import _log
from compat import types as t
from compat.errors import CompatError, DashScopeException
from compat.serve import calls
from compat.serve import wire as w
from compat.serve.tenants import Tenants, allowed_keys, bearer_key, tenant_of

__all__ = ["ServeApp", "create_app"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = _log.logger("compat.serve")

_JSON_HEADERS = [(b"content-type", b"application/json; charset=utf-8")]
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
]
_KEY_REFUSED = w.ApiError(401, "InvalidApiKey", "Invalid API-key provided.")


class _Gone(Exception):
    """The client disconnected mid-stream."""


class ServeApp:
    """One process's proxy: ``await app(scope, receive, send)``."""

    def __init__(self, keys: frozenset[str] | None = None) -> None:
        self.keys = keys
        self._tenants: Tenants | None = None
        self._streams: dict[asyncio.Task[Any], str] = {}  # task → why it was interrupted
        self._closing = False
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def tenants(self) -> Tenants:
        if self._tenants is None:
            self._tenants = Tenants()
        return self._tenants

    # -- shutdown -----------------------------------------------------------------------------
    def begin_shutdown(self) -> None:
        """Interrupt every open stream (call on the serving loop); new streams are refused."""
        self._closing = True
        for task, why in self._streams.items():
            if not why:
                self._streams[task] = "shutdown"
                task.cancel()

    def request_shutdown(self) -> None:
        """``begin_shutdown`` from any thread (a signal handler, a test)."""
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self.begin_shutdown)

    def _chain_exit_signals(self) -> None:
        """Hear the server's exit signals first: uvicorn drains connections before it runs the
        lifespan shutdown, so without this a stream would hold the server until its run ends.

        uvicorn installs its handlers before the lifespan starts and restores the originals
        when it stops, so the chained handlers live exactly as long as the server.
        """
        if threading.current_thread() is not threading.main_thread():
            return  # no signals off the main thread; ``request_shutdown`` is called directly
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous = signal.getsignal(sig)
            if not callable(previous):
                continue

            def handler(signum: int, frame: FrameType | None, previous: Any = previous) -> None:
                self.request_shutdown()
                previous(signum, frame)

            signal.signal(sig, handler)

    @property
    def open_streams(self) -> int:
        return len(self._streams)

    # -- ASGI -----------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        self._loop = self._loop or asyncio.get_running_loop()
        started = time.perf_counter()
        template, status = scope["path"], 500
        try:
            template, status = await self._http(scope, receive, send)
        finally:
            elapsed = (time.perf_counter() - started) * 1000
            log.info("%s %s %d %.1fms", scope["method"], template, status, elapsed)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._loop = asyncio.get_running_loop()
                self._chain_exit_signals()
                try:
                    _ = self.tenants
                except Exception as exc:  # the backend or store cannot be opened
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                self.begin_shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> tuple[str, int]:
        method, path = scope["method"], scope["path"]
        if path == "/healthz" and method in ("GET", "HEAD"):
            await _json(send, 200, {"status": "ok"})
            return path, 200
        found = w.match(method, path)
        if found is None:
            error = w.ApiError(404, "NotFound", f"No route for {method} {path}.")
            return "(unrouted)", await _error(send, error)
        route, ids = found
        headers = dict(scope["headers"])
        key = bearer_key(headers.get(b"authorization", b"").decode("latin-1"))
        if key is None or (self.keys is not None and key not in self.keys):
            return route.template, await _error(send, _KEY_REFUSED)
        try:
            body = w.parse_body(await _read_body(receive))
            query = (
                w.list_query(scope.get("query_string", b""))
                if route.name.startswith("list_")
                else {}
            )
            workspace = headers.get(b"x-dashscope-workspace")
            call = calls.Call(
                key=key,
                tenant=tenant_of(key),
                workspace=workspace.decode("latin-1") if workspace else None,
                body=body,
                query=query,
                tenants=self.tenants,
            )
            if ids and route.pattern[0] == "threads":
                await self.tenants.check("thread", ids[0], call.tenant)
            reply = await calls.HANDLERS[route.name](call, *ids)
        except w.ApiError as exc:
            return route.template, await _error(send, exc)
        except (DashScopeException, TypeError, ValueError) as exc:
            # The facade's argument checks (InputRequired, ModelRequired, InvalidParameter) and
            # arguments of the wrong type: the caller's mistake.
            return route.template, await _error(send, w.ApiError.invalid(str(exc)))
        except CompatError as exc:
            log.warning("%s %s failed: %s", method, route.template, type(exc).__name__)
            error = w.ApiError(500, "InternalError", _log.redact(str(exc)))
            return route.template, await _error(send, error)
        except Exception:  # a defect: its traceback goes to the log, never to the client
            log.exception("%s %s failed", method, route.template)
            error = w.ApiError(500, "InternalError", "The proxy failed to serve the request.")
            return route.template, await _error(send, error)
        if isinstance(reply, AsyncIterator):
            return route.template, await self._stream(send, receive, reply, call)
        status = getattr(reply, "status_code", None) or 200
        if status != 200:
            error = w.ApiError(
                status, reply.get("code") or "InternalError", reply.get("message") or ""
            )
            return route.template, await _error(send, error, reply.get("request_id"))
        return route.template, await _json(send, 200, reply)

    # -- streams ------------------------------------------------------------------------------
    async def _stream(
        self,
        send: Send,
        receive: Receive,
        items: AsyncIterator[Any],
        call: calls.Call,
    ) -> int:
        try:
            event, data = await items.__anext__()
        except StopAsyncIteration:
            event, data = None, {"status_code": 500, "code": "InternalError", "message": "empty"}
        if event is None:  # an HTTP error as a stream's one item: the HTTP error itself
            await items.aclose()  # type: ignore[attr-defined]
            status = data.get("status_code") or 500
            error = w.ApiError(status, data.get("code") or "InternalError", data.get("message", ""))
            return await _error(send, error, data.get("request_id"))
        task = asyncio.current_task()
        assert task is not None
        self._streams[task] = ""
        watcher = asyncio.ensure_future(self._watch(receive, task))
        run: Any = None
        try:
            await send({"type": "http.response.start", "status": 200, "headers": _SSE_HEADERS})
            try:
                if self._closing:
                    raise asyncio.CancelledError
                while True:
                    if run is None and isinstance(data, t.Run):
                        run = data
                    await send(
                        {
                            "type": "http.response.body",
                            "body": _frame(event, data),
                            "more_body": True,
                        }
                    )
                    if event == "error":  # the Assistant API's raw error ends its stream
                        break
                    try:
                        event, data = await items.__anext__()
                    except StopAsyncIteration:
                        break
            except asyncio.CancelledError:
                why = self._streams.get(task) or ("shutdown" if self._closing else "")
                if not why:
                    raise
                _uncancel(task)
                await items.aclose()  # type: ignore[attr-defined]
                if why == "gone":
                    return 200
                if run is not None:
                    await self._final_event(send, call, run)
            end = b"" if event == "error" else w.DONE  # no `done` after an error event
            await send({"type": "http.response.body", "body": end, "more_body": False})
            return 200
        finally:
            watcher.cancel()
            self._streams.pop(task, None)
            await items.aclose()  # type: ignore[attr-defined]

    async def _final_event(self, send: Send, call: calls.Call, run: t.Run) -> None:
        """The run's terminal event as stored after the interruption (normally cancelled)."""
        stored = await calls.final_run(call, run.thread_id, run.id)
        if stored.get("status_code") == 200:
            frame = _frame(f"thread.run.{stored.status}", stored)
            await send({"type": "http.response.body", "body": frame, "more_body": True})

    async def _watch(self, receive: Receive, task: asyncio.Task[Any]) -> None:
        """Interrupt the stream when its client disconnects."""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                if not self._streams.get(task, "x"):
                    self._streams[task] = "gone"
                    task.cancel()
                return


def _frame(event: str | None, data: Any) -> bytes:
    if event == "error":  # dashscope json.loads the raw data: code, message, request_id only
        body = {k: data.get(k) for k in ("code", "message", "request_id")}
        return b"event:error\ndata:" + w.json_bytes(body) + b"\n\n"
    if event is None:
        return b"data:" + w.json_bytes(data) + b"\n\n"
    if event == "thread.message.delta":
        return w.text_delta_frame(data) or w.sse(event, w.message_delta(data))
    return w.sse(event, data)


def _uncancel(task: asyncio.Task[Any]) -> None:
    uncancel = getattr(task, "uncancel", None)  # Python 3.11+
    if uncancel is not None:
        uncancel()


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            break
    return b"".join(chunks)


async def _json(send: Send, status: int, obj: Any) -> int:
    payload = w.json_bytes(obj)
    await send({"type": "http.response.start", "status": status, "headers": _JSON_HEADERS})
    await send({"type": "http.response.body", "body": payload})
    return status


async def _error(send: Send, error: w.ApiError, request_id: str | None = None) -> int:
    return await _json(send, error.status, w.error_body(error.code, error.message, request_id))


def create_app() -> ServeApp:
    """The app, with ``COMPAT_SERVE_KEYS`` / ``COMPAT_SERVE_KEYS_FILE`` read now."""
    return ServeApp(allowed_keys())
