"""What compat costs per streamed event, against three anchors, in every framing, in one run.

One text stream of ``--deltas`` non-ASCII deltas is served on loopback by a process of its own
(``_wire.py``: pre-built bytes on a stdlib socket, ``TCP_NODELAY``), framed ``bulk`` (64 KiB
writes, Content-Length), ``lf`` or ``crlf`` (one event per HTTP chunk, chunked transfer
encoding), and read by:

* compat     -- ``Runs.create(..., stream=True)`` on the responses backend, on the default store
                (a SQLite file in a temporary directory), ``COMPAT_RESPONSES_BASE_URL`` pointing
                at the server; it counts ``data.delta.content.text.value``;
* openai     -- the ``openai`` SDK: ``client.responses.create(stream=True)``, iterating events;
* dashscope  -- the ``dashscope`` SDK: ``Runs.create(stream=True)`` on the Assistant-API form
                of the same content;
* bare       -- the HTTP client compat's sync runs use (the standard library's ``http.client``,
                a kept-alive connection, ``read1``) streaming the Responses bytes, split into
                lines, ``json.loads`` per ``data:`` line.

Each round reads every framing with every reader, in an order rotated round by round, each read
after a ``gc.collect()`` (setup and warm-up frozen out of it with ``gc.freeze``): the long stream
once (wall time, and the CPU time of this process: ``time.process_time``, every thread of it,
none of the server's), then a short stream ``--first-samples`` times for the time to the first
text delta, warm (pooled connections).
Medians are printed, then every goal with its ratio and PASS or MISS.

    python benchmarks/stream_throughput.py [--deltas 10000] [--rounds 5] [--framing lf,crlf]
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

READERS = ("compat", "openai", "dashscope", "bare")
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
    """One read: characters of text seen; wall and CPU seconds, in all and to the first delta."""

    chars: int
    wall: float
    cpu: float
    first: float
    first_cpu: float


@dataclass
class Series:
    """Every sample of one reader in one framing."""

    samples: list[Sample] = field(default_factory=list)
    #: the short stream's samples, for the first delta
    short: list[Sample] = field(default_factory=list)

    def median(self, what: str) -> float:
        samples = self.short if what.startswith("first") else self.samples
        return statistics.median(getattr(s, what) for s in samples)


Reader = Callable[[str], Sample]


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
        cpu, started = time.process_time(), time.perf_counter()
        for event, data in compat.Runs.create(thread.id, assistant_id=assistant.id, stream=True):
            if event == "thread.message.delta":
                if not n:
                    first = (time.perf_counter() - started, time.process_time() - cpu)
                n += len(data.delta.content.text.value)
        return Sample(n, time.perf_counter() - started, time.process_time() - cpu, *first)

    def read_openai(base: str) -> Sample:
        client = openai_clients.get(base)
        if client is None:
            client = openai_clients[base] = openai.OpenAI(
                base_url=f"{base}/compatible-mode/v1", api_key="sk-bench"
            )
        n, first = 0, (0.0, 0.0)
        cpu, started = time.process_time(), time.perf_counter()
        for event in client.responses.create(model="qwen-plus", input="Count.", stream=True):
            if event.type == "response.output_text.delta":
                if not n:
                    first = (time.perf_counter() - started, time.process_time() - cpu)
                n += len(event.delta)
        return Sample(n, time.perf_counter() - started, time.process_time() - cpu, *first)

    def read_dashscope(base: str) -> Sample:
        n, first = 0, (0.0, 0.0)
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
        return Sample(n, time.perf_counter() - started, time.process_time() - cpu, *first)

    connections: dict[str, http.client.HTTPConnection] = {}
    body = json.dumps(BODY).encode()

    def read_bare(base: str) -> Sample:
        n, first = 0, (0.0, 0.0)
        loads = json.loads
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
        return Sample(n, time.perf_counter() - started, time.process_time() - cpu, *first)

    return {
        "compat": read_compat,
        "openai": read_openai,
        "dashscope": read_dashscope,
        "bare": read_bare,
    }


def measure(
    origin: str, framings: list[str], readers: dict[str, Reader], args: argparse.Namespace
) -> dict[tuple[str, str], Series]:
    """Warm every reader in every framing once, then ``args.rounds`` rotated rounds."""
    results = {(f, name): Series() for f in framings for name in readers}
    names = list(readers)
    expected = _wire.expected_chars(args.deltas)
    expected_short = _wire.expected_chars(_wire.SHORT)

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
        shift = max(round_index, 0) % len(names)
        order = names[shift:] + names[:shift]
        for framing in framings:
            for name in order:
                sample = read(name, f"{origin}/{framing}", expected)
                if round_index >= 0:
                    results[framing, name].samples.append(sample)
            for _ in range(args.first_samples):
                for name in order:
                    sample = read(name, f"{origin}/{framing}-short", expected_short)
                    if round_index >= 0:
                        results[framing, name].short.append(sample)
    return results


def report(
    results: dict[tuple[str, str], Series],
    framings: list[str],
    args: argparse.Namespace,
    load: float,
) -> None:
    names = [n for n in READERS if (framings[0], n) in results]
    print(
        f"stream_throughput: {args.deltas:,} non-ASCII text deltas per stream, "
        f"median of {args.rounds} rounds (reader order rotated each round)"
    )
    print(_wire.machine(load))
    print("server: a separate process writing pre-built bytes, TCP_NODELAY")
    print(
        f"first delta: median of {args.rounds * args.first_samples} warm requests of a "
        f"{_wire.SHORT}-delta stream per reader and framing"
    )
    per = 1e6 / args.deltas
    for framing in framings:
        print(f"\n[{framing}] {_FRAMING_TEXT[framing]}")
        print(
            f"  {'reader':<10} {'cpu us/delta':>12} {'wall us/delta':>13}   "
            f"first delta: {'wall ms':>7} {'cpu ms':>6}"
        )
        for name in names:
            series = results[framing, name]
            print(
                f"  {name:<10} {series.median('cpu') * per:12.1f} "
                f"{series.median('wall') * per:13.1f}   {'':13}{series.median('first') * 1e3:7.2f} "
                f"{series.median('first_cpu') * 1e3:6.2f}"
            )
    print("\ngoals (ratio of medians; cpu decides, wall shown too; first delta: wall decides):")
    for anchor, bound, covered in GOALS:
        for framing in framings:
            if framing not in covered or (framing, anchor) not in results:
                continue
            compat, other = results[framing, "compat"], results[framing, anchor]
            cpu = compat.median("cpu") / other.median("cpu")
            wall = compat.median("wall") / other.median("wall")
            verdict = "PASS" if cpu <= bound else "MISS"
            print(
                f"  {verdict}  compat/{anchor:<9} <= {bound:<4} [{framing:>5}]  "
                f"cpu {cpu:5.2f}   wall {wall:5.2f}"
            )
    for framing in framings:
        compat_first = results[framing, "compat"].median("first")
        bare_first = results[framing, "bare"].median("first")
        cpu_gap = results[framing, "compat"].median("first_cpu") - results[framing, "bare"].median(
            "first_cpu"
        )
        verdict = "PASS" if compat_first <= bare_first + TTFE_SLACK else "MISS"
        print(
            f"  {verdict}  first delta <= bare + 2 ms [{framing:>5}]  "
            f"compat {compat_first * 1e3:.2f} ms, bare {bare_first * 1e3:.2f} ms: "
            f"wall {(compat_first - bare_first) * 1e3:+.2f} ms (cpu {cpu_gap * 1e3:+.2f} ms)"
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
    parser.add_argument("--rounds", type=int, default=5)
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
