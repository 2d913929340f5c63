"""The cost model: which catalogued signal measures each billable resource, in which unit, and the
PromQL that turns a window of it into a per-tenant quantity.

Every resource is recorded as "how much the tenant used in the last window" (a counter's growth,
or a gauge's average times the window's share of a month), so summing the windows of a range gives
the range's usage, and multiplying by the unit price gives its cost. Both the recording rules and
`obsbundle usage report` derive from this one table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from obsbundle.config import parse_duration
from obsbundle.tenancy import RESERVED

GB = 1e9
PSEUDO_TENANTS = "|".join(sorted(RESERVED))


@dataclass(frozen=True)
class Resource:
    """One billable resource: `usage(window)` is PromQL for each tenant's quantity over a window."""

    name: str
    unit: str
    metric: str
    kind: str  # "counter": increase over the window; "gauge_month": average level times window/month
    scale: float = 1.0  # raw sample units per billing unit (bytes per GB)
    by: tuple[str, ...] = ("tenant_id",)
    help: str = ""

    def usage(self, window: str, hours_per_month: float) -> str:
        by = ", ".join(self.by)
        if self.kind == "counter":
            # The plain difference telescopes: the windows of a range add up to exactly the counter's
            # growth over it, where increase() would extrapolate each window to its edges (about one
            # scrape interval too much per window). increase() still answers across a counter reset
            # (a negative difference) and for a series younger than the window.
            m = self.metric
            expr = f"sum by ({by}) (({m} - {m} offset {window}) >= 0 or increase({m}[{window}]))"
        else:
            hours = parse_duration(window) / 3600
            expr = f"sum by ({by}) (avg_over_time({self.metric}[{window}])) * {num(hours)} / {num(hours_per_month)}"
        return expr if self.scale == 1 else f"{expr} / {num(self.scale)}"


RESOURCES: dict[str, Resource] = {r.name: r for r in (
    Resource("api_requests", "requests", "http_server_requests_total", "counter",
             help="API requests answered (the app middleware)."),
    Resource("egress", "GB", "http_server_response_bytes_total", "counter", scale=GB,
             help="Response body bytes sent to clients (the app middleware)."),
    Resource("db_time", "seconds", "pg_tenant_statements_exec_time_seconds_total", "counter",
             help="Statement execution time from pg_stat_statements, where tenants have their own roles."),
    Resource("db_storage", "GB-month", "pg_tenant_schema_size_bytes", "gauge_month", scale=GB,
             help="Size of the tenant's schemas, held over time."),
    Resource("redis_memory", "GB-month", "redis_tenant_memory_bytes", "gauge_month", scale=GB,
             help="Estimated memory of the tenant's Redis keys, held over time."),
    Resource("workflow_executions", "executions", "temporal_server_workflow_outcomes_total", "counter",
             help="Temporal workflow executions closed (server metrics, relabelled by namespace)."),
    Resource("inference_tokens", "tokens", "model_inference_tokens_total", "counter", by=("tenant_id", "model"),
             help="Model inference tokens, input and output, priced per model."),
)}


@dataclass(frozen=True)
class Price:
    """`price` buys `per` units of a resource (optionally of one model)."""

    resource: str
    price: float
    per: float
    model: str = ""

    @property
    def unit_price(self) -> float:
        return self.price / self.per


@dataclass(frozen=True)
class FixedCost:
    name: str
    monthly: float
    driver: str


@dataclass(frozen=True)
class CostModel:
    currency: str
    resolution: str
    hours_per_month: float
    prices: tuple[Price, ...]
    fixed: tuple[FixedCost, ...]
    budgets: Mapping[str, float]
    forecast_min_elapsed: float

    @property
    def resolution_seconds(self) -> float:
        return parse_duration(self.resolution)

    @property
    def priced(self) -> list[Resource]:
        """Resources with a price, and the drivers of fixed costs (recorded even when unpriced)."""
        names = {p.resource for p in self.prices} | {f.driver for f in self.fixed}
        return [r for name, r in RESOURCES.items() if name in names]

    def prices_of(self, resource: str) -> list[Price]:
        return [p for p in self.prices if p.resource == resource]

    def unit_price(self, resource: str, model: str = "") -> float:
        """The price of one unit; for inference tokens the model's, else the `default` model's."""
        prices = self.prices_of(resource)
        exact = [p for p in prices if p.model == model] or [p for p in prices if p.model == "default"]
        return exact[0].unit_price if exact else (prices[0].unit_price if prices and not prices[0].model else 0.0)

    def fixed_per_window(self, cost: FixedCost) -> float:
        return cost.monthly * self.resolution_seconds / 3600 / self.hours_per_month


def cost_model(config: Mapping[str, Any]) -> CostModel:
    """The `cost` section as a model (the schema has already checked types and names)."""
    section = config.get("cost") or {}
    prices: list[Price] = []
    for name, spec in sorted((section.get("prices") or {}).items()):
        if not spec:
            continue
        if name == "inference_tokens":
            prices += [Price(name, float(p), float(spec["per"]), model) for model, p in sorted(spec["models"].items())]
        else:
            prices.append(Price(name, float(spec["price"]), float(spec["per"])))
    fixed = tuple(FixedCost(f["name"], float(f["monthly"]), f["driver"]) for f in section.get("fixed") or ())
    return CostModel(
        currency=section.get("currency", "USD"),
        resolution=section.get("resolution", "1h"),
        hours_per_month=float(section.get("hours_per_month", 730)),
        prices=tuple(prices),
        fixed=fixed,
        budgets=dict(section.get("budgets") or {}),
        forecast_min_elapsed=parse_duration(section.get("forecast_min_elapsed", "1d")),
    )


def num(value: float) -> str:
    """A PromQL number literal that round-trips exactly (prices like 2e-07 stay exact)."""
    return repr(float(value)) if value != int(value) else str(int(value))


# -- recorded series names (one place: rules, dashboard and report all use these) -----------------

def usage_series(resource: str, model: CostModel) -> str:
    return f"tenant:usage_{resource}:increase{model.resolution}"


def cost_series(model: CostModel) -> str:
    """Cost per tenant per resource over the last window (label `resource`)."""
    return f"tenant:cost:increase{model.resolution}"


def cost_total_series(model: CostModel) -> str:
    return f"tenant:cost_total:increase{model.resolution}"


SHARE = "tenant:cost:share_ratio"
MONTH_TO_DATE = "tenant:cost:month_to_date"
FORECAST = "tenant:cost:forecast_month"
BUDGET = "tenant:cost_budget:monthly"
BUDGET_EXCEEDED = "tenant:budget_exceeded"
BUDGET_USED = "tenant:cost_budget:used_ratio"
