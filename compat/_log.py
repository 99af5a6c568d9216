"""The ``compat`` logger tree: lifecycle points only, never a key, silent unless asked.

Rules for every module that logs:

1. Log lifecycle points (a run starts, a request goes upstream, a fallback, a retry, a terminal
   status, a refusal, an unknown type the first time it is seen) and never anything per delta:
   a stream relays thousands of deltas and the hot path must not even format a message.
2. Never pass a key to a log call; text that might hold one (an error message echoing a header,
   a URL with a query) goes through :func:`redact` first.

``COMPAT_LOG=debug`` (or ``info``) attaches one stderr handler to the ``compat`` logger at the
first :func:`logger` call; otherwise the tree has only a ``NullHandler`` and the application's own
logging configuration decides. compat never configures the root logger.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading

from compat.errors import ConfigurationError

__all__ = ["LOG_ENV", "ROOT", "logger", "mask_key", "once", "redact"]

ROOT = "compat"
LOG_ENV = "COMPAT_LOG"
_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO}
_OFF = frozenset({"", "0", "off", "none", "false"})
_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

logging.getLogger(ROOT).addHandler(logging.NullHandler())

_setup_done = False
_seen: set[tuple[str, str]] = set()
_lock = threading.Lock()

# What a secret looks like in free text: a bearer token, a DashScope/OpenAI-style ``sk-`` key,
# or the value after an ``api_key``/``authorization`` label (in JSON, a query or a header dump).
_SECRET = re.compile(
    r"(?P<label>\bbearer\s+|(?:api[_-]?key|authorization)[\"']?\s*[:=]\s*[\"']?(?:bearer\s+)?)"
    r"(?P<value>[^\s\"'&,;}]+)"
    r"|(?P<sk>\bsk-[A-Za-z0-9_\-]{4,})",
    re.IGNORECASE,
)


def logger(name: str = ROOT) -> logging.Logger:
    """The logger ``compat.<name>`` (a module's ``__name__`` works as is).

    The first call applies ``COMPAT_LOG``; an unknown value is a ConfigurationError naming
    the valid ones.
    """
    if not _setup_done:
        _setup()
    if name == ROOT or name.startswith(ROOT + "."):
        return logging.getLogger(name)
    return logging.getLogger(f"{ROOT}.{name}")


def _setup() -> None:
    global _setup_done
    with _lock:
        if _setup_done:
            return
        raw = os.environ.get(LOG_ENV, "").strip().lower()
        if raw not in _OFF:
            level = _LEVELS.get(raw)
            if level is None:
                raise ConfigurationError(
                    f"unknown log level {raw!r} (from {LOG_ENV}); valid choices: "
                    f"{', '.join(_LEVELS)} (or unset for no logging)"
                )
            root = logging.getLogger(ROOT)
            handler = logging.StreamHandler(sys.stderr)
            handler.setFormatter(logging.Formatter(_FORMAT))
            root.addHandler(handler)
            root.setLevel(level)
        _setup_done = True


def once(log: logging.Logger, kind: str, value: str, message: str, *args: object) -> None:
    """Log ``message`` at INFO the first time this process sees ``(kind, value)``.

    For unknown event or item types: worth one line, not one per occurrence.
    """
    marker = (kind, value)
    if marker in _seen:
        return
    with _lock:
        if marker in _seen:
            return
        _seen.add(marker)
    log.info(message, *args)


def mask_key(key: str | None) -> str | None:
    """A key as it may be shown: ``'sk-…abcd'`` (its last four characters), or ``'***'``.

    Short keys are masked whole: four characters of an eight-character key are half of it.
    """
    if key is None:
        return None
    if len(key) < 16:
        return "***"
    prefix = "sk-" if key.startswith("sk-") else ""
    return f"{prefix}…{key[-4:]}"


def redact(text: str) -> str:
    """``text`` with anything that looks like a key or a bearer token masked."""

    def hide(match: re.Match[str]) -> str:
        if match.group("sk"):
            return mask_key(match.group("sk")) or ""
        return f"{match.group('label')}{mask_key(match.group('value'))}"

    return _SECRET.sub(hide, text)
