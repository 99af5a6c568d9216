"""The codemod behind ``python -m compat migrate``: legacy dashscope names → compat.

Pure: source in, rewritten source and report notes out; files and output are the CLI's
(:mod:`compat.cli.migrate`). Needs libcst (``pip install 'dashscope-compat[migrate]'``), which is
why nothing else in compat imports this module.

Running it on its own output changes nothing: every rule turns a dashscope name into a compat
one, and no rule matches a compat name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import libcst as cst
from libcst.metadata import MetadataWrapper

from compat.migrate._analyze import Analyzer, Note
from compat.migrate._apply import Applier
from compat.migrate.rules import RULES

__all__ = ["RULES", "Migration", "MigrationSyntaxError", "Note", "migrate_source"]

_POSITION = re.compile(r"^error at \d+:\d+: ")


class MigrationSyntaxError(ValueError):
    """The source does not parse (or cannot be decoded); ``line`` is where, when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class Migration:
    """The result for one source: the rewritten code and what to tell the user."""

    original: str
    code: str
    encoding: str
    notes: tuple[Note, ...]

    @property
    def changed(self) -> bool:
        return self.code != self.original

    def encoded(self) -> bytes:
        """The rewritten code in the source's own encoding (and line endings)."""
        return self.code.encode(self.encoding)


def migrate_source(source: str | bytes) -> Migration:
    """Rewrite one module's source; ``bytes`` are decoded as Python does (PEP 263, BOM)."""
    try:
        module = cst.parse_module(source)
    except cst.ParserSyntaxError as exc:
        # libcst's message starts with a position of its own ("error at 5:0: ..."), which can
        # differ from editor_line; report one position only.
        message = _POSITION.sub("", exc.message.removeprefix("parser error: "))
        raise MigrationSyntaxError(f"syntax error: {message}", exc.editor_line) from exc
    except (UnicodeDecodeError, LookupError) as exc:  # bad bytes, or an unknown coding name
        raise MigrationSyntaxError(f"cannot decode: {exc}") from exc
    original = source.decode(module.encoding) if isinstance(source, bytes) else source
    wrapper = MetadataWrapper(module, unsafe_skip_copy=True)
    analyzer = Analyzer()
    wrapper.visit(analyzer)
    plan = analyzer.plan
    code = wrapper.module.visit(Applier(plan)).code if plan.changes else original
    return Migration(original, code, module.encoding, tuple(plan.notes))
