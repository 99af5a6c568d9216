"""``python -m compat import``: copy assistants and threads from the Assistant API into the store.

Reads through the dashscope SDK (``compat.backends.assistants``, the key and base URL resolved as
compat resolves them) and writes into ``COMPAT_STORE`` (``compat.cli.importer`` does the work).
Threads cannot be listed on the Assistant API: their ids come from ``--thread`` or
``--threads-file`` (one id a line; blank lines and ``#`` comments skipped). A progress bar goes to
stderr when it is a terminal; a summary line to stdout. Exit status: 0 everything imported, 1 some
ids failed (each reported on stderr; the others were imported), 2 usage error.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from compat.cli.importer import JSON, Importer, ImportFailed, Tally

__all__ = ["add_parser", "read_ids", "run"]


def add_parser(subparsers: Any) -> None:
    """Add ``import`` to the ``python -m compat`` parser."""
    parser = subparsers.add_parser(
        "import",
        help="copy assistants and threads from the Assistant API into compat's store",
        description="Copy assistants and threads (with their messages, runs and steps) from "
        "the live Assistant API into compat's store (COMPAT_STORE), keeping their ids. Reads "
        "only. Running it again adds nothing; an interrupted import is finished by the next.",
    )
    parser.add_argument("--assistant", action="append", default=[], metavar="ID", help="an id")
    parser.add_argument("--thread", action="append", default=[], metavar="ID", help="an id")
    parser.add_argument("--threads-file", metavar="FILE", help="thread ids, one a line")
    parser.add_argument(
        "--all-assistants", action="store_true", help="every assistant the API lists"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="read the source and count what it holds (as into an empty store); write nothing",
    )
    parser.set_defaults(handler=run)


def read_ids(path: str) -> list[str]:
    """The ids in a file: one a line, blank lines and ``#`` comments skipped."""
    with open(path, encoding="utf-8") as file:
        lines = (line.split("#", 1)[0].strip() for line in file)
        return [line for line in lines if line]


class _BoundSource:
    """The assistants backend's read methods with one set of call options."""

    def __init__(self) -> None:
        from compat._config import current_settings
        from compat.backends import CallOptions
        from compat.backends.assistants import AssistantsBackend

        self._backend = AssistantsBackend()
        self._opts = CallOptions(settings=current_settings())

    def retrieve_assistant(self, assistant_id: str) -> JSON:
        return self._backend.retrieve_assistant(assistant_id, self._opts)

    def list_assistants(self, query: JSON) -> JSON:
        return self._backend.list_assistants(query, self._opts)

    def retrieve_thread(self, thread_id: str) -> JSON:
        return self._backend.retrieve_thread(thread_id, self._opts)

    def list_messages(self, thread_id: str, query: JSON) -> JSON:
        return self._backend.list_messages(thread_id, query, self._opts)

    def list_runs(self, thread_id: str, query: JSON) -> JSON:
        return self._backend.list_runs(thread_id, query, self._opts)

    def list_steps(self, thread_id: str, run_id: str, query: JSON) -> JSON:
        return self._backend.list_steps(thread_id, run_id, query, self._opts)


class _Progress:
    """``import [#####.....] 5/10`` on stderr, redrawn in place; silent unless a terminal."""

    def __init__(self, total: int, stream: TextIO) -> None:
        self.total = total
        self.done = 0
        self.stream = stream
        self.shown = stream.isatty() and total > 0

    def step(self) -> None:
        self.done += 1
        if self.shown:
            filled = 30 * self.done // self.total
            bar = "#" * filled + "." * (30 - filled)
            self.stream.write(f"\rimport [{bar}] {self.done}/{self.total}")
            if self.done == self.total:
                self.stream.write("\n")
            self.stream.flush()


def run(args: argparse.Namespace) -> int:
    """Import what the arguments name; the exit status (module docstring)."""
    thread_ids = list(args.thread)
    if args.threads_file:
        try:
            thread_ids += read_ids(args.threads_file)
        except OSError as exc:
            print(f"import: cannot read {args.threads_file}: {exc.strerror}", file=sys.stderr)
            return 2
    if not (args.assistant or thread_ids or args.all_assistants):
        print(
            "import: name what to import: --assistant ID, --thread ID, --threads-file FILE "
            "or --all-assistants",
            file=sys.stderr,
        )
        return 2
    try:
        from compat._config import current_settings
        from compat.store import default_store_path, open_store

        settings = current_settings()
        source = _BoundSource()
        # A dry run counts into an empty scratch store: the real one is not even opened.
        spec = "memory" if args.dry_run else settings.store or str(default_store_path())
        store = open_store(spec)
    except Exception as exc:  # a bad setting, a missing SDK, an unopenable store: usage
        print(f"import: {exc}", file=sys.stderr)
        return 2
    importer = Importer(source, store)
    try:
        return _import(importer, args, thread_ids)
    finally:
        store.close()


def _import(importer: Importer, args: argparse.Namespace, thread_ids: list[str]) -> int:
    tally: Tally = importer.tally
    assistant_ids = list(dict.fromkeys(args.assistant))
    if args.all_assistants:
        try:
            assistant_ids += [a for a in importer.all_assistant_ids() if a not in assistant_ids]
        except Exception as exc:
            tally.failed["--all-assistants"] = _reason(exc)
            print(f"import: --all-assistants: {_reason(exc)}", file=sys.stderr)
    work = [("assistant", i) for i in assistant_ids]
    work += [("thread", i) for i in dict.fromkeys(thread_ids)]
    progress = _Progress(len(work), sys.stderr)
    for kind, object_id in work:
        try:
            if kind == "assistant":
                importer.assistant(object_id)
            else:
                importer.thread(object_id)
        except Exception as exc:  # one id failing never stops the others
            tally.failed[object_id] = _reason(exc)
            if progress.shown:
                sys.stderr.write("\n")
            print(f"import: {kind} {object_id} failed: {_reason(exc)}", file=sys.stderr)
        progress.step()
    print(tally.summary(dry_run=args.dry_run))
    return 1 if tally.failed else 0


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ImportFailed):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"
