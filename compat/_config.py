"""Settings: ``configure()``, then settings made in code, then the environment; read on every call.

Reading per call (not at import) lets a program or a test switch backends between calls; the
cost is a handful of dict lookups per facade call, never per stream event.

Precedence, highest first (migration_guide.md section 2 has the table):

1. ``compat.configure(name=...)``;
2. for the key, the key file and the Assistant API's base URL, what legacy code sets in code:
   ``compat.api_key`` / ``compat.api_key_file_path`` / ``compat.base_http_api_url``, then the same
   attributes of the real ``dashscope`` module if the program imported it (compat never imports
   it to look). dashscope fills those attributes from the environment at its import; a value
   equal to that import-time value (kept in ``dashscope.common.env``) is not taken for a setting
   made in code, so the environment as it is now applies instead;
3. the environment (``COMPAT_*``, then the ``DASHSCOPE_*`` variable dashscope reads, if any);
4. for the key only, dashscope's ``config.toml`` and key file (``compat._keyfile``), read only
   when a call needs a key;
5. defaults. The Responses base URL defaults to the compatible-mode URL of the host that the
   Assistant API's base URL names (``dashscope-intl.aliyuncs.com/api/v1`` ->
   ``dashscope-intl.aliyuncs.com/compatible-mode/v1``), else Beijing's.
"""

from __future__ import annotations

import math
import os
import re
import sys
import threading
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import urlsplit

from compat._keyfile import key_from_files
from compat._log import mask_key
from compat.errors import ConfigurationError

__all__ = [
    "BACKENDS",
    "CONNECT_TIMEOUT",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_RESPONSES_BASE_URL",
    "DEFAULT_TIMEOUT",
    "HISTORY_MODES",
    "INSTRUCTION_MODES",
    "Settings",
    "compatible_mode_url",
    "configure",
    "current_settings",
]

BACKENDS = ("responses", "assistants", "shadow")
HISTORY_MODES = ("chain", "replay")
INSTRUCTION_MODES = ("parameter", "message")
DEFAULT_RESPONSES_BASE_URL = "https://dashscope.aliyuncs.com/compatible-mode/v1"
#: Seconds the Responses API may stay silent (before the first byte, or between two events)
#: before the run fails. Generous for a slow first token, but not openai's 600 s.
DEFAULT_TIMEOUT = 120.0
#: Seconds to establish a connection: a host that does not answer in that time will not.
CONNECT_TIMEOUT = 10.0
#: dashscope's Assistant API never retried; legacy code that retries does so itself, and a
#: retried request would multiply the timeout. ``COMPAT_MAX_RETRIES`` turns openai's on.
DEFAULT_MAX_RETRIES = 0


@dataclass(frozen=True, repr=False)
class Settings:
    """One snapshot of compat's configuration (see DESIGN's configuration table)."""

    backend: str = "responses"
    api_key: str | None = None
    api_key_file_path: str | None = None
    assistants_base_url: str | None = None
    responses_base_url: str = DEFAULT_RESPONSES_BASE_URL
    store: str | None = None
    history: str = "chain"
    #: how the run's instructions reach the model: the ``instructions`` request field, or a
    #: leading ``system`` input message (for servers that ignore the field)
    instructions: str = "parameter"
    #: None: compat's DEFAULT_TIMEOUT on the responses backend, dashscope's own on assistants
    timeout: float | None = None
    max_retries: int = DEFAULT_MAX_RETRIES
    #: how long a run's driver holds its lease without renewing it
    lease_seconds: float = 15.0
    #: how often the driver renews its lease; None: every third of ``lease_seconds``
    lease_renew_seconds: float | None = None
    #: how long a process exiting normally waits for its non-streamed runs to finish
    exit_timeout: float = 30.0

    @property
    def renew_seconds(self) -> float:
        """Seconds between two renewals of a run's lease (the setting, else a third of it)."""
        if self.lease_renew_seconds is not None:
            return self.lease_renew_seconds
        return self.lease_seconds / 3

    def key(self, per_call: str | None = None) -> str | None:
        """The key for one call: ``per_call``, else this snapshot's, else dashscope's files."""
        return per_call or self.api_key or key_from_files(self.api_key_file_path)

    def __repr__(self) -> str:
        shown = {f.name: getattr(self, f.name) for f in fields(self)}
        shown["api_key"] = mask_key(self.api_key)
        return f"Settings({', '.join(f'{k}={v!r}' for k, v in shown.items())})"


#: setting name -> environment variables, the first one set wins.
#: DASHSCOPE_TIMEOUT / DASHSCOPE_MAX_RETRIES: dashscope 2.0.2 defines both, for its 2.0 client
#: only (``dashscope/v2/_config.py``: total timeout, default 300 s; retries, default 2); its
#: Assistant API reads neither. compat takes them as a fallback for its own.
_ENV: dict[str, tuple[str, ...]] = {
    "backend": ("COMPAT_BACKEND",),
    "api_key": ("DASHSCOPE_API_KEY",),
    "api_key_file_path": ("DASHSCOPE_API_KEY_FILE_PATH",),
    "assistants_base_url": ("DASHSCOPE_HTTP_BASE_URL",),
    "responses_base_url": ("COMPAT_RESPONSES_BASE_URL",),
    "store": ("COMPAT_STORE",),
    "history": ("COMPAT_HISTORY",),
    "instructions": ("COMPAT_INSTRUCTIONS",),
    "timeout": ("COMPAT_TIMEOUT", "DASHSCOPE_TIMEOUT"),
    "max_retries": ("COMPAT_MAX_RETRIES", "DASHSCOPE_MAX_RETRIES"),
    "lease_seconds": ("COMPAT_LEASE_SECONDS",),
    "lease_renew_seconds": ("COMPAT_LEASE_RENEW_SECONDS",),
    "exit_timeout": ("COMPAT_EXIT_TIMEOUT",),
}
#: setting name -> the module attribute legacy code assigns (``dashscope.api_key = ...``)
_IN_CODE = {
    "api_key": "api_key",
    "api_key_file_path": "api_key_file_path",
    "assistants_base_url": "base_http_api_url",
}
_NAMES = frozenset(f.name for f in fields(Settings))
_API_PATH = re.compile(r"/api/v\d+$")
_overrides: dict[str, Any] = {}
_lock = threading.Lock()


def configure(**settings: Any) -> Settings:
    """Set compat's configuration in code; it wins over everything but per-call arguments.

    Accepts ``backend``, ``api_key``, ``api_key_file_path``, ``assistants_base_url``,
    ``responses_base_url``, ``store``, ``history``, ``instructions``, ``timeout`` (seconds),
    ``max_retries``, ``lease_seconds``, ``lease_renew_seconds`` and ``exit_timeout`` (seconds;
    migration_guide.md 5.2.1). A value of ``None`` removes that override (the lower tiers apply
    again); ``configure(reset=True)`` removes them all. Returns the settings now in force. A
    call whose values would not make valid settings (a renewal not shorter than the lease)
    raises ``ConfigurationError`` and changes nothing.
    """
    reset = settings.pop("reset", False)
    unknown = sorted(set(settings) - _NAMES)
    if unknown:
        raise ConfigurationError(
            f"unknown setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(_NAMES))}"
        )
    parsed = {
        name: _parse(name, value, "compat.configure()")
        for name, value in settings.items()
        if value is not None
    }
    with _lock:
        overrides = {} if reset else dict(_overrides)
        for name in settings:
            if name in parsed:
                overrides[name] = parsed[name]
            else:
                overrides.pop(name, None)
        now = _settings(overrides)  # raises, changing nothing, if they do not fit together
        _overrides.clear()
        _overrides.update(overrides)
    return now


def current_settings() -> Settings:
    """The settings in force now (module docstring: precedence)."""
    return _settings(_overrides)


def _settings(overrides: dict[str, Any]) -> Settings:
    values: dict[str, Any] = {}
    origins: dict[str, str] = {}
    env = os.environ
    for name, variables in _ENV.items():
        if name in overrides:
            values[name] = overrides[name]
            origins[name] = "compat.configure()"
            continue
        attr = _IN_CODE.get(name)
        if attr is not None:
            found = _set_in_code(attr)
            if found is not None:
                values[name] = _parse(name, found[0], found[1])
                continue
        for var in variables:
            raw = env.get(var)
            if raw:
                values[name] = _parse(name, raw, var)
                origins[name] = var
                break
    if "responses_base_url" not in values and values.get("assistants_base_url"):
        values["responses_base_url"] = compatible_mode_url(values["assistants_base_url"])
    settings = Settings(**values)
    renew = settings.lease_renew_seconds
    if renew is not None and renew >= settings.lease_seconds:
        raise ConfigurationError(
            f"lease_renew_seconds ({renew:g}, from "
            f"{origins.get('lease_renew_seconds', 'the default')}) must be shorter than "
            f"lease_seconds ({settings.lease_seconds:g}, from "
            f"{origins.get('lease_seconds', 'the default')}): a lease must be renewed before it "
            "lapses"
        )
    return settings


def compatible_mode_url(http_base_url: str) -> str:
    """The Responses base URL on the host of an Assistant-API base URL.

    ``https://dashscope-intl.aliyuncs.com/api/v1`` -> ``https://dashscope-intl.aliyuncs.com
    /compatible-mode/v1``; any other host likewise. A path in front of ``/api/v1`` (a proxy's
    prefix) is kept; any other path is replaced.
    """
    parts = urlsplit(http_base_url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(
            f"the Assistant API base URL {http_base_url!r} is not an http(s) URL, so the "
            "Responses API URL cannot be derived from it: set COMPAT_RESPONSES_BASE_URL"
        )
    path = parts.path.rstrip("/")
    prefix = _API_PATH.sub("", path) if _API_PATH.search(path) else ""
    return f"{parts.scheme}://{parts.netloc}{prefix}/compatible-mode/v1"


def _set_in_code(attr: str) -> tuple[Any, str] | None:
    """``compat.<attr>``, else ``dashscope.<attr>`` if set in code, with where it was found."""
    value = getattr(sys.modules.get("compat"), attr, None)
    if value:
        return value, f"compat.{attr}"
    dashscope = sys.modules.get("dashscope")
    value = getattr(dashscope, attr, None)
    if not value:
        return None
    # dashscope.common.env holds what dashscope computed from the environment at its import.
    imported = getattr(sys.modules.get("dashscope.common.env"), attr, None)
    if value == imported:
        return None
    return value, f"dashscope.{attr}"


def _parse(name: str, value: Any, origin: str) -> Any:
    """``value`` as setting ``name`` holds it, or a ConfigurationError naming ``origin``."""
    if name == "backend" and value not in BACKENDS:
        raise ConfigurationError(
            f"unknown backend {value!r} (from {origin}); valid choices: {', '.join(BACKENDS)}"
        )
    if name == "instructions" and value not in INSTRUCTION_MODES:
        raise ConfigurationError(
            f"unknown instructions mode {value!r} (from {origin}); "
            f"valid choices: {', '.join(INSTRUCTION_MODES)}"
        )
    if name == "history" and value not in HISTORY_MODES:
        raise ConfigurationError(
            f"unknown history mode {value!r} (from {origin}); "
            f"valid choices: {', '.join(HISTORY_MODES)}"
        )
    if name in ("timeout", "lease_seconds", "lease_renew_seconds", "exit_timeout"):
        number = _number(value, float, origin, name)
        if not (number > 0 and math.isfinite(number)):
            raise ConfigurationError(f"{name} must be positive seconds, got {value!r} ({origin})")
        return number
    if name == "max_retries":
        count = _number(value, int, origin, "max_retries")
        if count < 0:
            raise ConfigurationError(f"max_retries must be 0 or more, got {value!r} ({origin})")
        return count
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise ConfigurationError(f"{name} must be a string, got {value!r} ({origin})")
    return value


def _number(value: Any, kind: type[float] | type[int], origin: str, name: str) -> Any:
    if isinstance(value, bool) or (isinstance(value, float) and kind is int):
        raise ConfigurationError(f"{name} must be {kind.__name__}, got {value!r} ({origin})")
    try:
        return kind(value)
    except (TypeError, ValueError):
        raise ConfigurationError(
            f"{name} must be {'a number' if kind is float else 'an integer'}, "
            f"got {value!r} ({origin})"
        ) from None
