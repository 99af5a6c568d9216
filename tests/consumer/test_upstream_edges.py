"""What an upstream can do to a run besides answering well: late events after the end, JSON of
the wrong shape, a refused connection, and every exception the openai client can raise.

A small loopback server replays recorded bytes (the emulator only sends well-formed streams).
"""

from __future__ import annotations

import inspect
import json
import os
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

import compat
from compat.backends.responses.upstream import UpstreamBroken, UpstreamHTTPError, mapped_errors
from compat.errors import CompatError
from tests.pg import consumer_store

pytestmark = pytest.mark.skipif(
    os.environ.get("COMPAT_BACKEND", "responses") != "responses",
    reason="responses backend only",
)

openai = pytest.importorskip("openai")
httpx2 = pytest.importorskip("httpx2")
hypothesis = pytest.importorskip("hypothesis")


class _Replay(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body: bytes = self.server.body  # type: ignore[attr-defined]
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def replay() -> Iterator[Any]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Replay)
    server.daemon_threads = True
    server.body = b""  # type: ignore[attr-defined]
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    compat.configure(
        backend="responses",
        store=consumer_store(),
        api_key="sk-test",
        responses_base_url=f"http://127.0.0.1:{server.server_address[1]}/v1",
    )
    yield server
    compat.configure(reset=True)
    server.shutdown()
    server.server_close()
    thread.join()


def sse(*events: Any) -> bytes:
    return b"".join(b"data: " + json.dumps(e).encode() + b"\n\n" for e in events)


RESPONSE = {"id": "resp_1", "object": "response", "status": "in_progress", "output": []}
MESSAGE = {"type": "message", "id": "msg_up", "role": "assistant", "status": "in_progress"}
DONE_MESSAGE = dict(
    MESSAGE, status="completed", content=[{"type": "output_text", "text": "Hi", "annotations": []}]
)
COMPLETED = dict(
    RESPONSE,
    status="completed",
    output=[DONE_MESSAGE],
    usage={"input_tokens": 3, "output_tokens": 1, "total_tokens": 4},
)
GOOD = [
    {"type": "response.created", "response": RESPONSE},
    {"type": "response.output_item.added", "output_index": 0, "item": MESSAGE},
    {"type": "response.output_text.delta", "item_id": "msg_up", "delta": "Hi"},
    {"type": "response.output_item.done", "output_index": 0, "item": DONE_MESSAGE},
    {"type": "response.completed", "response": COMPLETED},
]


def run_events(*, stream: bool = True) -> tuple[list[tuple[Any, Any]], Any]:
    assistant = compat.Assistants.create(model="qwen-plus")
    thread = compat.Threads.create(messages=[{"role": "user", "content": "Hi"}])
    if not stream:
        return [], compat.Runs.create(thread.id, assistant_id=assistant.id)
    events = list(compat.Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    return events, thread


def terminal(events: list[tuple[Any, Any]]) -> list[str]:
    return [
        e
        for e, _ in events
        if e in ("thread.run.completed", "thread.run.failed", "thread.run.cancelled")
        or e == "thread.run.requires_action"
    ]


def test_an_event_after_the_end_does_not_change_a_completed_run(replay: Any) -> None:
    late = {"type": "response.output_text.delta", "item_id": "msg_up", "delta": "late"}
    replay.body = sse(*GOOD, late, {"type": "response.failed", "response": RESPONSE})
    events, thread = run_events()
    assert terminal(events) == ["thread.run.completed"]
    (run,) = compat.Runs.list(thread.id).data
    assert run.status == "completed"
    assert compat.Messages.list(thread.id).data[0].content[0].text.value == "Hi"


@pytest.mark.parametrize(
    "bad",
    [
        {"type": ["response.created"]},  # an unhashable type
        {"type": "response.output_text.delta", "item_id": "msg_up", "delta": 7},
        {"type": "response.output_item.added", "output_index": 1, "item": ["not", "a", "dict"]},
        {"type": "response.completed", "response": "done"},
        {"type": "response.completed", "response": dict(COMPLETED, usage={"input_tokens": "x"})},
        ["not", "an", "object"],
    ],
    ids=["unhashable-type", "number-delta", "list-item", "string-response", "text-usage", "list"],
)
def test_an_event_of_the_wrong_shape_fails_the_run_invalid_stream(replay: Any, bad: Any) -> None:
    replay.body = sse(*GOOD[:3], bad, *GOOD[3:])
    events, thread = run_events()
    assert terminal(events) == ["thread.run.failed"]
    assert events[-1][1].last_error["code"] == "invalid_stream"
    (run,) = compat.Runs.list(thread.id).data
    assert (run.status, run.last_error["code"]) == ("failed", "invalid_stream")
    replay.body = sse(*GOOD)  # the thread is usable afterwards
    again = list(compat.Runs.create(thread.id, assistant_id=run.assistant_id, stream=True))
    assert terminal(again) == ["thread.run.completed"]


@hypothesis.settings(
    max_examples=40, deadline=None, suppress_health_check=list(hypothesis.HealthCheck)
)
@hypothesis.given(
    cut=hypothesis.strategies.integers(0, len(GOOD)),
    junk=hypothesis.strategies.recursive(
        hypothesis.strategies.none()
        | hypothesis.strategies.booleans()
        | hypothesis.strategies.integers()
        | hypothesis.strategies.text(max_size=5)
        | hypothesis.strategies.sampled_from(
            ["response.completed", "response.created", "response.output_text.delta", "error"]
        ),
        lambda inner: (
            hypothesis.strategies.lists(inner, max_size=3)
            | hypothesis.strategies.dictionaries(
                hypothesis.strategies.sampled_from(
                    [
                        "type",
                        "delta",
                        "item",
                        "response",
                        "item_id",
                        "output_index",
                        "usage",
                        "error",
                    ]
                ),
                inner,
                max_size=4,
            )
        ),
        max_leaves=8,
    ),
)
def test_whatever_the_stream_holds_the_loop_ends_with_one_terminal_event(
    replay: Any, cut: int, junk: Any
) -> None:
    replay.body = sse(*GOOD[:cut], junk, *GOOD[cut:])
    events, thread = run_events()
    assert len(terminal(events)) == 1
    (run,) = compat.Runs.list(thread.id).data
    assert run.status in ("completed", "failed")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_upstream_is_a_returned_error_and_frees_the_thread() -> None:
    compat.configure(
        backend="responses",
        store=consumer_store(),
        api_key="sk-test",
        responses_base_url=f"http://127.0.0.1:{_closed_port()}/v1",
    )
    try:
        assistant = compat.Assistants.create(model="qwen-plus")
        thread = compat.Threads.create(messages=[{"role": "user", "content": "Hi"}])
        reply = compat.Runs.create(thread.id, assistant_id=assistant.id)
        assert (reply.status_code, reply.code) == (503, "connection_error")
        (item,) = list(compat.Runs.create(thread.id, assistant_id=assistant.id, stream=True))
        assert item[0] is None
        assert (item[1]["status_code"], item[1]["code"]) == (503, "connection_error")
        assert compat.Runs.list(thread.id).data == []  # withdrawn: no run, the thread is free
    finally:
        compat.configure(reset=True)


def _openai_exceptions() -> list[type[BaseException]]:
    found = {
        obj
        for module in (openai, openai._exceptions)
        for _, obj in inspect.getmembers(module, inspect.isclass)
        if issubclass(obj, BaseException) and obj.__module__.startswith("openai")
    }
    found |= {
        obj
        for _, obj in inspect.getmembers(httpx2, inspect.isclass)
        if issubclass(obj, Exception) and obj.__module__.startswith("httpx2")
    }
    # Raised only by the client's webhook-signature helper, which compat never calls.
    found.discard(openai.InvalidWebhookSignatureError)
    return sorted(found, key=lambda c: c.__qualname__)


def _instance(cls: type[BaseException]) -> BaseException:
    request = httpx2.Request("POST", "http://127.0.0.1/v1/responses")
    response = httpx2.Response(500, request=request, json={"code": "X", "message": "m"})
    attempts: list[dict[str, Any]] = [
        {"message": "m", "response": response, "body": None},
        {"response": response, "body": None},
        {"message": "m", "request": request, "response": response},
        {"message": "m", "request": request, "body": None},
        {"request": request},
        {"message": "m", "request": request},
        {"response": response},
        {},
    ]
    for kwargs in attempts:
        try:
            return cls(**kwargs)
        except TypeError:
            continue
    for args in (("m",), ("m", request), ()):
        try:
            return cls(*args)
        except TypeError:
            continue
    # Built without its constructor (e.g. one that needs a parsed completion): the class is
    # what mapped_errors dispatches on.
    exc = cls.__new__(cls)
    BaseException.__init__(exc, "m")
    return exc


@pytest.mark.parametrize("cls", _openai_exceptions(), ids=lambda c: c.__qualname__)
def test_no_exception_of_the_openai_client_escapes_unmapped(cls: type[BaseException]) -> None:
    exc = _instance(cls)
    try:
        with mapped_errors():
            raise exc
    except (UpstreamHTTPError, UpstreamBroken, CompatError):
        return
    except BaseException as escaped:
        raise AssertionError(f"{cls.__qualname__} escaped mapped_errors as {escaped!r}") from None
    raise AssertionError("unreachable")


# -- compat's own HTTP client ------------------------------------------------------------------


@pytest.mark.parametrize(
    "exc",
    [
        ConnectionRefusedError(111, "refused"),
        ConnectionResetError(104, "reset"),
        BrokenPipeError(32, "broken pipe"),
        TimeoutError("timed out"),
        OSError(113, "no route to host"),
        __import__("ssl").SSLError(1, "bad handshake"),
        __import__("socket").gaierror(-2, "Name or service not known"),
        __import__("http.client").client.IncompleteRead(b"partial", 10),
        __import__("http.client").client.RemoteDisconnected("closed"),
        __import__("http.client").client.BadStatusLine("HTTP/9"),
        __import__("http.client").client.LineTooLong("header line"),
        ValueError("invalid literal for int() with base 16: 'zz'"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_every_stdlib_failure_of_compats_client_is_mapped(exc: BaseException) -> None:
    from compat.backends.responses._http import _mapped

    with pytest.raises(UpstreamBroken) as caught, _mapped("the Responses stream broke"):
        raise exc
    expected = "timeout" if isinstance(exc, TimeoutError) else "connection_error"
    assert caught.value.code == expected


RUN_ONLY = """
import os, sys
sys.path.insert(0, sys.argv[1])
import compat
from compat.testing import Emulator
with Emulator() as emu:
    os.environ.update(emu.env())
    compat.configure(backend="responses", store="memory")
    a = compat.Assistants.create(model="qwen-plus")
    t = compat.Threads.create(messages=[{"role": "user", "content": "Hi"}])
    events = [e for e, _ in compat.Runs.create(t.id, assistant_id=a.id, stream=True)]
    assert events[-1] == "thread.run.completed", events
    print(sorted(m for m in ("openai", "httpx2", "httpx", "dashscope") if m in sys.modules))
"""


def test_a_streamed_run_imports_no_sdk() -> None:
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    out = subprocess.run(
        [sys.executable, "-c", RUN_ONLY, str(root)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert out.stdout.strip() == "[]"
