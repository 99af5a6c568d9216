"""The migrate rule table holds true for the installed dashscope SDK and for compat."""

from __future__ import annotations

import importlib
import inspect
import warnings
from types import ModuleType

import pytest

import compat
import compat.errors
import compat.types
from compat.migrate.rules import FACADE, MODULES, RULES, Keep, Move, lookup

pytest.importorskip("dashscope")


def _module(name: str) -> ModuleType:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # dashscope.assistants warns
        return importlib.import_module(name)


def _public_names(module: ModuleType) -> list[str]:
    names = getattr(module, "__all__", None)
    if names is None:  # dashscope.common.error has no __all__: what it defines
        names = [
            name
            for name, value in vars(module).items()
            if inspect.isclass(value) and value.__module__ == module.__name__
        ]
    return [name for name in names if not name.startswith("_")]


def test_the_facade_is_compats() -> None:
    assert set(FACADE) <= set(compat.__all__)
    for name in FACADE:
        assert inspect.isclass(getattr(compat, name))


@pytest.mark.parametrize("module_name", sorted(MODULES))
def test_every_module_in_the_table_exists_in_dashscope(module_name: str) -> None:
    module = _module(module_name)
    spec = MODULES[module_name]
    for name in (*spec.facade, *spec.types, *spec.files):
        assert hasattr(module, name), f"{module_name}.{name}"


@pytest.mark.parametrize("module_name", sorted(MODULES))
def test_every_move_names_the_same_kind_of_object_in_compat(module_name: str) -> None:
    module = _module(module_name)
    for name in _public_names(module):
        verdict = lookup(module_name, name)
        if not isinstance(verdict, Move):
            continue
        ours = getattr(importlib.import_module(verdict.to), name)
        theirs = getattr(module, name)
        assert inspect.isclass(ours) and inspect.isclass(theirs), f"{module_name}.{name}"
        if verdict.kind == "facade":
            assert theirs is getattr(_module("dashscope"), name)


@pytest.mark.parametrize(
    "module_name",
    ["dashscope.threads.thread_types", "dashscope.assistants.assistant_types"],
)
def test_every_type_module_name_is_moved_or_reported(module_name: str) -> None:
    module = _module(module_name)
    names = [
        name
        for name, value in vars(module).items()
        if inspect.isclass(value) and value.__module__ == module_name
    ]
    verdicts = {name: lookup(module_name, name) for name in names}
    assert all(isinstance(v, Move | Keep) for v in verdicts.values()), verdicts
    kept = sorted(name for name, verdict in verdicts.items() if isinstance(verdict, Keep))
    expected_kept = {
        "dashscope.threads.thread_types": [
            "CodeInterpreterOutputImage",
            "CodeInterpreterOutputImageImage",
            "CodeInterpreterOutputLogs",
        ],
        "dashscope.assistants.assistant_types": [],
    }
    assert kept == expected_kept[module_name]


def test_every_dashscope_error_is_moved_or_reported() -> None:
    module = _module("dashscope.common.error")
    moved = sorted(n for n in _public_names(module) if isinstance(lookup(module.__name__, n), Move))
    assert moved == [
        "AssistantError",
        "AuthenticationError",
        "DashScopeException",
        "InputRequired",
        "InvalidParameter",
        "ModelRequired",
        "TimeoutException",
    ]
    for name in _public_names(module):
        assert lookup(module.__name__, name) is not None, name
    assert lookup(module.__name__, "AssistantError") == Move("compat.types", "MIG003", "errors")


def test_every_assistant_api_name_of_the_top_level_moves() -> None:
    assistant_names = set(_module("dashscope.threads").__all__) | set(
        _module("dashscope.assistants").__all__
    )
    for name in sorted(assistant_names):
        verdict = lookup("dashscope", name)
        assert isinstance(verdict, Move), name
        assert verdict.to == ("compat" if name in FACADE else "compat.types")
    for name in ("Generation", "api_key", "base_http_api_url", "Application"):
        assert lookup("dashscope", name) is None


def test_file_apis_are_reported_wherever_they_come_from() -> None:
    for module_name in (
        "dashscope",
        "dashscope.files",
        "dashscope.assistants.files",
        "dashscope.threads.messages.files",
    ):
        assert lookup(module_name, "Files") == Keep("MIG101", "files")


def test_module_style_only_changes_the_facade_rule_id() -> None:
    assert lookup("dashscope", "Runs").rule == "MIG001"  # type: ignore[union-attr]
    assert lookup("dashscope", "Runs", module_style=True).rule == "MIG002"  # type: ignore[union-attr]
    assert lookup("dashscope", "Run", module_style=True).rule == "MIG004"  # type: ignore[union-attr]


def test_every_rule_id_used_is_documented() -> None:
    used = {
        verdict.rule
        for module_name in MODULES
        for name in _public_names(_module(module_name))
        if (verdict := lookup(module_name, name)) is not None
    }
    assert used <= set(RULES)
    assert all(rule.startswith("MIG") and len(rule) == 6 for rule in RULES)
