"""How long ``compat.aio`` holds its event loop: 32 token streams at once, a ticker alongside.

The upstream is compat's emulator in a process of its own, streaming each answer as a model
does (``--chunks`` text deltas, ``--pace`` seconds apart). A ticker task sleeps 1 ms at a time
and records every gap between its wake-ups: a gap is the longest the loop ran other work
without coming back to it. The same load runs on three stores, in turn, ``--rounds`` times:

* ``memory``: store calls inline (they take microseconds);
* ``sqlite inline``: a SQLite file with every store call made on the loop (compat before store
  calls moved off the loop, forced here by patching ``compat.backends.responses.offload``);
* ``sqlite``: a SQLite file as compat runs it (``offload``): a store call on the loop when SQLite's
  write lock is free at once, else in the store pool.

Goal: the loop is never held more than a few milliseconds, while the 32 streams start (all in
one loop iteration: compat's work on the loop takes turns, ``backends.responses.turns``) and
once they stream: the longest stall, median of the rounds, at most 5 ms. Each phase's longest
gap, its p99 and the most CPU the loop's own thread spent in one gap are printed: a gap much
longer than its loop CPU was the machine (other processes, or store threads holding the GIL),
not the loop's own work. The machine's load is printed: on a busy machine the figures measure
the machine too.

    python benchmarks/aio_loop_stall.py [--rounds 5] [--streams 32] [--chunks 25] [--pace 0.02]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _wire

KEY = "sk-bench"
MODES = ("memory", "sqlite inline", "sqlite")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def emulator(scenarios: list[dict[str, object]]) -> Iterator[str]:
    """``python -m compat.testing`` with ``scenarios`` queued; yields its Responses base URL."""
    with tempfile.TemporaryDirectory() as tmp:
        spec = Path(tmp) / "scenarios.jsonl"
        spec.write_text("\n".join(json.dumps(s) for s in scenarios), "utf-8")
        port = free_port()
        command = [sys.executable, "-m", "compat.testing", "--port", str(port), "--api-key", KEY]
        process = subprocess.Popen(
            [*command, "--scenario-file", str(spec)], stdout=subprocess.PIPE, text=True
        )
        try:
            assert process.stdout is not None
            env = {}
            for line in process.stdout:
                if line.startswith("#"):
                    break
                name, _, value = line.removeprefix("export ").strip().partition("=")
                env[name] = value.strip("'")
            yield env["COMPAT_RESPONSES_BASE_URL"]
        finally:
            process.terminate()
            process.wait(30)


@contextlib.contextmanager
def store_calls_inline(inline: bool) -> Iterator[None]:
    """Make every store call on the loop (compat before the offload), for the comparison."""
    from compat import aio
    from compat.backends.responses import offload

    if not inline:
        yield
        return
    original_init, original_spec = offload.StoreCalls.__init__, aio.inline_spec

    def init(self: offload.StoreCalls, store: object) -> None:
        original_init(self, store)  # type: ignore[arg-type]
        self.inline = True

    offload.StoreCalls.__init__ = init  # type: ignore[method-assign]
    aio.inline_spec = lambda spec: True
    try:
        yield
    finally:
        offload.StoreCalls.__init__ = original_init  # type: ignore[method-assign]
        aio.inline_spec = original_spec


Gap = tuple[float, float, float]  # (wall seconds, loop-thread CPU seconds, when it ended)


async def one_round(streams: int) -> tuple[list[Gap], float, int]:
    """The ticker's gaps while ``streams`` streams ran, when every stream had its first event
    (the end of the start: the streams are under way from there), and how many completed."""
    from compat import aio

    assistant = await aio.Assistants.create(model="qwen-plus", api_key=KEY)
    threads = [
        await aio.Threads.create(messages=[{"role": "user", "content": f"Question {i}"}])
        for i in range(streams)
    ]

    firsts: list[float] = []

    async def stream(thread_id: str) -> str:
        last = ""
        items = await aio.Runs.create(thread_id, assistant_id=assistant.id, stream=True)
        async for event, _ in items:
            if not last:
                firsts.append(time.perf_counter())
            last = event
        return last

    await stream((await aio.Threads.create(messages=[{"role": "user", "content": "w"}])).id)
    firsts.clear()
    gaps: list[Gap] = []
    done = asyncio.Event()

    async def ticker() -> None:
        # thread_time: the CPU the loop's own thread spent in the gap (its work, not the
        # machine's other processes, nor store threads holding the GIL)
        last, last_cpu = time.perf_counter(), time.thread_time()
        while not done.is_set():
            await asyncio.sleep(0.001)
            now, cpu = time.perf_counter(), time.thread_time()
            gaps.append((now - last, cpu - last_cpu, now))
            last, last_cpu = now, cpu

    tick = asyncio.create_task(ticker())
    ends = await asyncio.gather(*(stream(t.id) for t in threads))
    done.set()
    await tick
    completed = sum(end == "thread.run.completed" for end in ends)
    return gaps, max(firsts), completed


#: Per round and phase: (longest stall, p99 gap, the most loop CPU in one gap), seconds.
Phase = tuple[float, float, float]
PHASES = ("starting", "streaming")
GOAL_MS = 5.0


def phases(gaps: list[Gap], under_way: float) -> dict[str, Phase]:
    """The round's figures while the streams start (gaps begun before every stream had its
    first event) and once they are under way."""
    split: dict[str, list[Gap]] = {"starting": [], "streaming": []}
    for gap in gaps:
        wall, _, end = gap
        split["starting" if end - wall < under_way else "streaming"].append(gap)
    figures = {}
    for name, part in split.items():
        walls = sorted(wall for wall, _, _ in part) or [0.0]
        p99 = walls[int(0.99 * (len(walls) - 1))]
        figures[name] = (walls[-1], p99, max((cpu for _, cpu, _ in part), default=0.0))
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="rounds per store")
    parser.add_argument("--streams", type=int, default=32, help="concurrent streams")
    parser.add_argument("--chunks", type=int, default=25, help="text deltas per stream")
    parser.add_argument("--pace", type=float, default=0.02, help="seconds between events")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    words = [f"w{n} " for n in range(args.chunks)]
    answer = {"text": "".join(words), "chunks": words, "pace": args.pace}
    per_round = [{"text": "warm"}, *[answer] * args.streams]
    scenarios = per_round * args.rounds * len(MODES)
    results: dict[str, list[tuple[dict[str, Phase], int]]] = {mode: [] for mode in MODES}
    with emulator(scenarios) as upstream, tempfile.TemporaryDirectory() as tmp:
        os.environ.update(
            COMPAT_BACKEND="responses", COMPAT_RESPONSES_BASE_URL=upstream, DASHSCOPE_API_KEY=KEY
        )
        import compat

        for round_ in range(args.rounds):
            for mode in MODES:
                store = "memory" if mode == "memory" else str(Path(tmp) / f"{round_}-{mode}.db")
                compat.configure(store=store)
                with store_calls_inline(mode == "sqlite inline"):
                    gaps, under_way, completed = asyncio.run(one_round(args.streams))
                results[mode].append((phases(gaps, under_way), completed))
    report(args, results)
    print(_wire.machine(load))


def ms(seconds: float) -> str:
    return f"{seconds * 1000:5.1f}"


def report(
    args: argparse.Namespace, results: dict[str, list[tuple[dict[str, Phase], int]]]
) -> None:
    print(
        f"{args.streams} streams of {args.chunks} deltas {args.pace * 1000:g} ms apart on one "
        f"loop, a 1 ms ticker; ms, median of {args.rounds} rounds [the worst round]. Longest: "
        "the longest gap between ticks; loop CPU: the most CPU the loop's thread spent in one gap"
    )
    head = "".join(f" {'--- ' + phase + ' ':-<34}" for phase in PHASES)
    print(f"   {'':14}{head}")
    columns = f"{'longest':>14} {'p99':>5} {'loop CPU':>13}"
    print(f"   {'store':14} {columns}  {columns}  complete")
    longest: dict[str, dict[str, float]] = {}
    for mode, rows in results.items():
        cells = []
        longest[mode] = {}
        for phase in PHASES:
            figures = [row[0][phase] for row in rows]
            worst, p99, cpu = (statistics.median(f[i] for f in figures) for i in range(3))
            longest[mode][phase] = worst
            cells.append(
                f"{ms(worst)} [{ms(max(f[0] for f in figures))}] {ms(p99)}"
                f" {ms(cpu)} [{ms(max(f[2] for f in figures))}]"
            )
        completed = min(row[1] for row in rows)
        print(f"   {mode:14} {'  '.join(cells)}  {completed}/{args.streams}")
    goal = f"<= {GOAL_MS:g} ms while starting and streaming"
    print(f"Goal: the longest stall, median of the rounds, {goal}")
    for mode in ("memory", "sqlite"):
        worst = max(longest[mode].values())
        verdict = "PASS" if worst * 1000 <= GOAL_MS else "MISS"
        print(
            f"   {verdict}  {mode:7} starting {ms(longest[mode]['starting']).strip()} ms, "
            f"streaming {ms(longest[mode]['streaming']).strip()} ms"
        )
    before, after = (max(longest[m].values()) for m in ("sqlite inline", "sqlite"))
    print(
        f"   SQLite, every store call on the loop -> as compat runs it: longest stall "
        f"{before * 1000:.1f} -> "
        f"{after * 1000:.1f} ms ({before / after:.2f}x)"
    )


if __name__ == "__main__":
    main()
