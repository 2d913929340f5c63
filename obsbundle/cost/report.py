"""`obsbundle usage report`: per-tenant usage and cost over a date range, read back from the cost
recording rules through Prometheus's HTTP API (so any Prometheus-compatible store answers).

The range is read one day at a time: each query sums the recorded windows ending inside that day
(`sum_over_time(series[1d:resolution])`), which keeps every query small at thousands of tenants,
drives the progress bar, and gives the daily series the HTML charts draw.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypedDict

import httpx

from obsbundle.cost.model import RESOURCES, CostModel, cost_series, usage_series
from obsbundle.errors import ConfigError, ObsbundleError
from obsbundle.secrets import redact_url

DAY = 86400.0
QUERY_TIMEOUT = 60.0


class ReportError(ObsbundleError):
    """A one-line, secret-free reason the report can't be made (exit 1)."""

    exit_code = 1


@dataclass(frozen=True)
class Line:
    """One billable line: a tenant's use of one resource (one model, for tokens) over the range."""

    tenant_id: str
    resource: str
    item: str
    quantity: float
    unit: str
    unit_price: float
    cost: float


@dataclass
class Report:
    currency: str
    start: datetime
    end: datetime
    lines: list[Line] = field(default_factory=list)
    daily: dict[str, list[tuple[datetime, float]]] = field(default_factory=dict)  # tenant -> (day, cost)

    def totals(self) -> dict[str, float]:
        out: dict[str, float] = defaultdict(float)
        for line in self.lines:
            out[line.tenant_id] += line.cost
        return dict(sorted(out.items(), key=lambda kv: (-kv[1], kv[0])))

    @property
    def total(self) -> float:
        return math.fsum(line.cost for line in self.lines)

    def by_tenant(self) -> dict[str, list[Line]]:
        """Each tenant's lines, grouped in one pass (a report can hold thousands of tenants)."""
        grouped: dict[str, list[Line]] = defaultdict(list)
        for line in self.lines:
            grouped[line.tenant_id].append(line)
        return dict(grouped)

    def tenant_lines(self, tenant: str) -> list[Line]:
        return self.by_tenant().get(tenant, [])


def parse_day(text: str, flag: str) -> datetime:
    """A UTC date (2026-11-01) or ISO timestamp; a clear error otherwise."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ConfigError(f"{flag}: {text!r} is not a date (use 2026-11-01 or 2026-11-01T00:00:00Z)") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def day_chunks(start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    chunks, cursor = [], start
    while cursor < end:
        nxt = min(cursor + timedelta(days=1), end)
        chunks.append((cursor, nxt))
        cursor = nxt
    return chunks


class Sample(TypedDict):
    """One instant-vector sample of a Prometheus query result."""

    metric: dict[str, str]
    value: list[float | str]  # [timestamp, "value"]


class PrometheusAPI:
    """Instant queries; every failure is a ReportError naming the (redacted) URL, never a traceback."""

    def __init__(self, url: str, timeout: float = QUERY_TIMEOUT) -> None:
        self.url = url.rstrip("/")
        self.shown = redact_url(self.url)
        self.client = httpx.Client(timeout=timeout)

    def close(self) -> None:
        self.client.close()

    def query(self, expr: str, at: datetime) -> list[Sample]:
        try:
            response = self.client.get(f"{self.url}/api/v1/query", params={"query": expr, "time": at.timestamp()})
        except httpx.TimeoutException:
            raise ReportError(f"Prometheus at {self.shown} did not answer within {QUERY_TIMEOUT:g}s") from None
        except httpx.HTTPError as exc:
            reason = type(exc).__name__.removesuffix("Error").lower() or "error"
            raise ReportError(f"cannot reach Prometheus at {self.shown} ({reason})") from None
        try:
            body = response.json()
        except ValueError:
            raise ReportError(f"{self.shown} answered HTTP {response.status_code}, not the Prometheus API") from None
        if body.get("status") != "success":
            raise ReportError(f"Prometheus at {self.shown} rejected a query: {str(body.get('error', ''))[:200]}")
        return list(body["data"]["result"])


def _selector(series: str, tenant: str | None) -> str:
    if tenant is None:
        return series
    escaped = tenant.replace("\\", "\\\\").replace('"', '\\"')
    return f'{series}{{tenant_id="{escaped}"}}'


def _window_sum(series: str, model: CostModel, seconds: float, tenant: str | None) -> str:
    """The windows ending in (end - seconds, end]: 1 ms short, because Prometheus 2 closes ranges on
    the left (the window ending at the range's start would count in two days), Prometheus 3 doesn't."""
    return f"sum_over_time({_selector(series, tenant)}[{int(seconds * 1000) - 1}ms:{model.resolution}])"


def collect(
    api: PrometheusAPI,
    model: CostModel,
    start: datetime,
    end: datetime,
    tenant: str | None = None,
    progress: Callable[[Iterable[tuple[datetime, datetime]]], Iterable[tuple[datetime, datetime]]] = lambda x: x,
) -> Report:
    """Sum each day's recorded windows; price the quantities; allocate the fixed costs as recorded."""
    if end <= start:
        raise ConfigError("--to must be after --from")
    step = model.resolution_seconds
    for flag, moment in (("--from", start), ("--to", end)):
        if moment.timestamp() % step:
            raise ConfigError(f"{flag}: {moment.isoformat()} is not on a {model.resolution} boundary "
                              "(cost.resolution): the report sums whole recorded windows")
    quantities: dict[tuple[str, str, str], float] = defaultdict(float)
    fixed: dict[tuple[str, str], float] = defaultdict(float)
    daily: dict[str, dict[datetime, float]] = defaultdict(lambda: defaultdict(float))
    fixed_names = {f"fixed_{f.name}" for f in model.fixed}
    priced = [r for r in model.priced if model.prices_of(r.name)]
    for day_start, day_end in progress(day_chunks(start, end)):
        seconds = (day_end - day_start).total_seconds()
        for resource in priced:
            expr = _window_sum(usage_series(resource.name, model), model, seconds, tenant)
            for sample in api.query(expr, day_end):
                labels = sample["metric"]
                key = (labels["tenant_id"], resource.name, labels.get("model", ""))
                quantities[key] += float(sample["value"][1])
        expr = f"sum by (tenant_id, resource) ({_window_sum(cost_series(model), model, seconds, tenant)})"
        for sample in api.query(expr, day_end):
            labels = sample["metric"]
            value = float(sample["value"][1])
            daily[labels["tenant_id"]][day_start] += value
            if labels["resource"] in fixed_names:
                fixed[(labels["tenant_id"], labels["resource"])] += value
    report = Report(model.currency, start, end)
    for (tenant_id, resource_name, item), quantity in sorted(quantities.items()):
        unit_price = model.unit_price(resource_name, item)
        report.lines.append(Line(tenant_id, resource_name, item, quantity, RESOURCES[resource_name].unit, unit_price,
                                 quantity * unit_price))
    for (tenant_id, resource_name), cost in sorted(fixed.items()):
        monthly = next(f.monthly for f in model.fixed if f"fixed_{f.name}" == resource_name)
        report.lines.append(Line(tenant_id, resource_name, "", cost / monthly if monthly else 0.0, "month-share",
                                 monthly, cost))
    report.lines.sort(key=lambda line: (line.tenant_id, line.resource, line.item))
    report.daily = {t: sorted(days.items()) for t, days in sorted(daily.items())}
    if not report.lines:
        raise ReportError(f"no usage recorded between {start:%Y-%m-%d %H:%M} and {end:%Y-%m-%d %H:%M} UTC"
                          + (f" for tenant {tenant!r}" if tenant else "")
                          + f" in {api.shown} (are alerts/rules/cost.rules.yaml loaded there?)")
    return report


def rows(report: Report) -> list[Mapping[str, object]]:
    """One row per tenant per resource, then each tenant's total: the CSV/JSON billing import."""
    out: list[Mapping[str, object]] = []
    grouped = report.by_tenant()
    for tenant_id, total in sorted(report.totals().items()):
        for line in grouped.get(tenant_id, []):
            out.append({"tenant_id": tenant_id, "resource": line.resource, "item": line.item,
                        "quantity": line.quantity, "unit": line.unit, "unit_price": line.unit_price,
                        "cost": line.cost, "currency": report.currency})
        out.append({"tenant_id": tenant_id, "resource": "total", "item": "", "quantity": "", "unit": "",
                    "unit_price": "", "cost": total, "currency": report.currency})
    return out
