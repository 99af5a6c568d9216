"""``python -m compat shadow-report FILE``: summarise a shadow run report.

The report (``COMPAT_SHADOW_REPORT``) is JSON lines written by ``compat.backends.shadow``:
one line per compared run, ``{"kind": "run", "verdict": "identical" | "different" | "error",
"differences": [...], "dropped": N, ...}``, and ``{"kind": "dropped", "dropped": N}`` lines.
The summary counts runs compared, identical, differing (by kind of difference), shadow errors,
and runs dropped (the highest drop counter seen). Exit status: 0 every compared run identical,
1 some differ or failed on the shadow side, 2 the file cannot be read.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Summary", "add_parser", "run", "summarise"]


def add_parser(subparsers: Any) -> None:
    """Add ``shadow-report`` to the ``python -m compat`` parser."""
    parser = subparsers.add_parser(
        "shadow-report",
        help="summarise a shadow run report (COMPAT_BACKEND=shadow, COMPAT_SHADOW_REPORT)",
        description="Summarise the JSON-lines report of shadow runs: runs compared, identical, "
        "differing by kind, shadow errors and dropped runs.",
    )
    parser.add_argument("file", metavar="FILE", help="the report (COMPAT_SHADOW_REPORT)")
    parser.set_defaults(handler=run)


@dataclass
class Summary:
    """The counts of one report."""

    compared: int = 0
    identical: int = 0
    different: int = 0
    errors: int = 0
    dropped: int = 0
    unreadable_lines: int = 0
    kinds: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        out = [
            f"runs compared: {self.compared}",
            f"identical:     {self.identical}",
            f"different:     {self.different}",
        ]
        out += [f"  {kind}: {n}" for kind, n in sorted(self.kinds.items())]
        out += [f"shadow errors: {self.errors}", f"dropped:       {self.dropped}"]
        if self.unreadable_lines:
            out.append(f"unreadable lines: {self.unreadable_lines}")
        if self.examples:
            out.append("first differing runs:")
            out += [f"  {example}" for example in self.examples]
        return out


def summarise(lines: list[str]) -> Summary:
    """Count a report's lines."""
    summary = Summary()
    for line in lines:
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            summary.unreadable_lines += 1
            continue
        if not isinstance(entry, dict):
            summary.unreadable_lines += 1
            continue
        summary.dropped = max(summary.dropped, int(entry.get("dropped") or 0))
        if entry.get("kind") != "run":
            continue
        summary.compared += 1
        verdict = entry.get("verdict")
        if verdict == "identical":
            summary.identical += 1
            continue
        if verdict == "error":
            summary.errors += 1
        else:
            summary.different += 1
        kinds = sorted({str(d.get("kind")) for d in entry.get("differences") or ()})
        summary.kinds.update(kinds)
        if len(summary.examples) < 5:
            summary.examples.append(
                f"thread {entry.get('thread_id')} run {entry.get('run_id')}: {', '.join(kinds)}"
            )
    return summary


def run(args: argparse.Namespace) -> int:
    """Print the summary of ``args.file``."""
    try:
        with open(args.file, encoding="utf-8") as file:
            lines = file.readlines()
    except OSError as exc:
        print(f"shadow-report: cannot read {args.file}: {exc.strerror}", file=sys.stderr)
        return 2
    summary = summarise(lines)
    print("\n".join(summary.lines()))
    return 0 if summary.different == 0 and summary.errors == 0 else 1
