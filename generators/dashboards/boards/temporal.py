"""Temporal: workflows and task-queue backlog per tenant namespace, server request metrics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from generators.dashboards.builder import Board, Q, Thresholds, stat, thresholds, timeseries
from generators.queries import SHARED, TENANT, quantile, rate
from obsbundle.catalog import worker

UP = Thresholds((("red", 0), ("green", 1)))
FAILED = 'status=~"failed|timed_out|terminated"'


def failure_ratio(labels: str = "") -> str:
    """Failed + timed-out + terminated / all workflows closed in the exporter's closed window."""
    by = f" by ({labels})" if labels else ""
    failed = f"sum{by} (temporal_tenant_workflows_closed{{{TENANT}, {FAILED}}})"
    closed = f"sum{by} (temporal_tenant_workflows_closed{{{TENANT}}})"
    return f"{failed} / ({closed} > 0)"


def board(config: Mapping[str, Any]) -> Board:
    backlog_th = thresholds(config, "temporal_backlog_age_seconds")
    failure_th = thresholds(config, "workflow_failure_ratio")
    status = [
        stat("Up", "1 when the exporter's last refresh against the Temporal frontend succeeded (lowest "
             "temporal_up).", Q(f"min(temporal_up{{{SHARED}}})"), unit="bool_yes_no", th=UP, graph=False),
        stat("Running workflows", "Workflow executions running, selected tenants.",
             Q(f"sum(temporal_tenant_workflows_running{{{TENANT}}})"), unit="short"),
        stat("Workflow failure ratio", "Failed, timed-out and terminated / all workflows closed in the closed "
             "window. Thresholds: `thresholds.workflow_failure_ratio`.", Q(failure_ratio()),
             unit="percentunit", th=failure_th),
        stat("Oldest backlog", "Age of the oldest task waiting in any selected tenant's task queue. "
             "Thresholds: `thresholds.temporal_backlog_age_seconds`.",
             Q(f"max(temporal_tenant_task_queue_backlog_age_seconds{{{TENANT}}})"), unit="s", th=backlog_th),
        stat("Namespaces", "Namespaces registered on the server.",
             Q(f"max(temporal_namespaces{{{SHARED}}})"), unit="short", graph=False),
        stat("Data age", "Seconds since the exporter's data was refreshed (figures are served from the last "
             "good refresh).", Q(f"max(temporal_refresh_age_seconds{{{SHARED}}})"), unit="s"),
    ]
    workflows = [
        timeseries("Running workflows by tenant", "Workflow executions currently running per tenant.",
                   Q(f"sum by (tenant_id) (temporal_tenant_workflows_running{{{TENANT}}})", "{{tenant_id}}"),
                   unit="short", w=8),
        timeseries("Closed workflows by status", "Workflows closed within the exporter's closed window, by "
                   "status, per tenant.",
                   Q(f"sum by (tenant_id, status) (temporal_tenant_workflows_closed{{{TENANT}}})",
                     "{{tenant_id}} {{status}}"), unit="short", w=8),
        timeseries("Failure ratio by tenant", "Failed, timed-out and terminated / closed per tenant. Dashed "
                   "lines: `thresholds.workflow_failure_ratio`.", Q(failure_ratio("tenant_id"), "{{tenant_id}}"),
                   unit="percentunit", th=failure_th, min=0, max=1, w=8),
    ]
    queues = [
        timeseries("Backlog by task queue", "Tasks waiting per task queue (DescribeTaskQueue). Any backlog "
                   "on a queue with no pollers pages: `thresholds.temporal_queue_without_workers`.",
                   Q(f"sum by (tenant_id, task_queue, task_queue_type) "
                     f"(temporal_tenant_task_queue_backlog{{{TENANT}}})",
                     "{{tenant_id}} {{task_queue}} {{task_queue_type}}"), unit="short",
                   th=thresholds(config, "temporal_queue_without_workers"), w=12),
        timeseries("Backlog age by task queue", "Age of the oldest waiting task. Dashed lines: "
                   "`thresholds.temporal_backlog_age_seconds`.",
                   Q(f"max by (tenant_id, task_queue, task_queue_type) "
                     f"(temporal_tenant_task_queue_backlog_age_seconds{{{TENANT}}})",
                     "{{tenant_id}} {{task_queue}} {{task_queue_type}}"), unit="s", th=backlog_th, w=12),
        timeseries("Pollers by task queue", "Worker pollers seen recently; 0 with a backlog means no worker "
                   "is running for the queue.",
                   Q(f"sum by (tenant_id, task_queue) (temporal_tenant_task_queue_pollers{{{TENANT}}})",
                     "{{tenant_id}} {{task_queue}}"), unit="short", w=8),
        timeseries("Backlog growth", "Change of each task queue's backlog per minute over 10m (deriv): "
                   "persistently positive means workers cannot keep up. Dashed lines: "
                   "`thresholds.temporal_backlog_growth_per_minute`.",
                   Q(f"sum by (tenant_id, task_queue) "
                     f"(deriv(temporal_tenant_task_queue_backlog{{{TENANT}}}[10m])) * 60",
                     "{{tenant_id}} {{task_queue}}"), unit="short",
                   th=thresholds(config, "temporal_backlog_growth_per_minute"), w=8),
        timeseries("Task add and dispatch rate", "Tasks added to and dispatched from the tenant's queues per "
                   "second; add above dispatch means the backlog grows.",
                   Q(f"sum by (tenant_id) (temporal_tenant_task_queue_add_rate_per_second{{{TENANT}}})",
                     "{{tenant_id}} added"),
                   Q(f"sum by (tenant_id) (temporal_tenant_task_queue_dispatch_rate_per_second{{{TENANT}}})",
                     "{{tenant_id}} dispatched"), unit="ops", w=8),
    ]
    # Worker side (collectors.worker), per Temporal's worker-performance guide.
    workers = [
        timeseries("Worker schedule-to-start p99", "Time tasks waited in the queue before a worker of the tenant "
                   "started them, 99th percentile, by task queue. Dashed lines: "
                   "`thresholds.temporal_worker_schedule_to_start_p99_seconds`.",
                   Q(quantile(0.99, worker.SCHEDULE_TO_START.name, "tenant_id, task_queue, task_type"),
                     worker.LEGEND), unit="s",
                   th=thresholds(config, "temporal_worker_schedule_to_start_p99_seconds"), w=8),
        timeseries("Worker task slots available", "Free task slots of the tenant's workers (the lowest "
                   "worker); 0 means saturated. Dashed lines: `thresholds.temporal_worker_slots_exhausted`.",
                   Q(f"min by (tenant_id, task_queue, task_type) ({worker.SLOTS_AVAILABLE.name}{{{TENANT}}})",
                     worker.LEGEND), unit="short",
                   th=thresholds(config, "temporal_worker_slots_exhausted", below=True), w=8),
        timeseries("Worker polls by result", "Long polls of the tenant's workers per second: `task` got work, "
                   "`empty` timed out idle. Only empty polls while the backlog grows means the wrong queue.",
                   Q(rate(worker.POLLS.name, labels="tenant_id, task_queue, result"),
                     "{{tenant_id}} {{task_queue}} {{result}}"), unit="ops", w=8),
        timeseries("Worker task execution p99", "Time workers spent executing a workflow task or an activity, "
                   "99th percentile.",
                   Q(quantile(0.99, worker.EXECUTION.name, "tenant_id, task_queue, task_type"), worker.LEGEND),
                   unit="s", w=12),
        timeseries("Worker task failures", "Workflow tasks and activities that failed in the tenant's workers, "
                   "per second.",
                   Q(f"{rate(worker.TASK_FAILURES.name, labels='tenant_id, task_queue, task_type')} or vector(0)",
                     worker.LEGEND), unit="ops", w=12),
    ]
    server = [
        timeseries("Frontend requests by tenant", "Requests the Temporal frontend served per second "
                   "(server metrics, relabel mode).",
                   Q(rate("temporal_server_service_requests_total", labels="tenant_id"), "{{tenant_id}}"),
                   unit="reqps", w=8),
        timeseries("Frontend errors by tenant", "Failed frontend requests per second by error type "
                   "(server metrics, relabel mode).",
                   Q(rate("temporal_server_service_errors_total", labels="tenant_id, error_type"),
                     "{{tenant_id}} {{error_type}}"), unit="reqps", w=8),
        timeseries("Frontend latency p95 by tenant", "95th percentile frontend request latency (server "
                   "metrics, relabel mode).",
                   Q(quantile(0.95, "temporal_server_service_latency_seconds", "tenant_id"), "{{tenant_id}}"),
                   unit="s", w=8),
        timeseries("Schedule-to-start p95 by tenant", "Time tasks wait before a worker picks them up, 95th "
                   "percentile (server metrics, relabel mode).",
                   Q(quantile(0.95, "temporal_server_task_schedule_to_start_latency_seconds", "tenant_id"),
                     "{{tenant_id}}"), unit="s", th=backlog_th, w=12),
        timeseries("Workflow outcomes by tenant", "Workflows closed per second by outcome (server metrics, "
                   "relabel mode).",
                   Q(rate("temporal_server_workflow_outcomes_total", labels="tenant_id, outcome"),
                     "{{tenant_id}} {{outcome}}"), unit="ops", w=12),
    ]
    exporter = [
        timeseries("Frontend round trip", "Latency of a GetSystemInfo call in each refresh.",
                   Q(f"max by (server) (temporal_frontend_latency_seconds{{{SHARED}}})", "{{server}}"),
                   unit="s", w=8),
        timeseries("Exporter API calls", "Temporal API calls the exporter makes per second, and failures.",
                   Q(rate("temporal_api_calls_total", SHARED, "server"), "{{server}} calls"),
                   Q(f"{rate('temporal_api_errors_total', SHARED, 'server')} or vector(0)", "{{server}} errors"),
                   unit="ops", w=8),
        timeseries("Refresh duration", "Wall time of the last complete refresh, including rate-limit waits.",
                   Q(f"max by (server) (temporal_refresh_duration_seconds{{{SHARED}}})", "{{server}}"),
                   unit="s", w=8),
    ]
    return Board(
        slug="temporal",
        title="Temporal",
        description="Temporal (obsbundle exporter temporal): running and closed workflows, task-queue backlog "
                    "and workers per tenant namespace, and the server's own request metrics in relabel mode.",
        tenant_metric="temporal_tenant_workflows_running",
        sections=[("Status", status), ("Workflows", workflows), ("Task queues", queues), ("Workers", workers),
                  ("Server (relabel mode)", server), ("Exporter", exporter)],
        related=("infrastructure", "tenants", "tenant", "postgresql", "redis"),
        tags=("temporal",),
    )

