"""What the demo prints: the per-tenant table, where to look, and what the seeded incidents do."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any
from urllib.parse import quote

from generators.alerts import recording as rec
from obsbundle.demo.incidents import INCIDENTS
from obsbundle.services import PrometheusAPI

# (column title, PromQL, format)
TABLE_QUERIES = [
    ("PG schema bytes", "sum by (tenant_id) (pg_tenant_schema_size_bytes)", "{:,.0f}"),
    ("PG live rows", "sum by (tenant_id) (pg_tenant_live_rows)", "{:,.0f}"),
    ("Redis keys", "sum by (tenant_id) (redis_tenant_keys)", "{:,.0f}"),
    ("Redis bytes (est.)", "sum by (tenant_id) (redis_tenant_memory_bytes)", "{:,.0f}"),
    ("Temporal running", "sum by (tenant_id) (temporal_tenant_workflows_running)", "{:,.0f}"),
    ("Temporal backlog", "sum by (tenant_id) (temporal_tenant_task_queue_backlog)", "{:,.0f}"),
    ("API req/s", "sum by (tenant_id) (rate(http_server_requests_total[1m]))", "{:.2f}"),
    ("API p95 s", "histogram_quantile(0.95, sum by (tenant_id, le) "
                  "(rate(http_server_request_duration_seconds_bucket[1m])))", "{:.2f}"),
]

# The key panels of the tenants and SLO boards, as Prometheus graphs.
GRAPHS = [
    ("p95 latency by tenant", rec.latency_quantile("p95", "5m")),
    ("5xx ratio by tenant", rec.error_ratio("5m")),
    ("PostgreSQL sessions by tenant and state", "sum by (tenant_id, state) (pg_tenant_connections)"),
    ("Temporal backlog by tenant and queue", "sum by (tenant_id, task_queue) (temporal_tenant_task_queue_backlog)"),
    ("cost so far by tenant", "sum by (tenant_id) (tenant:cost_total:increase1h)"),
]


def print_table(prometheus: PrometheusAPI) -> None:
    columns = [(title, fmt, prometheus.query_by(expr)) for title, expr, fmt in TABLE_QUERIES]
    tenants = sorted({t for _, _, values in columns for t in values})
    width = max([len("tenant_id"), *map(len, tenants)])
    print("  ".join(["tenant_id".ljust(width), *(title.rjust(len(title)) for title, _, _ in columns)]))
    for tenant in tenants:
        cells = [
            (fmt.format(values[tenant]) if not math.isnan(values.get(tenant, math.nan)) else "-").rjust(len(title))
            for title, fmt, values in columns
        ]
        print("  ".join([tenant.ljust(width), *cells]))


def graph_url(prometheus_url: str, expr: str) -> str:
    return f"{prometheus_url}/graph?g0.expr={quote(expr)}&g0.tab=0&g0.range_input=15m"


def print_guide(urls: dict[str, str], incidents: list[str], root: Path, extras: dict[str, Any]) -> None:
    prom = urls["prometheus"]
    print("\nwhere to look:")
    print(f"  Prometheus alerts    {prom}/alerts")
    print(f"  Alertmanager UI      {urls['alertmanager']}/#/alerts")
    for title, expr in GRAPHS:
        print(f"  graph: {title:<40} {graph_url(prom, expr)}")
    if extras.get("app_log"):
        print(f"  API JSON logs        tail -f {extras['app_log']}")
    boards = root / "dashboards"
    print(f"\ndashboards (generated Grafana JSON): {boards}/*.json, provisioning files in {boards}/provisioning/")
    print(f"  import into the Grafana at {urls['grafana']} (dashboards.grafana_url), with a Prometheus data source "
          f"of uid `{urls['datasource_uid']}` pointing at {prom}:")
    body = '{\\"overwrite\\":true,\\"dashboard\\":$(cat $f)}'
    print(f"  for f in {boards}/*.json; do curl -s -u admin:admin -H 'Content-Type: application/json' "
          f"-X POST {urls['grafana']}/api/dashboards/db -d \"{body}\"; done")
    print("\nwhat you are seeing:")
    print("  - demo profile: every alert's `for:` is x0.02 and Alertmanager groups wait 5 s, so alerts fire "
          "within about 2 minutes; thresholds, windows and routing are the production ones")
    print("  - Slack, PagerDuty, email and the dead man's switch reach a loopback sink: each notification prints "
          "below as it arrives, and nothing leaves this machine")
    for name in incidents:
        incident = INCIDENTS[name]
        print(f"  - {name}: {incident.injects}\n      expect: {incident.expect}")
    print("  - tenants not named above stay healthy and never page; `_unassigned` (cache:global:*) is data "
          "that matches no tenant rule and never pages as a tenant")
