"""``python -m compat serve``: DashScope's Assistant API over HTTP, from the responses backend.

Legacy clients in any language (the dashscope Python or Java SDK, curl) change only their base
URL, e.g. ``DASHSCOPE_HTTP_BASE_URL=http://127.0.0.1:8000/api/v1``. Needs the ``serve`` extra
(uvicorn). ``create_app()`` is the ASGI app; ``ServeApp`` its class.
"""

from __future__ import annotations

from compat.serve.app import ServeApp, create_app

__all__ = ["ServeApp", "create_app"]
