"""Does a process's peak memory grow with the number of deltas it streams? compat against bare.

Fresh Python processes, one per measurement, each reading one text stream of N short non-ASCII
deltas (``--deltas-small`` and ``--deltas-large``) and printing its own peak RSS
(``getrusage(RUSAGE_SELF).ru_maxrss``) once the stream has ended:

* compat -- ``Assistants.create``, ``Threads.create``, then ``Runs.create(stream=True)`` on the
  responses backend (the sync facade), on the default store: a SQLite file of its own in a
  temporary directory; the loop counts ``data.delta.content.text.value`` and keeps nothing;
* bare   -- the standard library's ``http.client`` posting the same request and reading the
  same stream, ``json.loads`` per ``data:`` line, counting the deltas' characters (keeping the
  text as a consumer that prints it would: not at all). The anchor: what reading the stream
  costs by itself. Its last four events (text done, part done, item done, response completed)
  each carry the whole text, so even bare grows with a long stream.

The streams are recorded from compat's emulator and served by ``_wire.py``'s server process
(one per size, ``lf`` framing: one event per HTTP chunk), so the emulator's memory is counted in
no measured process. Linux carries the peak RSS of the process that forks a child into the
child's ``ru_maxrss`` (through the exec), and this script grows recording the long stream: the
measured processes are started by a small launcher process started first (its ~12 MiB are a
floor no measured process comes near). The order of the four processes rotates round by round.

A run renews its lease every third of ``lease_seconds`` and stores the text so far with each
renewal (a checkpoint, by time, not by delta). ``--lease-seconds`` (default 600) is long enough
that no measured stream renews; ``--lease-seconds 0.3`` renews every 0.1 s, to see that cost.

Printed: the median peak per reader and size, large - small per reader, and the goal
``compat large - small <= 5 MiB``. What compat legitimately holds is the text, once: the long
stream's text is printed too (as UTF-8, and as the Python ``str`` that holds it). So is what
storing the finished message costs by itself (Linux: a process resets its peak RSS, then
stores one message with that text in one SQLite transaction, as a run's driver does).

``--tracemalloc`` adds one traced compat process on the long stream (slower, not in the
medians): the traced peak during the stream, and the lines that allocated what was held above
the stream's start at the highest point a profile hook saw (at every Python call and return:
inside the handling of an event and the store's write too). tracemalloc sees Python's
allocations only: SQLite's own (its copy of a row, its page cache) and the allocator's free
but unreturned memory are in the RSS figures alone.

    python benchmarks/memory_flat.py [--rounds 5] [--deltas-small 1000] [--deltas-large 100000]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _wire  # the benchmarks' own helper, beside this file

GOAL_MIB = 5.0
READERS = ("compat", "bare")
FRAMING = "lf"
#: ru_maxrss is in KiB on Linux, in bytes on macOS.
_RSS_UNIT = 1024 if sys.platform == "darwin" else 1

#: Each child prints ``<ru_maxrss> <characters read>``.
COMPAT_CHILD = """
import resource
from compat import Assistants, Runs, Threads
assistant = Assistants.create(model="qwen-plus")
thread = Threads.create(messages=[{"role": "user", "content": "Count."}])
n = 0
for event, data in Runs.create(thread.id, assistant_id=assistant.id, stream=True):
    if event == "thread.message.delta":
        n += len(data.delta.content.text.value)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, n)
"""

BARE_CHILD = """
import http.client, json, resource, sys
from urllib.parse import urlsplit
url = urlsplit(sys.argv[1])
body = json.dumps({"model": "qwen-plus", "input": "Count.", "stream": True})
conn = http.client.HTTPConnection(url.hostname, url.port)
headers = {"Authorization": "Bearer sk-bench", "Content-Type": "application/json"}
conn.request("POST", url.path, body=body, headers=headers)
response = conn.getresponse()
n, rest = 0, b""
while chunk := response.read1(65536):
    lines = (rest + chunk).split(b"\\n")
    rest = lines.pop()
    for line in lines:
        if line.startswith(b"data:"):
            event = json.loads(line[5:])
            if event["type"] == "response.output_text.delta":
                n += len(event["delta"])
response.close()
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, n)
"""

#: The compat child under tracemalloc: ``<traced peak above the start, bytes>``, ``<the highest
#: point seen at a Python call or return>``, then the lines that allocated most of what was
#: held at that point (a profile hook looks at every call and return: the final events, the
#: store's write, not only the moments between two events).
TRACED_CHILD = """
import os, sys, sysconfig, tracemalloc
tracemalloc.start(1)
import compat
from compat import Assistants, Runs, Threads
assistant = Assistants.create(model="qwen-plus")
thread = Threads.create(messages=[{"role": "user", "content": "Count."}])
start = tracemalloc.take_snapshot()
base = tracemalloc.get_traced_memory()[0]
tracemalloc.reset_peak()
high, at_high = 0, start
def watch(frame, event, arg):
    global high, at_high
    now = tracemalloc.get_traced_memory()[0]
    if now > high + 2**16:  # a new high point: where is the memory?
        high, at_high = now, tracemalloc.take_snapshot()
sys.setprofile(watch)
for event, data in Runs.create(thread.id, assistant_id=assistant.id, stream=True):
    pass
sys.setprofile(None)
print(tracemalloc.get_traced_memory()[1] - base)
print(high - base)
for stat in at_high.compare_to(start, "lineno")[:6]:
    frame = stat.traceback[0]
    name = frame.filename
    for root in (os.path.dirname(os.path.dirname(compat.__file__)), sysconfig.get_path("stdlib")):
        if name.startswith(root + os.sep):  # compat/... and the stdlib's own, not this machine's
            name = os.path.relpath(name, root)
    where = f"{name}:{frame.lineno}"
    print(f"{stat.size_diff / 2**20:8.2f} MiB {stat.count_diff:8d} blocks  {where}")
"""

#: What storing the finished message costs by itself: a process builds the long stream's text
#: (in a buffer, as compat does), stores the message created (empty), resets its peak RSS
#: (Linux: ``/proc/self/clear_refs``) and stores the message completed in one transaction, as a
#: run's driver does. Prints ``<peak RSS growth in KiB>``, or ``-`` where the peak can't be reset.
STORE_CHILD = """
import io, os, sys, tempfile
sys.path.insert(0, sys.argv[1])
import _wire
from compat.store import open_store
n = int(sys.argv[2])
buffer = io.StringIO()
for piece in _wire.delta_pieces(n):
    buffer.write(piece)
text = buffer.getvalue()
del buffer
message = {"id": "msg_1", "object": "thread.message", "created_at": 1, "thread_id": "thread_1",
           "role": "assistant", "status": "in_progress", "content": []}
store = open_store(os.path.join(tempfile.mkdtemp(), "compat.sqlite3"))
store.put("message", message)
content = [{"type": "text", "text": {"value": text, "annotations": []}}]
finished = dict(message, status="completed", content=content)
def peak():
    with open("/proc/self/status") as status:
        return int(status.read().split("VmHWM:")[1].split()[0])
try:
    with open("/proc/self/clear_refs", "w") as refs:
        refs.write("5")
    before = peak()
except OSError:
    before = None
with store.transaction() as tx:
    tx.put("message", finished, {})
print("-" if before is None else peak() - before)
"""

#: The process that starts every measured one (see the module docstring). One JSON line in
#: (argv, env), one out (exit code, stdout, stderr).
LAUNCHER = """
import json, subprocess, sys
for line in sys.stdin:
    job = json.loads(line)
    done = subprocess.run(job["argv"], env=job["env"], capture_output=True, text=True)
    print(json.dumps([done.returncode, done.stdout, done.stderr]), flush=True)
"""


class Launcher:
    """Runs ``python -c code args`` in fresh processes, each started by the launcher."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-c", LAUNCHER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def run(self, code: str, *args: str, env: dict[str, str]) -> list[str]:
        """The child's output lines (it must succeed)."""
        assert self._process.stdin is not None and self._process.stdout is not None
        argv = [sys.executable, "-c", code, *args]
        self._process.stdin.write(json.dumps({"argv": argv, "env": env}) + "\n")
        self._process.stdin.flush()
        status, out, err = json.loads(self._process.stdout.readline())
        if status:
            raise SystemExit(f"a child failed ({status}):\n{err}")
        lines: list[str] = out.splitlines()
        return lines

    def close(self) -> None:
        assert self._process.stdin is not None
        self._process.stdin.close()
        self._process.wait()


def compat_env(env: dict[str, str], origin: str, store: Path) -> dict[str, str]:
    """``env`` for a compat process reading ``origin``'s stream on an empty store of its own."""
    with contextlib.suppress(FileNotFoundError):
        store.unlink()
    for suffix in ("-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            store.with_name(store.name + suffix).unlink()
    base_url = f"{origin}/{FRAMING}/compatible-mode/v1"
    return {**env, "COMPAT_STORE": str(store), "COMPAT_RESPONSES_BASE_URL": base_url}


def measure(
    launcher: Launcher, reader: str, origin: str, store: Path, env: dict[str, str]
) -> tuple[float, int]:
    """One fresh process of ``reader`` on ``origin``'s stream: (peak RSS in KiB, characters)."""
    if reader == "compat":
        line = launcher.run(COMPAT_CHILD, env=compat_env(env, origin, store))[-1]
    else:
        url = f"{origin}/{FRAMING}/compatible-mode/v1/responses"
        line = launcher.run(BARE_CHILD, url, env=env)[-1]
    peak, chars = line.split()
    return int(peak) / _RSS_UNIT, int(chars)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--deltas-small", type=int, default=1_000)
    parser.add_argument("--deltas-large", type=int, default=100_000)
    parser.add_argument(
        "--lease-seconds",
        default="600",
        help="COMPAT_LEASE_SECONDS of the compat processes (renewed, with a checkpoint of the "
        "text so far, every third of it; default: no renewal during a stream)",
    )
    parser.add_argument(
        "--tracemalloc", action="store_true", help="also one traced compat process, long stream"
    )
    args = parser.parse_args()
    load = os.getloadavg()[0]
    sizes = (args.deltas_small, args.deltas_large)
    peaks: dict[tuple[str, int], list[float]] = {(r, n): [] for r in READERS for n in sizes}
    traced: list[str] = []
    with contextlib.ExitStack() as stack:
        launcher = Launcher()  # first, while this process is small
        stack.callback(launcher.close)
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        origins = {n: stack.enter_context(_wire.server(n)) for n in sizes}
        env = {
            **os.environ,
            "COMPAT_BACKEND": "responses",
            "COMPAT_LEASE_SECONDS": args.lease_seconds,
            "DASHSCOPE_API_KEY": "sk-bench",
        }
        store = tmp / "compat.sqlite3"
        jobs = [(reader, n) for reader in READERS for n in sizes]
        for round_index in range(args.rounds):
            shift = round_index % len(jobs)
            for reader, n in jobs[shift:] + jobs[:shift]:
                peak, chars = measure(launcher, reader, origins[n], store, env)
                if chars != _wire.expected_chars(n):
                    raise SystemExit(f"{reader} read {chars} characters, not the stream's")
                peaks[reader, n].append(peak)
        here = str(Path(__file__).resolve().parent)
        store_writes = [launcher.run(STORE_CHILD, here, str(n), env=env)[-1] for n in sizes]
        if args.tracemalloc:
            traced = launcher.run(TRACED_CHILD, env=compat_env(env, origins[sizes[1]], store))
    report(peaks, sizes, store_writes, traced, args, load)


def report(
    peaks: dict[tuple[str, int], list[float]],
    sizes: tuple[int, int],
    store_writes: list[str],
    traced: list[str],
    args: argparse.Namespace,
    load: float,
) -> None:
    small, large = sizes
    mib = {key: statistics.median(values) / 1024 for key, values in peaks.items()}
    text = "".join(_wire.delta_pieces(large))
    print(
        f"memory_flat: peak RSS of fresh processes, median of {args.rounds} rounds (order "
        f"rotated each round); one stream of N non-ASCII text deltas, one event per chunk, "
        f"from a local server process; compat on a SQLite store, lease {args.lease_seconds} s"
    )
    print(_wire.machine(load))
    print(
        f"the text of the {large:,}-delta stream: {len(text):,} characters, "
        f"{len(text.encode()) / 2**20:.2f} MiB as UTF-8, "
        f"{sys.getsizeof(text) / 2**20:.2f} MiB as a Python str"
    )
    heads = (f"{small:,} deltas", f"{large:,} deltas", "large - small")
    print(f"  {'reader':<8} {heads[0]:>14} {heads[1]:>14} {heads[2]:>14}")
    for reader in READERS:
        low, high = mib[reader, small], mib[reader, large]
        spread = (max(peaks[reader, large]) - min(peaks[reader, large])) / 1024
        print(
            f"  {reader:<8} {low:10.2f} MiB {high:10.2f} MiB {high - low:+10.2f} MiB"
            f"   (large: {spread:.2f} MiB from lowest to highest run)"
        )
    if all(w != "-" for w in store_writes):
        grown = [int(w) / 1024 for w in store_writes]
        print(
            f"storing the finished message alone (one SQLite transaction, as the driver does): "
            f"peak RSS +{grown[0]:.2f} MiB ({small:,} deltas), +{grown[1]:.2f} MiB ({large:,})"
        )
    if traced:
        print(
            f"compat under tracemalloc, {large:,} deltas: traced peak "
            f"{int(traced[0]) / 2**20:.2f} MiB above the stream's start; the highest point "
            f"seen at a call or return, {int(traced[1]) / 2**20:.2f} MiB, held by line:"
        )
        for line in traced[2:]:
            print(f"  {line}")
    growth = mib["compat", large] - mib["compat", small]
    verdict = "PASS" if growth <= GOAL_MIB else "MISS"
    print("goals:")
    print(f"  {verdict}  compat large - small <= {GOAL_MIB:g} MiB: {growth:+.2f} MiB")


if __name__ == "__main__":
    main()
