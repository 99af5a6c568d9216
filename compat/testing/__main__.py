"""``python -m compat.testing``: serve the emulator, or run one command against it.

python -m compat.testing [OPTIONS]            serve until Ctrl-C (prints the variables to export)
python -m compat.testing [OPTIONS] -- CMD ... run CMD with the emulator's variables in its
                                              environment, exit with CMD's exit code

OPTIONS: --port N, --api-key K, --host H, and any number of ``--scenario SPEC`` /
``--scenario-file FILE`` (queued in the order given; see ``compat.testing._scenario_spec``).
``COMPAT_STORE`` is ``memory`` for CMD (and in the printed variables) unless already set, so a
test run never writes into the real store.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from compat.testing._scenario_spec import ScenarioSpecError, parse_file, parse_option
from compat.testing.scenario import Scenario
from compat.testing.server import DEFAULT_API_KEY, Emulator

__all__ = ["main"]

_EPILOG = """\
scenarios (each next run plays the next one queued; then the default reply):
  text:TEXT                       the model answers TEXT
  function:NAME[:ARGS_JSON[:ANSWER]]
                                  the model calls NAME; after the tool output is submitted it
                                  answers ANSWER (default: "The tool returned: <output>")
  code:CODE                       an explanation, a code_interpreter run of CODE (no output)
  search:QUERY                    a web search (quark_search) for QUERY, then an answer
  failure:CODE:MESSAGE            the run fails with CODE and MESSAGE
  {JSON}                          any of these with all their options, e.g.
                                  '{"code": "print(1)", "output": "1\\n"}'
--scenario-file FILE holds such JSON objects: one, an array, or one per line.

With '-- CMD ARGS...', run CMD with the emulator's variables in its environment.
"""


class _Queue(argparse.Action):
    """Collects ``--scenario`` and ``--scenario-file`` values in one list, in command-line order."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        queued = list(getattr(namespace, self.dest) or [])
        queued.append((option_string, str(values)))
        setattr(namespace, self.dest, queued)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m compat.testing",
        description="Loopback emulator of DashScope's Assistant and Responses APIs.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY, help="the key to accept")
    parser.add_argument(
        "--scenario", dest="queue", action=_Queue, metavar="SPEC", help="queue a scenario"
    )
    parser.add_argument(
        "--scenario-file",
        dest="queue",
        action=_Queue,
        metavar="FILE",
        help="queue the scenarios of a file",
    )
    return parser


def _scenarios(parser: argparse.ArgumentParser, queue: list[tuple[str, str]]) -> list[Scenario]:
    scenarios: list[Scenario] = []
    for option, value in queue:
        try:
            if option == "--scenario":
                scenarios.append(parse_option(value))
            else:
                text = Path(value).read_text(encoding="utf-8")
                scenarios.extend(parse_file(text, value))
        except (ScenarioSpecError, OSError) as exc:
            parser.error(f"{option} {value}: {exc}")
    return scenarios


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if "--" in args:
        split = args.index("--")
        args, command = args[:split], args[split + 1 :]
    parser = _parser()
    options = parser.parse_args(args)
    scenarios = _scenarios(parser, options.queue or [])
    emulator = Emulator(api_key=options.api_key, host=options.host, port=options.port)
    with emulator:
        emulator.queue(*scenarios)
        env = _environment(emulator)
        if command:
            return _run(command, env)
        for name, value in env.items():
            print(f"export {name}={shlex.quote(value)}")
        print("# serving; Ctrl-C to stop", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


def _environment(emulator: Emulator) -> dict[str, str]:
    """The emulator's variables, and ``COMPAT_STORE=memory`` unless the user set a store."""
    env = emulator.env()
    if not os.environ.get("COMPAT_STORE"):
        env["COMPAT_STORE"] = "memory"
    return env


def _run(command: list[str], env: dict[str, str]) -> int:
    try:
        process = subprocess.Popen(command, env={**os.environ, **env})
    except OSError as exc:
        print(f"python -m compat.testing: cannot run {command[0]!r}: {exc}", file=sys.stderr)
        return 127
    try:
        return process.wait()
    except KeyboardInterrupt:  # the child got the same Ctrl-C: let it finish its own way
        return process.wait()


if __name__ == "__main__":
    sys.exit(main())
