"""Settings: environment, configure() overrides, backend selection errors."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

import compat
from compat import backends
from compat._config import DEFAULT_RESPONSES_BASE_URL, Settings, configure, current_settings
from compat.errors import ConfigurationError

ROOT = Path(__file__).resolve().parents[2]
ENV_VARS = (
    "COMPAT_BACKEND",
    "DASHSCOPE_API_KEY",
    "DASHSCOPE_HTTP_BASE_URL",
    "COMPAT_RESPONSES_BASE_URL",
    "COMPAT_STORE",
    "COMPAT_HISTORY",
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    configure(reset=True)
    yield monkeypatch
    configure(reset=True)


def test_defaults_without_environment(clean_env: pytest.MonkeyPatch) -> None:
    assert current_settings() == Settings(
        backend="responses",
        api_key=None,
        assistants_base_url=None,
        responses_base_url=DEFAULT_RESPONSES_BASE_URL,
        store=None,
        history="chain",
    )


def test_environment_is_read_on_every_call(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("COMPAT_BACKEND", "assistants")
    clean_env.setenv("DASHSCOPE_API_KEY", "sk-1")
    clean_env.setenv("DASHSCOPE_HTTP_BASE_URL", "http://127.0.0.1:1/api/v1")
    clean_env.setenv("COMPAT_RESPONSES_BASE_URL", "http://127.0.0.1:1/compatible-mode/v1")
    clean_env.setenv("COMPAT_STORE", "memory")
    clean_env.setenv("COMPAT_HISTORY", "replay")
    assert current_settings() == Settings(
        backend="assistants",
        api_key="sk-1",
        assistants_base_url="http://127.0.0.1:1/api/v1",
        responses_base_url="http://127.0.0.1:1/compatible-mode/v1",
        store="memory",
        history="replay",
    )
    clean_env.setenv("COMPAT_BACKEND", "responses")
    assert current_settings().backend == "responses"


def test_configure_wins_over_environment_and_none_clears(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("COMPAT_BACKEND", "assistants")
    assert configure(backend="responses", store="memory").backend == "responses"
    assert current_settings().store == "memory"
    assert configure(backend=None).backend == "assistants"
    assert configure(reset=True).store is None


def test_unknown_backend_names_the_valid_choices(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("COMPAT_BACKEND", "assistant")
    with pytest.raises(ConfigurationError) as info:
        current_settings()
    assert str(info.value) == (
        "unknown backend 'assistant' (from COMPAT_BACKEND); valid choices: responses, assistants"
    )
    with pytest.raises(ConfigurationError, match=r"from compat.configure\(\)"):
        configure(backend="nope")


def test_unknown_backend_fails_the_facade_call_before_any_request(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("COMPAT_BACKEND", "openai")
    with pytest.raises(ConfigurationError, match="valid choices: responses, assistants"):
        compat.Threads.create()


def test_unknown_history_mode_and_unknown_setting(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("COMPAT_HISTORY", "full")
    with pytest.raises(ConfigurationError, match="valid choices: chain, replay"):
        current_settings()
    with pytest.raises(ConfigurationError, match="unknown setting"):
        configure(bakend="responses")


def test_missing_extra_names_the_pip_install_line() -> None:
    # -S: no site-packages, so neither SDK is importable; compat itself is stdlib-only.
    code = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "import compat\n"
        "from compat.errors import ConfigurationError\n"
        "compat.configure(backend='assistants')\n"
        "try:\n"
        "    compat.Threads.create()\n"
        "except ConfigurationError as exc:\n"
        "    print(exc)\n"
    )
    out = subprocess.run(
        [sys.executable, "-S", "-c", code, str(ROOT)], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == (
        "the 'assistants' backend needs the dashscope package, which is not installed: "
        "pip install 'compat[assistants]'"
    )


def test_import_compat_imports_neither_sdk() -> None:
    code = (
        "import sys; import compat, compat.types, compat.errors, compat.testing\n"
        "print(sorted(m for m in ('dashscope', 'openai', 'httpx', 'requests') if m in sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    )
    assert out.stdout.strip() == "[]"


def test_backend_instances_are_built_once_per_name(clean_env: pytest.MonkeyPatch) -> None:
    pytest.importorskip("dashscope")
    settings = configure(backend="assistants")
    assert backends.get_backend(settings) is backends.get_backend(settings)
    assert backends.get_backend(settings).name == "assistants"
