"""What a fresh process pays to stream its first run through compat, against a bare reader.

Fresh Python processes, started alternately (which goes first swaps round by round):

* compat -- ``Threads.create`` then ``Runs.create(stream=True)`` on the responses backend, on
  a SQLite store in a temporary directory (the assistant was created there beforehand, as a
  legacy program's assistant is), ``COMPAT_RESPONSES_BASE_URL`` pointing at the local server;
* bare   -- httpx2 (the openai SDK's HTTP client) posting the same request and reading the same
  stream, ``json.loads`` per ``data:`` line.

The stream (``--deltas`` non-ASCII deltas, one event per chunk) comes from ``_wire.py``'s server
process. Per process: CPU time of the whole process (``getrusage(RUSAGE_CHILDREN)`` around its
wait: start-up, imports, the stream, exit) and the wall time from just before it is started to
its first text delta (``time.monotonic`` is one clock for every process). Medians of
``--rounds``; the goal is compat/bare <= 1.5.

Then a local-only call, ``import compat; compat.Assistants.create(...)`` on the memory store:
its CPU and wall, and whether it imported ``openai`` (it should not: nothing went upstream).

    python benchmarks/cold_start.py [--rounds 10] [--deltas 100]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _wire  # the benchmarks' own helper, beside this file

GOAL = 1.5
STREAMS = ("compat", "bare", "bare+openai")

#: Each child prints ``<monotonic time of the first text delta> <characters read>``.
COMPAT_CHILD = """
import sys, time
from compat import Runs, Threads
thread = Threads.create(messages=[{"role": "user", "content": "Count."}])
first, n = 0.0, 0
for event, data in Runs.create(thread.id, assistant_id=sys.argv[1], stream=True):
    if event == "thread.message.delta":
        if not n:
            first = time.monotonic()
        n += len(data.delta.content.text.value)
print(first, n)
"""

BARE_CHILD = """
import json, sys, time
import httpx2
body = {"model": "qwen-plus", "input": "Count.", "stream": True}
first, n, rest = 0.0, 0, b""
with httpx2.Client(timeout=60) as client:
    with client.stream(
        "POST", sys.argv[1], json=body, headers={"Authorization": "Bearer sk-bench"}
    ) as response:
        for chunk in response.iter_bytes():
            lines = (rest + chunk).split(b"\\n")
            rest = lines.pop()
            for line in lines:
                if line.startswith(b"data:"):
                    event = json.loads(line[5:])
                    if event["type"] == "response.output_text.delta":
                        if not n:
                            first = time.monotonic()
                        n += len(event["delta"])
print(first, n)
"""

#: The bare reader that also imports openai: what keeping the openai client costs by itself.
BARE_OPENAI_CHILD = "import openai\n" + BARE_CHILD

SETUP_CHILD = "from compat import Assistants; print(Assistants.create(model='qwen-plus').id)"

LOCAL_CHILD = """
import sys
import compat
compat.Assistants.create(model="qwen-plus", name="cold", instructions="Be brief.")
print("openai" in sys.modules, "dashscope" in sys.modules)
"""


def run_child(code: str, *args: str, env: dict[str, str]) -> tuple[str, float, float, float]:
    """Run ``python -c code args``: its output, CPU seconds, wall seconds, start monotonic."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-c", code, *args], env=env, capture_output=True, text=True, check=False
    )
    wall = time.monotonic() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise SystemExit(f"a child failed ({done.returncode}):\n{done.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return done.stdout, cpu, wall, started


def importer_of(module: str, env: dict[str, str]) -> str:
    """Which module's import pulled ``module`` in during LOCAL_CHILD (from ``-X importtime``)."""
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", LOCAL_CHILD],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    rows = []
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            name = line.rsplit("|", 1)[1]
            rows.append((len(name) - len(name.lstrip()), name.strip()))
    # A module's line comes after those of the modules it imports, and is indented less.
    for index, (depth, name) in enumerate(rows):
        if name == module:
            for outer_depth, outer in rows[index + 1 :]:
                if outer_depth < depth:
                    return outer
            return "the program itself"
    return "nothing"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--deltas", type=int, default=100)
    parser.add_argument(
        "--warmup", type=int, default=1, help="unrecorded rounds first (they fill the OS caches)"
    )
    args = parser.parse_args()
    load = os.getloadavg()[0]
    expected = _wire.expected_chars(args.deltas)

    cpu: dict[str, list[float]] = {name: [] for name in (*STREAMS, "local", "python")}
    first: dict[str, list[float]] = {name: [] for name in STREAMS}
    wall: dict[str, list[float]] = {"local": [], "python": []}
    with tempfile.TemporaryDirectory() as tmp, _wire.server(args.deltas) as origin:
        env = {
            **os.environ,
            "COMPAT_BACKEND": "responses",
            "COMPAT_STORE": str(Path(tmp, "compat.sqlite3")),
            "COMPAT_RESPONSES_BASE_URL": f"{origin}/lf/compatible-mode/v1",
            "DASHSCOPE_API_KEY": "sk-bench",
        }
        local_env = {**env, "COMPAT_STORE": "memory"}
        assistant_id = run_child(SETUP_CHILD, env=env)[0].strip()
        url = f"{origin}/lf/compatible-mode/v1/responses"
        streams = {
            "compat": (COMPAT_CHILD, assistant_id),
            "bare": (BARE_CHILD, url),
            "bare+openai": (BARE_OPENAI_CHILD, url),
        }
        for round_index in range(-args.warmup, args.rounds):  # rounds < 0 are not kept
            order = list(STREAMS) if round_index % 2 else list(reversed(STREAMS))
            for name in order:
                out, spent, _, started = run_child(*streams[name], env=env)
                at, chars = out.split()
                if int(chars) != expected:
                    raise SystemExit(f"{name} read {chars} characters, not {expected}")
                if round_index >= 0:
                    cpu[name].append(spent)
                    first[name].append(float(at) - started)
            for name, code in (("local", LOCAL_CHILD), ("python", "pass")):
                out, spent, took, _ = run_child(code, env=local_env)
                if round_index >= 0:
                    cpu[name].append(spent)
                    wall[name].append(took)
                if name == "local":
                    imported = out.split()
        culprit = importer_of("openai", local_env) if imported[0] == "True" else "nothing"

    med = {name: statistics.median(values) * 1e3 for name, values in cpu.items()}
    med_first = {name: statistics.median(values) * 1e3 for name, values in first.items()}
    med_wall = {name: statistics.median(values) * 1e3 for name, values in wall.items()}
    print(
        f"cold_start: fresh processes, median of {args.rounds} rounds (order swapped each round); "
        f"a {args.deltas}-delta stream, one event per chunk, from a local server process"
    )
    print(_wire.machine(load))
    print(f"  {'process':<44} {'cpu ms':>8} {'wall ms':>8}")
    rows = (
        ("compat: Threads.create + Runs.create(stream)", "compat", med_first),
        ("bare: httpx2 + json.loads, same request", "bare", med_first),
        ("bare + import openai (not a goal)", "bare+openai", med_first),
    )
    for label, name, walls in rows:
        print(f"  {label:<44} {med[name]:8.1f} {walls[name]:8.1f}  (wall: to first delta)")
    print(
        f"  {'import compat; Assistants.create (memory)':<44} {med['local']:8.1f} "
        f"{med_wall['local']:8.1f}  (wall: whole process)"
    )
    print(f"  {'python -c pass':<44} {med['python']:8.1f} {med_wall['python']:8.1f}")
    openai_in, dashscope_in = (flag == "True" for flag in imported)
    print(
        f"  local call imported openai: {'yes' if openai_in else 'no'} (by {culprit}), "
        f"dashscope: {'yes' if dashscope_in else 'no'}"
    )
    print("goals:")
    for what, ratio in (
        ("cpu", med["compat"] / med["bare"]),
        ("wall to first delta", med_first["compat"] / med_first["bare"]),
    ):
        verdict = "PASS" if ratio <= GOAL else "MISS"
        print(f"  {verdict}  compat/bare <= {GOAL} ({what}): {ratio:.2f}")
    verdict = "MISS" if openai_in else "PASS"
    print(f"  {verdict}  a local-only call does not import openai")


if __name__ == "__main__":
    main()
