"""How long ``compat.aio`` holds its event loop: 32 token streams at once, a ticker alongside.

The upstream is compat's emulator in a process of its own, streaming each answer as a model
does (``--chunks`` text deltas, ``--pace`` seconds apart). A ticker task sleeps 1 ms at a time
and records every gap between its wake-ups: a gap is the longest the loop ran other work
without coming back to it. The same load runs on three stores, in turn, ``--rounds`` times:

* ``memory``: store calls inline (they take microseconds);
* ``sqlite inline``: a SQLite file with every store call made on the loop (compat before store
  calls moved off the loop, forced here by patching ``compat.backends.responses.offload``);
* ``sqlite``: a SQLite file as compat runs it, store calls in the ``offload`` thread pool.

Goal: no stall longer than a few milliseconds beyond what the same streams cost on the memory
store (the 32 streams all start in one loop iteration, so the first gap also holds 32 request
starts, whatever the store). The machine's load is printed: on a busy machine the figures
measure the machine too.

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


async def one_round(streams: int) -> tuple[list[float], list[float], int]:
    """Gaps (s) the ticker saw while ``streams`` streams ran, those once every stream had its
    first event (the streams' steady state, past the burst of their starts), and how many
    streams completed."""
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
    gaps: list[tuple[float, float]] = []  # (gap, when it ended)
    done = asyncio.Event()

    async def ticker() -> None:
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.001)
            now = time.perf_counter()
            gaps.append((now - last, now))
            last = now

    tick = asyncio.create_task(ticker())
    ends = await asyncio.gather(*(stream(t.id) for t in threads))
    done.set()
    await tick
    under_way = max(firsts)
    steady = [gap for gap, end in gaps if end - gap > under_way]
    completed = sum(end == "thread.run.completed" for end in ends)
    return [gap for gap, _ in gaps], steady, completed


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
    results: dict[str, list[tuple[float, float, float, int]]] = {mode: [] for mode in MODES}
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
                    gaps, steady, completed = asyncio.run(one_round(args.streams))
                p99 = sorted(gaps)[int(0.99 * (len(gaps) - 1))]
                results[mode].append((max(gaps), max(steady, default=0.0), p99, completed))
    report(args, results)
    print(_wire.machine(load))


def report(
    args: argparse.Namespace, results: dict[str, list[tuple[float, float, float, int]]]
) -> None:
    print(
        f"{args.streams} streams of {args.chunks} deltas {args.pace * 1000:g} ms apart on one "
        f"loop, a 1 ms ticker; median of {args.rounds} rounds [the worst round]:"
    )
    print(f"   {'store':14} {'longest stall':>20} {'once under way':>20} {'p99 gap':>9}  complete")
    medians: dict[str, tuple[float, float]] = {}
    for mode, rows in results.items():
        longest = statistics.median(r[0] for r in rows)
        steady = statistics.median(r[1] for r in rows)
        medians[mode] = longest, steady
        print(
            f"   {mode:14} {longest * 1000:7.1f} ms [{max(r[0] for r in rows) * 1000:6.1f}]"
            f" {steady * 1000:7.1f} ms [{max(r[1] for r in rows) * 1000:6.1f}]"
            f" {statistics.median(r[2] for r in rows) * 1000:6.1f} ms"
            f"  {min(r[3] for r in rows)}/{args.streams}"
        )
    (before, before_steady), (after, after_steady) = medians["sqlite inline"], medians["sqlite"]
    print(
        f"   SQLite, store calls on the loop -> off it: longest stall {before * 1000:.1f} -> "
        f"{after * 1000:.1f} ms ({before / after:.2f}x), once under way {before_steady * 1000:.1f}"
        f" -> {after_steady * 1000:.1f} ms ({before_steady / after_steady:.2f}x); memory store "
        f"{medians['memory'][0] * 1000:.1f} / {medians['memory'][1] * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
