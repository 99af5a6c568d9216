"""Read a module and decide every edit (a :class:`Plan`); nothing is changed here.

Names are resolved through libcst's scope analysis, not by spelling: ``ds.Runs`` after
``import dashscope as ds``, ``error.InputRequired`` after ``from dashscope.common import error``
and ``dashscope.common.error.InputRequired`` all resolve to their dashscope module and name, and
a local variable that happens to be called ``dashscope`` resolves to nothing.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import TypeAlias

import libcst as cst
from libcst.metadata import (
    ExpressionContext,
    ExpressionContextProvider,
    ImportAssignment,
    PositionProvider,
    QualifiedName,
    QualifiedNameProvider,
    QualifiedNameSource,
    Scope,
    ScopeProvider,
)

from compat.migrate.rules import DYNAMIC_IMPORTERS, MODULES, Keep, Move, lookup

__all__ = ["Analyzer", "Note", "Plan", "dotted_name"]

_DOTTED = re.compile(r"[A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*")

AnyImport: TypeAlias = cst.Import | cst.ImportFrom


@dataclass(frozen=True, order=True)
class Note:
    """One report line: ``path:line: RULE message``."""

    line: int
    rule: str
    message: str


@dataclass
class Plan:
    """The edits for one module, keyed by its (original) nodes."""

    notes: list[Note] = field(default_factory=list)
    #: attribute → the compat module that replaces its value (``dashscope.Runs`` → ``compat``)
    attributes: dict[cst.Attribute, str] = field(default_factory=dict)
    #: ``from dashscope... import`` → each alias with the compat module it moves to (None: stays)
    from_imports: dict[cst.ImportFrom, list[tuple[str | None, cst.ImportAlias]]] = field(
        default_factory=dict
    )
    #: import statement → compat modules to import right after it
    additions: dict[AnyImport, list[str]] = field(default_factory=dict)
    #: import statement → its aliases that lost every use
    removals: dict[AnyImport, set[cst.ImportAlias]] = field(default_factory=dict)

    @property
    def changes(self) -> bool:
        return bool(self.attributes or self.from_imports or self.additions or self.removals)


def dotted_name(node: cst.BaseExpression) -> str | None:
    """``a.b.c`` for a chain of names and attributes, else ``None``."""
    if isinstance(node, cst.Name):
        return node.value
    if isinstance(node, cst.Attribute):
        head = dotted_name(node.value)
        return None if head is None else f"{head}.{node.attr.value}"
    return None


def _root(node: cst.Attribute) -> cst.Name | None:
    value: cst.BaseExpression = node
    while isinstance(value, cst.Attribute):
        value = value.value
    return value if isinstance(value, cst.Name) else None


def _binds(alias: cst.ImportAlias, name: str) -> bool:
    """Whether ``alias`` (in an import statement) binds the local ``name``."""
    if alias.asname is not None:
        target = alias.asname.name
        return isinstance(target, cst.Name) and target.value == name
    return (dotted_name(alias.name) or "").split(".")[0] == name


class Analyzer(cst.CSTVisitor):
    """Fills :attr:`plan`; visit a ``MetadataWrapper``'d module with it."""

    METADATA_DEPENDENCIES = (
        ExpressionContextProvider,
        PositionProvider,
        QualifiedNameProvider,
        ScopeProvider,
    )

    def __init__(self) -> None:
        super().__init__()
        self.plan = Plan()
        self._consumed: set[cst.CSTNode] = set()  # nodes inside rewritten attribute chains
        self._used: dict[AnyImport, set[cst.ImportAlias]] = {}  # bindings rewrites went through
        self._planned: set[tuple[Scope, str]] = set()
        self._statement_of: dict[AnyImport, cst.SimpleStatementLine | None] = {}
        #: (import, local name, what it names): dashscope modules bound by an import
        self._bindings: list[tuple[AnyImport, str, str]] = []

    # -- helpers

    def _line(self, node: cst.CSTNode) -> int:
        return self.get_metadata(PositionProvider, node).start.line

    def _note(self, node: cst.CSTNode, rule: str, message: str) -> None:
        self.plan.notes.append(Note(self._line(node), rule, message))

    def _qualified(self, node: cst.CSTNode) -> Collection[QualifiedName]:
        names: Collection[QualifiedName] = self.get_metadata(QualifiedNameProvider, node, ())
        return names

    def _dashscope_names(self, node: cst.CSTNode) -> list[QualifiedName]:
        return [
            q
            for q in self._qualified(node)
            if q.source is QualifiedNameSource.IMPORT
            and (q.name == "dashscope" or q.name.startswith("dashscope."))
        ]

    def _module_of(self, node: cst.BaseExpression) -> str | None:
        """The dashscope module ``node`` is bound to, when it is exactly one of the known ones."""
        found = self._dashscope_names(node)
        if len(found) != 1 or len(self._qualified(node)) != 1 or found[0].name not in MODULES:
            return None
        return found[0].name

    # -- statements

    def visit_SimpleStatementLine(self, node: cst.SimpleStatementLine) -> None:
        for statement in node.body:
            if isinstance(statement, AnyImport):
                self._statement_of[statement] = node if len(node.body) == 1 else None

    def visit_ImportFrom(self, node: cst.ImportFrom) -> bool:
        module = dotted_name(node.module) if node.module is not None else None
        if node.relative or module is None or module not in MODULES:
            return False
        if isinstance(node.names, cst.ImportStar):
            self._note(node, "MIG105", f"from {module} import *: not rewritten; import names")
            return False
        groups: list[tuple[str | None, cst.ImportAlias]] = []
        moved: dict[tuple[str, str], list[str]] = {}
        for alias in node.names:
            name = dotted_name(alias.name) or ""
            verdict = lookup(module, name)
            if isinstance(verdict, Move):
                moved.setdefault((verdict.rule, verdict.to), []).append(name)
            elif isinstance(verdict, Keep):
                self._note(alias, verdict.rule, _keep_message(module, name, verdict))
            groups.append((verdict.to if isinstance(verdict, Move) else None, alias))
            if verdict is None:
                local = alias.asname.name if alias.asname is not None else alias.name
                self._bindings.append((node, dotted_name(local) or "", f"{module}.{name}"))
        if moved:
            self.plan.from_imports[node] = groups
            for (rule, to), names in sorted(moved.items()):
                self._note(node, rule, f"from {module} import {', '.join(names)} -> from {to}")
        return False

    def visit_Import(self, node: cst.Import) -> bool:
        for alias in node.names:
            imported = dotted_name(alias.name) or ""
            if imported.split(".")[0] == "dashscope":
                local = alias.asname.name if alias.asname is not None else alias.name
                self._bindings.append((node, dotted_name(local) or "", imported))
        return False

    # -- expressions

    def visit_Attribute(self, node: cst.Attribute) -> bool:
        found = self._dashscope_names(node)
        if not found:
            return True
        if len(found) != 1 or len(self._qualified(node)) != 1:
            return self._note_ambiguous(node, found)
        module, _, name = found[0].name.rpartition(".")
        verdict = lookup(module, name, module_style=True)
        root = _root(node)
        text = dotted_name(node)
        if verdict is None or root is None or text is None:
            return True
        if isinstance(verdict, Keep):
            self._note(node, verdict.rule, _keep_message(module, name, verdict))
            return False
        if self.get_metadata(ExpressionContextProvider, node, None) is not ExpressionContext.LOAD:
            return False  # `dashscope.Runs = ...` patches dashscope itself: leave it
        anchor = self._anchor(root)
        if anchor is None:
            return True
        scope = self.get_metadata(ScopeProvider, root)
        if scope is None or not _compat_is_free(scope):
            self._note(node, "MIG106", f"{text}: `compat` is bound to something else here")
            return False
        self.plan.attributes[node] = verdict.to
        self._consume(node)
        self._require(anchor, verdict.to)
        self._note(node, verdict.rule, f"{text} -> {verdict.to}.{name}")
        return False

    def _note_ambiguous(self, node: cst.Attribute, found: list[QualifiedName]) -> bool:
        """MIG108 when the name is dashscope's only on some paths (``dashscope = None``)."""
        for qualified in found:
            module, _, name = qualified.name.rpartition(".")
            if isinstance(lookup(module, name, module_style=True), Move):
                text = dotted_name(node) or qualified.name
                self._note(node, "MIG108", f"{text}: not only dashscope here; not rewritten")
                return False
        return True

    def visit_Call(self, node: cst.Call) -> bool:
        called = {q.name for q in self._qualified(node.func)}
        if "builtins.getattr" in called and len(node.args) >= 2:
            module = self._module_of(node.args[0].value)
            if module is not None:
                self._note_getattr(node, module, node.args[1].value)
        elif called & set(DYNAMIC_IMPORTERS) and node.args:
            target = node.args[0].value
            if isinstance(target, cst.SimpleString):
                value = target.evaluated_value
                if isinstance(value, str) and value.split(".")[0] == "dashscope":
                    self._note(node, "MIG104", f"imports {value!r} by name: review by hand")
        return True

    def _note_getattr(self, node: cst.Call, module: str, attr: cst.BaseExpression) -> None:
        if not isinstance(attr, cst.SimpleString):
            self._note(node, "MIG104", f"getattr({module}, <computed name>): review by hand")
            return
        name = attr.evaluated_value
        if not isinstance(name, str):
            return
        verdict = lookup(module, name, module_style=True)
        if isinstance(verdict, Move):
            self._note(node, "MIG104", f"getattr({module}, {name!r}): use {verdict.to}.{name}")
        elif isinstance(verdict, Keep):
            self._note(node, verdict.rule, _keep_message(module, name, verdict))

    # -- bookkeeping for imports

    def _anchor(self, root: cst.Name) -> AnyImport | None:
        """The import statement that binds ``root`` (the first one, if several do)."""
        scope = self.get_metadata(ScopeProvider, root, None)
        if scope is None:
            return None
        imports = [
            a.node
            for a in scope[root.value]
            if isinstance(a, ImportAssignment) and isinstance(a.node, AnyImport)
        ]
        if not imports:
            return None
        anchor: AnyImport = min(imports, key=self._line)
        if isinstance(anchor.names, cst.ImportStar):
            return None
        for alias in anchor.names:
            if _binds(alias, root.value):
                self._used.setdefault(anchor, set()).add(alias)
        return anchor

    def _consume(self, node: cst.Attribute) -> None:
        value: cst.BaseExpression = node
        while isinstance(value, cst.Attribute):
            self._consumed.add(value)
            value = value.value
        self._consumed.add(value)

    def _require(self, anchor: AnyImport, module: str) -> None:
        scope = self.get_metadata(ScopeProvider, anchor)
        if scope is None or (scope, module) in self._planned:
            return
        self._planned.add((scope, module))
        if any(isinstance(a, ImportAssignment) for a in scope[module]):
            return  # already imported there
        modules = self.plan.additions.setdefault(anchor, [])
        modules.append(module)
        modules.sort()

    def leave_Module(self, original_node: cst.Module) -> None:
        for anchor, aliases in self._used.items():
            for alias in aliases:
                self._consider_removal(anchor, alias)
        self._note_string_annotations()
        self.plan.notes.sort()

    def _note_string_annotations(self) -> None:
        """MIG107 for ``"dashscope.threads.thread_types.Run"``-like annotations (kept as is)."""
        seen: set[tuple[cst.CSTNode, str]] = set()
        for statement, local, imported in self._bindings:
            scope = self.get_metadata(ScopeProvider, statement, None)
            if scope is None:
                continue
            head = local.split(".")[0]
            strings = {
                access.node
                for assignment in scope.assignments
                if isinstance(assignment, ImportAssignment) and assignment.node is statement
                if assignment.name.split(".")[0] == head
                for access in assignment.references
                if isinstance(access.node, cst.SimpleString)
            }
            for string in strings:
                text = string.evaluated_value
                for word in _DOTTED.findall(text if isinstance(text, str) else ""):
                    if word != local and not word.startswith(local + "."):
                        continue
                    module, _, name = (imported + word[len(local) :]).rpartition(".")
                    verdict = lookup(module, name, module_style=True)
                    if verdict is None or (string, word) in seen:
                        continue
                    seen.add((string, word))
                    hint = f"use {verdict.to}.{name}" if isinstance(verdict, Move) else "keep"
                    self._note(
                        string, "MIG107", f"string annotation {word!r}: not rewritten; {hint}"
                    )

    def _consider_removal(self, anchor: AnyImport, alias: cst.ImportAlias) -> None:
        scope = self.get_metadata(ScopeProvider, anchor)
        if scope is None:
            return
        imported = dotted_name(alias.name) or ""
        local = alias.asname.name if alias.asname is not None else None
        bound = local.value if isinstance(local, cst.Name) else imported
        references = {
            access.node
            for assignment in scope.assignments
            if isinstance(assignment, ImportAssignment) and assignment.node is anchor
            if assignment.name == bound
            or bound.startswith(assignment.name + ".")
            or assignment.name.startswith(bound + ".")
            for access in assignment.references
        }
        if not references or not references <= self._consumed:
            return
        if not self._removable(anchor, alias):
            return
        self.plan.removals.setdefault(anchor, set()).add(alias)
        statement = f"import {imported}"
        if isinstance(anchor, cst.ImportFrom) and anchor.module is not None:
            statement = f"from {dotted_name(anchor.module)} {statement}"
        if bound != imported:
            statement += f" as {bound}"
        self._note(anchor, "MIG005", f"{statement}: no use left, removed")

    def _removable(self, anchor: AnyImport, alias: cst.ImportAlias) -> bool:
        """Whether dropping ``alias`` leaves valid code and loses no comment."""
        if isinstance(anchor.names, cst.ImportStar):
            return False
        others = [a for a in anchor.names if a is not alias]
        others = [a for a in others if a not in self.plan.removals.get(anchor, set())]
        if others or self.plan.additions.get(anchor):
            return True
        line = self._statement_of.get(anchor)
        if line is None:  # one of several statements on a line, or in `if x: import y`
            return False
        comments = [empty.comment for empty in line.leading_lines if empty.comment is not None]
        return not comments and line.trailing_whitespace.comment is None


def _compat_is_free(scope: Scope) -> bool:
    """Whether ``compat`` is unbound here, or bound by ``import compat[.x]``."""
    for assignment in scope["compat"]:
        if not isinstance(assignment, ImportAssignment) or not isinstance(
            assignment.node, cst.Import
        ):
            return False
        if not any(
            alias.asname is None and (dotted_name(alias.name) or "").split(".")[0] == "compat"
            for alias in assignment.node.names
        ):
            return False
    return True


def _keep_message(module: str, name: str, verdict: Keep) -> str:
    if verdict.kind == "files":
        return f"{module}.{name}: compat has no file API; left on dashscope"
    where = "compat.errors" if verdict.kind == "errors" else "compat.types"
    return f"{module}.{name}: not in {where}; left on dashscope"
