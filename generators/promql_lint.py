"""The one PromQL lint: static checks of an expression against the metric catalog, for dashboards
(`check`, after substituting Grafana variables) and for recording/alerting rules
(`expression_problems`, which also knows the recorded series).

A query that names a metric no exporter emits, takes `rate()` of a gauge or aggregates by a label
its metrics lack draws an empty panel or never fires, without any error; these checks catch that
at generate time. Parsing uses promql-parser (the Rust parser Prometheus-compatible databases use).
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import promql_parser as pp

from obsbundle.catalog import Catalog

COUNTER_FUNCTIONS = frozenset({"rate", "irate", "increase", "resets"})
GAUGE_FUNCTIONS = frozenset({"deriv", "delta", "idelta", "predict_linear"})
SCRAPE_LABELS = frozenset({"instance", "job"})


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


def function_problems(call: pp.Call, catalog: Catalog) -> list[str]:
    """rate()-family on a gauge, deriv()-family on a counter (histogram series count as counters)."""
    name = call.func.name
    problems = []
    for sel in (s for arg in call.args for s in selectors(arg)):
        metric = catalog.series(sel.name or "")
        if metric is None:
            continue
        counter_like = metric.type == "counter" or (metric.type == "histogram" and sel.name != metric.name)
        if name in COUNTER_FUNCTIONS and not counter_like:
            problems.append(f"{name}() on {sel.name}, a {metric.type}: only counters and histogram series")
        if name in GAUGE_FUNCTIONS and counter_like:
            problems.append(f"{name}() on {sel.name}, a counter: use rate()/increase()")
    return problems


# -- dashboards -------------------------------------------------------------------------------------

# Grafana's built-in interval variables -> a duration, the dashboard's own variables -> a value.
_INTERVALS = re.compile(r"\$\{?__(rate_interval|interval|range)(_ms|_s)?\}?")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::[a-z]+)?\}|\$([A-Za-z_][A-Za-z0-9_]*)")
TENANT = "tenant_id"


def expand(expr: str, variables: dict[str, str]) -> str:
    """Replace Grafana variables so the expression parses; unknown variables raise KeyError."""
    def interval(match: re.Match[str]) -> str:
        suffix = match.group(2)
        return {"_ms": "300000", "_s": "300"}.get(suffix or "", "5m")

    expr = _INTERVALS.sub(interval, expr)

    def variable(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in variables:
            raise KeyError(name)
        return variables[name]

    return _VARIABLE.sub(variable, expr)




def _keeps_tenant(agg: pp.AggregateExpr) -> bool:
    modifier = agg.modifier
    if modifier is None:
        return False
    if modifier.type == pp.AggModifierType.By:
        return TENANT in modifier.labels
    return TENANT not in modifier.labels


def _has_tenant_matcher(selector: pp.VectorSelector) -> bool:
    groups = [selector.matchers.matchers, *selector.matchers.or_matchers]
    return all(any(m.name == TENANT for m in group) for group in groups)


def check(expr: str, catalog: Catalog, variables: dict[str, str]) -> list[str]:
    """Problems with one query: parse errors, unknown metrics, tenant scoping, function misuse."""
    try:
        parsed = pp.parse(expand(expr, variables))
    except KeyError as exc:
        return [f"query uses undefined variable ${exc.args[0]}: {expr}"]
    except (ValueError, RuntimeError) as exc:
        return [f"query does not parse ({str(exc).splitlines()[0]}): {expr}"]
    problems: list[str] = []

    def visit(node: object, aggregations: tuple[pp.AggregateExpr, ...]) -> None:
        if isinstance(node, pp.VectorSelector):
            _check_selector(node, aggregations)
        elif isinstance(node, pp.Call):
            _check_call(node)
        inner = (*aggregations, node) if isinstance(node, pp.AggregateExpr) else aggregations
        for child in children(node):
            visit(child, inner)

    def _check_selector(sel: pp.VectorSelector, aggregations: tuple[pp.AggregateExpr, ...]) -> None:
        if not sel.name:
            problems.append(f"selector without a metric name: {sel}")
            return
        metric = catalog.series(sel.name)
        if metric is None:
            problems.append(f"unknown metric {sel.name} (not in the catalog)")
            return
        if metric.per_tenant and not _has_tenant_matcher(sel) and not all(_keeps_tenant(a) for a in aggregations):
            problems.append(f"{sel.name} has tenant_id but the query neither filters nor groups by it")

    def _check_call(call: pp.Call) -> None:
        name = call.func.name
        if name in COUNTER_FUNCTIONS | GAUGE_FUNCTIONS:
            problems.extend(function_problems(call, catalog))
        elif name == "histogram_quantile":
            for sel in (s for arg in call.args[1:] for s in selectors(arg)):
                metric = catalog.series(sel.name or "")
                if metric is not None and (metric.type != "histogram" or not (sel.name or "").endswith("_bucket")):
                    problems.append(f"histogram_quantile() on {sel.name}: only on a histogram's _bucket series")

    visit(parsed, ())
    return problems


def metric_names(expr: str, variables: dict[str, str]) -> set[str]:
    """Sample names a query reads (for tests: which sources a panel depends on)."""
    return {sel.name for sel in selectors(pp.parse(expand(expr, variables))) if sel.name}


def selector_metrics(selector: str) -> set[str]:
    """Metric names a bare series selector matches by name: `m{...}` or `{__name__=~"a|b"}`."""
    parsed = pp.parse(selector)
    if not isinstance(parsed, pp.VectorSelector):
        raise ValueError(f"not a series selector: {selector}")
    if parsed.name:
        return {parsed.name}
    names = [m.value for m in parsed.matchers.matchers if m.name == "__name__"]
    return {n for value in names for n in value.split("|")}


# -- rules ------------------------------------------------------------------------------------------

def _labels_under(node: object, catalog: Catalog, recorded: set[str]) -> set[str] | None:
    """Labels the series under `node` can carry; None when a recording rule (unknown labels) is there."""
    labels = set(SCRAPE_LABELS)
    for child in walk(node):
        if isinstance(child, pp.VectorSelector):
            metric = catalog.series(child.name) if child.name not in recorded else None
            if metric is None:
                return None
            labels |= set(metric.labels) | ({"le"} if child.name.endswith("_bucket") else set())
    return labels


def expression_problems(expr: str, catalog: Catalog, recorded: set[str]) -> list[str]:
    """Unknown metrics, matchers on labels the metric lacks, rate() of gauges, deriv() of counters."""
    try:
        tree = pp.parse(expr)
    except (ValueError, RuntimeError) as exc:
        return [f"does not parse ({str(exc).splitlines()[0]})"]
    problems = []
    for node in walk(tree):
        if isinstance(node, pp.AggregateExpr) and node.modifier is not None \
                and node.modifier.type == pp.AggModifierType.By:
            available = _labels_under(node.expr, catalog, recorded)
            missing = [label for label in node.modifier.labels if available is not None and label not in available]
            if missing:
                problems.append(f"aggregates by {', '.join(missing)}, which no metric under it has")
        if isinstance(node, pp.VectorSelector):
            if node.name in recorded:
                continue
            metric = catalog.series(node.name)
            if metric is None:
                problems.append(f"{node.name} is neither a catalog metric nor a recording rule")
                continue
            allowed = {*metric.labels, *SCRAPE_LABELS, "__name__"}
            if node.name.endswith("_bucket"):
                allowed.add("le")
            for matcher in node.matchers.matchers:
                if matcher.name not in allowed:
                    problems.append(f"{node.name} has no label {matcher.name}")
        elif isinstance(node, pp.Call) and node.func.name in COUNTER_FUNCTIONS | GAUGE_FUNCTIONS:
            problems.extend(function_problems(node, catalog))
    return problems
