"""``python -m compat doctor [--check]``: the settings in force, where each came from, and probes.

Every setting is shown with its source (``configure()``, set in code, the environment variable,
the key file, derived, or the default), resolved as ``compat._config`` resolves it. The key is
masked (``compat._log.mask_key``). The store's schema is read from its ``schema_migrations``
table without opening the store (which would migrate it). ``--check`` sends one cheap request
to each API with the key (the Assistant API: list one assistant; the Responses API: a tiny
response) and says what works. Exit status: 0, or 1 when ``--check`` finds an API that fails;
2 when the settings themselves are invalid.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from compat import _config
from compat._log import mask_key, redact

__all__ = ["add_parser", "probe_assistants", "probe_responses", "report", "run", "sources"]

#: The model of the ``--check`` Responses probe: qwen-plus is on the Responses API's model list
#: in both Beijing and Singapore (reference notes, responses-api.md "Models"; lists per region
#: differ and change, so a 4xx naming the model says the model, not the key, is the problem).
PROBE_MODEL = "qwen-plus"
#: Seconds the Responses probe waits (the Assistant probe uses dashscope's own timeout).
PROBE_TIMEOUT = 20.0


def add_parser(subparsers: Any) -> None:
    """Add ``doctor`` to the ``python -m compat`` parser."""
    parser = subparsers.add_parser(
        "doctor",
        help="show the effective settings and where each came from; --check probes the APIs",
        description="Print compat's effective settings, each with its source, the key masked. "
        "With --check, send one cheap request to the Assistant API and one to the Responses "
        "API with the key and say what works.",
    )
    parser.add_argument(
        "--check", action="store_true", help="probe both APIs with the key (network)"
    )
    parser.set_defaults(handler=run)


def sources() -> dict[str, str]:
    """Setting name → where its value in ``current_settings()`` came from (same precedence)."""
    found: dict[str, str] = {}
    for name, variables in _config._ENV.items():
        if name in _config._overrides:
            found[name] = "compat.configure()"
            continue
        attr = _config._IN_CODE.get(name)
        in_code = _config._set_in_code(attr) if attr is not None else None
        if in_code is not None:
            found[name] = f"in code ({in_code[1]})"
            continue
        var = next((v for v in variables if os.environ.get(v)), None)
        found[name] = f"env {var}" if var else "default"
    if found["responses_base_url"] == "default" and found["assistants_base_url"] != "default":
        found["responses_base_url"] = "derived from the Assistant API base URL"
    return found


def _key_source(settings: _config.Settings, source: str) -> tuple[str | None, str]:
    if settings.api_key:
        return settings.api_key, source
    try:
        from compat._keyfile import key_from_files

        key = key_from_files(settings.api_key_file_path)
    except Exception as exc:  # an unreadable named key file
        return None, f"error: {exc}"
    return (key, "key file / dashscope config.toml") if key else (None, "not set")


def region(url: str) -> str:
    """Which DashScope region a base URL names."""
    host = urlsplit(url).hostname or ""
    if host == "dashscope-intl.aliyuncs.com":
        return "international (Singapore)"
    if host == "dashscope.aliyuncs.com":
        return "China (Beijing)"
    return f"custom host {host or url!r}"


def store_status(spec: str | None) -> tuple[str, str]:
    """The store's location and its schema, read without migrating it."""
    if spec == "memory":
        return "memory", "in memory (nothing kept between processes)"
    from compat.store import default_store_path
    from compat.store.sqlite import MIGRATIONS

    path = Path(spec).expanduser() if spec else default_store_path()
    if not path.exists():
        return str(path), "not created yet (made on first use)"
    known = [m.__name__ for m in MIGRATIONS]
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            done = [name for (name,) in conn.execute("SELECT name FROM schema_migrations")]
        finally:
            conn.close()
    except sqlite3.Error as exc:
        return str(path), f"unreadable: {exc}"
    if set(done) - set(known):
        return str(path), f"newer than this compat ({', '.join(sorted(done))})"
    pending = [name for name in known if name not in done]
    version = f"schema version {len(done)} ({done[-1] if done else 'none'})"
    if pending:
        return str(path), f"{version}; will migrate on first use: {', '.join(pending)}"
    return str(path), f"{version}, current"


def report(settings: _config.Settings) -> list[tuple[str, str, str]]:
    """(setting, value shown, source) rows; the key masked."""
    src = sources()
    key, key_src = _key_source(settings, src["api_key"])
    store_path, schema = store_status(settings.store)
    timeout = (
        f"{settings.timeout:g}s"
        if settings.timeout
        else f"{_config.DEFAULT_TIMEOUT:g}s (responses), dashscope's own (assistants)"
    )
    return [
        ("backend", settings.backend, src["backend"]),
        ("api key", mask_key(key) or "(none)", key_src),
        ("store", store_path, src["store"]),
        ("store schema", schema, "the store file"),
        (
            "Assistant API base URL",
            settings.assistants_base_url or "dashscope's default",
            src["assistants_base_url"],
        ),
        ("Responses base URL", settings.responses_base_url, src["responses_base_url"]),
        ("region", region(settings.responses_base_url), "from the Responses base URL"),
        ("history", settings.history, src["history"]),
        ("timeout", timeout, src["timeout"]),
        ("max retries", str(settings.max_retries), src["max_retries"]),
        ("lease", f"{settings.lease_seconds:g}s", src["lease_seconds"]),
        (
            "lease renewal",
            f"every {settings.renew_seconds:g}s",
            src["lease_renew_seconds"]
            if settings.lease_renew_seconds is not None
            else "a third of the lease",
        ),
        ("exit timeout", f"{settings.exit_timeout:g}s", src["exit_timeout"]),
        ("log", _log_setting(), "env COMPAT_LOG" if os.environ.get("COMPAT_LOG") else "default"),
    ]


def _log_setting() -> str:
    return os.environ.get("COMPAT_LOG") or "off"


def probe_assistants(settings: _config.Settings) -> str | None:
    """None if the Assistant API answers with this key, else why not."""
    from compat.backends import CallOptions
    from compat.backends.assistants import AssistantsBackend

    try:
        # dashscope's own request timeout applies (its list call takes no timeout argument)
        reply = AssistantsBackend().list_assistants({"limit": 1}, CallOptions(settings=settings))
    except Exception as exc:
        return _failure(exc, settings.assistants_base_url or "the Assistant API")
    if reply.get("status_code") != 200:
        return f"HTTP {reply.get('status_code')} {reply.get('code')}: {reply.get('message')}"
    return None


def probe_responses(settings: _config.Settings) -> str | None:
    """None if the Responses API answers with this key, else why not."""
    import openai

    key = settings.key()
    if not key:
        return "no api key"
    client = openai.OpenAI(
        base_url=settings.responses_base_url, api_key=key, timeout=PROBE_TIMEOUT, max_retries=0
    )
    try:
        client.responses.create(model=PROBE_MODEL, input="Reply with OK.")
    except openai.APIStatusError as exc:
        body = exc.body if isinstance(exc.body, dict) else {}
        detail = body.get("message") or body.get("error") or exc.message
        return f"HTTP {exc.status_code}: {detail}"
    except Exception as exc:
        return _failure(exc, settings.responses_base_url)
    finally:
        client.close()
    return None


def _failure(exc: BaseException, where: str) -> str:
    name = type(exc).__name__
    if "Connect" in name or "Connection" in name or isinstance(exc, OSError):
        return f"cannot reach {where} ({name})"
    if "Timeout" in name:
        return f"no answer from {where} in time ({name})"
    return f"{name}: {exc}"


def run(args: argparse.Namespace) -> int:
    """Print the settings; with ``--check``, probe both APIs."""
    try:
        settings = _config.current_settings()
    except Exception as exc:  # ConfigurationError: a bad value somewhere
        print(f"doctor: {exc}", file=sys.stderr)
        return 2
    rows = report(settings)
    width = max(len(name) for name, _, _ in rows)
    for name, value, source in rows:
        print(f"{name:<{width}}  {value}" + (f"   [{source}]" if source else ""))
    if not args.check:
        return 0
    print()
    failed = False
    for api, probe in (("Assistant API", probe_assistants), ("Responses API", probe_responses)):
        problem = probe(settings)
        problem = None if problem is None else redact(problem)
        failed = failed or problem is not None
        print(f"{api:<{width}}  " + ("OK" if problem is None else f"FAILED: {problem}"))
    return 1 if failed else 0
