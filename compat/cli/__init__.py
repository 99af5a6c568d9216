"""``python -m compat COMMAND ...``: one command line, one module per subcommand.

A subcommand is a module in this package with two functions::

    def add_parser(subparsers) -> None  # adds its parser; imports nothing heavy
    def run(args) -> int                 # does the work, imports what it needs; the exit code

and an entry in ``SUBCOMMANDS``. ``add_parser`` sets ``handler=run`` on its parser. Building the
parser imports every subcommand module, so those modules keep their dependencies (libcst, the
SDKs, a server) inside ``run``: ``python -m compat --help`` needs none of them.

Exit codes shared by all subcommands: 0 success, 1 "something to report" (e.g. ``migrate
--check``), 2 usage error or input that could not be processed.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Callable, Sequence

__all__ = ["SUBCOMMANDS", "build_parser", "main"]

#: Subcommand name → module (in help order). Later: "import", "doctor", "serve", "shadow-report".
SUBCOMMANDS: dict[str, str] = {
    "migrate": "compat.cli.migrate",
    "import": "compat.cli.import_",
    "doctor": "compat.cli.doctor",
    "shadow-report": "compat.cli.shadow_report",
    "serve": "compat.cli.serve",
    "copy-store": "compat.cli.copy_store",
}

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every subcommand's parser attached."""
    parser = argparse.ArgumentParser(
        prog="python -m compat",
        description="Tools for moving DashScope Assistant-API code onto compat.",
        epilog="'python -m compat COMMAND --help' describes one command. "
        "'python -m compat.testing' runs the emulator.",
    )
    subparsers = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    subparsers.required = True
    for module_name in SUBCOMMANDS.values():
        importlib.import_module(module_name).add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Parse ``argv`` (default: ``sys.argv[1:]``), run the subcommand, return its exit code."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else list(argv))
    handler: Handler = args.handler
    return handler(args)
