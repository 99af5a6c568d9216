"""``nox -s live``: the examples against the real DashScope, on both backends, side by side.

Without ``DASHSCOPE_API_KEY`` it prints why it skipped and exits 0. With it, it runs the code
tutor (examples/code_tutor_stream.py) and the scenarios of ``scenarios.py`` (a function round
trip, a search, a two-run thread) once with ``COMPAT_BACKEND=assistants`` and once with
``responses``, and prints what each saw. The ``responses`` runs go through ``RecordingProxy``,
which records every Responses stream as ``tests/fixtures/live/<label>-<n>.jsonl`` (replayed by
``tests/unit/test_live_fixtures.py``). Last, a probe: an assistant told to answer only
"PINEAPPLE" is asked "What is 2+2?" with ``COMPAT_INSTRUCTIONS=parameter``; whether the answer
obeys says whether the server honours the ``instructions`` field (printed, not asserted).

Exit status: 0 skipped or every program ran (differences are printed, not failures), 1 a program
failed. ``--out DIR`` records elsewhere (the default replaces nothing: files are numbered).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))

SCENARIOS = ("function", "search", "two_runs")
BACKENDS = ("assistants", "responses")
SKIP_MESSAGE = "live: skipped: DASHSCOPE_API_KEY is not set (the live session needs a real key)"


def run_program(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=600,
        check=False,
    )
    return done.returncode, done.stdout + (done.stderr if done.returncode else "")


def result_of(output: str) -> Any:
    for line in output.splitlines():
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT ") :])
    return None


def side_by_side(name: str, outputs: dict[str, Any]) -> None:
    print(f"\n=== {name} ===")
    for backend, output in outputs.items():
        print(f"--- {backend} ---")
        if isinstance(output, str):
            print(output[-2000:])
            continue
        for index, run in enumerate(output or [], 1):
            print(f" run {index}: status={run['status']} tool_calls={run['tool_calls']}")
            print(f"   events: {' '.join(run['events'])}")
            for text in run["texts"]:
                print(f"   text: {text[:400]!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "tests" / "fixtures" / "live")
    args = parser.parse_args(argv)
    if not os.environ.get("DASHSCOPE_API_KEY"):
        print(SKIP_MESSAGE)
        return 0
    from recording_proxy import RecordingProxy

    from compat._config import current_settings

    upstream = current_settings().responses_base_url
    args.out.mkdir(parents=True, exist_ok=True)
    failed = False
    with RecordingProxy(upstream, args.out) as proxy:

        def env_for(backend: str, label: str) -> dict[str, str]:
            env = dict(os.environ, COMPAT_BACKEND=backend, COMPAT_STORE="memory")
            env["CODE_TUTOR_TYPING_DELAY"] = "0"
            if backend == "responses":
                env["COMPAT_RESPONSES_BASE_URL"] = proxy.base_url(label)
            return env

        tutor = {}
        for backend in BACKENDS:
            code, output = run_program(
                ["examples/code_tutor_stream.py"], env_for(backend, "code_tutor")
            )
            failed = failed or code != 0
            tutor[backend] = f"(exit {code})\n{output}"
        side_by_side("code tutor", tutor)
        for name in SCENARIOS:
            outputs: dict[str, Any] = {}
            for backend in BACKENDS:
                code, output = run_program(
                    [str(HERE / "scenarios.py"), name], env_for(backend, name)
                )
                failed = failed or code != 0
                outputs[backend] = result_of(output) if code == 0 else f"(exit {code})\n{output}"
            side_by_side(name, outputs)
        env = env_for("responses", "instructions")
        env["COMPAT_INSTRUCTIONS"] = "parameter"
        code, output = run_program([str(HERE / "scenarios.py"), "instructions"], env)
        probe = result_of(output) if code == 0 else None
        answer = " ".join(probe[0]["texts"]) if probe else f"(failed: {output[-500:]})"
        obeyed = "PINEAPPLE" in answer.upper()
        print("\n=== instructions probe (COMPAT_INSTRUCTIONS=parameter) ===")
        print(f" answer: {answer[:200]!r}")
        print(
            " the server honours `instructions`"
            if obeyed
            else " the answer ignores the instructions: consider COMPAT_INSTRUCTIONS=message"
        )
    print(f"\nrecorded {len(proxy.recorded)} Responses stream(s) in {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
