"""``python -m compat serve``: DashScope's Assistant API over HTTP (see ``compat.serve``)."""

from __future__ import annotations

import argparse
import os
from typing import Any

__all__ = ["add_parser", "run"]


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    return int(value) if value else default


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "serve",
        help="serve DashScope's Assistant API over HTTP from the responses backend",
        description="Serve DashScope's Assistant API over HTTP, for legacy clients in any "
        "language: point them at http://HOST:PORT/api/v1 (e.g. DASHSCOPE_HTTP_BASE_URL). "
        "Each caller's bearer key is used upstream for its runs and owns its objects. "
        "COMPAT_SERVE_KEYS / COMPAT_SERVE_KEYS_FILE restrict the accepted keys. "
        "Needs the 'serve' extra (uvicorn).",
    )
    parser.add_argument(
        "--host",
        default=os.environ.get("COMPAT_SERVE_HOST", "127.0.0.1"),
        help="address to bind (env COMPAT_SERVE_HOST; default 127.0.0.1)",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=_env_int("COMPAT_SERVE_PORT", 8000),
        help="port (env COMPAT_SERVE_PORT; default 8000)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=_env_int("COMPAT_SERVE_WORKERS", 1),
        help="worker processes on the one port (env COMPAT_SERVE_WORKERS; default 1)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from compat._config import current_settings

    if args.workers < 1:
        print("compat serve: --workers must be at least 1", file=sys.stderr)
        return 2
    if current_settings().backend != "responses":
        print("compat serve: needs COMPAT_BACKEND=responses (the default)", file=sys.stderr)
        return 2
    # A server logs its requests unless told otherwise (COMPAT_LOG=off silences it).
    os.environ.setdefault("COMPAT_LOG", "info")
    try:
        from compat.serve.server import run as serve
    except ImportError as exc:
        print(f"compat serve: {exc}; pip install 'dashscope-compat[serve]'", file=sys.stderr)
        return 2
    serve(args.host, args.port, args.workers)
    return 0
