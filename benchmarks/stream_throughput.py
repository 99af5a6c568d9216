"""How fast compat translates a long Responses stream, against three anchors, in one run.

One 20,000-delta text stream, served on loopback from a separate process (so the server's CPU
is not the reader's), is read by:

* compat     -- ``Runs.create(..., stream=True)`` on the responses backend, reading
                ``data.delta.content.text.value`` from every ``thread.message.delta``;
* openai     -- the raw ``openai`` SDK iterating the same Responses stream (``event.delta``);
* dashscope  -- the raw ``dashscope`` SDK iterating the equivalent Assistant-API stream;
* bare       -- ``httpx`` streaming the Responses bytes, ``json.loads`` per ``data:`` line.

The stream bytes are recorded once from compat's emulator and replayed verbatim for every
request. Readers alternate round by round, each after a ``gc.collect()``; the medians and the
ratios are printed.

    python benchmarks/stream_throughput.py [--deltas 20000] [--rounds 7]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


# -- the replay server (runs in its own process) ---------------------------------------------
def serve(directory: str, port_file: str) -> None:
    """Serve the recorded streams: ``/responses`` → Responses bytes, ``/runs`` → Assistant bytes."""
    responses = Path(directory, "responses.sse").read_bytes()
    assistants = Path(directory, "assistants.sse").read_bytes()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            body = responses if self.path.endswith("/responses") else assistants
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream;charset=UTF-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            view = memoryview(body)
            for start in range(0, len(body), 65536):
                self.wfile.write(view[start : start + 65536])

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Path(port_file).write_text(str(server.server_address[1]))
    server.serve_forever()


# -- recording the two streams from the emulator -----------------------------------------------
def chunks_of(deltas: int) -> list[str]:
    return [f"w{i} " for i in range(deltas)]


def text_of(deltas: int) -> str:
    return "".join(chunks_of(deltas))


def record(directory: Path, deltas: int) -> None:
    import httpx

    from compat.testing import Emulator, Scenario

    chunks = chunks_of(deltas)
    scenario = Scenario.text("".join(chunks), chunks=chunks)
    with Emulator() as emu:
        headers = {"Authorization": f"Bearer {emu.api_key}"}
        with httpx.Client(headers=headers, timeout=60) as client:
            emu.queue(scenario)
            body = {"model": "qwen-plus", "input": "Count.", "stream": True}
            response = client.post(f"{emu.responses_base_url}/responses", json=body)
            directory.joinpath("responses.sse").write_bytes(response.content)
            base = emu.assistants_base_url
            assistant = client.post(f"{base}/assistants", json={"model": "qwen-plus"}).json()
            thread = client.post(
                f"{base}/threads", json={"messages": [{"role": "user", "content": "Count."}]}
            ).json()
            emu.queue(scenario)
            response = client.post(
                f"{base}/threads/{thread['id']}/runs",
                json={"assistant_id": assistant["id"], "stream": True},
            )
            directory.joinpath("assistants.sse").write_bytes(response.content)


# -- the four readers (each returns the characters of text it read and the seconds it took) -----
def make_readers(base_url: str) -> dict[str, Callable[[], tuple[int, float]]]:
    import dashscope
    import httpx
    import openai

    import compat

    compat.configure(
        backend="responses",
        store="memory",
        api_key="sk-bench",
        responses_base_url=f"{base_url}/compatible-mode/v1",
    )
    assistant = compat.Assistants.create(model="qwen-plus")
    openai_client = openai.OpenAI(base_url=f"{base_url}/compatible-mode/v1", api_key="sk-bench")
    http = httpx.Client(timeout=60)

    def read_compat() -> tuple[int, float]:
        thread = compat.Threads.create(messages=[{"role": "user", "content": "Count."}])
        n = 0
        started = time.perf_counter()
        for event, data in compat.Runs.create(thread.id, assistant_id=assistant.id, stream=True):
            if event == "thread.message.delta":
                n += len(data.delta.content.text.value)
        return n, time.perf_counter() - started

    def read_openai() -> tuple[int, float]:
        n = 0
        started = time.perf_counter()
        stream = openai_client.responses.create(model="qwen-plus", input="Count.", stream=True)
        for event in stream:
            if event.type == "response.output_text.delta":
                n += len(event.delta)
        return n, time.perf_counter() - started

    def read_dashscope() -> tuple[int, float]:
        n = 0
        started = time.perf_counter()
        stream = dashscope.Runs.create(
            "thread_bench",
            assistant_id="asst_bench",
            stream=True,
            api_key="sk-bench",
            base_address=f"{base_url}/api/v1",
        )
        for event, data in stream:
            if event == "thread.message.delta":
                n += len(data.delta.content.text.value)
        return n, time.perf_counter() - started

    def read_bare() -> tuple[int, float]:
        n = 0
        started = time.perf_counter()
        loads = json.loads
        body = {"model": "qwen-plus", "input": "Count.", "stream": True}
        with http.stream("POST", f"{base_url}/compatible-mode/v1/responses", json=body) as r:
            for line in r.iter_lines():
                if line.startswith("data:"):
                    event = loads(line[5:])
                    if event["type"] == "response.output_text.delta":
                        n += len(event["delta"])
        return n, time.perf_counter() - started

    return {
        "compat": read_compat,
        "openai": read_openai,
        "dashscope": read_dashscope,
        "bare": read_bare,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--deltas", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--serve", nargs=2, metavar=("DIR", "PORT_FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(*args.serve)
        return

    import warnings

    warnings.filterwarnings("ignore", category=DeprecationWarning)  # dashscope's, on every call
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        record(directory, args.deltas)
        port_file = directory / "port"
        server = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(directory), str(port_file)]
        )
        try:
            deadline = time.monotonic() + 20
            while not port_file.exists() or not port_file.read_text():
                if time.monotonic() > deadline:
                    raise SystemExit("the replay server did not start")
                time.sleep(0.05)
            base_url = f"http://127.0.0.1:{port_file.read_text()}"
            readers = make_readers(base_url)
            times: dict[str, list[float]] = {name: [] for name in readers}
            expected = len(text_of(args.deltas))
            for name, read in readers.items():  # warm-up: imports, connections, caches
                assert read()[0] == expected, f"{name} read a different text"
            for _ in range(args.rounds):
                for name, read in readers.items():
                    gc.collect()  # no reader pays for the garbage of the one before it
                    count, seconds = read()
                    assert count == expected, f"{name} read {count} characters, not {expected}"
                    times[name].append(seconds)
        finally:
            server.terminate()
            server.wait()

    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"one stream of {args.deltas:,} text deltas on loopback, median of {args.rounds} rounds")
    print(f"python {sys.version.split()[0]}, pid {os.getpid()}")
    for name, value in medians.items():
        spread = f"{min(times[name]):.3f}-{max(times[name]):.3f}"
        print(f"  {name:<10} {value:7.3f} s   (range {spread} s)")
    print("ratios (lower is better for compat):")
    for anchor in ("openai", "dashscope", "bare"):
        print(f"  compat/{anchor:<10} {medians['compat'] / medians[anchor]:6.2f}")
    print("goals: compat/bare <= 1.50, compat/dashscope <= 0.50")


if __name__ == "__main__":
    main()
