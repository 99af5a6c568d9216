"""The emulator is an independent oracle: nothing in compat/testing imports compat's own objects."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTING = Path(__file__).resolve().parents[2] / "compat" / "testing"

#: What the oracle must not share with the code under test: the object builders, ids, the
#: types legacy code observes, and the backends that produce them.
FORBIDDEN = (
    "compat._objects",
    "compat._ids",
    "compat.types",
    "compat._types_base",
    "compat._types_steps",
    "compat.backends",
)


def imported_modules(source: str, module: str) -> set[str]:
    """Every module ``source`` (the text of ``module``) imports, anywhere, as dotted names.

    ``from compat import _objects`` counts as ``compat._objects``; relative imports are resolved
    against ``module``.
    """
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".")[: -node.level]
                base = ".".join([*package, base] if base else package)
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def forbidden(names: set[str]) -> list[str]:
    return sorted(
        name for name in names for bad in FORBIDDEN if name == bad or name.startswith(bad + ".")
    )


def modules() -> list[Path]:
    return sorted(TESTING.glob("*.py"))


def test_the_emulator_has_modules_to_check() -> None:
    names = {path.stem for path in modules()}
    assert {"assistants_api", "assistants_events", "responses_events", "server", "_wire"} <= names


@pytest.mark.parametrize("path", modules(), ids=lambda p: p.name)
def test_no_emulator_module_imports_compats_objects_types_or_backends(path: Path) -> None:
    names = imported_modules(path.read_text(encoding="utf-8"), f"compat.testing.{path.stem}")
    assert forbidden(names) == []


@pytest.mark.parametrize(
    "source",
    [
        "from compat import _objects as o",
        "import compat.types",
        "from compat._ids import new_id",
        "from compat.backends.responses import translate",
        "def f():\n    from compat.types import Run",
        "from .. import types",
        "from ..backends import get_backend",
    ],
)
def test_the_check_catches_every_spelling(source: str) -> None:
    assert forbidden(imported_modules(source, "compat.testing.server")) != []


def test_the_check_lets_the_emulators_own_modules_through() -> None:
    source = "from compat.testing import _wire as w\nfrom ._clock import new_id\nimport json"
    assert forbidden(imported_modules(source, "compat.testing.server")) == []
