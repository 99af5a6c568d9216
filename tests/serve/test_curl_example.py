"""examples/curl_proxy.sh runs as documented against a proxy whose upstream is the emulator."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from compat.serve.server import BackgroundServer
from compat.testing import Emulator, Scenario

SCRIPT = Path(__file__).resolve().parents[2] / "examples" / "curl_proxy.sh"


@pytest.mark.skipif(shutil.which("curl") is None, reason="needs curl")
def test_the_curl_example_streams_a_run_and_lists_the_messages(
    proxy: BackgroundServer, compat_emulator: Emulator
) -> None:
    compat_emulator.queue(Scenario.text("Hello, curl.", chunks=["Hello, ", "curl."]))
    env = dict(os.environ, BASE=proxy.base_url, DASHSCOPE_API_KEY=compat_emulator.api_key)
    result = subprocess.run(
        ["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("assistant: asst_")
    assert lines[1].startswith("thread: thread_")
    events = lines[3 : lines.index("--- the thread's messages, oldest first")]
    assert events == [
        "event:thread.run.created",
        "event:thread.run.queued",
        "event:thread.run.in_progress",
        "event:thread.run.step.created",
        "event:thread.run.step.in_progress",
        "event:thread.message.created",
        "event:thread.message.in_progress",
        "event:thread.message.delta",
        "event:thread.message.delta",
        "event:thread.message.completed",
        "event:thread.run.step.completed",
        "event:thread.run.completed",
        "event:done",
    ]
    assert lines[-2:] == ['"value":"Say hello to curl."', '"value":"Hello, curl."']
