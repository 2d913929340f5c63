"""Recording rules for per-tenant usage, cost, cost share, month-to-date spend and budgets.

Month-to-date is stateless PromQL: for each of the 12 months, a subquery sums the recorded cost
windows whose window (not whose end: the window ending 00:00 on the 1st belongs to the month
before) lies in that month, and the branch for the current month is kept. So a Prometheus restart
or a replayed rule never double-counts, and any Prometheus-compatible store evaluates it.
"""

from __future__ import annotations

from typing import Any

from obsbundle.cost.model import (
    BUDGET,
    BUDGET_EXCEEDED,
    BUDGET_USED,
    FORECAST,
    MONTH_TO_DATE,
    PSEUDO_TENANTS,
    RESOURCES,
    SHARE,
    CostModel,
    cost_series,
    cost_total_series,
    num,
    usage_series,
)

MONTH_GROUP_INTERVAL_MAX = 300.0


def _labelled(expr: str, resource: str) -> str:
    return f'label_replace({expr}, "resource", "{resource}", "", "")'


def usage_rules(model: CostModel) -> list[dict[str, str]]:
    return [{"record": usage_series(r.name, model), "expr": r.usage(model.resolution, model.hours_per_month)}
            for r in model.priced]


def cost_rules(model: CostModel) -> list[dict[str, str]]:
    """Cost of each priced resource, then each fixed cost allocated by its driver's share."""
    rules = []
    for price_list in _priced_resources(model):
        resource = price_list[0].resource
        usage = usage_series(resource, model)
        models = [p for p in price_list if p.model and p.model != "default"]
        for p in price_list:
            if p.model == "default":
                named = "|".join(sorted(m.model for m in models))
                selector = f'{usage}{{model!~"{named}"}}' if named else usage
            elif p.model:
                selector = f'{usage}{{model="{p.model}"}}'
            else:
                selector = usage
            expr = f"sum by (tenant_id) ({selector}) * {num(p.price)} / {num(p.per)}"
            rules.append({"record": cost_series(model), "expr": _labelled(expr, resource)})
    for fixed in model.fixed:
        driver = usage_series(fixed.driver, model)
        by_tenant = f"sum by (tenant_id) ({driver})"
        # a window in which nobody used the driver splits the cost evenly: it is still billed
        share = (f"({by_tenant} / on() group_left() (sum({driver}) > 0))"
                 f" or on(tenant_id) ((0 * {by_tenant} + 1) / on() group_left() count({by_tenant}))")
        hours = num(model.resolution_seconds / 3600)
        expr = f"({share}) * {num(fixed.monthly)} * {hours} / {num(model.hours_per_month)}"
        rules.append({"record": cost_series(model), "expr": _labelled(expr, f"fixed_{fixed.name}")})
    total = cost_total_series(model)
    rules += [
        {"record": total, "expr": f"sum by (tenant_id) ({cost_series(model)})"},
        {"record": SHARE, "expr": f"{total} / on() group_left() sum({total})"},
    ]
    return rules


def _priced_resources(model: CostModel) -> list[list[Any]]:
    return [model.prices_of(name) for name in RESOURCES if model.prices_of(name)]


def month_to_date(model: CostModel) -> str:
    window = model.resolution
    shift = num(model.resolution_seconds)
    total = cost_total_series(model)
    branches = [
        f"(sum by (tenant_id) (sum_over_time(({total} and on() month(vector(time() - {shift})) == {m})[31d:{window}]))"
        f" and on() month() == {m})"
        for m in range(1, 13)
    ]
    return "\n  or ".join(branches)


def elapsed_seconds(model: CostModel) -> str:
    """Seconds of the current month covered by complete recorded windows."""
    w = num(model.resolution_seconds)
    raw = "((day_of_month() - 1) * 86400 + hour() * 3600 + minute() * 60)"
    return f"(floor({raw} / {w}) * {w})"


def budget_rules(model: CostModel) -> list[dict[str, str]]:
    rules = []
    named = sorted(t for t in model.budgets if t != "default")
    for tenant in named:
        rules.append({"record": BUDGET,
                      "expr": f'label_replace(vector({num(model.budgets[tenant])}), "tenant_id", "{tenant}", "", "")'})
    if "default" in model.budgets:
        excluded = "|".join([PSEUDO_TENANTS, *named])
        rules.append({"record": BUDGET, "expr": (
            f'0 * sum by (tenant_id) ({cost_total_series(model)}{{tenant_id!~"{excluded}"}})'
            f" + {num(model.budgets['default'])}")})
    return rules


def month_rules(model: CostModel) -> list[dict[str, str]]:
    elapsed = elapsed_seconds(model)
    rules = [
        {"record": MONTH_TO_DATE, "expr": month_to_date(model)},
        {"record": FORECAST, "expr": (
            f"{MONTH_TO_DATE} * on() group_left() (days_in_month() * 86400 / {elapsed})"
            f" and on() ({elapsed} >= {num(model.forecast_min_elapsed)})")},
    ]
    if model.budgets:
        rules += budget_rules(model)
        rules += [
            {"record": BUDGET_USED, "expr": f"{MONTH_TO_DATE} / on(tenant_id) {BUDGET}"},
            {"record": BUDGET_EXCEEDED,
             "expr": f"({MONTH_TO_DATE} >= bool on(tenant_id) {BUDGET}) or on(tenant_id) (0 * {BUDGET})"},
        ]
    return rules


def recording_groups(model: CostModel) -> list[dict[str, Any]]:
    """Usage and cost every evaluation; month sums at most every 5 minutes (31-day subqueries)."""
    interval = min(model.resolution_seconds, MONTH_GROUP_INTERVAL_MAX)
    return [
        {"name": "obsbundle.cost.usage", "rules": usage_rules(model) + cost_rules(model)},
        {"name": "obsbundle.cost.month", "interval": f"{int(interval)}s", "rules": month_rules(model)},
    ]


def recorded_labels(model: CostModel) -> dict[str, tuple[str, ...]]:
    """Every series the cost rules record, with its labels (the dashboards' lint reads them)."""
    labels: dict[str, tuple[str, ...]] = {}
    for group in recording_groups(model):
        for rule in group["rules"]:
            name = rule["record"]
            usage = name.startswith("tenant:usage_")
            by = RESOURCES[name.split(":")[1].removeprefix("usage_")].by if usage else ("tenant_id",)
            labels[name] = (*by, "resource") if name == cost_series(model) else by
    return labels
