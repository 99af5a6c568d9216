"""What compat costs per streamed event, against three anchors, in every framing, in one run.

One text stream of ``--deltas`` non-ASCII deltas is served on loopback by a process of its own
(``_wire.py``: pre-built bytes on a stdlib socket, ``TCP_NODELAY``), framed ``bulk`` (64 KiB
writes, Content-Length), ``lf`` or ``crlf`` (one event per HTTP chunk, chunked transfer
encoding), and read by:

* compat     -- ``Runs.create(..., stream=True)`` on the responses backend, on the default store
                (a SQLite file in a temporary directory), ``COMPAT_RESPONSES_BASE_URL`` pointing
                at the server; it counts ``data.delta.content.text.value``;
* bare       -- the HTTP client compat's sync runs use (the standard library's ``http.client``,
                a kept-alive connection, ``read1``) streaming the Responses bytes, split into
                lines, ``json.loads`` per ``data:`` line;
* dashscope  -- the ``dashscope`` SDK: ``Runs.create(stream=True)`` on the Assistant-API form
                of the same content;
* openai     -- the ``openai`` SDK: ``client.responses.create(stream=True)``, iterating events;
                only in the framings of ``--openai-framings`` (default: bulk, the one its goal
                covers; it reads ~40 times slower than the others and would take most of a run).

Each round reads every framing: the long stream ``--pairs`` times with compat and bare, side by
side (which goes first swaps each time), once with each SDK, then a short stream
``--first-samples`` times with every reader for the time to the first text delta, warm (pooled
connections). Every other round reads in the reverse order. Each read comes after a
``gc.collect()`` (setup and warm-up frozen out of it with ``gc.freeze``) and is timed by wall
clock and by the CPU time of this process (``time.process_time``: every thread of it, none of
the server's); the reader's waits for the server (voluntary context switches) are counted too.

A ratio is taken between reads made side by side (compat/bare: each pair; compat/an SDK:
compat's median in the round against the SDK's read), and the median over them is printed with
their range and how many were over the bound. The machine's speed drifts (on a shared machine
by tens of per cent within seconds); a ratio of two reads side by side drifts much less than
either read. CPU time decides the per-delta goals (wall time is shown, with its own ratios); the
first delta's goal is decided by wall time (the median over every short read, compat's minus
bare's; per round too).

    python benchmarks/stream_throughput.py [--deltas 10000] [--rounds 7] [--pairs 3]
        [--first-samples 10] [--framing bulk,lf,crlf] [--openai-framings bulk]
"""

from __future__ import annotations

import argparse
import gc
import http.client
import json
import os
import statistics
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _wire  # the benchmarks' own helper, beside this file

try:
    from resource import RUSAGE_SELF, getrusage
except ImportError:  # not on Windows: the waits column then reads 0
    getrusage = None  # type: ignore[assignment]

#: The read order of even rounds (odd rounds read it backwards): compat and bare side by side.
READERS = ("compat", "bare", "dashscope", "openai")
#: (reader, anchor, most the ratio compat/anchor may be, the framings the goal covers)
GOALS: tuple[tuple[str, float, tuple[str, ...]], ...] = (
    ("bare", 1.2, _wire.FRAMINGS),
    ("dashscope", 0.5, _wire.FRAMINGS),
    ("openai", 0.1, ("bulk",)),
)
TTFE_SLACK = 0.002  # compat's first text delta may come at most 2 ms after bare's (warm)
BODY = {"model": "qwen-plus", "input": "Count.", "stream": True}


@dataclass
class Sample:
    """One read: characters of text seen; wall and CPU seconds, in all and to the first delta;
    how often the reader waited for the server (voluntary context switches of this process)."""

    chars: int
    wall: float
    cpu: float
    first: float
    first_cpu: float
    waits: int = 0


@dataclass
class Series:
    """Every sample of one reader in one framing, by round."""

    #: the long stream's samples, per round (compat and bare: ``--pairs`` each)
    rounds: list[list[Sample]] = field(default_factory=list)
    #: the short stream's samples (the first delta), ``--first-samples`` per round
    short: list[list[Sample]] = field(default_factory=list)

    def median(self, what: str) -> float:
        runs = self.short if what.startswith("first") else self.rounds
        return statistics.median(getattr(s, what) for r in runs for s in r)

    def round_medians(self, what: str) -> list[float]:
        return [statistics.median(getattr(s, what) for s in r) for r in self.rounds]


Reader = Callable[[str], Sample]


def _voluntary_switches() -> int:
    return getrusage(RUSAGE_SELF).ru_nvcsw if getrusage is not None else 0


def make_readers() -> dict[str, Reader]:
    """The four readers; each takes the server's base URL for one framing."""
    import dashscope
    import openai

    import compat

    assistant = compat.Assistants.create(model="qwen-plus")
    openai_clients: dict[str, openai.OpenAI] = {}

    def read_compat(base: str) -> Sample:
        os.environ["COMPAT_RESPONSES_BASE_URL"] = f"{base}/compatible-mode/v1"
        thread = compat.Threads.create(messages=[{"role": "user", "content": "Count."}])
        n, first = 0, (0.0, 0.0)
        waits = _voluntary_switches()
        cpu, started = time.process_time(), time.perf_counter()
        for event, data in compat.Runs.create(thread.id, assistant_id=assistant.id, stream=True):
            if event == "thread.message.delta":
                if not n:
                    first = (time.perf_counter() - started, time.process_time() - cpu)
                n += len(data.delta.content.text.value)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        return Sample(n, wall, cpu, *first, _voluntary_switches() - waits)

    def read_openai(base: str) -> Sample:
        client = openai_clients.get(base)
        if client is None:
            client = openai_clients[base] = openai.OpenAI(
                base_url=f"{base}/compatible-mode/v1", api_key="sk-bench"
            )
        n, first = 0, (0.0, 0.0)
        waits = _voluntary_switches()
        cpu, started = time.process_time(), time.perf_counter()
        for event in client.responses.create(model="qwen-plus", input="Count.", stream=True):
            if event.type == "response.output_text.delta":
                if not n:
                    first = (time.perf_counter() - started, time.process_time() - cpu)
                n += len(event.delta)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        return Sample(n, wall, cpu, *first, _voluntary_switches() - waits)

    def read_dashscope(base: str) -> Sample:
        n, first = 0, (0.0, 0.0)
        waits = _voluntary_switches()
        cpu, started = time.process_time(), time.perf_counter()
        stream = dashscope.Runs.create(
            "thread_bench",
            assistant_id="asst_bench",
            stream=True,
            api_key="sk-bench",
            base_address=f"{base}/api/v1",
        )
        for event, data in stream:
            if event == "thread.message.delta":
                if not n:
                    first = (time.perf_counter() - started, time.process_time() - cpu)
                n += len(data.delta.content.text.value)
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        return Sample(n, wall, cpu, *first, _voluntary_switches() - waits)

    connections: dict[str, http.client.HTTPConnection] = {}
    body = json.dumps(BODY).encode()

    def read_bare(base: str) -> Sample:
        n, first = 0, (0.0, 0.0)
        loads = json.loads
        waits = _voluntary_switches()
        cpu, started = time.process_time(), time.perf_counter()
        parts = urlsplit(base)
        conn = connections.get(base)
        if conn is None:
            conn = connections[base] = http.client.HTTPConnection(parts.hostname, parts.port)
        headers = {"Authorization": "Bearer sk", "Content-Type": "application/json"}
        conn.request(
            "POST", f"{parts.path}/compatible-mode/v1/responses", body=body, headers=headers
        )
        r = conn.getresponse()
        rest = b""
        while chunk := r.read1(65536):
            lines = (rest + chunk).split(b"\n")
            rest = lines.pop()
            for line in lines:
                if line.startswith(b"data:"):
                    event = loads(line[5:])  # a trailing CR is JSON whitespace
                    if event["type"] == "response.output_text.delta":
                        if not n:
                            first = (time.perf_counter() - started, time.process_time() - cpu)
                        n += len(event["delta"])
        r.close()
        wall, cpu = time.perf_counter() - started, time.process_time() - cpu
        return Sample(n, wall, cpu, *first, _voluntary_switches() - waits)

    return {
        "compat": read_compat,
        "bare": read_bare,
        "dashscope": read_dashscope,
        "openai": read_openai,
    }


def measure(
    origin: str, framings: list[str], readers: dict[str, Reader], args: argparse.Namespace
) -> dict[tuple[str, str], Series]:
    """Warm every reader in every framing once, then ``args.rounds`` rounds (see the docstring)."""
    openai_framings = set(args.openai_framings.split(","))
    names = {
        framing: [n for n in READERS if n != "openai" or framing in openai_framings]
        for framing in framings
    }
    results = {(f, name): Series() for f in framings for name in names[f]}
    expected = _wire.expected_chars(args.deltas)
    expected_short = _wire.expected_chars(_wire.SHORT)
    # compat and bare, side by side ``--pairs`` times, which goes first swapping each time
    pairs = [("compat", "bare")[:: 1 if i % 2 == 0 else -1] for i in range(args.pairs)]
    paired = [name for pair in pairs for name in pair]

    def read(name: str, base: str, chars: int) -> Sample:
        gc.collect()  # no reader pays for the garbage of the one before it
        sample = readers[name](base)
        if sample.chars != chars:
            raise SystemExit(f"{name} read {sample.chars} characters, not {chars}")
        return sample

    for round_index in range(-1, args.rounds):  # round -1 is the warm-up, not kept
        # What exists now (modules, clients, caches) is never garbage: frozen, a gc.collect()
        # before each read costs microseconds instead of ~0.1 s over the SDKs' object graphs.
        gc.collect()
        gc.freeze()
        kept = round_index >= 0
        forward = round_index % 2 == 0
        for framing in framings:
            sdks = [n for n in names[framing] if n not in ("compat", "bare")]
            order = paired + sdks if forward else sdks[::-1] + paired[::-1]
            if kept:
                for name in names[framing]:
                    results[framing, name].rounds.append([])
                    results[framing, name].short.append([])
            for name in order:
                sample = read(name, f"{origin}/{framing}", expected)
                if kept:
                    results[framing, name].rounds[-1].append(sample)
            short_order = names[framing] if forward else names[framing][::-1]
            for _ in range(args.first_samples):
                for name in short_order:
                    sample = read(name, f"{origin}/{framing}-short", expected_short)
                    if kept:
                        results[framing, name].short[-1].append(sample)
    return results


def _ratios(numerators: list[float], denominators: list[float]) -> list[float]:
    return [n / d for n, d in zip(numerators, denominators, strict=True)]


def _spread(values: list[float], fmt: str = "{:.2f}") -> str:
    """The median and the range of per-round values: ``1.05 (0.98-1.12)``."""
    middle, low, high = statistics.median(values), min(values), max(values)
    return f"{fmt.format(middle)} ({fmt.format(low)}-{fmt.format(high)})"


def report(
    results: dict[tuple[str, str], Series],
    framings: list[str],
    args: argparse.Namespace,
    load: float,
) -> None:
    print(
        f"stream_throughput: {args.deltas:,} non-ASCII text deltas per stream, {args.rounds} "
        f"rounds of {args.pairs} compat/bare pairs and one read per SDK (order reversed every "
        f"other round)"
    )
    print(_wire.machine(load))
    print("server: a separate process writing pre-built bytes, TCP_NODELAY")
    print(
        f"per delta: medians of every read; waits: the reader's voluntary context switches per "
        f"1,000 deltas\nfirst delta: median of {args.rounds * args.first_samples} warm requests "
        f"of a {_wire.SHORT}-delta stream per reader and framing"
    )
    per = 1e6 / args.deltas
    for framing in framings:
        print(f"\n[{framing}] {_FRAMING_TEXT[framing]}")
        print(
            f"  {'reader':<10} {'cpu us/delta':>12} {'wall us/delta':>13} {'waits/1k':>8}   "
            f"first delta: {'wall ms':>7} {'cpu ms':>6}"
        )
        for name in READERS:
            series = results.get((framing, name))
            if series is None:
                continue
            waits = series.median("waits") * 1000 / args.deltas
            print(
                f"  {name:<10} {series.median('cpu') * per:12.1f} "
                f"{series.median('wall') * per:13.1f} {waits:8.1f}   {'':13}"
                f"{series.median('first') * 1e3:7.2f} {series.median('first_cpu') * 1e3:6.2f}"
            )
    print(
        "\ngoals (median of the ratios of reads side by side, their range in brackets, how many "
        "were over;\n       cpu decides, wall shown too; first delta: wall decides, the median "
        "over every short read):"
    )
    for anchor, bound, covered in GOALS:
        for framing in framings:
            if framing not in covered or (framing, anchor) not in results:
                continue
            compat, other = results[framing, "compat"], results[framing, anchor]
            if anchor == "bare":  # every pair read side by side
                pairs = [
                    (c, o)
                    for cs, os_ in zip(compat.rounds, other.rounds, strict=True)
                    for c, o in zip(cs, os_, strict=True)
                ]
                cpu = [c.cpu / o.cpu for c, o in pairs]
                wall = [c.wall / o.wall for c, o in pairs]
            else:  # compat's median in the round against the anchor's one read
                cpu = _ratios(compat.round_medians("cpu"), other.round_medians("cpu"))
                wall = _ratios(compat.round_medians("wall"), other.round_medians("wall"))
            verdict = "PASS" if statistics.median(cpu) <= bound else "MISS"
            over = sum(r > bound for r in cpu)
            print(
                f"  {verdict}  compat/{anchor:<9} <= {bound:<4} [{framing:>5}]  "
                f"cpu {_spread(cpu)}   wall {_spread(wall)}   over: {over}/{len(cpu)}"
            )
    for framing in framings:
        compat, bare = results[framing, "compat"], results[framing, "bare"]
        compat_first, bare_first = compat.median("first"), bare.median("first")
        cpu_gap = compat.median("first_cpu") - bare.median("first_cpu")
        per_round = [
            (statistics.median(s.first for s in c) - statistics.median(s.first for s in b)) * 1e3
            for c, b in zip(compat.short, bare.short, strict=True)
        ]
        verdict = "PASS" if compat_first <= bare_first + TTFE_SLACK else "MISS"
        over = sum(gap > TTFE_SLACK * 1e3 for gap in per_round)
        print(
            f"  {verdict}  first delta <= bare + 2 ms [{framing:>5}]  "
            f"compat {compat_first * 1e3:.2f} ms, bare {bare_first * 1e3:.2f} ms: "
            f"wall {(compat_first - bare_first) * 1e3:+.2f} ms (cpu {cpu_gap * 1e3:+.2f} ms); "
            f"per round {_spread(per_round, '{:+.2f}')} ms, over: {over}/{len(per_round)}"
        )


_FRAMING_TEXT = {
    "bulk": "64 KiB writes, Content-Length, LF (many events per read)",
    "lf": "one event per HTTP chunk, chunked transfer encoding, LF",
    "crlf": "one event per HTTP chunk, chunked transfer encoding, CRLF",
    "paced": f"lf, {_wire.PACE * 1e3:g} ms pause after each event (each arrives alone)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deltas", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument(
        "--pairs",
        type=int,
        default=3,
        help="compat and bare reads of the long stream per round, side by side",
    )
    parser.add_argument(
        "--first-samples",
        type=int,
        default=10,
        help="short-stream requests per round (first delta)",
    )
    parser.add_argument(
        "--framing",
        default=",".join(_wire.DEFAULT_FRAMINGS),
        help=f"comma-separated, of {', '.join(_wire.FRAMINGS)} (default: all but paced)",
    )
    parser.add_argument(
        "--openai-framings",
        default="bulk",
        help="the framings the openai SDK reads too (default: bulk, where its goal is)",
    )
    args = parser.parse_args()
    load = os.getloadavg()[0]
    framings = [f for f in args.framing.split(",") if f]
    unknown = sorted(set(framings) - set(_wire.FRAMINGS))
    if unknown or not framings:
        parser.error(f"unknown framing {unknown}; valid: {', '.join(_wire.FRAMINGS)}")

    warnings.filterwarnings("ignore", category=DeprecationWarning)  # dashscope's, on every call
    with tempfile.TemporaryDirectory() as store_dir, _wire.server(args.deltas) as origin:
        os.environ.update(
            COMPAT_BACKEND="responses",
            COMPAT_STORE=str(Path(store_dir, "compat.sqlite3")),
            DASHSCOPE_API_KEY="sk-bench",
        )
        readers = make_readers()
        results = measure(origin, framings, readers, args)
    report(results, framings, args, load)


if __name__ == "__main__":
    main()
