"""benchmarks/aio_loop_stall.py runs on a small load and prints its table, goal and verdicts.

Nothing here looks at a timing: a verdict may say PASS or MISS, it must be there.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "aio_loop_stall.py"


def test_the_loop_benchmark_prints_both_phases_per_store_and_a_verdict_per_store() -> None:
    args = ("--rounds", "1", "--streams", "4", "--chunks", "3", "--pace", "0.001")
    out = subprocess.run(
        [sys.executable, str(SCRIPT), *args],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    ).stdout
    assert "--- starting" in out and "--- streaming" in out
    for store in ("memory", "sqlite inline", "sqlite"):
        assert re.search(rf"^   {store} +\d", out, re.M), out
    assert re.search(r"^Goal: .*<= 5 ms", out, re.M), out
    for store in ("memory", "sqlite"):
        assert re.search(rf"^   (PASS|MISS)  {store} +starting [\d.]+ ms, streaming", out, re.M), (
            out
        )
    assert "4/4" in out
