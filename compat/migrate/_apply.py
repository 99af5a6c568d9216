"""Carry out a :class:`~compat.migrate._analyze.Plan` on the module it was made from.

Every node that is not part of an edit is kept as parsed, so comments, blank lines, quotes and
line breaks survive. Splitting an import keeps each name's own comment (the one after its comma)
and the statement's layout (parentheses, trailing comma, indentation).
"""

from __future__ import annotations

from collections.abc import Sequence

import libcst as cst

from compat.migrate._analyze import AnyImport, Plan

__all__ = ["Applier", "dotted_expression"]


def dotted_expression(dotted: str) -> cst.Attribute | cst.Name:
    """``compat.errors`` as an expression node."""
    head, _, last = dotted.rpartition(".")
    if not head:
        return cst.Name(last)
    return cst.Attribute(value=dotted_expression(head), attr=cst.Name(last))


def _import_statement(module: str) -> cst.Import:
    return cst.Import(names=[cst.ImportAlias(name=dotted_expression(module))])


class Applier(cst.CSTTransformer):
    """Rewrites attributes and import statements as the plan says."""

    def __init__(self, plan: Plan) -> None:
        super().__init__()
        self.plan = plan

    def leave_Attribute(
        self, original_node: cst.Attribute, updated_node: cst.Attribute
    ) -> cst.BaseExpression:
        module = self.plan.attributes.get(original_node)
        if module is None:
            return updated_node
        return updated_node.with_changes(value=dotted_expression(module))

    def leave_SimpleStatementLine(
        self, original_node: cst.SimpleStatementLine, updated_node: cst.SimpleStatementLine
    ) -> cst.BaseStatement | cst.FlattenSentinel[cst.BaseStatement] | cst.RemovalSentinel:
        if not self._touches(original_node.body):
            return updated_node
        if len(original_node.body) > 1:
            return updated_node.with_changes(body=self._body(original_node.body, updated_node.body))
        statements = self._body(original_node.body, updated_node.body)
        if not statements:
            return cst.RemoveFromParent()
        lines = [cst.SimpleStatementLine(body=[statement]) for statement in statements]
        lines[0] = lines[0].with_changes(
            leading_lines=updated_node.leading_lines,
            trailing_whitespace=updated_node.trailing_whitespace,
        )
        return cst.FlattenSentinel(lines)

    def leave_SimpleStatementSuite(
        self, original_node: cst.SimpleStatementSuite, updated_node: cst.SimpleStatementSuite
    ) -> cst.SimpleStatementSuite:
        if not self._touches(original_node.body):
            return updated_node
        return updated_node.with_changes(body=self._body(original_node.body, updated_node.body))

    def _touches(self, body: Sequence[cst.BaseSmallStatement]) -> bool:
        plan = self.plan
        return any(
            s in plan.from_imports or s in plan.additions or s in plan.removals for s in body
        )

    def _body(
        self,
        originals: Sequence[cst.BaseSmallStatement],
        updated: Sequence[cst.BaseSmallStatement],
    ) -> list[cst.BaseSmallStatement]:
        """The small statements replacing ``originals`` (one line's worth), in order."""
        body: list[cst.BaseSmallStatement] = []
        for original, new in zip(originals, updated, strict=True):
            if isinstance(original, AnyImport) and isinstance(new, AnyImport):
                body.extend(self._rewrite_import(original, new))
                body.extend(_import_statement(m) for m in self.plan.additions.get(original, []))
            else:
                body.append(new)
        # ';' between statements only; the last one of a line carries none.
        return [
            s.with_changes(semicolon=cst.MaybeSentinel.DEFAULT)
            if isinstance(s, cst.Import | cst.ImportFrom)
            else s
            for s in body
        ]

    def _rewrite_import(self, original: AnyImport, new: AnyImport) -> list[AnyImport]:
        if isinstance(original.names, cst.ImportStar) or isinstance(new.names, cst.ImportStar):
            return [new]
        removed = self.plan.removals.get(original, set())
        updated_alias = dict(zip(original.names, new.names, strict=True))
        if isinstance(original, cst.Import):
            kept = [updated_alias[a] for a in original.names if a not in removed]
            return [_with_aliases(new, kept, new.names)] if kept else []
        assert isinstance(new, cst.ImportFrom)
        groups = self.plan.from_imports.get(original) or [(None, a) for a in original.names]
        by_target: dict[str | None, list[cst.ImportAlias]] = {}
        for target, alias in groups:
            if alias not in removed:
                by_target.setdefault(target, []).append(updated_alias[alias])
        statements: list[AnyImport] = []
        for target in sorted(t for t in by_target if t is not None):
            moved = new.with_changes(module=dotted_expression(target))
            statements.append(_with_aliases(moved, by_target[target], new.names))
        if None in by_target:
            statements.append(_with_aliases(new, by_target[None], new.names))
        # A comment after "(" belongs to the statement: it stays with the first one, like the
        # comment at the end of the line.
        return statements[:1] + [_without_opening_comment(s) for s in statements[1:]]


def _with_aliases(
    node: AnyImport, aliases: list[cst.ImportAlias], originals: Sequence[cst.ImportAlias]
) -> AnyImport:
    """``node`` importing ``aliases`` (some of ``originals``), laid out as ``originals`` were.

    Separators copy the original's first separator and the last name gets the original end (a
    trailing comma or not); each name keeps the comment that followed it.
    """
    if list(aliases) == list(originals):
        return node
    rpar = node.rpar if isinstance(node, cst.ImportFrom) else None
    trailers = {alias: _trailer(alias, alias is originals[-1], rpar) for alias in originals}
    separator = originals[0].comma if len(originals) > 1 else cst.MaybeSentinel.DEFAULT
    end = originals[-1].comma
    laid_out: list[cst.ImportAlias] = []
    for position, alias in enumerate(aliases):
        trailer = trailers[alias]
        if position < len(aliases) - 1:
            template = separator if isinstance(separator, cst.Comma) else cst.Comma()
            laid_out.append(alias.with_changes(comma=_place_comma(template, trailer)))
        elif isinstance(end, cst.Comma):
            laid_out.append(alias.with_changes(comma=_place_comma(end, trailer)))
        else:
            laid_out.append(alias.with_changes(comma=cst.MaybeSentinel.DEFAULT))
            if rpar is not None:
                rpar = rpar.with_changes(whitespace_before=_place(rpar.whitespace_before, trailer))
    if isinstance(node, cst.ImportFrom):
        return node.with_changes(names=laid_out, rpar=rpar)
    return node.with_changes(names=laid_out)


Trailer = tuple[cst.TrailingWhitespace, Sequence[cst.EmptyLine]] | None


def _trailer(alias: cst.ImportAlias, last: bool, rpar: cst.RightParen | None) -> Trailer:
    """The comment (and comment lines) that follow ``alias`` in a parenthesized import."""
    whitespace: cst.BaseParenthesizableWhitespace | None = None
    if isinstance(alias.comma, cst.Comma):
        whitespace = alias.comma.whitespace_after
    elif last and rpar is not None:
        whitespace = rpar.whitespace_before
    if isinstance(whitespace, cst.ParenthesizedWhitespace):
        return whitespace.first_line, whitespace.empty_lines
    return None


def _place(
    whitespace: cst.BaseParenthesizableWhitespace, trailer: Trailer
) -> cst.BaseParenthesizableWhitespace:
    if not isinstance(whitespace, cst.ParenthesizedWhitespace):
        return whitespace
    if trailer is None:
        return whitespace.with_changes(first_line=cst.TrailingWhitespace(), empty_lines=())
    return whitespace.with_changes(first_line=trailer[0], empty_lines=trailer[1])


def _place_comma(template: cst.Comma, trailer: Trailer) -> cst.Comma:
    return template.with_changes(whitespace_after=_place(template.whitespace_after, trailer))


def _without_opening_comment(node: AnyImport) -> AnyImport:
    if not isinstance(node, cst.ImportFrom) or node.lpar is None:
        return node
    whitespace = node.lpar.whitespace_after
    if not isinstance(whitespace, cst.ParenthesizedWhitespace):
        return node
    clean = whitespace.with_changes(first_line=cst.TrailingWhitespace())
    return node.with_changes(lpar=node.lpar.with_changes(whitespace_after=clean))
