"""The key's sources, highest first, as dashscope honours them; files read only when needed."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import compat
from compat._config import configure, current_settings
from compat.errors import AuthenticationError

VARIABLES = ("DASHSCOPE_API_KEY", "DASHSCOPE_API_KEY_FILE_PATH", "DASHSCOPE_CONFIG")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty HOME, no key in the environment, in code or in configure()."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for var in VARIABLES:
        monkeypatch.delenv(var, raising=False)
    for attr in ("api_key", "api_key_file_path"):
        monkeypatch.setattr(compat, attr, None)
    dashscope = sys.modules.get("dashscope")
    if dashscope is not None:
        env = sys.modules["dashscope.common.env"]
        for attr in ("api_key", "api_key_file_path"):
            monkeypatch.setattr(dashscope, attr, getattr(env, attr))
    configure(reset=True)
    yield tmp_path
    configure(reset=True)


def _write(path: Path, text: str) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_no_key_anywhere_is_none(home: Path) -> None:
    assert current_settings().key() is None


def test_default_key_file_is_read_stripped(home: Path) -> None:
    _write(home / ".dashscope" / "api_key", "  sk-from-default-file\n")
    assert current_settings().api_key is None  # files are not read to build the settings
    assert current_settings().key() == "sk-from-default-file"


def test_each_source_wins_over_the_ones_below_it(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = current_settings
    _write(home / ".dashscope" / "api_key", "sk-default-file")
    named = _write(home / "keys" / "named", "sk-named-file\n")
    monkeypatch.setenv("DASHSCOPE_API_KEY_FILE_PATH", named)
    assert settings().key() == "sk-named-file"

    in_code = _write(home / "keys" / "in-code", "sk-in-code-file")
    compat.api_key_file_path = in_code
    assert settings().key() == "sk-in-code-file"

    _write(home / ".dashscope" / "config.toml", 'api_key = "sk-config-toml"\nregion = "x"\n')
    assert settings().key() == "sk-config-toml"

    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-env")
    assert settings().key() == "sk-env"

    compat.api_key = "sk-compat-in-code"
    assert settings().key() == "sk-compat-in-code"

    configure(api_key="sk-configured")
    assert settings().key() == "sk-configured"

    assert settings().key("sk-per-call") == "sk-per-call"


def test_dashscope_config_names_the_config_file(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(home / ".dashscope" / "config.toml", 'api_key = "sk-default-config"\n')
    other = _write(home / "elsewhere.toml", 'api_key = "sk-other-config"\n')
    monkeypatch.setenv("DASHSCOPE_CONFIG", other)
    if sys.version_info < (3, 11):
        pytest.importorskip("tomli")
    assert current_settings().key() == "sk-other-config"


def test_config_file_without_a_key_falls_through_to_the_key_file(home: Path) -> None:
    _write(home / ".dashscope" / "config.toml", 'region = "ap-southeast-1"\n')
    _write(home / ".dashscope" / "api_key", "sk-default-file")
    assert current_settings().key() == "sk-default-file"


def test_a_named_key_file_that_is_missing_is_a_clear_error(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(home / ".dashscope" / "api_key", "sk-default-file")
    monkeypatch.setenv("DASHSCOPE_API_KEY_FILE_PATH", str(home / "missing"))
    with pytest.raises(AuthenticationError) as info:
        current_settings().key()
    assert str(info.value) == (
        f"cannot read the api key file {str(home / 'missing')!r} (named by api_key_file_path "
        "or DASHSCOPE_API_KEY_FILE_PATH): No such file or directory"
    )
    # an earlier source makes the file irrelevant, so it is not read at all
    assert current_settings().key("sk-per-call") == "sk-per-call"


def test_an_empty_default_key_file_is_no_key(home: Path) -> None:
    _write(home / ".dashscope" / "api_key", "\n")
    assert current_settings().key() is None


def test_a_broken_config_file_is_a_clear_error(home: Path) -> None:
    path = _write(home / ".dashscope" / "config.toml", "api_key = \n")
    if sys.version_info < (3, 11):
        pytest.importorskip("tomli")
    with pytest.raises(AuthenticationError, match=f"cannot read dashscope's config file '{path}'"):
        current_settings().key()
