"""Running the app on uvicorn: from the command line (one or more worker processes), or
in-process on a free port (tests, benchmarks)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from types import TracebackType
from typing import Any

import uvicorn

from compat.serve.app import ServeApp

__all__ = ["BackgroundServer", "config_for", "run"]


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
    if workers > 1:
        from uvicorn.supervisors import Multiprocess

        Multiprocess(config, sockets=[config.bind_socket()]).run()
    else:
        uvicorn.Server(config).run()


class BackgroundServer:
    """An app served on a free loopback port from a thread (tests and benchmarks)."""

    def __init__(self, app: ServeApp | None = None) -> None:
        self.app = app or ServeApp()
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port: int = self._sock.getsockname()[1]
        self.server = uvicorn.Server(
            config_for(self.app, lifespan="on", timeout_graceful_shutdown=10)
        )
        self._thread = threading.Thread(target=self._serve, name="compat-serve", daemon=True)

    @property
    def base_url(self) -> str:
        """What ``DASHSCOPE_HTTP_BASE_URL`` is set to."""
        return f"http://127.0.0.1:{self.port}/api/v1"

    def _serve(self) -> None:
        asyncio.run(self.server.serve(sockets=[self._sock]))

    def start(self, timeout: float = 30) -> BackgroundServer:
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("compat serve did not start")
            time.sleep(0.01)
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
