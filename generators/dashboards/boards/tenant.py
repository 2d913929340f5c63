"""Tenant drill-down: one tenant (or a few) across every source on one page."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from generators.dashboards.boards.temporal import failure_ratio
from generators.dashboards.builder import Board, Q, thresholds, timeseries
from generators.queries import DURATION, REQUESTS, TENANT, cache_hit_ratio, error_ratio, quantile, rate

# Tenants known to any source, so a tenant with data only in PostgreSQL still appears.
TENANT_SOURCES = ("http_server_requests_total|pg_tenant_schema_size_bytes|redis_tenant_keys"
                  "|temporal_tenant_workflows_running|probe_success")


def board(config: Mapping[str, Any]) -> Board:
    def ts(title: str, description: str, *queries: Q, **kw: Any) -> Any:
        return timeseries(title, description, *queries, w=kw.pop("w", 8), **kw)

    app = [
        ts("Requests", "API requests per second of the tenant.", Q(rate(REQUESTS, labels="tenant_id"),
                                                                   "{{tenant_id}}"), unit="reqps"),
        ts("Error ratio", "Share of the tenant's requests answered 5xx. Dashed lines: `thresholds.error_ratio`.",
           Q(error_ratio("tenant_id"), "{{tenant_id}}"), unit="percentunit",
           th=thresholds(config, "error_ratio"), min=0),
        ts("p95 latency", "95th percentile request duration of the tenant. Dashed lines: "
           "`thresholds.latency_p95_seconds`. Dots are exemplars: click one to open that request's trace.",
           Q(quantile(0.95, DURATION, "tenant_id"), "{{tenant_id}}", exemplar=True),
           unit="s", th=thresholds(config, "latency_p95_seconds")),
        ts("Inference tokens", "Model tokens per second by kind.",
           Q(rate("model_inference_tokens_total", labels="tenant_id, kind"), "{{tenant_id}} {{kind}}"),
           unit="short"),
        ts("Inference p95", "95th percentile duration of the tenant's inference calls.",
           Q(quantile(0.95, "model_inference_duration_seconds", "tenant_id"), "{{tenant_id}}"), unit="s"),
        ts("Cache hit ratio", "The tenant's cache hits / lookups.", Q(cache_hit_ratio("tenant_id"),
                                                                      "{{tenant_id}}"),
           unit="percentunit", min=0, max=1),
    ]
    postgres = [
        ts("Schema size", "Size of the tenant's schemas.",
           Q(f"sum by (tenant_id) (pg_tenant_schema_size_bytes{{{TENANT}}})", "{{tenant_id}}"), unit="bytes"),
        ts("Connections by state", "The tenant's PostgreSQL sessions by state.",
           Q(f"sum by (tenant_id, state) (pg_tenant_connections{{{TENANT}}})", "{{tenant_id}} {{state}}"),
           unit="short"),
        ts("Rows written", "Rows inserted, updated and deleted per second.",
           Q(f"sum by (tenant_id) (rate(pg_tenant_rows_inserted_total{{{TENANT}}}[$__rate_interval])"
             f" + rate(pg_tenant_rows_updated_total{{{TENANT}}}[$__rate_interval])"
             f" + rate(pg_tenant_rows_deleted_total{{{TENANT}}}[$__rate_interval]))", "{{tenant_id}}"),
           unit="ops"),
        ts("Statement time", "Seconds of statement execution per second (pg_stat_statements).",
           Q(rate("pg_tenant_statements_exec_time_seconds_total", labels="tenant_id"), "{{tenant_id}}"), unit="s"),
        ts("Oldest transaction", "Age of the tenant's oldest open transaction.",
           Q(f"max by (tenant_id) (pg_tenant_oldest_transaction_age_seconds{{{TENANT}}})", "{{tenant_id}}"),
           unit="s"),
        ts("Dead rows", "Dead rows awaiting vacuum in the tenant's tables.",
           Q(f"sum by (tenant_id) (pg_tenant_dead_rows{{{TENANT}}})", "{{tenant_id}}"), unit="short"),
    ]
    redis = [
        ts("Keys", "The tenant's Redis keys (last keyspace pass).",
           Q(f"sum by (tenant_id) (redis_tenant_keys{{{TENANT}}})", "{{tenant_id}}"), unit="short"),
        ts("Memory (estimate)", "Bytes used by the tenant's Redis keys (sampled).",
           Q(f"sum by (tenant_id) (redis_tenant_memory_bytes{{{TENANT}}})", "{{tenant_id}}"), unit="bytes"),
        ts("Clients", "Redis connections attributed to the tenant.",
           Q(f"sum by (tenant_id) (redis_tenant_connected_clients{{{TENANT}}})", "{{tenant_id}}"), unit="short"),
    ]
    temporal = [
        ts("Running workflows", "The tenant's running workflow executions.",
           Q(f"sum by (tenant_id) (temporal_tenant_workflows_running{{{TENANT}}})", "{{tenant_id}}"), unit="short"),
        ts("Workflow failure ratio", "Failed, timed-out and terminated / closed workflows. Dashed lines: "
           "`thresholds.workflow_failure_ratio`.", Q(failure_ratio("tenant_id"), "{{tenant_id}}"),
           unit="percentunit", th=thresholds(config, "workflow_failure_ratio"), min=0, max=1),
        ts("Backlog age", "Oldest waiting task in the tenant's task queues. Dashed lines: "
           "`thresholds.temporal_backlog_age_seconds`.",
           Q(f"max by (tenant_id) (temporal_tenant_task_queue_backlog_age_seconds{{{TENANT}}})", "{{tenant_id}}"),
           unit="s", th=thresholds(config, "temporal_backlog_age_seconds")),
    ]
    probes = [
        ts("Probe success", "The tenant's uptime probes: 1 = last check succeeded.",
           Q(f"min by (tenant_id, probe) (probe_success{{{TENANT}}})", "{{tenant_id}} {{probe}}"),
           unit="bool_yes_no", min=0, max=1, w=12),
        ts("Probe duration", "Wall time of the last check of each of the tenant's probes.",
           Q(f"max by (tenant_id, probe) (probe_duration_seconds{{{TENANT}}})", "{{tenant_id}} {{probe}}"),
           unit="s", w=12),
    ]
    return Board(
        slug="tenant",
        title="Tenant drill-down",
        description="Everything about the selected tenant(s) on one page: API, PostgreSQL, Redis, Temporal and "
                    "uptime probes. Pick the tenant in the Tenant variable; links from other dashboards keep it.",
        tenant_metric=f'{{__name__=~"{TENANT_SOURCES}"}}',
        sections=[("API", app), ("PostgreSQL", postgres), ("Redis", redis), ("Temporal", temporal),
                  ("Uptime probes", probes)],
        related=("tenants", "application", "postgresql", "redis", "temporal", "slo-budget"),
        tags=("tenants",),
    )
