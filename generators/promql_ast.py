"""Walking a promql_parser AST: shared by the dashboard and alert lints."""

from __future__ import annotations

from collections.abc import Iterator

import promql_parser as pp


def children(node: object) -> Iterator[object]:
    """The direct sub-expressions of a node."""
    if isinstance(node, pp.AggregateExpr):
        if node.param is not None:
            yield node.param
        yield node.expr
    elif isinstance(node, pp.BinaryExpr):
        yield node.lhs
        yield node.rhs
    elif isinstance(node, pp.Call):
        yield from node.args
    elif isinstance(node, pp.MatrixSelector):
        yield node.vector_selector
    elif isinstance(node, pp.SubqueryExpr | pp.ParenExpr | pp.UnaryExpr):
        yield node.expr


def walk(node: object) -> Iterator[object]:
    """Every node of the tree, parents before children."""
    yield node
    for child in children(node):
        yield from walk(child)


def selectors(node: object) -> Iterator[pp.VectorSelector]:
    """Every vector selector in the tree (including those inside range selectors)."""
    for found in walk(node):
        if isinstance(found, pp.VectorSelector):
            yield found
