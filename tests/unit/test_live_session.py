"""The live session without a key (skipped, exit 0), and its recording proxy on the emulator."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from compat.testing import Emulator

ROOT = Path(__file__).resolve().parents[2]
LIVE = ROOT / "tests" / "live"


def test_without_a_key_the_live_session_skips_with_exit_0(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != "DASHSCOPE_API_KEY"}
    done = subprocess.run(
        [sys.executable, str(LIVE / "run_live.py"), "--out", str(tmp_path / "rec")],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "live: skipped: DASHSCOPE_API_KEY is not set (the live session needs a real key)"
    )
    assert not (tmp_path / "rec").exists()


def test_the_recording_proxy_relays_and_records_a_stream(
    compat_emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    openai = pytest.importorskip("openai")
    monkeypatch.syspath_prepend(str(LIVE))
    from recording_proxy import RecordingProxy

    sys.path.insert(0, str(ROOT / "tests" / "unit"))
    from test_live_fixtures import TERMINAL, replay

    with RecordingProxy(compat_emulator.responses_base_url, tmp_path) as proxy:
        client = openai.OpenAI(
            base_url=proxy.base_url("probe"), api_key=compat_emulator.api_key, max_retries=0
        )
        types = [
            event.type
            for event in client.responses.create(model="qwen-plus", input="Hello", stream=True)
        ]
        client.close()
    (path,) = proxy.recorded
    assert path.name == "probe-1.jsonl"
    recorded = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    assert [event["type"] for event in recorded] == types
    assert compat_emulator.api_key not in path.read_text("utf-8")
    names = replay(path)
    assert [name for name in names if name in TERMINAL] == ["thread.run.completed"]


def test_the_live_programs_run_end_to_end_on_the_emulator(
    compat_emulator: Emulator, tmp_path: Path
) -> None:
    """The whole live session, with the emulator standing in for DashScope (its key set)."""
    env = {**os.environ, **compat_emulator.env()}
    env.pop("COMPAT_BACKEND", None)
    out = tmp_path / "recorded"
    done = subprocess.run(
        [sys.executable, str(LIVE / "run_live.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    for heading in ("code tutor", "function", "search", "two_runs", "instructions probe"):
        assert f"=== {heading}" in done.stdout
    assert done.stdout.count("--- assistants ---") == done.stdout.count("--- responses ---") == 4
    recorded = sorted(p.name.rsplit("-", 1)[0] for p in out.glob("*.jsonl"))
    assert recorded == ["code_tutor", "function", "instructions", "search", "two_runs", "two_runs"]
    sys.path.insert(0, str(ROOT / "tests" / "unit"))
    from test_live_fixtures import TERMINAL, replay

    for path in out.glob("*.jsonl"):
        assert [n for n in replay(path) if n in TERMINAL] == ["thread.run.completed"], path
