"""What one run costs as its thread grows: turn 1 against turn 10, 50 and 100, per history mode.

One thread is driven for ``--turns`` turns; each turn adds a user message (``Messages.create``)
and reads a streamed run (``Runs.create(..., stream=True)``) to its end, on the responses backend
and the default store (a SQLite file in a temporary directory), against compat's emulator in a
process of its own (its default reply, which quotes the question). Modes:

* ``chain``      -- ``COMPAT_HISTORY=chain``: ``previous_response_id`` plus the new message;
* ``replay``     -- ``COMPAT_HISTORY=replay``: the whole thread as input items, every run (at
                    turn 100, 199 messages); sync runs use compat's own HTTP client;
* ``replay-aio`` -- replay through ``compat.aio`` (the openai SDK's async client sends it);
* ``chain-aio``  -- chain through ``compat.aio`` (not in the default modes).

Per run, measured around ``Runs.create`` and the reading of its stream: the CPU time of this
process (``time.process_time``: every thread of it, none of the emulator's) and the wall time,
each sampled run after a ``gc.collect()``. Each round drives a new thread per mode, modes in an
order rotated round by round, all in one store (which grows as real ones do). Printed: medians
at turns 1, 10, 50 and 100 (those within ``--turns``), the ratios turn N / turn 1, the goal
"chain <= 2x" (turn 100 / turn 1, CPU) with PASS or MISS, and replay's CPU per run at turn 100.

``--profile N`` also profiles (cProfile) the last run of one more thread per mode, after the
rounds, and prints its top N functions by own and by cumulative time.

    python benchmarks/long_threads.py [--rounds 3] [--turns 100] [--modes chain,replay,replay-aio]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import gc
import multiprocessing
import os
import pstats
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _wire  # the benchmarks' own helper, beside this file

import compat
from compat import aio
from compat.testing import Emulator

MODES = ("chain", "replay", "replay-aio", "chain-aio")
DEFAULT_MODES = ("chain", "replay", "replay-aio")
SAMPLED = (1, 10, 50, 100)
#: the goal: chain's run at turn 100 costs at most this times its run at turn 1 (CPU)
CHAIN_BOUND = 2.0
#: a user question of a realistic length (about 200 characters)
QUESTION = (
    "Question {n}: in the last answer you mentioned the second point; could you explain it "
    "again with a short example, and say how it relates to what we discussed at the start?"
)

Sample = tuple[float, float]  # (cpu seconds, wall seconds) of one run
_LOOP = asyncio.new_event_loop()


def serve(out: Any, stop: Any) -> None:
    """The emulator's process: report its environment, serve until told to stop."""
    with Emulator() as emu:
        out.put(emu.env())
        stop.wait()


def _history(mode: str) -> str:
    return mode.split("-")[0]


def sync_thread(
    mode: str, turns: int, sampled: set[int], profile: cProfile.Profile | None = None
) -> dict[int, Sample]:
    """Drive one thread for ``turns`` turns through the sync facade; samples at ``sampled``."""
    compat.configure(history=_history(mode))
    assistant = compat.Assistants.create(model="qwen-plus", instructions="Be brief.")
    thread = compat.Threads.create()
    samples: dict[int, Sample] = {}
    for turn in range(1, turns + 1):
        compat.Messages.create(thread.id, content=QUESTION.format(n=turn))
        measured = turn in sampled
        if measured:
            gc.collect()
            if profile is not None and turn == turns:
                profile.enable()
        cpu, wall = time.process_time(), time.perf_counter()
        for event, data in compat.Runs.create(thread.id, assistant_id=assistant.id, stream=True):
            if event is None or event == "thread.run.failed":
                raise SystemExit(f"{mode}: turn {turn} failed: {data}")
        sample = (time.process_time() - cpu, time.perf_counter() - wall)
        if profile is not None:
            profile.disable()
        if measured:
            samples[turn] = sample
        if event != "thread.run.completed":
            raise SystemExit(f"{mode}: turn {turn} ended with {event!r}")
    _check_thread(mode, thread.id, turns)
    return samples


async def async_thread(
    mode: str, turns: int, sampled: set[int], profile: cProfile.Profile | None = None
) -> dict[int, Sample]:
    """``sync_thread`` through ``compat.aio`` on one event loop."""
    compat.configure(history=_history(mode))
    assistant = await aio.Assistants.create(model="qwen-plus", instructions="Be brief.")
    thread = await aio.Threads.create()
    samples: dict[int, Sample] = {}
    for turn in range(1, turns + 1):
        await aio.Messages.create(thread.id, content=QUESTION.format(n=turn))
        measured = turn in sampled
        if measured:
            gc.collect()
            if profile is not None and turn == turns:
                profile.enable()
        cpu, wall = time.process_time(), time.perf_counter()
        stream = await aio.Runs.create(thread.id, assistant_id=assistant.id, stream=True)
        async for event, data in stream:
            if event is None or event == "thread.run.failed":
                raise SystemExit(f"{mode}: turn {turn} failed: {data}")
        sample = (time.process_time() - cpu, time.perf_counter() - wall)
        if profile is not None:
            profile.disable()
        if measured:
            samples[turn] = sample
        if event != "thread.run.completed":
            raise SystemExit(f"{mode}: turn {turn} ended with {event!r}")
    _check_thread(mode, thread.id, turns)
    return samples


def _check_thread(mode: str, thread_id: str, turns: int) -> None:
    """The thread holds every question and every answer (the runs did their work)."""
    count, after = 0, None
    while True:
        page = compat.Messages.list(thread_id, limit=100, order="asc", after=after)
        count += len(page.data)
        if not page.has_more:
            break
        after = page.last_id
    if count != 2 * turns:
        raise SystemExit(f"{mode}: the thread has {count} messages, not {2 * turns}")


def drive(
    mode: str, turns: int, sampled: set[int], profile: cProfile.Profile | None = None
) -> dict[int, Sample]:
    if mode.endswith("-aio"):
        # One loop for every aio thread: compat's async client is per loop, made once.
        return _LOOP.run_until_complete(async_thread(mode, turns, sampled, profile))
    return sync_thread(mode, turns, sampled, profile)


def measure(
    args: argparse.Namespace, modes: list[str]
) -> tuple[dict[str, dict[int, list[Sample]]], bool]:
    """One warm-up thread of 2 turns per mode, then ``args.rounds`` rotated rounds.

    Also returns whether the sync modes' warm-up imported the openai SDK (it must not: compat
    builds and sends their requests itself).
    """
    sampled = {t for t in SAMPLED if t <= args.turns} | {1, args.turns}
    results: dict[str, dict[int, list[Sample]]] = {m: {t: [] for t in sampled} for m in modes}
    sync_imported_openai = False
    for mode in sorted(modes, key=lambda m: m.endswith("-aio")):  # sync modes first
        drive(mode, 2, set())
        if not mode.endswith("-aio"):
            sync_imported_openai = "openai" in sys.modules
    for round_index in range(args.rounds):
        gc.collect()
        gc.freeze()  # what exists now is never garbage: gc.collect() before a sample is cheap
        shift = round_index % len(modes)
        for mode in modes[shift:] + modes[:shift]:
            for turn, sample in drive(mode, args.turns, sampled).items():
                results[mode][turn].append(sample)
    return results, sync_imported_openai


def report(
    results: dict[str, dict[int, list[Sample]]],
    args: argparse.Namespace,
    load: float,
    sync_imported_openai: bool,
) -> None:
    turns = sorted(next(iter(results.values())))
    print(
        f"long_threads: one thread of {args.turns} turns per mode (a user message, then a "
        f"streamed run), median of {args.rounds} rounds (mode order rotated each round)"
    )
    print(_wire.machine(load))
    print("store: SQLite in a temporary directory; emulator: a separate process, default reply")
    print("per run: Runs.create(stream=True) read to its end; cpu = this process, every thread\n")
    head = "".join(f"{'turn ' + str(t):>12}" for t in turns)
    ratios = "".join(f"{f'{t}/1':>8}" for t in turns[1:])
    print(f"  {'mode':<11} {'':<5}{head}   ratio{ratios}")
    for mode, by_turn in results.items():
        for what, index in (("cpu", 0), ("wall", 1)):
            medians = [statistics.median(s[index] for s in by_turn[t]) for t in turns]
            cells = "".join(f"{m * 1e3:9.2f} ms" for m in medians)
            rel = "".join(f"{m / medians[0]:7.2f}x" for m in medians[1:])
            print(f"  {mode if not index else '':<11} {what:<5}{cells}        {rel}")
    last = turns[-1]

    def cpu(mode: str, turn: int) -> float:
        return statistics.median(s[0] for s in results[mode][turn])

    print("\ngoals (cpu medians):")
    if "chain" in results:
        ratio = cpu("chain", last) / cpu("chain", 1)
        verdict = "PASS" if ratio <= CHAIN_BOUND else "MISS"
        print(
            f"  {verdict}  chain: run at turn {last} <= {CHAIN_BOUND:g}x run at turn 1   "
            f"{ratio:.2f}x ({cpu('chain', last) * 1e3:.2f} ms / {cpu('chain', 1) * 1e3:.2f} ms)"
        )
    for mode in results:
        if mode.startswith("replay"):
            print(
                f"  {mode}: cpu per run at turn {last} ({2 * last - 1} input items): "
                f"{cpu(mode, last) * 1e3:.2f} ms ({cpu(mode, last) / cpu(mode, 1):.2f}x turn 1)"
            )
    if any(not m.endswith("-aio") for m in results):
        sender = "the openai SDK" if sync_imported_openai else "compat (json.dumps, http.client)"
        print(f"  sync runs: request bodies built and sent by {sender}")


def profile_runs(args: argparse.Namespace, modes: list[str]) -> None:
    """One more thread per mode, its turn-``args.turns`` run under cProfile.

    cProfile's own clock (wall time: the wait for the emulator shows as socket reads); a CPU
    clock as its timer misattributes time across the async runs' suspensions.
    """
    for mode in modes:
        profile = cProfile.Profile()
        drive(mode, args.turns, {args.turns}, profile)
        rows = pstats.Stats(profile).stats  # type: ignore[attr-defined]
        total = sum(tt for _, _, tt, _, _ in rows.values())
        print(f"\nprofile: {mode}, the run at turn {args.turns}: {total * 1e3:.2f} ms profiled")
        for title, column in (("own", 2), ("cumulative", 3)):
            print(f"  top {args.profile} by {title} time:   calls   own ms   cum ms")
            ranked = sorted(rows.items(), key=lambda kv: kv[1][column], reverse=True)
            for (path, line, name), (_, calls, own, cum, _) in ranked[: args.profile]:
                where = _short(path, line, name)
                print(f"    {where:<58.58} {calls:7d} {own * 1e3:8.2f} {cum * 1e3:8.2f}")


def _short(path: str, line: int, name: str) -> str:
    """``package/module.py:line(name)``, without the site-packages or stdlib prefix."""
    if path == "~":  # a built-in
        return name
    for marker in ("site-packages/", "/compat/", "/lib/python"):
        if marker in path:
            path = path.split(marker, 1)[1]
            if marker == "/compat/":
                path = "compat/" + path
            elif marker == "/lib/python":
                path = path.split("/", 1)[1]
            break
    return f"{path}:{line}({name})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--turns", type=int, default=100)
    parser.add_argument(
        "--modes", default=",".join(DEFAULT_MODES), help=f"comma-separated, of {', '.join(MODES)}"
    )
    parser.add_argument(
        "--profile",
        type=int,
        default=0,
        metavar="N",
        help="also profile one last-turn run per mode; print the top N functions",
    )
    args = parser.parse_args()
    modes = [m for m in args.modes.split(",") if m]
    unknown = sorted(set(modes) - set(MODES))
    if unknown or not modes:
        parser.error(f"unknown mode {unknown}; valid: {', '.join(MODES)}")
    if args.turns < 1 or args.rounds < 1:
        parser.error("--turns and --rounds must be at least 1")
    load = os.getloadavg()[0]

    context = multiprocessing.get_context("spawn")
    env_queue, stop = context.Queue(), context.Event()
    server = context.Process(target=serve, args=(env_queue, stop), daemon=True)
    server.start()
    try:
        env: dict[str, str] = env_queue.get(timeout=60)
        with tempfile.TemporaryDirectory() as tmp:
            store = str(Path(tmp, "compat.sqlite3"))
            os.environ.update(env, COMPAT_BACKEND="responses", COMPAT_STORE=store)
            results, sync_imported_openai = measure(args, modes)
            report(results, args, load, sync_imported_openai)
            if args.profile:
                profile_runs(args, modes)
            compat.configure(reset=True)
    finally:
        stop.set()
        server.join(30)


if __name__ == "__main__":
    main()
