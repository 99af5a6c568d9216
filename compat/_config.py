"""Settings: environment variables, overridden by ``compat.configure()``, read on every call.

Reading per call (not at import) lets a program or a test switch backends between calls; the
cost is a handful of ``os.environ`` lookups per facade call, never per stream event.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, fields
from typing import Any

from compat.errors import ConfigurationError

__all__ = ["BACKENDS", "HISTORY_MODES", "Settings", "configure", "current_settings"]

BACKENDS = ("responses", "assistants")
HISTORY_MODES = ("chain", "replay")
DEFAULT_RESPONSES_BASE_URL = "https://dashscope.aliyuncs.com/compatible-mode/v1"


@dataclass(frozen=True)
class Settings:
    """One snapshot of compat's configuration (see DESIGN's configuration table)."""

    backend: str = "responses"
    api_key: str | None = None
    assistants_base_url: str | None = None
    responses_base_url: str = DEFAULT_RESPONSES_BASE_URL
    store: str | None = None
    history: str = "chain"
    #: how long a run's driver holds its lease without renewing it (renewed every third)
    lease_seconds: float = 15.0
    #: how long a process exiting normally waits for its non-streamed runs to finish
    exit_timeout: float = 30.0


#: setting name -> environment variable
_ENV = {
    "backend": "COMPAT_BACKEND",
    "api_key": "DASHSCOPE_API_KEY",
    "assistants_base_url": "DASHSCOPE_HTTP_BASE_URL",
    "responses_base_url": "COMPAT_RESPONSES_BASE_URL",
    "store": "COMPAT_STORE",
    "history": "COMPAT_HISTORY",
    "lease_seconds": "COMPAT_LEASE_SECONDS",
    "exit_timeout": "COMPAT_EXIT_TIMEOUT",
}
#: settings given in seconds: the environment's text is parsed, and must be a positive number
_SECONDS = ("lease_seconds", "exit_timeout")
_NAMES = frozenset(f.name for f in fields(Settings))
_overrides: dict[str, Any] = {}
_lock = threading.Lock()


def configure(**settings: Any) -> Settings:
    """Set compat's configuration in code; it wins over the environment.

    Accepts ``backend``, ``api_key``, ``assistants_base_url``, ``responses_base_url``, ``store``,
    ``history``, ``lease_seconds`` and ``exit_timeout``. A value of ``None`` removes that override (the environment applies again);
    ``configure(reset=True)`` removes them all. Returns the settings now in force.
    """
    reset = settings.pop("reset", False)
    unknown = sorted(set(settings) - _NAMES)
    if unknown:
        raise ConfigurationError(
            f"unknown setting(s) {', '.join(unknown)}; valid: {', '.join(sorted(_NAMES))}"
        )
    for name in _SECONDS:
        if settings.get(name) is not None:
            settings[name] = _seconds(settings[name], f"compat.configure({name}=...)")
    _check(Settings(**{k: v for k, v in settings.items() if v is not None}), "compat.configure()")
    with _lock:
        if reset:
            _overrides.clear()
        for name, value in settings.items():
            if value is None:
                _overrides.pop(name, None)
            else:
                _overrides[name] = value
    return _resolve()


def current_settings() -> Settings:
    """The settings in force now: ``configure()`` overrides, else the environment, else defaults."""
    result = _resolve()
    _check(result, None)
    return result


def _resolve() -> Settings:
    values: dict[str, Any] = {}
    env = os.environ
    for name, var in _ENV.items():
        if name in _overrides:
            values[name] = _overrides[name]
        elif env.get(var):
            values[name] = _seconds(env[var], var) if name in _SECONDS else env[var]
    return Settings(**values)


def _seconds(text: Any, origin: str) -> float:
    """A positive number of seconds, or ConfigurationError naming where it came from."""
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise ConfigurationError(f"{origin} must be a positive number of seconds, got {text!r}")
    return value


def _check(settings: Settings, source: str | None) -> None:
    """Raise ConfigurationError for a backend or history mode that does not exist."""
    for name, valid in (("backend", BACKENDS), ("history", HISTORY_MODES)):
        value = getattr(settings, name)
        if value not in valid:
            origin = source or ("compat.configure()" if name in _overrides else _ENV[name])
            label = "backend" if name == "backend" else "history mode"
            raise ConfigurationError(
                f"unknown {label} {value!r} (from {origin}); valid choices: {', '.join(valid)}"
            )
