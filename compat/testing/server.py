"""The emulator's loopback HTTP server and its public facade, :class:`Emulator`.

HTTP I/O lives here; each emulated API is an object with a URL ``prefix`` that turns a
:class:`Request` into a reply (:class:`JSONReply` or :class:`StreamReply`), with the reply bytes
already built under that API's lock, so the socket is written without holding it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import socket
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Literal, Protocol, TypeVar
from urllib.parse import parse_qsl, urlsplit

from compat.testing._wire import LIMIT_MESSAGE, ORDER_MESSAGE, not_found_message
from compat.testing.scenario import Conversation, Scenario, ScenarioQueue

__all__ = [
    "API",
    "DEFAULT_API_KEY",
    "APIError",
    "Emulator",
    "JSONReply",
    "Reply",
    "Request",
    "StreamReply",
    "new_request_id",
    "paginate",
]

JSON = dict[str, Any]

#: The key an :class:`Emulator` accepts unless told otherwise.
DEFAULT_API_KEY = "sk-compat-emulator"

ASSISTANTS_PREFIX = "/api/v1"
RESPONSES_PREFIX = "/compatible-mode/v1"


def new_request_id() -> str:
    return str(uuid.uuid4())


@dataclass(frozen=True)
class Request:
    """One received HTTP request, as recorded in :attr:`Emulator.requests`.

    ``path`` excludes the query string; ``headers`` has lower-case names; ``json`` is the parsed
    body (``None`` when empty or not JSON; ``invalid_json`` tells which).
    """

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    json: Any
    invalid_json: bool = False

    def bearer_token(self) -> str | None:
        scheme, _, token = self.headers.get("authorization", "").partition(" ")
        return token.strip() if scheme.lower() == "bearer" else None


@dataclass(frozen=True)
class JSONReply:
    """A JSON reply, already encoded (with ``Content-Length``, so the connection stays open)."""

    status: int
    body: bytes

    @classmethod
    def of(cls, status: int, obj: object) -> JSONReply:
        return cls(status, json.dumps(obj, ensure_ascii=False).encode())


@dataclass(frozen=True)
class StreamReply:
    """An event stream: ``chunks`` written at once (or one by one, ``pace`` s apart), then close.

    ``pauses`` maps a chunk index to seconds of silence before that chunk (``len(chunks)``: before
    the end). ``drop=True`` sends the body chunked and closes without the final empty chunk, so
    the client sees a broken transfer rather than a clean end. ``on_disconnect(sent)`` is called,
    from the writing thread, if the client goes away before the end: ``sent`` chunks were written
    whole (into the socket: the client may not have read them all).
    """

    chunks: Sequence[bytes]
    pace: float | None = None
    pauses: Mapping[int, float] = field(default_factory=dict)
    drop: bool = False
    content_type: str = "text/event-stream;charset=UTF-8"
    on_disconnect: Callable[[int], None] | None = None


Reply = JSONReply | StreamReply


class APIError(Exception):
    """An API error reply; each API renders it in its own error shape."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class API(Protocol):
    """One emulated API, served under ``prefix``."""

    prefix: str

    def handle(self, request: Request, subpath: str) -> Reply:
        """Answer ``request``; ``subpath`` is the path after ``prefix``."""
        ...

    def reset(self) -> None: ...


T = TypeVar("T", bound=Mapping[str, Any])


def paginate(items: Sequence[T], query: Mapping[str, str], thing: str) -> tuple[list[T], bool]:
    """One page of ``items`` (oldest first, each with an ``id``) by OpenAI cursor rules.

    Query: ``limit`` (1..100, default 20), ``order`` (``asc``/``desc``, default ``desc``),
    ``after`` / ``before`` (ids; items strictly past / before them in that order). With only
    ``before``, the page is the ``limit`` items nearest the cursor: desc [5,4,3,2,1], before=2,
    limit=2 → [4,3]. Returns the page and ``has_more`` (more items beyond it, away from the
    cursor).
    """
    try:
        limit = int(query.get("limit", "20"))
    except ValueError:
        limit = 0
    if not 1 <= limit <= 100:
        raise APIError(400, "InvalidParameter", LIMIT_MESSAGE)
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise APIError(400, "InvalidParameter", ORDER_MESSAGE)
    ordered = list(items) if order == "asc" else list(reversed(items))
    position = {item["id"]: i for i, item in enumerate(ordered)}

    def cursor(name: str) -> int | None:
        value = query.get(name)
        if value is None:
            return None
        if value not in position:
            raise APIError(400, "InvalidParameter", not_found_message(thing))
        return position[value]

    after, before = cursor("after"), cursor("before")
    window = ordered[(after + 1 if after is not None else 0) : before]
    page = window[-limit:] if before is not None and after is None else window[:limit]
    return page, len(window) > limit


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 resets connections when a test opens dozens at once.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], emulator: Emulator) -> None:
        self.emulator = emulator
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections_lock:
            self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self.connections_lock:
            self.connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End kept-alive connections, whose threads would otherwise keep serving after stop."""
        with self.connections_lock:
            for conn in self.connections:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that goes away mid-request is normal here (stream.close(), test teardown).
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are separate writes: no 40 ms Nagle stalls
    server: _Server

    def do_GET(self) -> None:
        self._dispatch()

    do_POST = do_DELETE = do_PUT = do_PATCH = do_GET

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _read_request(self) -> Request | None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self._send_json(JSONReply.of(411, _error("InvalidParameter", "Send a Content-Length.")))
            self.close_connection = True
            return None
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        parsed: Any = None
        invalid = False
        if body.strip():
            try:
                parsed = json.loads(body)
            except ValueError:
                invalid = True
        url = urlsplit(self.path)
        return Request(
            method=self.command,
            path=url.path,
            query=dict(parse_qsl(url.query)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
            json=parsed,
            invalid_json=invalid,
        )

    def _dispatch(self) -> None:
        request = self._read_request()
        if request is None:
            return
        emulator = self.server.emulator
        try:
            reply = emulator._route(request)
        except Exception as exc:  # a bug in the emulator: make it visible to the client
            traceback.print_exc()
            reply = JSONReply.of(500, _error("InternalError", f"emulator error: {exc!r}"))
        try:
            if isinstance(reply, StreamReply):
                self._send_stream(reply)
            else:
                self._send_json(reply)
        except ConnectionError:  # the client went away (stream.close(), a timeout)
            self.close_connection = True

    def _send_json(self, reply: JSONReply) -> None:
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply.body)))
        self.end_headers()
        self.wfile.write(reply.body)

    def _send_stream(self, reply: StreamReply) -> None:
        writer = _ChunkWriter(self.connection, chunked=reply.drop)
        try:
            self.send_response(200)
            self.send_header("Content-Type", reply.content_type)
            self.send_header("Cache-Control", "no-cache")
            self.send_header("Connection", "close")  # the body ends when the connection does
            if reply.drop:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for silence, group in _schedule(reply):
                if silence:
                    time.sleep(silence)
                writer.write(group)
        except ConnectionError:
            if reply.on_disconnect is not None:
                reply.on_disconnect(writer.sent)
            raise
        if reply.drop:
            # No terminating 0-chunk: the transfer is visibly incomplete when the socket closes.
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)


def _schedule(reply: StreamReply) -> Iterator[tuple[float, Sequence[bytes]]]:
    """``(seconds of silence, chunks to write in one go)``: one chunk at a time when paced."""
    chunks, pace, pauses = reply.chunks, reply.pace or 0.0, reply.pauses
    end = len(chunks)
    cuts = range(1, end) if pace else sorted(i for i in pauses if 0 < i < end)
    bounds = [0, *cuts, end] if end else [0]
    for start, stop in itertools.pairwise(bounds):
        yield pauses.get(start, 0.0) + (pace if start else 0.0), chunks[start:stop]
    yield pauses.get(end, 0.0), ()


class _ChunkWriter:
    """Writes groups of chunks to a socket, counting the chunks that went out whole."""

    def __init__(self, sock: socket.socket, *, chunked: bool) -> None:
        self.sock, self.chunked = sock, chunked
        self.sent = 0

    def write(self, group: Sequence[bytes]) -> None:
        data = b"".join(group)
        if self.chunked:  # HTTP chunked framing: all or nothing is precise enough there
            if data:
                self.sock.sendall(b"%x\r\n%s\r\n" % (len(data), data))
            self.sent += len(group)
            return
        view, done = memoryview(data), 0
        try:
            while done < len(data):
                done += self.sock.send(view[done:])
        finally:
            for chunk in group:
                done -= len(chunk)
                if done < 0:
                    break
                self.sent += 1


def _error(code: str, message: str) -> JSON:
    return {"code": code, "message": message, "request_id": new_request_id()}


class Emulator:
    """A loopback DashScope: the Assistant API (and the Responses API) on ``127.0.0.1``.

    Use it as a context manager (or ``start()`` / ``stop()``)::

        with Emulator() as emu:
            emu.queue(Scenario.text("Hello!"))
            os.environ.update(emu.env())  # or set dashscope.base_http_api_url / api_key
            ...

    Requests must carry ``Authorization: Bearer <api_key>``. Each run (on either API) plays the
    oldest queued :class:`~compat.testing.Scenario`, else a deterministic default reply.
    Non-streamed runs start ``queued`` and move one state per ``GET`` of the run, and also every
    ``auto_advance`` seconds (``None``: only on ``GET``).
    """

    def __init__(
        self,
        *,
        api_key: str = DEFAULT_API_KEY,
        host: str = "127.0.0.1",
        port: int = 0,
        auto_advance: float | None = 0.05,
        responses_flavor: Literal["dashscope", "openai"] = "dashscope",
    ) -> None:
        from compat.testing.assistants_api import AssistantsAPI
        from compat.testing.responses_api import ResponsesAPI

        self.api_key = api_key
        self._address = (host, port)
        self._scenarios = ScenarioQueue()
        self._requests: list[Request] = []
        self._requests_lock = threading.Lock()
        self._responses = ResponsesAPI(self._scenarios, api_key=api_key, flavor=responses_flavor)
        # Routing seam: one object per emulated API, matched by path prefix.
        self._apis: list[API] = [
            AssistantsAPI(self._scenarios, api_key=api_key, auto_advance=auto_advance),
            self._responses,
        ]
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> Emulator:
        """Listen and serve in a daemon thread; returns ``self``."""
        if self._server is None:
            self._server = _Server(self._address, self)
            self._thread = threading.Thread(
                target=self._server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="compat-emulator",
                daemon=True,
            )
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every connection (state is kept until :meth:`reset`)."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.close_connections()
            server.server_close()
        if thread is not None:
            thread.join()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def port(self) -> int:
        if self._server is None:
            raise RuntimeError("the emulator is not running: call start() first")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self._address[0]}:{self.port}"

    @property
    def assistants_base_url(self) -> str:
        """The Assistant API base, for ``DASHSCOPE_HTTP_BASE_URL``."""
        return self.base_url + ASSISTANTS_PREFIX

    @property
    def responses_base_url(self) -> str:
        """The Responses API base, for ``COMPAT_RESPONSES_BASE_URL``."""
        return self.base_url + RESPONSES_PREFIX

    def env(self) -> dict[str, str]:
        """The environment variables that point dashscope and compat at this emulator."""
        return {
            "DASHSCOPE_HTTP_BASE_URL": self.assistants_base_url,
            "COMPAT_RESPONSES_BASE_URL": self.responses_base_url,
            "DASHSCOPE_API_KEY": self.api_key,
        }

    @property
    def responses_flavor(self) -> Literal["dashscope", "openai"]:
        """How the Responses API streams: ``"dashscope"`` or ``"openai"`` (settable).

        ``"dashscope"``: its documented wire and quirks; ``"openai"``: OpenAI's wire (``event: x``
        lines, item ids on every delta, code and argument deltas). :meth:`reset` restores the
        constructor's choice.
        """
        return self._responses.flavor

    @responses_flavor.setter
    def responses_flavor(self, flavor: Literal["dashscope", "openai"]) -> None:
        self._responses.flavor = flavor

    def expire_responses(self) -> None:
        """Forget every stored response, as DashScope does after 7 days.

        A later ``previous_response_id`` of one of them is answered 400
        ``previous_response_not_found``; scripts waiting for tool outputs are kept.
        """
        self._responses.expire()

    @property
    def ignore_instructions(self) -> bool:
        """Model a Responses server that ignores the ``instructions`` field (settable).

        DashScope's Responses reference once listed ``instructions`` as unsupported, and says
        unlisted parameters are ignored; system messages in ``input`` are always honoured.
        :meth:`reset` turns it off.
        """
        return self._responses.ignore_instructions

    @ignore_instructions.setter
    def ignore_instructions(self, value: bool) -> None:
        self._responses.ignore_instructions = value

    @property
    def conversations(self) -> list[Conversation]:
        """What the model saw at each turn, on either API, oldest first: its instructions
        (the field, unless ignored, joined with system messages), messages and tools."""
        return list(self._scenarios.seen)

    def queue(self, *scenarios: Scenario) -> None:
        """Queue scenarios (FIFO): each next run, on either API, plays one."""
        self._scenarios.put(scenarios)

    @property
    def requests(self) -> list[Request]:
        """A copy of the requests received so far, oldest first."""
        with self._requests_lock:
            return list(self._requests)

    def reset(self) -> None:
        """Drop all state: objects, queued scenarios and recorded requests."""
        self._scenarios.clear()
        with self._requests_lock:
            self._requests.clear()
        for api in self._apis:
            api.reset()

    def _route(self, request: Request) -> Reply:
        with self._requests_lock:
            self._requests.append(request)
        for api in self._apis:
            if request.path == api.prefix or request.path.startswith(api.prefix + "/"):
                return api.handle(request, request.path[len(api.prefix) :])
        return JSONReply.of(404, _error("NotFound", f"No route for {request.path}."))
