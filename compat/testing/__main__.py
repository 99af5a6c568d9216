"""``python -m compat.testing``: serve the emulator, or run one command against it.

python -m compat.testing [--port N] [--api-key K]            serve until Ctrl-C
python -m compat.testing [--port N] [--api-key K] -- CMD ...  run CMD with the emulator's env,
                                                              exit with CMD's exit code
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence

from compat.testing.server import DEFAULT_API_KEY, Emulator


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m compat.testing",
        description="Loopback emulator of DashScope's Assistant and Responses APIs.",
        epilog="With '-- CMD ARGS...', run CMD with the emulator's variables in its environment.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on")
    parser.add_argument("--port", type=int, default=0, help="port (default: a free one)")
    parser.add_argument("--api-key", default=DEFAULT_API_KEY, help="the key to accept")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    command: list[str] = []
    if "--" in args:
        split = args.index("--")
        args, command = args[:split], args[split + 1 :]
    options = _parser().parse_args(args)
    emulator = Emulator(api_key=options.api_key, host=options.host, port=options.port)
    with emulator:
        if command:
            return _run(command, emulator)
        for name, value in emulator.env().items():
            print(f"export {name}={shlex.quote(value)}")
        print("# serving; Ctrl-C to stop", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            return 0


def _run(command: list[str], emulator: Emulator) -> int:
    env = {**os.environ, **emulator.env()}
    try:
        process = subprocess.Popen(command, env=env)
    except OSError as exc:
        print(f"python -m compat.testing: cannot run {command[0]!r}: {exc}", file=sys.stderr)
        return 127
    try:
        return process.wait()
    except KeyboardInterrupt:  # the child got the same Ctrl-C: let it finish its own way
        return process.wait()


if __name__ == "__main__":
    sys.exit(main())
