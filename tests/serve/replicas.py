"""Real ``python -m compat serve`` processes for the CLI, replica and shutdown tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def store_uri(tmp_path: Path) -> str:
    """``COMPAT_SERVE_TEST_STORE`` (e.g. a PostgreSQL URI), else a SQLite file in ``tmp_path``."""
    return os.environ.get("COMPAT_SERVE_TEST_STORE") or str(tmp_path / "shared.sqlite3")


class Replica:
    """One ``compat serve`` process on a free port."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.port = free_port()
        full_env = dict(os.environ, COMPAT_SERVE_PORT=str(self.port), **env)
        full_env["PYTHONPATH"] = os.pathsep.join([str(ROOT), full_env.get("PYTHONPATH", "")])
        self.process = subprocess.Popen(
            [sys.executable, "-m", "compat", "serve", "--host", "127.0.0.1", *args],
            env=full_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        self.wait_healthy()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/v1"

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise AssertionError(f"compat serve exited: {self.stderr()}")
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=5).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("compat serve did not become healthy")
            time.sleep(0.05)

    def stderr(self) -> str:
        if self.process.poll() is None or self.process.stderr is None:
            return ""
        return self.process.stderr.read().decode(errors="replace")

    def stop(self, timeout: float = 60) -> int:
        if self.process.poll() is None:
            self.process.terminate()
        code = self.process.wait(timeout)
        if self.process.stderr is not None:
            self.process.stderr.close()
        return code

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(60)
        if self.process.stderr is not None:
            self.process.stderr.close()

    def __enter__(self) -> Replica:
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(60)
        if self.process.stderr is not None:
            self.process.stderr.close()
