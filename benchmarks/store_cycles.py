"""What the store costs a legacy program: full cycles per second and time to a run's first event.

One cycle is what a legacy Assistant-API program does per conversation: ``Assistants.create``,
``Threads.create``, ``Messages.create``, ``Runs.create(stream=True)`` read to the end, and
``Messages.list``. Workers (threads of this process) repeat it for ``--seconds`` on the
responses backend against compat's emulator, which runs in its own process on loopback (its
default reply), for each store (memory, SQLite in a temporary directory, PostgreSQL) and each
worker count. Reported per row: cycles per second (and the ratio to memory with the same
workers), p50/p99 of ``Runs.create`` to its first event, and for PostgreSQL the statements
sent, the round trips waited for and the write transactions committed per cycle (the store's
own counts). ``pg-async`` is the same database with ``synchronous_commit=off`` in the URI:
commits do not wait for the WAL flush, which shows what the server's fsync costs. Before the
rows, one worker's streamed runs alone are counted: what one run costs PostgreSQL.

PostgreSQL comes from ``--pg-uri`` or ``COMPAT_TEST_PG_URI`` (``eval "$(.ci/pg-start)"``);
without one its rows are left out. Each run empties the database's compat tables first.

    python benchmarks/store_cycles.py [--seconds 5] [--workers 1,32] [--stores memory,sqlite]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import compat
from compat.testing import Emulator


def serve(out: Any, stop: Any) -> None:
    """The emulator's process: report its environment, serve until told to stop."""
    with Emulator() as emu:
        out.put(emu.env())
        stop.wait()


def cycle(latencies: list[float]) -> None:
    """One legacy conversation; records Runs.create's time to its first event."""
    assistant = compat.Assistants.create(model="qwen-plus", instructions="Be brief.")
    thread = compat.Threads.create()
    compat.Messages.create(thread.id, content="Count to three.")
    began = time.perf_counter()
    events = iter(compat.Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    first = next(events)
    latencies.append(time.perf_counter() - began)
    if first[0] is None:
        raise RuntimeError(f"the run failed: {first}")
    for event, data in events:
        if event is None:
            raise RuntimeError(f"the run failed: {data}")
    page = compat.Messages.list(thread.id)
    if len(page.data) != 2:
        raise RuntimeError(f"expected the question and the answer, got {len(page.data)}")


def measure(spec: str, workers: int, seconds: float) -> tuple[float, list[float], int]:
    """(cycles per second, latencies in s, cycles) for `workers` threads on store `spec`."""
    compat.configure(backend="responses", store=spec)
    cycle([])  # open the store (and migrate) outside the timing
    latencies: list[float] = []
    counts = [0] * workers
    errors: list[BaseException] = []
    barrier = threading.Barrier(workers + 1)
    deadline = 0.0

    def work(i: int) -> None:
        mine: list[float] = []
        barrier.wait()
        try:
            while True:  # at least one cycle each, however late the thread starts
                cycle(mine)
                counts[i] += 1
                if time.perf_counter() >= deadline:
                    break
        except BaseException as exc:
            errors.append(exc)
        latencies.extend(mine)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(workers)]
    for t in threads:
        t.start()
    deadline = time.perf_counter() + seconds
    began = time.perf_counter()
    barrier.wait()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - began
    compat.configure(reset=True)
    if errors:
        raise errors[0]
    return sum(counts) / elapsed, latencies, sum(counts)


def pg_counts() -> tuple[int, int, int]:
    """(statements sent, round trips, write transactions) of this process's PostgreSQL stores."""
    if "compat.store.postgres" not in sys.modules:
        return 0, 0, 0
    from compat.store import postgres

    stores = list(postgres._open_stores)
    return (
        sum(s.statements for s in stores),
        sum(s.round_trips for s in stores),
        sum(s.commits for s in stores),
    )


def per_run(spec: str, runs: int) -> tuple[float, float, float]:
    """What one streamed run (``Runs.create`` read to its end) costs the store, on average.

    One worker, so that the counts are the run's own: its claim, its reads of the thread's
    history, its writes as it moves, and its end (and the lease keeper's look at the run, if a
    run outlasts its 0.2 s poll).
    """
    compat.configure(backend="responses", store=spec)
    assistant = compat.Assistants.create(model="qwen-plus", instructions="Be brief.")
    spent = [0, 0, 0]
    for _ in range(runs):
        thread = compat.Threads.create(messages=[{"role": "user", "content": "Hi"}])
        before = pg_counts()
        for event, data in compat.Runs.create(thread.id, assistant_id=assistant.id, stream=True):
            if event is None:
                raise RuntimeError(f"the run failed: {data}")
        after = pg_counts()
        spent = [total + a - b for total, a, b in zip(spent, after, before, strict=True)]
    compat.configure(reset=True)
    statements, round_trips, commits = (n / runs for n in spent)
    return statements, round_trips, commits


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="per row (default 5)")
    parser.add_argument("--workers", default="1,32", help="worker counts (default 1,32)")
    parser.add_argument("--stores", default="memory,sqlite,postgresql,pg-async")
    parser.add_argument("--pg-uri", default=os.environ.get("COMPAT_TEST_PG_URI", ""))
    args = parser.parse_args()
    worker_counts = [int(n) for n in args.workers.split(",")]
    stores = args.stores.split(",")

    context = multiprocessing.get_context("spawn")
    env_queue, stop = context.Queue(), context.Event()
    server = context.Process(target=serve, args=(env_queue, stop), daemon=True)
    server.start()
    os.environ.update(env_queue.get(timeout=60))

    with tempfile.TemporaryDirectory() as tmp:
        specs = {"memory": "memory", "sqlite": str(Path(tmp) / "bench.sqlite3")}
        if args.pg_uri:
            specs["postgresql"] = args.pg_uri
            # The same database, each commit not waiting for its WAL flush (see the guide, §8).
            sep = "&" if "?" in args.pg_uri else "?"
            specs["pg-async"] = f"{args.pg_uri}{sep}options=-csynchronous_commit%3Doff"
            reset_pg(args.pg_uri)
        elif "postgresql" in stores:
            print("no --pg-uri or COMPAT_TEST_PG_URI: PostgreSQL rows left out\n")
        rows = []
        baseline: dict[int, float] = {}
        if "postgresql" in specs and "postgresql" in stores:
            statements, round_trips, commits = per_run(specs["postgresql"], 20)
            print(
                f"one streamed run on PostgreSQL: {statements:.1f} statements, "
                f"{round_trips:.1f} round trips, {commits:.1f} commits (20 runs, one worker)\n"
            )
        for name in stores:
            if name not in specs:
                continue
            for workers in worker_counts:
                before = pg_counts()
                rate, latencies, cycles = measure(specs[name], workers, args.seconds)
                after = pg_counts()
                sent = (after[0] - before[0], after[1] - before[1], after[2] - before[2])
                if name == "memory":
                    baseline[workers] = rate
                rows.append((name, workers, rate, latencies, cycles, sent))
    stop.set()
    server.join(30)

    print(
        f"{'store':<11}{'workers':>8}{'cycles/s':>10}{'vs memory':>11}"
        f"{'p50 ms':>9}{'p99 ms':>9}{'stmts/cycle':>13}{'trips/cycle':>13}{'commits/cycle':>15}"
    )
    for name, workers, rate, latencies, cycles, sent in rows:
        ratio = f"{rate / baseline[workers]:.2f}x" if workers in baseline else "-"
        # The warm-up cycle is counted too.
        stmts, trips, commits = (f"{n / (cycles + 1):.1f}" if sent[2] else "-" for n in sent)
        print(
            f"{name:<11}{workers:>8}{rate:>10.1f}{ratio:>11}"
            f"{statistics.median(latencies) * 1000:>9.1f}"
            f"{percentile(latencies, 0.99) * 1000:>9.1f}{stmts:>13}{trips:>13}{commits:>15}"
        )
    print(f"\n{args.seconds:g} s per row; python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
    return 0


def reset_pg(uri: str) -> None:
    """Empty compat's tables, if they exist, so that every run starts alike."""
    import psycopg

    with psycopg.connect(uri, autocommit=True) as conn:
        conn.execute(
            "DO $$ BEGIN IF to_regclass('compat_records') IS NOT NULL THEN "
            "TRUNCATE compat_records; END IF; END $$"
        )


if __name__ == "__main__":
    sys.exit(main())
