"""The migration rules: their ids, and where each dashscope name goes. Pure data, no libcst.

A dashscope name is looked up as ``(module, name)``, the module being where the legacy code took
it from (``from dashscope.common.error import InputRequired`` or ``dashscope.common.error.
InputRequired`` both look up ``("dashscope.common.error", "InputRequired")``). The answer is a
:class:`Move` (the compat module that provides the same name), a :class:`Keep` (the name stays
on dashscope and is reported: compat has nothing to replace it with), or ``None``: not an
Assistant-API name (``Generation``, ``api_key``, ...), left alone silently.

What compat provides is read from compat's own ``__all__`` lists, so a name compat adds later is
migrated without a change here. The dashscope side is a table of facts about dashscope 2.0.2,
checked against the installed SDK by the unit tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import compat.errors
import compat.types

__all__ = [
    "DYNAMIC_IMPORTERS",
    "FACADE",
    "MODULES",
    "RULES",
    "Keep",
    "Move",
    "is_dashscope_module",
    "lookup",
]

#: Rule id → what it does. MIG0xx rewrite; MIG1xx only report (the code is left as it is).
RULES: dict[str, str] = {
    "MIG001": "`from dashscope import Assistants, ...`: facade names move to `from compat import`",
    "MIG002": "`dashscope.Runs` (module style): becomes `compat.Runs`, with `import compat` added",
    "MIG003": "`dashscope.common.error` names move to `compat.errors`",
    "MIG004": "Assistant-API object types (`dashscope.threads.thread_types`, ...) move to "
    "`compat.types`",
    "MIG005": "a dashscope import that no longer has a use is replaced by the compat import",
    "MIG101": "file APIs (`dashscope.Files`, assistant and message files) have no compat "
    "equivalent: left on dashscope",
    "MIG102": "a `dashscope.common.error` name compat does not define: left on dashscope",
    "MIG103": "a name of an object-type module that `compat.types` does not define: left on "
    "dashscope",
    "MIG104": "dynamic access to dashscope (`getattr`, `importlib.import_module`, "
    "`__import__`): review by hand",
    "MIG105": "star import from a dashscope Assistant-API module: list the names instead",
    "MIG106": "the name `compat` is bound to something else here: not rewritten",
    "MIG107": "a string annotation names a dashscope object: not rewritten",
    "MIG108": "the dashscope name is also bound to something else (e.g. `dashscope = None` "
    "after a failed import): not rewritten",
    "MIG900": "the file is not valid Python (or not decodable): skipped",
}

#: The facade classes, in both SDKs under the same names.
FACADE = ("Assistants", "Messages", "Runs", "Steps", "Threads")

# The object types dashscope re-exports from its top level and from dashscope.threads /
# dashscope.assistants (dashscope 2.0.2's lazy names and those packages' __all__).
_REEXPORTED_TYPES = (
    "Assistant",
    "AssistantFile",
    "AssistantList",
    "DeleteResponse",
    "MessageFile",
    "Run",
    "RunList",
    "RunStep",
    "RunStepList",
    "Thread",
    "ThreadMessage",
    "ThreadMessageList",
)

Kind = Literal["facade", "types", "errors", "files"]


@dataclass(frozen=True)
class _Module:
    """What one dashscope module holds that concerns the Assistant API."""

    facade: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    #: Every public name is an object type: those compat lacks are reported (MIG103).
    all_types: bool = False
    #: The error module: names compat lacks are reported (MIG102).
    errors: bool = False
    files: tuple[str, ...] = ()


#: dashscope module → its Assistant-API names. Packages on the way (``dashscope.common``, ...)
#: are listed empty so that ``getattr(dashscope.common, x)`` is recognised as dynamic access.
MODULES: dict[str, _Module] = {
    "dashscope": _Module(facade=FACADE, types=_REEXPORTED_TYPES, files=("Files",)),
    "dashscope.assistants": _Module(
        facade=("Assistants",),
        types=("Assistant", "AssistantFile", "AssistantList", "DeleteResponse"),
    ),
    "dashscope.assistants.assistants": _Module(facade=("Assistants",)),
    "dashscope.assistants.assistant_types": _Module(all_types=True),
    "dashscope.assistants.files": _Module(files=("Files",)),
    "dashscope.threads": _Module(
        facade=("Messages", "Runs", "Steps", "Threads"),
        types=(
            "MessageFile",
            "Run",
            "RunList",
            "RunStep",
            "RunStepList",
            "Thread",
            "ThreadMessage",
            "ThreadMessageList",
        ),
    ),
    "dashscope.threads.threads": _Module(facade=("Threads",)),
    "dashscope.threads.thread_types": _Module(all_types=True),
    "dashscope.threads.messages": _Module(),
    "dashscope.threads.messages.messages": _Module(facade=("Messages",)),
    "dashscope.threads.messages.files": _Module(files=("Files",)),
    "dashscope.threads.runs": _Module(),
    "dashscope.threads.runs.runs": _Module(facade=("Runs",)),
    "dashscope.threads.runs.steps": _Module(facade=("Steps",)),
    "dashscope.common": _Module(),
    "dashscope.common.error": _Module(errors=True),
    "dashscope.files": _Module(files=("Files",)),
}

#: Calls that import a module named by a string: ``importlib.import_module("dashscope...")``.
DYNAMIC_IMPORTERS = ("importlib.import_module", "builtins.__import__")

# dashscope.common.error.AssistantError is what a stream's `error` event yields; compat yields
# compat.types.AssistantError there, so an `isinstance` or `except` on it must follow.
_ERROR_TYPES = ("AssistantError",)


@dataclass(frozen=True)
class Move:
    """The name exists, unchanged, in the compat module ``to``."""

    to: str
    rule: str
    kind: Kind


@dataclass(frozen=True)
class Keep:
    """An Assistant-API name compat does not provide: it stays, reported under ``rule``."""

    rule: str
    kind: Kind


def is_dashscope_module(dotted: str) -> bool:
    """Whether ``dotted`` is one of the dashscope modules the rules know."""
    return dotted in MODULES


def lookup(module: str, name: str, *, module_style: bool = False) -> Move | Keep | None:
    """Where ``name``, taken from the dashscope ``module``, goes; ``None``: not our business.

    ``module_style``: the name was reached as an attribute (``dashscope.Runs``), which changes
    only the facade rule's id (MIG002 instead of MIG001).
    """
    spec = MODULES.get(module)
    if spec is None:
        return None
    if name in spec.facade:
        return Move("compat", "MIG002" if module_style else "MIG001", "facade")
    if spec.errors:
        if name in compat.errors.__all__:
            return Move("compat.errors", "MIG003", "errors")
        if name in _ERROR_TYPES:
            return Move("compat.types", "MIG003", "errors")
        return Keep("MIG102", "errors") if _is_public(name) else None
    if name in spec.types or (spec.all_types and name in compat.types.__all__):
        return Move("compat.types", "MIG004", "types")
    if spec.all_types:
        return Keep("MIG103", "types") if _is_public(name) else None
    if name in spec.files:
        return Keep("MIG101", "files")
    return None


def _is_public(name: str) -> bool:
    return not name.startswith("_")
