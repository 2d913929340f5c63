"""The generated promtool test of the cost rules: three tenants with steady, known usage of every
priced resource, checked against costs computed here by plain arithmetic (usage x unit price, the
fixed cost split by the driver's shares), so a wrong rule expression fails `obsbundle check`."""

from __future__ import annotations

from typing import Any

from obsbundle.cost.model import (
    MONTH_TO_DATE,
    RESOURCES,
    SHARE,
    CostModel,
    cost_series,
    cost_total_series,
    num,
    usage_series,
)

# tenant -> units of each resource per second (counters) or level (gauges), before `scale`
TENANTS = {"acme": 3.0, "beta": 1.0, "gamma": 0.5}
MODEL_NAME = "scenario-model"
STEP = 60  # seconds between input samples


def _series(model: CostModel, minutes: int) -> list[dict[str, str]]:
    out = []
    for r in model.priced:
        for tenant, level in TENANTS.items():
            labels = {"tenant_id": tenant}
            if "model" in r.by:
                labels["model"] = MODEL_NAME
            if "server" not in labels and r.metric.startswith(("pg_", "redis_", "temporal_")):
                labels["server"] = "main"
            inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
            if r.kind == "counter":
                values = f"0+{num(level * r.scale * STEP)}x{minutes}"
            else:
                values = f"{num(level * r.scale)}+0x{minutes}"
            out.append({"series": f"{r.metric}{{{inner}}}", "values": values})
    return out


def expected_window_usage(model: CostModel, resource: str, level: float) -> float:
    """Units of `resource` in one window at a steady `level`."""
    r = RESOURCES[resource]
    if r.kind == "counter":
        return level * model.resolution_seconds
    return level * model.resolution_seconds / 3600 / model.hours_per_month


def expected_costs(model: CostModel) -> dict[str, dict[str, float]]:
    """tenant -> resource -> cost of one window."""
    costs: dict[str, dict[str, float]] = {t: {} for t in TENANTS}
    for tenant, level in TENANTS.items():
        for r in model.priced:
            if model.prices_of(r.name):
                usage = expected_window_usage(model, r.name, level)
                costs[tenant][r.name] = usage * model.unit_price(r.name, MODEL_NAME)
    total_level = sum(TENANTS.values())
    for fixed in model.fixed:
        for tenant, level in TENANTS.items():
            costs[tenant][f"fixed_{fixed.name}"] = model.fixed_per_window(fixed) * level / total_level
    return costs


def promtool_test(model: CostModel, rule_file: str) -> dict[str, Any]:
    windows = 3
    minutes = int(model.resolution_seconds * windows / STEP) + 2
    eval_seconds = int(model.resolution_seconds * windows)
    costs = expected_costs(model)
    totals = {t: sum(c.values()) for t, c in costs.items()}
    grand = sum(totals.values())
    checks: list[tuple[str, float]] = []
    for r in model.priced:
        for t, level in sorted(TENANTS.items()):
            checks.append((_labels(usage_series(r.name, model), t, MODEL_NAME if "model" in r.by else None),
                           expected_window_usage(model, r.name, level)))
    checks += [(_labels(cost_series(model), t, None, resource=res), value)
               for t, by_res in sorted(costs.items()) for res, value in sorted(by_res.items())]
    checks += [(_labels(cost_total_series(model), t, None), totals[t]) for t in sorted(totals)]
    checks += [(_labels(SHARE, t, None), totals[t] / grand) for t in sorted(totals)]
    # every complete window since 1970-01-01 00:00 (the test's time 0) counts toward January
    checks += [(_labels(MONTH_TO_DATE, t, None), totals[t] * windows) for t in sorted(totals)]
    cases = [_close_to(selector, value, f"{eval_seconds}s") for selector, value in checks]
    return {
        "rule_files": [f"../{rule_file}"],
        "evaluation_interval": f"{STEP}s",
        "tests": [{"name": "cost: three tenants with steady usage of every priced resource",
                   "interval": f"{STEP}s", "input_series": _series(model, minutes), "promql_expr_test": cases}],
    }


def _labels(name: str, tenant: str, model_name: str | None, resource: str | None = None) -> str:
    labels = {"tenant_id": tenant}
    if model_name:
        labels["model"] = model_name
    if resource:
        labels["resource"] = resource
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    return f"{name}{{{inner}}}"


def _close_to(selector: str, value: float, at: str) -> dict[str, Any]:
    """A case that holds when the series is within 1e-9 of `value` (promtool 2.42 compares floats
    exactly, and PromQL sums in an order Python can't reproduce to the last bit)."""
    labels = selector[selector.index("{"):]
    return {"expr": f"abs({selector} - {value!r}) <= bool {abs(value) * 1e-9!r}", "eval_time": at,
            "exp_samples": [{"labels": labels, "value": 1}]}
