"""Static checks of one PromQL expression against the metric catalog.

A dashboard query that names a metric no exporter emits, or takes `rate()` of a gauge, draws an
empty or meaningless panel without any error; these checks catch that at generate time. Parsing
uses promql-parser (the Rust parser Prometheus-compatible databases use), after substituting
Grafana's template variables with representative values.
"""

from __future__ import annotations

import re

import promql_parser as pp

from generators.promql_ast import children, selectors
from obsbundle.catalog import Catalog

# Grafana's built-in interval variables -> a duration, the dashboard's own variables -> a value.
_INTERVALS = re.compile(r"\$\{?__(rate_interval|interval|range)(_ms|_s)?\}?")
_VARIABLE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::[a-z]+)?\}|\$([A-Za-z_][A-Za-z0-9_]*)")
COUNTER_FUNCTIONS = frozenset({"rate", "irate", "increase", "resets"})
GAUGE_FUNCTIONS = frozenset({"deriv", "delta", "idelta", "predict_linear"})
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
            for sel in (s for arg in call.args for s in selectors(arg)):
                metric = catalog.series(sel.name or "")
                if metric is None:
                    continue
                counter_like = metric.type == "counter" or (
                    metric.type == "histogram" and sel.name != metric.name)
                if name in COUNTER_FUNCTIONS and not counter_like:
                    problems.append(f"{name}() on {sel.name}, a {metric.type}: only counters and histogram series")
                if name in GAUGE_FUNCTIONS and counter_like:
                    problems.append(f"{name}() on {sel.name}, a counter: use rate()/increase()")
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
