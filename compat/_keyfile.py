"""The lowest key tiers: dashscope's ``config.toml`` and its key file, read as dashscope reads them.

What dashscope 2.0.2 does (read from its source, replicated here without importing it):

- ``dashscope/common/api_key.py`` (the 1.x path the Assistant API uses): ``dashscope.api_key``,
  else the file named by ``dashscope.api_key_file_path`` (``DASHSCOPE_API_KEY_FILE_PATH`` at
  import, or set in code; a missing named file is an error), else ``~/.dashscope/api_key`` if
  it exists. The file's text, stripped, is the key.
- ``dashscope/v2/_config.py``: explicit > ``dashscope.settings`` > ``DASHSCOPE_API_KEY`` >
  ``api_key`` in ``config.toml`` (``DASHSCOPE_CONFIG``, default ``~/.dashscope/config.toml``)
  > the key file as above.

compat keeps that order below its in-memory tiers (``compat._config``): ``config.toml``, then the
key file. Both are read only when a call needs a key and no earlier tier gave one, so local calls
never touch the disk for it.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from compat.errors import AuthenticationError

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG_FILE",
    "DEFAULT_KEY_FILE",
    "KEY_FILE_ENV",
    "key_from_files",
]

KEY_FILE_ENV = "DASHSCOPE_API_KEY_FILE_PATH"
CONFIG_ENV = "DASHSCOPE_CONFIG"
DEFAULT_KEY_FILE = "~/.dashscope/api_key"
DEFAULT_CONFIG_FILE = "~/.dashscope/config.toml"


def key_from_files(key_file_path: str | None) -> str | None:
    """The key from ``config.toml``, else from the key file, else None.

    ``key_file_path`` is the file named in code or by ``DASHSCOPE_API_KEY_FILE_PATH`` (None: the
    default ``~/.dashscope/api_key``, used only if it exists). A named file that cannot be read is
    an AuthenticationError, as dashscope's Assistant API fails on it too.
    """
    key = _config_file_key()
    if key:
        return key
    if key_file_path:
        try:
            return _read_key(Path(key_file_path).expanduser())
        except OSError as exc:
            raise AuthenticationError(
                f"cannot read the api key file {key_file_path!r} (named by "
                f"api_key_file_path or {KEY_FILE_ENV}): {exc.strerror or exc}"
            ) from exc
    default = Path(DEFAULT_KEY_FILE).expanduser()
    try:
        return _read_key(default)
    except OSError:
        # dashscope only reads the default file if it exists; an unreadable one is skipped too.
        return None


def _read_key(path: Path) -> str | None:
    return path.read_text(encoding="utf-8").strip() or None


def _config_file_key() -> str | None:
    """``api_key`` from dashscope 2.0's ``config.toml``, when the file and a TOML parser exist.

    Python 3.10 has no ``tomllib``; there the file is read only if ``tomli`` is installed
    (dashscope itself needs it on 3.10 for the same file).
    """
    path = Path(os.environ.get(CONFIG_ENV) or DEFAULT_CONFIG_FILE).expanduser()
    if not path.is_file():
        return None
    loads = _toml_loads()
    if loads is None:
        return None
    try:
        data = loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        # tomllib.TOMLDecodeError is a ValueError; dashscope fails on a bad file the same way.
        raise AuthenticationError(
            f"cannot read dashscope's config file {str(path)!r}: {exc}"
        ) from exc
    key = data.get("api_key") if isinstance(data, dict) else None
    return key if isinstance(key, str) and key else None


def _toml_loads() -> Any:
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib.loads
    try:  # Python 3.10: dashscope reads the file with tomli there, when installed
        import tomli  # type: ignore[import-not-found,unused-ignore]
    except ModuleNotFoundError:
        return None
    return tomli.loads
