"""The benchmark scripts run on a short stream and print every goal line; their server's framings.

Nothing here looks at a timing: a goal line may say PASS or MISS, it must be there.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
SHORT = ("--rounds", "1", "--deltas", "200")
#: Beyond the short run, what keeps each script quick (each has the option; defaults are longer).
QUICK = {
    "stream_throughput.py": ("--first-samples", "1"),
    "cold_start.py": ("--warmup", "0"),
    "http_clients.py": (),
    "concurrency.py": ("--threads", "4", "--processes", "2", "--runs", "2"),
}


@pytest.fixture(scope="module")
def outputs() -> dict[str, str]:
    """Each script's output, the scripts run side by side (each ends within its timeout)."""
    processes = {
        name: subprocess.Popen(
            [sys.executable, str(BENCHMARKS / name), *SHORT, *quick],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, quick in QUICK.items()
    }
    results, errors = {}, {}
    try:
        for name, process in processes.items():
            results[name], errors[name] = process.communicate(timeout=120)
    finally:
        for process in processes.values():  # a timeout leaves the others running: end them
            if process.poll() is None:
                process.kill()
                process.communicate()
    for name, process in processes.items():
        assert process.returncode == 0, f"{name} failed:\n{errors[name]}"
    return results


def _verdicts(output: str, pattern: str) -> list[str]:
    return re.findall(rf"^  (PASS|MISS)  {pattern}", output, flags=re.MULTILINE)


@pytest.mark.parametrize("framing", ["bulk", "lf", "crlf"])
def test_the_stream_benchmark_prints_every_goal_in_every_framing(
    outputs: dict[str, str], framing: str
) -> None:
    out = outputs["stream_throughput.py"]
    assert re.search(rf"^\[{framing}\] ", out, flags=re.MULTILINE)
    for anchor, bound in (("bare", "1.2"), ("dashscope", "0.5")):
        found = _verdicts(out, rf"compat/{anchor} +<= {bound} +\[ *{framing}\] +cpu ")
        assert len(found) == 1
    assert len(_verdicts(out, rf"first delta <= bare \+ 2 ms \[ *{framing}\]")) == 1
    openai_goals = _verdicts(out, rf"compat/openai +<= 0.1 +\[ *{framing}\]")
    assert len(openai_goals) == (1 if framing == "bulk" else 0)


def test_the_cold_start_benchmark_prints_its_goals(outputs: dict[str, str]) -> None:
    out = outputs["cold_start.py"]
    assert len(_verdicts(out, re.escape("compat/bare <= 1.5 (cpu): "))) == 1
    assert len(_verdicts(out, re.escape("compat/bare <= 1.5 (wall to first delta): "))) == 1
    assert len(_verdicts(out, "a local-only call does not import openai$")) == 1
    assert re.search(r"local call imported openai: (yes|no) ", out)


def test_the_http_client_benchmark_names_the_cheapest(outputs: dict[str, str]) -> None:
    out = outputs["http_clients.py"]
    for candidate in ("httpx2 iter_bytes", "httpx iter_bytes", "http.client chunked"):
        assert re.search(rf"^  {re.escape(candidate)} +\d", out, flags=re.MULTILINE)
    assert "urllib3 read_chunked" in out and "requests iter_content" in out
    assert re.search(r"^cheapest per event \(with the SSE parse\): \S", out, flags=re.MULTILINE)


def test_the_memory_benchmark_prints_its_goal_and_both_readers() -> None:
    # Sizes of its own (it has no --deltas): two short streams, one process per measurement.
    args = ("--rounds", "1", "--deltas-small", "50", "--deltas-large", "200")
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / "memory_flat.py"), *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    for reader in ("compat", "bare"):
        assert re.search(rf"^  {reader} +\d+\.\d\d MiB +\d", done.stdout, flags=re.MULTILINE)
    assert len(_verdicts(done.stdout, re.escape("compat large - small <= 5 MiB: "))) == 1


def test_the_concurrency_benchmark_prints_its_rows_lock_times_and_goals(
    outputs: dict[str, str],
) -> None:
    out = outputs["concurrency.py"]
    for row in (
        "4 threads, memory store",
        "4 threads, one SQLite file",
        "2 processes x 2 runs, memory stores",
        "2 processes x 2 runs, one SQLite file",
    ):
        assert re.search(rf"^  {re.escape(row)} +[\d,]+ ", out, flags=re.MULTILINE), row
    for row in (
        "4 threads, sqlite",
        "4 threads, memory",
        "2 processes, sqlite",
        "2 processes, memory",
    ):
        assert re.search(rf"^  {row} +\d+ +\d+\.\d  \| ", out, flags=re.MULTILINE), row
    assert len(_verdicts(out, re.escape("sqlite/memory events/s >= 0.8: "))) == 1
    assert len(_verdicts(out, re.escape("lock wait p99 <= 20 ms: "))) == 1
    assert re.search(r"^2 processes \(not a goal\): sqlite/memory events/s ", out, re.MULTILINE)


def _dechunk(writes: list[bytes]) -> list[bytes]:
    """The chunks of a chunked body (the head dropped), the terminating empty chunk included."""
    chunks = []
    for write in writes[1:]:
        size, _, rest = write.partition(b"\r\n")
        assert rest.endswith(b"\r\n")
        assert int(size, 16) == len(rest) - 2
        chunks.append(rest[:-2])
    return chunks


def test_the_server_frames_one_event_per_chunk_with_the_same_events() -> None:
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import _wire
    finally:
        sys.path.remove(str(BENCHMARKS))
    sse = b'event:a\ndata:{"x":"\xe4\xbd\xa0"}\n\nevent:b\ndata:{}\n\n'
    bulk = _wire.build(sse, "bulk")
    assert bulk[0].endswith(b"Content-Length: %d\r\n\r\n" % len(sse))
    assert b"".join(bulk[1:]) == sse
    assert _dechunk(_wire.build(sse, "lf")) == [
        b'event:a\ndata:{"x":"\xe4\xbd\xa0"}\n\n',
        b"event:b\ndata:{}\n\n",
        b"",
    ]
    crlf = _dechunk(_wire.build(sse, "crlf"))
    assert crlf == [c.replace(b"\n", b"\r\n") for c in _dechunk(_wire.build(sse, "lf"))]
    assert b"Transfer-Encoding: chunked\r\n" in _wire.build(sse, "crlf")[0]
