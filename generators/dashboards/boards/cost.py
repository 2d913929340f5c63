"""Cost and usage: what each tenant costs, by resource, against its budget (docs/cost.md).

Every figure reads the cost model's recording rules, so the board shows the numbers
`obsbundle usage report` bills. A window's cost times windows per hour is the hourly rate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from generators.dashboards.builder import Board, Q, Thresholds, stat, table, thresholds, timeseries
from generators.queries import REQUESTS, TENANT
from obsbundle.cost.model import (
    BUDGET,
    BUDGET_EXCEEDED,
    BUDGET_USED,
    FORECAST,
    MONTH_TO_DATE,
    SHARE,
    cost_model,
    cost_series,
    cost_total_series,
    num,
)


def board(config: Mapping[str, Any]) -> Board:
    model = cost_model(config)
    cur = model.currency
    per_hour = num(3600 / model.resolution_seconds)
    total = f"{cost_total_series(model)}{{{TENANT}}}"
    by_resource = f"{cost_series(model)}{{{TENANT}}}"
    mtd = f"{MONTH_TO_DATE}{{{TENANT}}}"
    spend = [
        stat("Month-to-date cost", f"Spend of the selected tenants since 00:00 UTC on the 1st, in {cur}.",
             Q(f"sum({mtd})"), unit="none", w=6),
        stat("Cost per hour", f"Current cost rate of the selected tenants ({cur} per hour), from the last "
             f"{model.resolution} window.", Q(f"sum({total}) * {per_hour}"), unit="none", w=6),
        stat("Month-end forecast", f"Month-to-date scaled to the whole month ({cur}); shown once "
             "`cost.forecast_min_elapsed` of the month has passed.",
             Q(f"sum({FORECAST}{{{TENANT}}})"), unit="none", w=6),
        stat("Tenants over budget", "Selected tenants whose month-to-date spend reached their budget "
             "(`tenant:budget_exceeded`, the kill switch).",
             Q(f"count({BUDGET_EXCEEDED}{{{TENANT}}} == 1) or vector(0)"), unit="none", w=6,
             th=Thresholds((("green", 0), ("red", 1)))),
    ]
    tenants = [
        timeseries("Cost per hour by tenant", f"Each tenant's cost rate ({cur} per hour).",
                   Q(f"sum by (tenant_id) ({total}) * {per_hour}", "{{tenant_id}}"), unit="none"),
        table("Top spenders this month", f"Tenants by month-to-date spend ({cur}).",
              Q(f"topk(20, {mtd})", "month to date"), unit="none"),
        timeseries("Share of the platform's cost", "Each tenant's share of all tenants' cost in the last window.",
                   Q(f"{SHARE}{{{TENANT}}}", "{{tenant_id}}"), unit="percentunit", min=0),
    ]
    resources = [
        timeseries("Cost per hour by resource", f"Selected tenants' cost rate by resource ({cur} per hour); "
                   "`fixed_*` are fixed costs allocated by their driver.",
                   Q(f"sum by (resource) ({by_resource}) * {per_hour}", "{{resource}}"), unit="none", stack=True),
        table("One tenant's breakdown", f"Cost rate per tenant and resource ({cur} per hour): pick one tenant "
              "in the variable for its bill.",
              Q(f"sum by (tenant_id, resource) ({by_resource}) * {per_hour}", "cost per hour"), unit="none"),
    ]
    budgets = [
        timeseries("Budget used", "Month-to-date spend over the monthly budget (`cost.budgets`); dashed line: "
                   "`thresholds.cost_budget_used_ratio`.",
                   Q(f"{BUDGET_USED}{{{TENANT}}}", "{{tenant_id}}"), unit="percentunit",
                   th=thresholds(config, "cost_budget_used_ratio"), min=0),
        timeseries("Forecast over budget", "Month-end forecast over the budget; dashed lines: "
                   "`thresholds.cost_budget_forecast_ratio`.",
                   Q(f"{FORECAST}{{{TENANT}}} / on(tenant_id) {BUDGET}{{{TENANT}}}", "{{tenant_id}}"),
                   unit="percentunit", th=thresholds(config, "cost_budget_forecast_ratio"), min=0),
    ]
    return Board(
        slug="cost",
        title="Cost and usage",
        description="Per-tenant cost from the `cost` config section's prices: spend, top spenders, cost by "
                    "resource, one tenant's breakdown and budget burn. The same series `obsbundle usage "
                    "report` bills from.",
        tenant_metric=REQUESTS,
        sections=[("Spend", spend), ("By tenant", tenants), ("By resource", resources), ("Budgets", budgets)],
        related=("tenants", "tenant"),
        tags=("cost",),
    )
