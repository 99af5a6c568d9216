"""The live session as a pytest test: only with ``COMPAT_LIVE=1`` and a key (``nox -s live``)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(
        not (os.environ.get("COMPAT_LIVE") == "1" and os.environ.get("DASHSCOPE_API_KEY")),
        reason="live: needs COMPAT_LIVE=1 and DASHSCOPE_API_KEY (nox -s live)",
    ),
]


def test_the_live_programs_run_on_both_backends(tmp_path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from run_live import main

    assert main(["--out", str(tmp_path)]) == 0
    assert list(tmp_path.glob("*.jsonl"))
