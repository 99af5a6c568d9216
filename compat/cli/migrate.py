"""``python -m compat migrate [--diff | --write | --check] PATH...``: the codemod over files.

Directories are searched for ``*.py`` files; hidden directories (``.venv``, ``.git``, ...),
``__pycache__``, ``node_modules``, ``site-packages``, ``build``, ``dist``, ``*.egg-info`` and any
virtual environment (a directory holding ``pyvenv.cfg``) are skipped. A file named on the command
line is always processed.

Output: the diff (``--diff``, the default) on stdout; on stderr one line per rule applied or
left to the user, ``path:line: RULE-ID message``, then a one-line summary. Exit status: 0 done,
1 ``--check`` found files to rewrite, 2 usage error, a file that could not be read or parsed
(reported, skipped; the other files are still processed) or libcst missing.
"""

from __future__ import annotations

import argparse
import difflib
import os
import re
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from compat.migrate.rules import RULES

if TYPE_CHECKING:
    from compat.migrate.codemod import Migration

__all__ = ["SKIPPED_DIRECTORIES", "add_parser", "python_files", "run", "unified_diff"]

SKIPPED_DIRECTORIES = frozenset({"__pycache__", "node_modules", "site-packages", "build", "dist"})

# Python's own line ends only: str.splitlines also splits at form feeds and other separators that
# may sit inside a source line.
_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+\Z")

_MISSING_LIBCST = (
    "python -m compat migrate needs libcst, which is not installed: "
    "pip install 'dashscope-compat[migrate]'"
)


def add_parser(subparsers: Any) -> None:
    """Add ``migrate`` to the ``python -m compat`` parser."""
    rules = "\n".join(f"  {rule}  {text}" for rule, text in RULES.items())
    parser = subparsers.add_parser(
        "migrate",
        help="rewrite dashscope Assistant-API imports to compat (libcst codemod)",
        description="Rewrite dashscope Assistant-API imports and names to compat's, keeping "
        "comments and formatting. Without a mode flag, print the diff (--diff).",
        epilog=f"rules (MIG0xx rewrite, MIG1xx report only):\n{rules}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--diff",
        dest="mode",
        action="store_const",
        const="diff",
        help="print a unified diff on stdout, change nothing (the default)",
    )
    mode.add_argument(
        "--write", dest="mode", action="store_const", const="write", help="edit files in place"
    )
    mode.add_argument(
        "--check",
        dest="mode",
        action="store_const",
        const="check",
        help="change nothing; exit 1 if any file would be rewritten",
    )
    parser.add_argument("paths", nargs="+", metavar="PATH", help="files and directories")
    parser.set_defaults(handler=run, mode="diff")


def run(args: argparse.Namespace) -> int:
    """Migrate ``args.paths`` in ``args.mode``; the exit status."""
    try:
        from compat.migrate.codemod import MigrationSyntaxError, migrate_source
    except ImportError as exc:
        if (exc.name or "").split(".")[0] != "libcst":
            raise
        print(_MISSING_LIBCST, file=sys.stderr)
        return 2
    missing = [p for p in args.paths if not os.path.exists(p)]
    if missing:
        for path in missing:
            print(f"python -m compat migrate: {path}: no such file or directory", file=sys.stderr)
        return 2
    mode: str = args.mode
    changed = unchanged = failed = 0
    for path in python_files(args.paths):
        try:
            result = migrate_source(path.read_bytes())
        except OSError as exc:
            _report(path, 1, "MIG900", f"cannot read: {exc.strerror or exc}; skipped")
            failed += 1
            continue
        except MigrationSyntaxError as exc:
            _report(path, exc.line or 1, "MIG900", f"{exc}; skipped")
            failed += 1
            continue
        for note in result.notes:
            _report(path, note.line, note.rule, note.message)
        if not result.changed:
            unchanged += 1
            continue
        changed += 1
        if mode == "diff":
            sys.stdout.writelines(unified_diff(result, path))
        elif mode == "write":
            path.write_bytes(result.encoded())
    _summary(mode, changed, unchanged, failed, sys.stderr)
    if failed:
        return 2
    return 1 if mode == "check" and changed else 0


def python_files(paths: Iterable[str]) -> Iterator[Path]:
    """The files to migrate under ``paths``, each once, in a stable order."""
    seen: set[Path] = set()
    for given in paths:
        for path in _walk(Path(given)):
            key = path.resolve()
            if key not in seen:
                seen.add(key)
                yield path


def _walk(path: Path) -> Iterator[Path]:
    if not path.is_dir():
        yield path
        return
    for directory, subdirectories, files in os.walk(path):
        subdirectories[:] = sorted(
            name for name in subdirectories if not _skipped(Path(directory, name))
        )
        yield from (Path(directory, name) for name in sorted(files) if name.endswith(".py"))


def _skipped(directory: Path) -> bool:
    name = directory.name
    return (
        name.startswith(".")
        or name in SKIPPED_DIRECTORIES
        or name.endswith(".egg-info")
        or (directory / "pyvenv.cfg").exists()
    )


def unified_diff(result: Migration, path: Path) -> Iterator[str]:
    """The change as a ``git apply``-able unified diff (``a/`` and ``b/`` prefixes)."""
    name = path.as_posix()
    lines = difflib.unified_diff(
        _LINE.findall(result.original),
        _LINE.findall(result.code),
        f"a/{name}",
        f"b/{name}",
    )
    for line in lines:
        if line.endswith("\n"):
            yield line
        else:
            yield line + "\n\\ No newline at end of file\n"


def _report(path: Path, line: int, rule: str, message: str) -> None:
    print(f"{path}:{line}: {rule} {message}", file=sys.stderr)


def _summary(mode: str, changed: int, unchanged: int, failed: int, out: TextIO) -> None:
    verb = "rewritten" if mode == "write" else "would be rewritten"
    parts = [f"{_files(changed)} {verb}", f"{_files(unchanged)} left unchanged"]
    if failed:
        parts.append(f"{_files(failed)} skipped (errors above)")
    print(f"compat migrate: {', '.join(parts)}", file=out)


def _files(count: int) -> str:
    return f"{count} file" if count == 1 else f"{count} files"
