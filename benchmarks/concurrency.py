"""Many streamed runs at once: the SQLite store against the memory store, threads and processes.

One text stream of ``--deltas`` non-ASCII deltas is served on loopback by a process of its own
(``_wire.py``: pre-built bytes recorded from compat's emulator, ``TCP_NODELAY``, framing
``--framing``). Each round, in an order that alternates round by round:

* threads   -- ``--threads`` threads of this process each stream one run (``Runs.create(...,
               stream=True)`` through the sync facade, the responses backend) on a thread of its
               own, created beforehand; all start together. Once on the memory store, once on a
               SQLite file store with default settings;
* processes -- ``--processes`` processes (started once, kept across rounds) each stream
               ``--runs`` runs at once on as many threads, all on one SQLite file; for
               reference the same on the memory store (one per process).

Aggregate events/s of a phase is every ``(event, data)`` item read by every run, over the time
from the first run's start to the last run's end (``time.monotonic`` is one clock for every
process). Medians over ``--rounds`` are printed, then the write-lock times of the phases'
write transactions: the SQLite store's own (``compat.store.sqlite.time_locks``: wait from
asking for the write lock to holding SQLite's, waits for another process included; hold to
the end of COMMIT) and, for reference, the memory store's, taken the same way by a wrapper
around its lock installed here. Then the goals:

* 32 threads on SQLite reach at least 0.8x the memory store's events/s;
* no SQLite write-lock wait over 20 ms at the 99th percentile.

    python benchmarks/concurrency.py [--rounds 5] [--threads 32] [--processes 8] [--deltas 2000]
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _wire  # the benchmarks' own helper, beside this file

RATIO_GOAL = 0.8
WAIT_GOAL = 0.020  # seconds, the 99th percentile of SQLite write-lock waits
QUANTILES = (0.5, 0.95, 0.99, 1.0)


@dataclass
class Phase:
    """One phase's rounds: aggregate events/s each, and the SQLite lock times pooled."""

    rates: list[float] = field(default_factory=list)
    runs: int = 0
    locks: list[tuple[float, float]] = field(default_factory=list)

    def median(self) -> float:
        return statistics.median(self.rates)


_writing = threading.local()
#: The memory store's write-lock times in this process, while ``time_memory_store`` records.
memory_times: list[tuple[float, float]] = []


class _TimedLock:
    """The memory store's lock, timing the acquisitions its write methods make."""

    def __init__(self, lock: Any) -> None:
        self._lock = lock

    def __enter__(self) -> None:
        if getattr(_writing, "on", False):
            _writing.on = False
            asked = time.monotonic()
            self._lock.acquire()
            _writing.pending = (asked, time.monotonic())
        else:
            self._lock.acquire()

    def __exit__(self, *exc: object) -> None:
        pending = getattr(_writing, "pending", None)
        if pending is not None:
            _writing.pending = None
            memory_times.append((pending[1] - pending[0], time.monotonic() - pending[1]))
        self._lock.release()


@functools.cache
def time_memory_store() -> None:
    """Time the memory store's write transactions as the SQLite store times its own."""
    from compat.store import memory

    cls = memory.MemoryStore
    init, transaction, put_many, delete = cls.__init__, cls.transaction, cls.put_many, cls.delete

    def timed_init(self: Any) -> None:
        init(self)
        self._lock = _TimedLock(self._lock)

    def writing(method: Any) -> Any:
        @functools.wraps(method)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
            _writing.on = True  # the next acquisition in this thread is the write's
            return method(self, *args, **kwargs)

        return wrapper

    cls.__init__ = timed_init  # type: ignore[method-assign]
    cls.transaction = writing(transaction)  # type: ignore[method-assign]
    cls.put_many = writing(put_many)  # type: ignore[method-assign]
    cls.delete = writing(delete)  # type: ignore[method-assign]


def stream_runs(count: int) -> tuple[int, float, float]:
    """Stream ``count`` runs at once on as many threads: (events, first start, last end).

    The assistant and each run's thread are created first, outside the timing and before the
    SQLite store starts recording its lock times.
    """
    import compat
    from compat.store import sqlite

    assistant = compat.Assistants.create(model="qwen-plus")
    threads = [
        compat.Threads.create(messages=[{"role": "user", "content": "Count."}])
        for _ in range(count)
    ]
    sqlite.time_locks(True)
    memory_times.clear()
    barrier = threading.Barrier(count)
    events = [0] * count
    spans = [(0.0, 0.0)] * count
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            barrier.wait()
            began, n = time.monotonic(), 0
            stream = compat.Runs.create(threads[i].id, assistant_id=assistant.id, stream=True)
            for event, data in stream:
                if event is None or event == "thread.run.failed":
                    raise RuntimeError(f"run failed: {data}")
                n += 1
            events[i], spans[i] = n, (began, time.monotonic())
        except BaseException as exc:
            errors.append(exc)
            barrier.abort()

    workers = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    if errors:
        raise errors[0]
    return sum(events), min(s for s, _ in spans), max(e for _, e in spans)


def in_store(spec: str, count: int) -> tuple[int, float, float, list[tuple[float, float]]]:
    """``stream_runs`` on store ``spec``, with the write-lock times it caused."""
    import compat
    from compat.store import sqlite

    time_memory_store()
    compat.configure(backend="responses", store=spec)
    try:
        events, began, ended = stream_runs(count)
        return events, began, ended, list(memory_times) if spec == "memory" else sqlite.lock_times()
    finally:
        sqlite.time_locks(False)
        compat.configure(reset=True)


def process_worker(conn: Connection, runs: int) -> None:
    """A worker process: for each (spec,) it receives, ``in_store`` and send the result."""
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    while True:
        message = conn.recv()
        if message is None:
            return
        conn.send(in_store(message, runs))


class Workers:
    """``--processes`` worker processes, each streaming ``runs`` runs per round."""

    def __init__(self, processes: int, runs: int) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipes: list[Connection] = []
        self.processes = []
        for _ in range(processes):
            parent, child = context.Pipe()
            process = context.Process(target=process_worker, args=(child, runs), daemon=True)
            process.start()
            self.pipes.append(parent)
            self.processes.append(process)

    def round(self, spec: str) -> tuple[int, float, float, list[tuple[float, float]]]:
        for pipe in self.pipes:
            pipe.send(spec)
        results = [pipe.recv() for pipe in self.pipes]
        return (
            sum(r[0] for r in results),
            min(r[1] for r in results),
            max(r[2] for r in results),
            [t for r in results for t in r[3]],
        )

    def close(self) -> None:
        for pipe in self.pipes:
            pipe.send(None)
        for process in self.processes:
            process.join(30)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


def lock_line(label: str, phase: Phase) -> str:
    """One row of the lock table: transactions, per run, wait and hold percentiles in ms."""
    cells = []
    for values in ([w for w, _ in phase.locks], [h for _, h in phase.locks]):
        cells.append(" ".join(f"{percentile(values, q) * 1e3:7.2f}" for q in QUANTILES))
    per_run = len(phase.locks) / phase.runs if phase.runs else 0.0
    return f"  {label:<22}{len(phase.locks):>8}{per_run:>8.1f}  | {cells[0]}  | {cells[1]}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=32, help="runs at once in this process")
    parser.add_argument("--processes", type=int, default=8, help="processes on one SQLite file")
    parser.add_argument("--runs", type=int, default=4, help="runs at once in each process")
    parser.add_argument("--deltas", type=int, default=2000, help="text deltas per run")
    parser.add_argument("--framing", default="bulk", choices=_wire.DEFAULT_FRAMINGS)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    warnings.filterwarnings("ignore", category=DeprecationWarning)

    names = ("threads/memory", "threads/sqlite", "processes/memory", "processes/sqlite")
    phases = {name: Phase() for name in names}
    with tempfile.TemporaryDirectory() as tmp, _wire.server(args.deltas) as origin:
        os.environ.update(
            COMPAT_BACKEND="responses",
            COMPAT_RESPONSES_BASE_URL=f"{origin}/{args.framing}/compatible-mode/v1",
            DASHSCOPE_API_KEY="sk-bench",
        )
        specs = {
            "threads/memory": "memory",
            "threads/sqlite": str(Path(tmp, "threads.sqlite3")),
            "processes/memory": "memory",
            "processes/sqlite": str(Path(tmp, "processes.sqlite3")),
        }
        workers = Workers(args.processes, args.runs)
        try:
            for round_index in range(-1, args.rounds):  # round -1 warms up, not kept
                order = names if round_index % 2 else names[::-1]
                for name in order:
                    if name.startswith("threads"):
                        events, began, ended, locks = in_store(specs[name], args.threads)
                        runs = args.threads
                    else:
                        events, began, ended, locks = workers.round(specs[name])
                        runs = args.processes * args.runs
                    if round_index < 0:
                        continue
                    phase = phases[name]
                    phase.rates.append(events / (ended - began))
                    phase.runs += runs
                    phase.locks += locks
        finally:
            workers.close()

    print(
        f"concurrency: runs of {args.deltas:,} non-ASCII text deltas (framing {args.framing}) "
        f"streamed at once, median of {args.rounds} rounds"
    )
    print(_wire.machine(load))
    print("server: a separate process writing pre-built bytes, TCP_NODELAY\n")
    print(f"  {'':<44}{'events/s':>10}   per round")
    rows = (
        ("threads/memory", f"{args.threads} threads, memory store"),
        ("threads/sqlite", f"{args.threads} threads, one SQLite file"),
        ("processes/memory", f"{args.processes} processes x {args.runs} runs, memory stores"),
        ("processes/sqlite", f"{args.processes} processes x {args.runs} runs, one SQLite file"),
    )
    for name, label in rows:
        rates = " ".join(f"{r:,.0f}" for r in phases[name].rates)
        print(f"  {label:<44}{phases[name].median():>10,.0f}   {rates}")
    print(
        "\nwrite lock, all rounds, in ms (SQLite: wait from asking to holding SQLite's write "
        "lock, hold to the end of COMMIT; memory: its lock, for reference)"
    )
    wait = " ".join(f"{q:>7}" for q in ("wait p50", "p95", "p99", "max"))
    hold = " ".join(f"{q:>7}" for q in ("hold p50", "p95", "p99", "max"))
    print(f"  {'':<22}{'writes':>8}{'per run':>8}  |{wait}  |{hold}")
    for name in ("threads/sqlite", "threads/memory", "processes/sqlite", "processes/memory"):
        who, store = name.split("/")
        count = args.threads if who == "threads" else args.processes
        print(lock_line(f"{count} {who}, {store}", phases[name]))

    threads, processes = phases["threads/sqlite"], phases["processes/sqlite"]
    ratio = threads.median() / phases["threads/memory"].median()
    p99 = percentile([w for w, _ in threads.locks], 0.99)
    print(f"\ngoals ({args.threads} runs on as many threads of one process):")
    print(
        f"  {'PASS' if ratio >= RATIO_GOAL else 'MISS'}  sqlite/memory events/s >= {RATIO_GOAL}: "
        f"{ratio:.2f}"
    )
    print(
        f"  {'PASS' if p99 <= WAIT_GOAL else 'MISS'}  lock wait p99 <= {WAIT_GOAL * 1e3:g} ms: "
        f"{p99 * 1e3:.2f} ms"
    )
    ratio = processes.median() / phases["processes/memory"].median()
    p99 = percentile([w for w, _ in processes.locks], 0.99)
    print(
        f"{args.processes} processes (not a goal): sqlite/memory events/s {ratio:.2f}, "
        f"lock wait p99 {p99 * 1e3:.2f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
