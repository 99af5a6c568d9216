"""Settings: environment, configure() overrides, backend selection errors."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import compat
from compat import backends
from compat._config import (
    DEFAULT_RESPONSES_BASE_URL,
    Settings,
    compatible_mode_url,
    configure,
    current_settings,
)
from compat.backends import CallOptions
from compat.errors import ConfigurationError

ROOT = Path(__file__).resolve().parents[2]
ENV_VARS = (
    "COMPAT_BACKEND",
    "DASHSCOPE_API_KEY",
    "DASHSCOPE_HTTP_BASE_URL",
    "COMPAT_RESPONSES_BASE_URL",
    "COMPAT_STORE",
    "COMPAT_HISTORY",
    "DASHSCOPE_API_KEY_FILE_PATH",
    "COMPAT_TIMEOUT",
    "DASHSCOPE_TIMEOUT",
    "COMPAT_MAX_RETRIES",
    "DASHSCOPE_MAX_RETRIES",
    "COMPAT_LEASE_SECONDS",
    "COMPAT_LEASE_RENEW_SECONDS",
)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[pytest.MonkeyPatch]:
    """No compat or dashscope setting in the environment, in code or in configure()."""
    for var in ENV_VARS:
        monkeypatch.delenv(var, raising=False)
    for attr in ("api_key", "api_key_file_path", "base_http_api_url"):
        monkeypatch.setattr(compat, attr, None)
    dashscope = sys.modules.get("dashscope")
    if dashscope is not None:  # as if imported with this environment, nothing set in code
        env = sys.modules["dashscope.common.env"]
        for attr in ("api_key", "api_key_file_path", "base_http_api_url"):
            monkeypatch.setattr(dashscope, attr, getattr(env, attr))
    configure(reset=True)
    yield monkeypatch
    for var in ENV_VARS:  # an invalid value a test set must not fail the reset
        monkeypatch.delenv(var, raising=False)
    configure(reset=True)


def test_defaults_without_environment(clean_env: pytest.MonkeyPatch) -> None:
    assert current_settings() == Settings(
        backend="responses",
        api_key=None,
        api_key_file_path=None,
        assistants_base_url=None,
        responses_base_url=DEFAULT_RESPONSES_BASE_URL,
        store=None,
        history="chain",
        timeout=None,
        max_retries=0,
    )


def test_environment_is_read_on_every_call(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("COMPAT_BACKEND", "assistants")
    clean_env.setenv("DASHSCOPE_API_KEY", "sk-1")
    clean_env.setenv("DASHSCOPE_HTTP_BASE_URL", "http://127.0.0.1:1/api/v1")
    clean_env.setenv("COMPAT_RESPONSES_BASE_URL", "http://127.0.0.1:1/compatible-mode/v1")
    clean_env.setenv("COMPAT_STORE", "memory")
    clean_env.setenv("COMPAT_HISTORY", "replay")
    clean_env.setenv("DASHSCOPE_API_KEY_FILE_PATH", "/keys/ds")
    clean_env.setenv("COMPAT_TIMEOUT", "7.5")
    clean_env.setenv("COMPAT_MAX_RETRIES", "2")
    assert current_settings() == Settings(
        backend="assistants",
        api_key="sk-1",
        api_key_file_path="/keys/ds",
        assistants_base_url="http://127.0.0.1:1/api/v1",
        responses_base_url="http://127.0.0.1:1/compatible-mode/v1",
        store="memory",
        history="replay",
        timeout=7.5,
        max_retries=2,
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
        "unknown backend 'assistant' (from COMPAT_BACKEND); "
        "valid choices: responses, assistants, shadow"
    )
    with pytest.raises(ConfigurationError, match=r"from compat.configure\(\)"):
        configure(backend="nope")


def test_unknown_backend_fails_the_facade_call_before_any_request(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("COMPAT_BACKEND", "openai")
    with pytest.raises(ConfigurationError, match="valid choices: responses, assistants, shadow"):
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
        "pip install 'dashscope-compat[assistants]'"
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


# -- the Responses base URL follows the Assistant API's region --------------------------------


@pytest.mark.parametrize(
    ("http_base_url", "responses_base_url"),
    [
        ("https://dashscope.aliyuncs.com/api/v1", DEFAULT_RESPONSES_BASE_URL),
        (
            "https://dashscope-intl.aliyuncs.com/api/v1",
            "https://dashscope-intl.aliyuncs.com/compatible-mode/v1",
        ),
        (
            "https://dashscope-us.aliyuncs.com/api/v1/",
            "https://dashscope-us.aliyuncs.com/compatible-mode/v1",
        ),
        (
            "https://ws123.ap-southeast-1.maas.aliyuncs.com/api/v1",
            "https://ws123.ap-southeast-1.maas.aliyuncs.com/compatible-mode/v1",
        ),
        ("http://127.0.0.1:8080/api/v1", "http://127.0.0.1:8080/compatible-mode/v1"),
        ("https://gw.example.com/ds/api/v1", "https://gw.example.com/ds/compatible-mode/v1"),
        ("https://gw.example.com", "https://gw.example.com/compatible-mode/v1"),
        ("https://gw.example.com/other", "https://gw.example.com/compatible-mode/v1"),
    ],
)
def test_compatible_mode_url_of_each_host(http_base_url: str, responses_base_url: str) -> None:
    assert compatible_mode_url(http_base_url) == responses_base_url


def test_a_base_url_that_is_no_url_is_a_clear_error(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("DASHSCOPE_HTTP_BASE_URL", "dashscope-intl.aliyuncs.com/api/v1")
    with pytest.raises(ConfigurationError, match="set COMPAT_RESPONSES_BASE_URL"):
        current_settings()
    clean_env.setenv("COMPAT_RESPONSES_BASE_URL", "https://dashscope-intl.aliyuncs.com/x/v1")
    assert current_settings().responses_base_url == "https://dashscope-intl.aliyuncs.com/x/v1"


def test_international_base_url_in_the_environment_moves_the_responses_url(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("DASHSCOPE_HTTP_BASE_URL", "https://dashscope-intl.aliyuncs.com/api/v1")
    settings = current_settings()
    assert settings.assistants_base_url == "https://dashscope-intl.aliyuncs.com/api/v1"
    assert settings.responses_base_url == "https://dashscope-intl.aliyuncs.com/compatible-mode/v1"
    clean_env.setenv("COMPAT_RESPONSES_BASE_URL", "https://proxy.example/compatible-mode/v1")
    assert current_settings().responses_base_url == "https://proxy.example/compatible-mode/v1"
    configure(responses_base_url="https://cfg.example/compatible-mode/v1")
    assert current_settings().responses_base_url == "https://cfg.example/compatible-mode/v1"


def test_compat_module_attributes_set_in_code_win_over_the_environment(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("DASHSCOPE_API_KEY", "sk-env")
    clean_env.setenv("DASHSCOPE_HTTP_BASE_URL", "https://dashscope.aliyuncs.com/api/v1")
    clean_env.setenv("DASHSCOPE_API_KEY_FILE_PATH", "/env/key")
    compat.api_key = "sk-code"
    compat.base_http_api_url = "https://dashscope-intl.aliyuncs.com/api/v1"
    compat.api_key_file_path = "/code/key"
    settings = current_settings()
    assert settings.api_key == "sk-code"
    assert settings.api_key_file_path == "/code/key"
    assert settings.assistants_base_url == "https://dashscope-intl.aliyuncs.com/api/v1"
    assert settings.responses_base_url == "https://dashscope-intl.aliyuncs.com/compatible-mode/v1"
    # configure() wins over in-code attributes; None hands back to them
    assert configure(api_key="sk-configured").api_key == "sk-configured"
    assert configure(api_key=None).api_key == "sk-code"
    compat.api_key = None
    assert current_settings().api_key == "sk-env"


def test_dashscope_attributes_count_only_when_set_in_code(clean_env: pytest.MonkeyPatch) -> None:
    dashscope = pytest.importorskip("dashscope")
    env = sys.modules["dashscope.common.env"]
    # dashscope imported while DASHSCOPE_API_KEY was sk-old: its import-time copy is no setting
    # made in code, so the environment as it is now applies.
    clean_env.setattr(env, "api_key", "sk-old")
    clean_env.setattr(dashscope, "api_key", "sk-old")
    clean_env.setattr(env, "base_http_api_url", "https://dashscope.aliyuncs.com/api/v1")
    clean_env.setattr(dashscope, "base_http_api_url", "https://dashscope.aliyuncs.com/api/v1")
    clean_env.setenv("DASHSCOPE_API_KEY", "sk-now")
    clean_env.setenv("DASHSCOPE_HTTP_BASE_URL", "http://127.0.0.1:9/api/v1")
    settings = current_settings()
    assert (settings.api_key, settings.assistants_base_url) == (
        "sk-now",
        "http://127.0.0.1:9/api/v1",
    )
    # set in code (dashscope.set_region() assigns base_http_api_url the same way): it wins
    clean_env.setattr(dashscope, "api_key", "sk-code")
    clean_env.setattr(dashscope, "base_http_api_url", "https://dashscope-intl.aliyuncs.com/api/v1")
    clean_env.setattr(dashscope, "api_key_file_path", "/code/key")
    settings = current_settings()
    assert settings.api_key == "sk-code"
    assert settings.api_key_file_path == "/code/key"
    assert settings.assistants_base_url == "https://dashscope-intl.aliyuncs.com/api/v1"
    assert settings.responses_base_url == "https://dashscope-intl.aliyuncs.com/compatible-mode/v1"
    # compat's own attribute is the more specific of the two
    compat.api_key = "sk-compat"
    assert current_settings().api_key == "sk-compat"


# -- timeouts and retries ----------------------------------------------------------------------


def test_timeout_and_retries_fall_back_to_dashscopes_variables(
    clean_env: pytest.MonkeyPatch,
) -> None:
    clean_env.setenv("DASHSCOPE_TIMEOUT", "30")
    clean_env.setenv("DASHSCOPE_MAX_RETRIES", "3")
    assert (current_settings().timeout, current_settings().max_retries) == (30.0, 3)
    clean_env.setenv("COMPAT_TIMEOUT", "12.5")
    clean_env.setenv("COMPAT_MAX_RETRIES", "0")
    assert (current_settings().timeout, current_settings().max_retries) == (12.5, 0)
    settings = configure(timeout=5, max_retries=1)
    assert (settings.timeout, settings.max_retries) == (5.0, 1)


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        ("COMPAT_TIMEOUT", "soon", "timeout must be a number, got 'soon' (COMPAT_TIMEOUT)"),
        ("COMPAT_TIMEOUT", "0", "timeout must be positive seconds, got '0' (COMPAT_TIMEOUT)"),
        ("DASHSCOPE_TIMEOUT", "inf", "timeout must be positive seconds, got 'inf'"),
        ("COMPAT_MAX_RETRIES", "1.5", "max_retries must be an integer, got '1.5'"),
        ("DASHSCOPE_MAX_RETRIES", "-1", "max_retries must be 0 or more, got '-1'"),
    ],
)
def test_bad_timeout_or_retries_name_their_source(
    clean_env: pytest.MonkeyPatch, variable: str, value: str, message: str
) -> None:
    clean_env.setenv(variable, value)
    with pytest.raises(ConfigurationError) as info:
        current_settings()
    assert message in str(info.value)
    assert variable in str(info.value)


def test_bad_values_given_to_configure_change_nothing(clean_env: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigurationError, match=r"max_retries must be int, got 1.0 \(compat"):
        configure(store="memory", max_retries=1.0)
    with pytest.raises(ConfigurationError, match="timeout must be positive"):
        configure(timeout=-1)
    with pytest.raises(ConfigurationError, match="api_key must be a string"):
        configure(api_key=123)
    assert current_settings() == Settings()


def test_lease_renewal_defaults_to_a_third_of_the_lease(clean_env: pytest.MonkeyPatch) -> None:
    settings = current_settings()
    assert (settings.lease_seconds, settings.lease_renew_seconds) == (15.0, None)
    assert settings.renew_seconds == 5.0
    clean_env.setenv("COMPAT_LEASE_SECONDS", "0.9")
    assert current_settings().renew_seconds == pytest.approx(0.3)
    assert "lease_renew_seconds=None" in repr(current_settings())


def test_lease_renewal_from_the_environment_and_configure(clean_env: pytest.MonkeyPatch) -> None:
    clean_env.setenv("COMPAT_LEASE_RENEW_SECONDS", "2.5")
    settings = current_settings()
    assert (settings.lease_renew_seconds, settings.renew_seconds) == (2.5, 2.5)
    assert "lease_renew_seconds=2.5" in repr(settings)
    settings = configure(lease_seconds=60, lease_renew_seconds=10)
    assert (settings.lease_seconds, settings.renew_seconds) == (60.0, 10.0)
    assert configure(lease_renew_seconds=None).renew_seconds == 2.5  # the environment's again


@pytest.mark.parametrize(
    ("lease", "renew", "message"),
    [
        (
            None,
            "15",
            "lease_renew_seconds (15, from COMPAT_LEASE_RENEW_SECONDS) must be shorter "
            "than lease_seconds (15, from the default)",
        ),
        (
            "1",
            "2",
            "lease_renew_seconds (2, from COMPAT_LEASE_RENEW_SECONDS) must be shorter "
            "than lease_seconds (1, from COMPAT_LEASE_SECONDS)",
        ),
        (
            None,
            "0",
            "lease_renew_seconds must be positive seconds, got '0' (COMPAT_LEASE_RENEW_SECONDS)",
        ),
        (None, "-1", "lease_renew_seconds must be positive seconds, got '-1'"),
        (None, "soon", "lease_renew_seconds must be a number, got 'soon'"),
    ],
)
def test_a_renewal_that_is_not_shorter_than_the_lease_is_refused(
    clean_env: pytest.MonkeyPatch, lease: str | None, renew: str, message: str
) -> None:
    if lease is not None:
        clean_env.setenv("COMPAT_LEASE_SECONDS", lease)
    clean_env.setenv("COMPAT_LEASE_RENEW_SECONDS", renew)
    with pytest.raises(ConfigurationError) as info:
        current_settings()
    assert message in str(info.value)


def test_configure_refuses_a_renewal_not_shorter_than_the_lease_and_keeps_what_was_set(
    clean_env: pytest.MonkeyPatch,
) -> None:
    configure(store="memory", lease_seconds=3)
    with pytest.raises(ConfigurationError, match=r"\(3, from compat.configure\(\)\)"):
        configure(lease_renew_seconds=3)
    with pytest.raises(ConfigurationError, match="must be shorter than lease_seconds"):
        configure(lease_seconds=1, lease_renew_seconds=2)
    with pytest.raises(ConfigurationError, match="lease_renew_seconds must be positive"):
        configure(lease_renew_seconds=0)
    with pytest.raises(ConfigurationError, match="must be shorter than lease_seconds"):
        configure(reset=True, lease_renew_seconds=20)
    settings = current_settings()
    assert (settings.store, settings.lease_seconds, settings.lease_renew_seconds) == (
        "memory",
        3.0,
        None,
    )
    assert configure(lease_renew_seconds=2.9).renew_seconds == 2.9


# -- the key is never shown ------------------------------------------------------------------


def test_reprs_mask_the_key(clean_env: pytest.MonkeyPatch) -> None:
    key = "sk-0123456789abcdef0123"
    settings = configure(api_key=key)
    shown = repr(settings)
    assert key not in shown
    assert "api_key='sk-…0123'" in shown
    assert "backend='responses'" in shown
    options = CallOptions(settings, workspace="ws", api_key="sk-percall-0123456789", extra={})
    assert "0123456789" not in repr(options)
    assert key not in repr(options)
    assert repr(configure(api_key="short")).count("api_key='***'") == 1
    assert "api_key=None" in repr(Settings())
