"""Tenants and usage: how many tenants are active and what each one consumes, across sources."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from generators.dashboards.builder import Board, Q, stat, table, thresholds, timeseries
from generators.queries import REAL_TENANTS, REQUESTS, RI, TENANT, increase, quantile, rate
from obsbundle.catalog import business


def board(config: Mapping[str, Any]) -> Board:
    counts = [
        stat("Active tenants", "Tenants that made at least one API request in the dashboard's time range.",
             Q(f"count(sum by (tenant_id) (increase({REQUESTS}{{{REAL_TENANTS}}}[$__range])) > 0) or vector(0)"),
             unit="short", graph=False),
        stat("Tenants in PostgreSQL", "Tenants with at least one schema in PostgreSQL.",
             Q(f"count(sum by (tenant_id) (pg_tenant_schema_size_bytes{{{REAL_TENANTS}}})) or vector(0)"),
             unit="short", graph=False),
        stat("Tenants in Redis", "Tenants owning at least one Redis key (last keyspace pass).",
             Q(f"count(sum by (tenant_id) (redis_tenant_keys{{{REAL_TENANTS}}}) > 0) or vector(0)"),
             unit="short", graph=False),
        stat("Tenants with workflows", "Tenants with at least one running Temporal workflow (tasks).",
             Q(f"count(sum by (tenant_id) (temporal_tenant_workflows_running{{{REAL_TENANTS}}}) > 0) or vector(0)"),
             unit="short", graph=False),
        stat("Tenants admitted", "Distinct tenant ids each exporter admitted under `tenancy.max_tenants`; near "
             "the cap, new tenants are reported as _overflow.",
             Q("max(obsbundle_tenants_admitted)"), unit="short", graph=False),
        stat("Overflowed names", "Names attributed to _overflow per minute because the tenant cap was reached; "
             "0 is healthy. Thresholds: `thresholds.tenant_overflow_per_minute`.",
             Q(f"sum(rate(obsbundle_tenants_overflowed_total[{RI}])) * 60 or vector(0)"),
             unit="short", th=thresholds(config, "tenant_overflow_per_minute"), graph=False),
    ]
    usage = [
        table("Usage by tenant", "Per tenant over the time range: API requests, 5xx errors, inference tokens; "
              "and now: running workflows, Redis keys, PostgreSQL live rows.",
              Q(increase(REQUESTS, labels="tenant_id"), "requests"),
              Q(increase(REQUESTS, f'{TENANT}, status_class="5xx"', "tenant_id"), "errors"),
              Q(increase("model_inference_tokens_total", labels="tenant_id"), "tokens"),
              Q(f"sum by (tenant_id) (temporal_tenant_workflows_running{{{TENANT}}})", "running workflows"),
              Q(f"sum by (tenant_id) (redis_tenant_keys{{{TENANT}}})", "redis keys"),
              Q(f"sum by (tenant_id) (pg_tenant_live_rows{{{TENANT}}})", "postgres rows"),
              unit="short", w=24, h=9),
    ]
    activity = [
        timeseries("API requests by tenant", "Requests per second per tenant.",
                   Q(rate(REQUESTS, labels="tenant_id"), "{{tenant_id}}"), unit="reqps", w=8),
        timeseries("Inference tokens by tenant", "Model tokens (input + output) per second per tenant: the "
                   "main cost driver.", Q(rate("model_inference_tokens_total", labels="tenant_id"), "{{tenant_id}}"),
                   unit="short", w=8),
        timeseries("Running workflows by tenant", "Temporal workflow executions currently running (tasks in "
                   "progress).", Q(f"sum by (tenant_id) (temporal_tenant_workflows_running{{{TENANT}}})",
                                   "{{tenant_id}}"), unit="short", w=8),
        timeseries("Workflows closed by tenant", "Workflows that closed within the exporter's closed window, by "
                   "status.", Q(f"sum by (tenant_id, status) (temporal_tenant_workflows_closed{{{TENANT}}})",
                                "{{tenant_id}} {{status}}"), unit="short", w=8),
        timeseries("PostgreSQL connections by tenant", "Client connections attributed to the tenant, all states.",
                   Q(f"sum by (tenant_id) (pg_tenant_connections{{{TENANT}}})", "{{tenant_id}}"), unit="short", w=8),
    ]
    # The platform team's business dashboard: "active users, tasks, agents per tenant" (collectors.app.business).
    work = [
        timeseries("Agents active by tenant", "Agents running now in the platform's services (a callback "
                   "gauge read at each collection).",
                   Q(f"sum by (tenant_id) ({business.AGENTS_ACTIVE.name}{{{TENANT}}})", "{{tenant_id}}"),
                   unit="short", w=6),
        timeseries("Tasks started and finished by tenant", "Agent tasks started, and finished by outcome, per "
                   "second; finished below started means tasks pile up.",
                   Q(rate(business.TASKS_STARTED.name, labels="tenant_id"), "{{tenant_id}} started"),
                   Q(rate(business.TASKS_FINISHED.name, labels="tenant_id, outcome"), "{{tenant_id}} {{outcome}}"),
                   unit="ops", w=6),
        timeseries("Active users by tenant", "Distinct users seen over each window (HyperLogLog estimate, "
                   "1.6% standard error); the maximum across service instances, which each count their own users.",
                   Q(f"max by (tenant_id, window) ({business.ACTIVE_USERS.name}{{{TENANT}}})",
                     "{{tenant_id}} {{window}}"), unit="short", w=6),
        timeseries("Vector search p95 by tenant", "95th percentile wall time of one vector-store similarity "
                   "search, per tenant.",
                   Q(quantile(0.95, business.VECTOR_SEARCH_DURATION.name, "tenant_id"), "{{tenant_id}}"),
                   unit="s", w=6),
    ]
    storage = [
        timeseries("PostgreSQL storage by tenant", "Size of the tenant's schemas: tables, indexes and TOAST.",
                   Q(f"sum by (tenant_id) (pg_tenant_schema_size_bytes{{{TENANT}}})", "{{tenant_id}}"),
                   unit="bytes", w=8),
        timeseries("Redis memory by tenant", "Estimated bytes used by the tenant's keys (sampled MEMORY USAGE).",
                   Q(f"sum by (tenant_id) (redis_tenant_memory_bytes{{{TENANT}}})", "{{tenant_id}}"),
                   unit="bytes", w=8),
        timeseries("Redis keys by tenant", "Keys matching the tenant's key rule (last keyspace pass).",
                   Q(f"sum by (tenant_id) (redis_tenant_keys{{{TENANT}}})", "{{tenant_id}}"), unit="short", w=8),
    ]
    return Board(
        slug="tenants",
        title="Tenants and usage",
        description="Business view: active tenants, requests, inference tokens, workflows (tasks), workers "
                    "(agents) and storage per tenant across the API, PostgreSQL, Redis and Temporal.",
        tenant_metric=REQUESTS,
        sections=[("Tenants", counts), ("Usage", usage), ("Activity", activity), ("Agents and tasks", work),
                  ("Storage", storage)],
        related=("tenant", "application", "postgresql", "redis", "temporal"),
        tags=("tenants",),
    )
