"""``python -m compat doctor [--check]`` on the emulator: sources, masked key, probes."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

import compat
from compat.cli import main
from compat.testing import Emulator

dashscope = pytest.importorskip("dashscope")
pytest.importorskip("openai")

ROOT = Path(__file__).resolve().parents[2]
LONG_KEY = "sk-doctor0123456789abcdefWXYZ"


def rows(out: str) -> dict[str, str]:
    """The printed table as setting -> rest of the line."""
    table: dict[str, str] = {}
    for line in out.splitlines():
        name, sep, rest = line.partition("  ")
        if sep:
            table[name.strip()] = rest.strip()
    return table


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def test_settings_with_their_sources_and_the_key_masked(
    compat_emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    # the fixture sets dashscope.api_key in code (dashscope is imported): that wins over env
    monkeypatch.setattr(dashscope, "api_key", LONG_KEY)
    monkeypatch.setenv("COMPAT_HISTORY", "replay")
    monkeypatch.delenv("COMPAT_TIMEOUT", raising=False)
    monkeypatch.delenv("DASHSCOPE_TIMEOUT", raising=False)
    store = tmp_path / "s.sqlite3"
    compat.configure(store=str(store))
    try:
        assert main(["doctor"]) == 0
    finally:
        compat.configure(reset=True)
    out = capsys.readouterr().out
    assert LONG_KEY not in out
    table = rows(out)
    assert table["api key"] == "sk-…WXYZ   [in code (dashscope.api_key)]"
    assert table["store"] == f"{store}   [compat.configure()]"
    assert table["store schema"].startswith("not created yet")
    assert table["history"] == "replay   [env COMPAT_HISTORY]"
    assert table["max retries"] == "0   [default]"
    assert table["Responses base URL"] == (
        f"{compat_emulator.responses_base_url}   [env COMPAT_RESPONSES_BASE_URL]"
    )
    assert table["region"].startswith("custom host '127.0.0.1'")


def test_the_schema_version_is_read_without_migrating(
    compat_emulator: Emulator,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    from compat.store import open_store

    path = tmp_path / "s.sqlite3"
    open_store(path).close()
    monkeypatch.setenv("COMPAT_STORE", str(path))
    assert main(["doctor"]) == 0
    assert rows(capsys.readouterr().out)["store schema"] == (
        "schema version 1 (m001_records), current   [the store file]"
    )
    old = tmp_path / "old.sqlite3"
    conn = sqlite3.connect(old)
    conn.execute("CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at INTEGER)")
    conn.commit()
    conn.close()
    monkeypatch.setenv("COMPAT_STORE", str(old))
    assert main(["doctor"]) == 0
    schema = rows(capsys.readouterr().out)["store schema"]
    assert schema.startswith("schema version 0 (none); will migrate on first use: m001_records")
    conn = sqlite3.connect(old)
    assert conn.execute("SELECT count(*) FROM schema_migrations").fetchone() == (0,)
    conn.close()


def test_check_probes_both_apis(
    compat_emulator: Emulator, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["doctor", "--check"]) == 0
    table = rows(capsys.readouterr().out)
    assert table["Assistant API"] == "OK"
    assert table["Responses API"] == "OK"
    paths = [r.path for r in compat_emulator.requests]
    assert any(p.endswith("/assistants") for p in paths)
    assert any(p.endswith("/responses") for p in paths)


def test_check_with_a_wrong_key_fails_both_clearly(
    compat_emulator: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(dashscope, "api_key", LONG_KEY)
    assert main(["doctor", "--check"]) == 1
    out = capsys.readouterr().out
    assert LONG_KEY not in out
    table = rows(out)
    assert table["Assistant API"].startswith("FAILED: HTTP 401")
    assert table["Responses API"].startswith("FAILED: HTTP 401")


def test_check_with_an_unreachable_host(
    compat_emulator: Emulator, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    port = closed_port()
    monkeypatch.setattr(dashscope, "base_http_api_url", f"http://127.0.0.1:{port}/api/v1")
    monkeypatch.setenv("COMPAT_RESPONSES_BASE_URL", f"http://127.0.0.1:{port}/compatible-mode/v1")
    assert main(["doctor", "--check"]) == 1
    table = rows(capsys.readouterr().out)
    assert table["Assistant API"].startswith(f"FAILED: cannot reach http://127.0.0.1:{port}")
    assert table["Responses API"].startswith(f"FAILED: cannot reach http://127.0.0.1:{port}")


def test_doctor_as_a_subprocess_never_prints_the_key(compat_emulator: Emulator) -> None:
    env = {**os.environ, **compat_emulator.env(), "DASHSCOPE_API_KEY": LONG_KEY}
    env["COMPAT_STORE"] = "memory"
    result = subprocess.run(
        [sys.executable, "-m", "compat", "doctor", "--check"],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert LONG_KEY not in result.stdout + result.stderr
    assert "sk-…WXYZ   [env DASHSCOPE_API_KEY]" in result.stdout
    assert rows(result.stdout)["store"] == "memory   [env COMPAT_STORE]"
