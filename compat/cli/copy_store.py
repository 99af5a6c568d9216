"""``python -m compat copy-store SRC DST``: copy every record of one store into another.

SRC and DST are ``COMPAT_STORE`` values: a file path (SQLite), a ``postgresql://`` URI, or
``memory``. Every assistant, thread, message, run and step is copied with its id, its
``created_at``, its place in list order and its backend metadata (leases, active runs). A
record already in DST is replaced by SRC's, keeping its place there: a second copy changes
nothing. Stop the workers that write SRC first; copy-store reads it page by page, not as one
snapshot.

Exit status: 0 copied, 2 usage error or a store that could not be opened, read or written.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from compat.store import Kind, Store

__all__ = ["add_parser", "copy_store", "run"]

_PAGE = 100


def add_parser(subparsers: Any) -> None:
    """Add ``copy-store`` to the ``python -m compat`` parser."""
    parser = subparsers.add_parser(
        "copy-store",
        help="copy every record of one store into another (e.g. SQLite into PostgreSQL)",
        description="Copy every assistant, thread, message, run and step of SRC into DST, "
        "keeping ids, list order and metadata. Idempotent: a second copy changes nothing. "
        "Stop the workers writing SRC first.",
        epilog="SRC and DST are COMPAT_STORE values: a file path, postgresql://... or memory.",
    )
    parser.add_argument("src", metavar="SRC", help="the store to read")
    parser.add_argument("dst", metavar="DST", help="the store to write (created if new)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Open both stores, copy, print one line per kind on stderr."""
    from compat.errors import CompatError
    from compat.store import open_store

    if _same(args.src, args.dst):
        print("python -m compat copy-store: SRC and DST are the same store", file=sys.stderr)
        return 2
    try:
        src = open_store(args.src)
        try:
            dst = open_store(args.dst)
            try:
                counts = copy_store(src, dst)
            finally:
                dst.close()
        finally:
            src.close()
    except CompatError as exc:
        print(f"python -m compat copy-store: {exc}", file=sys.stderr)
        return 2
    summary = ", ".join(f"{n} {kind}{'' if n == 1 else 's'}" for kind, n in counts.items())
    print(f"copied {summary}", file=sys.stderr)
    return 0


def copy_store(src: Store, dst: Store) -> dict[str, int]:
    """Copy every record of `src` into `dst`, parents first, oldest first; counts per kind.

    Writing in list order is what keeps the order: each store numbers new records in the
    order they arrive, and a replaced record keeps its number.
    """
    from compat.store import KINDS

    counts: dict[str, int] = {}
    for kind in KINDS:
        n = 0
        for page in _pages(src, kind):
            items: list[tuple[Kind, dict[str, Any], dict[str, Any] | None]] = []
            for data in page:
                record = src.get(kind, data["id"])
                if record is not None:  # deleted since the page was read
                    items.append((kind, record.data, record.meta))
            dst.put_many(items)
            n += len(items)
        counts[kind] = n
    return counts


def _pages(store: Store, kind: Kind) -> Iterator[list[dict[str, Any]]]:
    after: str | None = None
    while True:
        page = store.list(kind, limit=_PAGE, order="asc", after=after)
        if page.data:
            yield page.data
        if not page.has_more:
            return
        after = page.last_id


def _same(src: str, dst: str) -> bool:
    if src == "memory" or dst == "memory":
        return False
    if src == dst:
        return True
    if "://" in src or "://" in dst:
        return False
    return os.path.abspath(os.path.expanduser(src)) == os.path.abspath(os.path.expanduser(dst))
