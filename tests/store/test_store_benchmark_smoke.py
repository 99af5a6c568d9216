"""benchmarks/store_cycles.py runs and prints a row per store and worker count."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "store_cycles.py"


def test_the_store_benchmark_prints_its_table() -> None:
    env = {k: v for k, v in os.environ.items() if k != "COMPAT_TEST_PG_URI"}
    out = subprocess.run(
        [sys.executable, str(SCRIPT), "--seconds", "0.2", "--workers", "1,2"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    ).stdout
    assert "no --pg-uri or COMPAT_TEST_PG_URI: PostgreSQL rows left out" in out
    rows = re.findall(r"^(memory|sqlite)\s+(\d+)\s+[\d.]+\s+[\d.]+x\s", out, flags=re.MULTILINE)
    assert rows == [("memory", "1"), ("memory", "2"), ("sqlite", "1"), ("sqlite", "2")]
