"""Running the app on uvicorn: the shutdown hook, worker processes, an in-process server.

uvicorn drains connections before it runs the lifespan shutdown, so a stream would keep the
server alive until its run ends. ``Server`` therefore tells this process's apps to end their
streams (as cancelled) as soon as the exit signal arrives.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from types import FrameType, TracebackType
from typing import Any

import uvicorn

from compat.serve.app import ServeApp, live_apps

__all__ = ["BackgroundServer", "Server", "config_for", "run"]


class Server(uvicorn.Server):
    """uvicorn's server, whose exit signal first interrupts the open streams."""

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        for app in live_apps():
            app.request_shutdown()
        super().handle_exit(sig, frame)


def config_for(app: Any, **options: Any) -> uvicorn.Config:
    """A uvicorn config: compat's request log instead of uvicorn's access log."""
    return uvicorn.Config(
        app,
        access_log=False,
        log_config=None,
        timeout_graceful_shutdown=options.pop("timeout_graceful_shutdown", 30),
        **options,
    )


def run(host: str, port: int, workers: int) -> None:
    """Serve until SIGINT/SIGTERM, in one process or ``workers`` processes on one socket."""
    config = config_for(
        "compat.serve.app:create_app", factory=True, host=host, port=port, workers=workers
    )
    server = Server(config)
    if workers > 1:
        from uvicorn.supervisors import Multiprocess

        sock = config.bind_socket()
        Multiprocess(config, target=server.run, sockets=[sock]).run()
    else:
        server.run()


class BackgroundServer:
    """An app served on a free loopback port from a thread (tests and benchmarks)."""

    def __init__(self, app: ServeApp | None = None) -> None:
        self.app = app or ServeApp()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.server = Server(config_for(self.app, lifespan="on", timeout_graceful_shutdown=10))
        self._thread = threading.Thread(target=self._serve, name="compat-serve", daemon=True)

    @property
    def base_url(self) -> str:
        """What ``DASHSCOPE_HTTP_BASE_URL`` is set to."""
        return f"http://127.0.0.1:{self.port}/api/v1"

    def _serve(self) -> None:
        asyncio.run(self.server.serve(sockets=[self._sock]))

    def start(self, timeout: float = 30) -> BackgroundServer:
        self._thread.start()
        started = threading.Event()

        def wait() -> None:
            while not self.server.started and self._thread.is_alive():
                started.wait(0.01)

        wait_thread = threading.Thread(target=wait)
        wait_thread.start()
        wait_thread.join(timeout)
        if not self.server.started:
            raise RuntimeError("compat serve did not start")
        return self

    def stop(self, timeout: float = 30) -> None:
        """Graceful: streams end as cancelled, then the server exits."""
        self.app.request_shutdown()
        self.server.should_exit = True
        self._thread.join(timeout)
        self._sock.close()

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
