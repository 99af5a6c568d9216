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
        layout = _Layout(new)
        if isinstance(original, cst.Import):
            kept = [updated_alias[a] for a in original.names if a not in removed]
            return [layout.apply(new, kept, first=True)] if kept else []
        assert isinstance(new, cst.ImportFrom)
        groups = self.plan.from_imports.get(original) or [(None, a) for a in original.names]
        by_target: dict[str | None, list[cst.ImportAlias]] = {}
        for target, alias in groups:
            if alias not in removed:
                by_target.setdefault(target, []).append(updated_alias[alias])
        parts = [
            (new.with_changes(module=dotted_expression(target)), by_target[target])
            for target in sorted(t for t in by_target if t is not None)
        ]
        if None in by_target:
            parts.append((new, by_target[None]))
        # The statement's own comments (after "(", before ")", at the end of the line) stay
        # with the first statement.
        return [
            layout.apply(node, aliases, first=index == 0)
            for index, (node, aliases) in enumerate(parts)
        ]


class _Layout:
    """Where the comments of an import's name list sit, name by name.

    In a parenthesized import libcst keeps a name's same-line comment in the whitespace after
    its comma (after ``)``'s opening whitespace for a last name without a trailing comma), and
    whole comment lines in the whitespace before the next name. Here a comment line goes with
    the name below it, a same-line comment with the name before it, and the comment after ``(``
    and the lines before ``)`` with the statement.
    """

    def __init__(self, node: AnyImport) -> None:
        names = node.names
        assert not isinstance(names, cst.ImportStar)
        self.names = list(names)
        self.lpar = node.lpar if isinstance(node, cst.ImportFrom) else None
        self.rpar = node.rpar if isinstance(node, cst.ImportFrom) else None
        self.separator = self.names[0].comma if len(self.names) > 1 else cst.MaybeSentinel.DEFAULT
        self.end = self.names[-1].comma
        self.lines_before: dict[cst.ImportAlias, Sequence[cst.EmptyLine]] = {}
        self.comment_after: dict[cst.ImportAlias, cst.TrailingWhitespace] = {}
        before = _parenthesized(self.lpar.whitespace_after if self.lpar else None)
        for alias in self.names:
            self.lines_before[alias] = before.empty_lines if before else ()
            after = _parenthesized(
                alias.comma.whitespace_after
                if isinstance(alias.comma, cst.Comma)
                else self.rpar.whitespace_before
                if self.rpar is not None
                else None
            )
            if after is not None:
                self.comment_after[alias] = after.first_line
            before = after
        self.closing_lines: Sequence[cst.EmptyLine] = before.empty_lines if before else ()

    def apply(self, node: AnyImport, aliases: list[cst.ImportAlias], first: bool) -> AnyImport:
        """``node`` importing ``aliases`` (some of the original names) in the original layout.

        ``first``: this statement keeps the statement's own comments.
        """
        if aliases == self.names and first:
            return node
        last = len(aliases) - 1
        laid_out: list[cst.ImportAlias] = []
        rpar = self.rpar
        for position, alias in enumerate(aliases):
            comment = self.comment_after.get(alias, cst.TrailingWhitespace())
            if position < last:
                following = self.lines_before[aliases[position + 1]]
                template = self.separator if isinstance(self.separator, cst.Comma) else cst.Comma()
                laid_out.append(alias.with_changes(comma=_comma(template, comment, following)))
                continue
            closing = self.closing_lines if first else ()
            if isinstance(self.end, cst.Comma):
                laid_out.append(alias.with_changes(comma=_comma(self.end, comment, closing)))
            else:
                laid_out.append(alias.with_changes(comma=cst.MaybeSentinel.DEFAULT))
                if rpar is not None:
                    whitespace = _place(rpar.whitespace_before, comment, closing)
                    rpar = rpar.with_changes(whitespace_before=whitespace)
        if not isinstance(node, cst.ImportFrom):
            return node.with_changes(names=laid_out)
        lpar = self.lpar
        if lpar is not None:
            opening = _parenthesized(lpar.whitespace_after)
            comment = opening.first_line if opening and first else cst.TrailingWhitespace()
            whitespace = _place(lpar.whitespace_after, comment, self.lines_before[aliases[0]])
            lpar = lpar.with_changes(whitespace_after=whitespace)
        return node.with_changes(names=laid_out, lpar=lpar, rpar=rpar)


def _parenthesized(
    whitespace: cst.BaseParenthesizableWhitespace | None,
) -> cst.ParenthesizedWhitespace | None:
    return whitespace if isinstance(whitespace, cst.ParenthesizedWhitespace) else None


def _place(
    whitespace: cst.BaseParenthesizableWhitespace,
    comment: cst.TrailingWhitespace,
    lines: Sequence[cst.EmptyLine],
) -> cst.BaseParenthesizableWhitespace:
    """``whitespace`` with this comment and these comment lines, if it spans lines at all."""
    if not isinstance(whitespace, cst.ParenthesizedWhitespace):
        return whitespace
    return whitespace.with_changes(first_line=comment, empty_lines=lines)


def _comma(
    template: cst.Comma, comment: cst.TrailingWhitespace, lines: Sequence[cst.EmptyLine]
) -> cst.Comma:
    return template.with_changes(whitespace_after=_place(template.whitespace_after, comment, lines))
