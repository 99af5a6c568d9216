"""What ``python -m compat serve`` costs: per event over the in-process facade, and how many
concurrent streams one proxy process holds.

The upstream is ``_wire``'s stream server (a separate process serving pre-built Responses
bytes, one event per chunk), so neither side waits on a model. Two measurements, in one run:

1. **Per event.** One stream at a time, ``--rounds`` times each: ``compat.aio`` in this process
   against the upstream, then a bare SSE reader (httpx) against one proxy process whose upstream
   is the same server. The difference per event is what the proxy adds (the HTTP hop, the SSE
   framing of typed objects, the ASGI server).
2. **Concurrency.** ``--streams`` streams started at once through the one proxy process, each
   on its own thread, read by an asyncio client in this process; time to each stream's first
   event (p50/p99) and to its end, and whether every stream got every event. This machine's
   cores are shared by the proxy, the client and the upstream (the report says how many).

    python benchmarks/proxy.py [--deltas 500] [--rounds 20] [--streams 200]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import _wire

KEY = "sk-bench"


def start_proxy(upstream: str, store: str) -> tuple[subprocess.Popen[bytes], str]:
    """One ``compat serve`` process on a free port; its base URL once healthy."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = dict(
        os.environ,
        COMPAT_BACKEND="responses",
        COMPAT_STORE=store,
        COMPAT_RESPONSES_BASE_URL=upstream,
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "compat", "serve", "--port", str(port)],
        env=env,
        stderr=subprocess.DEVNULL,  # its request log, a line per request (not per event)
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return process, f"http://127.0.0.1:{port}/api/v1"
        except httpx.HTTPError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("compat serve did not start")
        time.sleep(0.05)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


# --- 1. per event ------------------------------------------------------------------------


async def in_process(rounds: int) -> tuple[list[float], int]:
    """Seconds per stream through ``compat.aio`` in this process, and events per stream."""
    from compat import aio

    assistant = await aio.Assistants.create(model="qwen-plus", api_key=KEY)
    times, events = [], 0
    for _ in range(rounds + 1):  # the first warms the client
        thread = await aio.Threads.create(messages=[{"role": "user", "content": "Count."}])
        started = time.perf_counter()
        stream = await aio.Runs.create(
            thread.id, assistant_id=assistant.id, stream=True, api_key=KEY
        )
        events = 0
        async for _event, _data in stream:
            events += 1
        times.append(time.perf_counter() - started)
    return times[1:], events


def through_proxy(base: str, rounds: int) -> tuple[list[float], int]:
    """Seconds per stream read off the proxy by a bare SSE reader, and events per stream."""
    headers = {"Authorization": f"Bearer {KEY}"}
    with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
        assistant = client.post("/assistants", json={"model": "qwen-plus"}).json()["id"]
        times, events = [], 0
        for _ in range(rounds + 1):
            thread = client.post("/threads", json={}).json()["id"]
            body = {"assistant_id": assistant, "stream": True}
            started = time.perf_counter()
            events = 0
            with client.stream("POST", f"/threads/{thread}/runs", json=body) as reply:
                for line in reply.iter_lines():
                    if line.startswith("event:") and line != "event:done":
                        events += 1
            times.append(time.perf_counter() - started)
    return times[1:], events


# --- 2. concurrency ----------------------------------------------------------------------


async def concurrent(base: str, streams: int) -> tuple[list[float], list[float], list[int]]:
    """Time to first event and to the end of each of ``streams`` simultaneous streams."""
    limits = httpx.Limits(max_connections=streams + 10, max_keepalive_connections=streams + 10)
    headers = {"Authorization": f"Bearer {KEY}"}
    async with httpx.AsyncClient(
        base_url=base, headers=headers, timeout=600, limits=limits
    ) as client:
        assistant = (await client.post("/assistants", json={"model": "qwen-plus"})).json()["id"]
        threads = [(await client.post("/threads", json={})).json()["id"] for _ in range(streams)]
        gate = asyncio.Event()

        async def one(thread: str) -> tuple[float, float, int]:
            await gate.wait()
            body = {"assistant_id": assistant, "stream": True}
            started = time.perf_counter()
            first, events = 0.0, 0
            async with client.stream("POST", f"/threads/{thread}/runs", json=body) as reply:
                async for line in reply.aiter_lines():
                    if line.startswith("event:") and line != "event:done":
                        if not events:
                            first = time.perf_counter() - started
                        events += 1
            return first, time.perf_counter() - started, events

        tasks = [asyncio.ensure_future(one(thread)) for thread in threads]
        gate.set()
        results = await asyncio.gather(*tasks)
    return [r[0] for r in results], [r[1] for r in results], [r[2] for r in results]


async def concurrent_in_process(streams: int) -> tuple[list[float], list[float], list[int]]:
    """The same load on ``compat.aio`` in this process: what the facade itself costs."""
    from compat import aio

    assistant = await aio.Assistants.create(model="qwen-plus", api_key=KEY)
    threads = [(await aio.Threads.create(api_key=KEY)).id for _ in range(streams)]
    gate = asyncio.Event()

    async def one(thread: str) -> tuple[float, float, int]:
        await gate.wait()
        started = time.perf_counter()
        first, events = 0.0, 0
        stream = await aio.Runs.create(thread, assistant_id=assistant.id, stream=True, api_key=KEY)
        async for _event, _data in stream:
            if not events:
                first = time.perf_counter() - started
            events += 1
        return first, time.perf_counter() - started, events

    tasks = [asyncio.ensure_future(one(thread)) for thread in threads]
    gate.set()
    results = await asyncio.gather(*tasks)
    return [r[0] for r in results], [r[1] for r in results], [r[2] for r in results]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--deltas", type=int, default=500, help="text deltas per stream")
    parser.add_argument("--rounds", type=int, default=20, help="sequential streams per side")
    parser.add_argument("--streams", type=int, default=200, help="concurrent streams")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    with _wire.server(args.deltas) as origin, tempfile.TemporaryDirectory() as tmp:
        upstream = f"{origin}/lf/compatible-mode/v1"
        os.environ.update(COMPAT_RESPONSES_BASE_URL=upstream, COMPAT_BACKEND="responses")
        import compat

        compat.configure(store=str(Path(tmp) / "inproc.sqlite3"))
        local, events = asyncio.run(in_process(args.rounds))
        crowd = asyncio.run(concurrent_in_process(args.streams))
        proxy, base = start_proxy(upstream, str(Path(tmp) / "proxy.sqlite3"))
        try:
            remote, remote_events = through_proxy(base, args.rounds)
            firsts, totals, counts = asyncio.run(concurrent(base, args.streams))
        finally:
            proxy.terminate()
            proxy.wait(60)
    report(args, events, remote_events, local, remote, firsts, totals, counts)
    print(f"   the same {args.streams} streams on compat.aio in one process, for comparison:")
    crowd_firsts, crowd_totals, crowd_counts = crowd
    print(
        f"   time to first event: p50 {percentile(crowd_firsts, 0.5) * 1000:.0f} ms, "
        f"p99 {percentile(crowd_firsts, 0.99) * 1000:.0f} ms; "
        f"all done in {max(crowd_totals):.1f} s: "
        f"{sum(crowd_counts) / max(crowd_totals):,.0f} events/s"
    )
    print(_wire.machine(load))


def report(
    args: argparse.Namespace,
    events: int,
    remote_events: int,
    local: list[float],
    remote: list[float],
    firsts: list[float],
    totals: list[float],
    counts: list[int],
) -> None:
    loc, rem = statistics.median(local), statistics.median(remote)
    print(f"1. One stream of {args.deltas} deltas ({events} events), median of {args.rounds}:")
    if remote_events != events:
        print(f"   (!) the proxy's reader counted {remote_events} events")
    print(f"   compat.aio in-process   {loc * 1000:8.1f} ms  {loc / events * 1e6:6.1f} us/event")
    print(f"   through compat serve    {rem * 1000:8.1f} ms  {rem / events * 1e6:6.1f} us/event")
    extra = (rem - loc) / events * 1e6
    print(f"   the proxy adds {extra:.1f} us/event ({rem / loc:.2f}x the in-process time)")
    complete = sum(c == events for c in counts)
    print(
        f"2. {args.streams} concurrent streams through one proxy process ({os.cpu_count()} cores):"
    )
    print(f"   complete: {complete}/{args.streams}")
    p50, p99 = percentile(firsts, 0.5), percentile(firsts, 0.99)
    print(f"   time to first event: p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")
    wall = max(totals)
    delivered = sum(counts)
    print(
        f"   all done in {wall:.1f} s: {delivered / wall:,.0f} events/s "
        f"({delivered / wall * rem / remote_events:.1f}x one stream's rate)"
    )


if __name__ == "__main__":
    main()
