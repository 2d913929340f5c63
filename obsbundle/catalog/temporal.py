"""Metrics of the Temporal exporter (`obsbundle exporter temporal`).

Every series carries `server` (the configured source name) and `tenant_id` (`_shared` for
server-wide figures). Figures come from a background refresh against the Temporal frontend API
(visibility counts, DescribeTaskQueue), so they are as old as `temporal_refresh_age_seconds`.
The `temporal_server_*` families exist only in relabel mode: they re-expose the Temporal server's
own /metrics with a `tenant_id` derived from the namespace / task queue labels.
"""

from obsbundle.catalog import declare

SOURCE = "temporal"
BASE = ("server", "tenant_id")
QUEUE = (*BASE, "task_queue", "task_queue_type")

# Closed-workflow statuses (label `status`), matching Temporal's ExecutionStatus names.
CLOSED_STATUSES = ("completed", "failed", "timed_out", "terminated", "canceled", "continued_as_new")
# Statuses exposed for every tenant even at 0 (so failure ratios always evaluate); the others
# appear only while non-zero, which keeps a 1,000-tenant scrape small.
ALWAYS_STATUSES = ("completed", "failed")
# `task_queue_type` values.
TASK_QUEUE_TYPES = ("workflow", "activity")

# -- server-wide (_shared) -----------------------------------------------------------------------

declare(
    "temporal_up", "gauge",
    "1 if the last background refresh against the Temporal frontend succeeded, else 0.",
    BASE, source=SOURCE,
)
declare(
    "temporal_frontend_latency_seconds", "gauge",
    "Round-trip time of a GetSystemInfo call to the frontend in the last refresh.",
    BASE, source=SOURCE, unit="seconds",
)
declare(
    "temporal_namespaces", "gauge",
    "Namespaces seen by ListNamespaces in the last refresh (registered, any tenant or none).",
    BASE, source=SOURCE,
)
declare(
    "temporal_refresh_age_seconds", "gauge",
    "Seconds since the data being served was refreshed (it is served from the last good refresh).",
    BASE, source=SOURCE, unit="seconds",
)
declare(
    "temporal_refresh_duration_seconds", "gauge",
    "Wall time of the last complete refresh, including rate-limit waits.",
    BASE, source=SOURCE, unit="seconds",
)
declare(
    "temporal_refresh_api_calls", "gauge",
    "Temporal API calls the last complete refresh made (all methods).",
    BASE, source=SOURCE,
)
declare(
    "temporal_api_calls_total", "counter",
    "Temporal frontend API calls made by this exporter since start, by gRPC method.",
    (*BASE, "method"), source=SOURCE,
)
declare(
    "temporal_api_errors_total", "counter",
    "Temporal frontend API calls that failed, by gRPC method and short error code.",
    (*BASE, "method", "code"), source=SOURCE,
)
declare(
    "temporal_rate_limit_wait_seconds_total", "counter",
    "Time refreshes spent waiting on the rate limiters (per-namespace visibility and global token "
    "buckets) since start.",
    BASE, source=SOURCE, unit="seconds",
)
declare(
    "temporal_closed_window_seconds", "gauge",
    "Length of the window the temporal_tenant_workflows_closed counts look back over.",
    BASE, source=SOURCE, unit="seconds",
)

# -- per tenant ---------------------------------------------------------------------------------

declare(
    "temporal_tenant_workflows_running", "gauge",
    "Workflow executions currently running (visibility count, ExecutionStatus='Running').",
    BASE, source=SOURCE,
)
declare(
    "temporal_tenant_workflows_closed", "gauge",
    "Workflow executions that closed within the last temporal_closed_window_seconds, by status "
    "(completed and failed always; timed_out, terminated, canceled, continued_as_new when non-zero).",
    (*BASE, "status"), source=SOURCE,
)
declare(
    "temporal_tenant_task_queue_backlog", "gauge",
    "Approximate number of tasks waiting in the task queue (DescribeTaskQueue stats); activity "
    "queues appear once they have pollers, backlog or traffic.",
    QUEUE, source=SOURCE,
)
declare(
    "temporal_tenant_task_queue_backlog_age_seconds", "gauge",
    "Age of the oldest task waiting in the task queue (0 when empty).",
    QUEUE, source=SOURCE, unit="seconds",
)
declare(
    "temporal_tenant_task_queue_pollers", "gauge",
    "Pollers (worker identities) seen polling the task queue recently; 0 means no live worker.",
    QUEUE, source=SOURCE,
)
declare(
    "temporal_tenant_task_queue_add_rate_per_second", "gauge",
    "Approximate rate at which tasks are added to the task queue, tasks per second.",
    QUEUE, source=SOURCE,
)
declare(
    "temporal_tenant_task_queue_dispatch_rate_per_second", "gauge",
    "Approximate rate at which tasks are dispatched to workers from the task queue, tasks per second.",
    QUEUE, source=SOURCE,
)

# -- relabel mode: the Temporal server's own metrics, re-exposed with tenant_id -----------------

declare(
    "temporal_server_metrics_up", "gauge",
    "1 if the last background pull of the Temporal server's own /metrics (relabel mode) succeeded, else 0.",
    BASE, source=SOURCE,
)
declare(
    "temporal_server_service_requests_total", "counter",
    "Requests the Temporal frontend served (server metric service_requests), by namespace and operation.",
    (*BASE, "namespace", "operation"), source=SOURCE,
)
declare(
    "temporal_server_service_errors_total", "counter",
    "Requests the Temporal frontend failed (server metric service_error_with_type), by namespace, "
    "operation and error type.",
    (*BASE, "namespace", "operation", "error_type"), source=SOURCE,
)
declare(
    "temporal_server_service_latency_seconds", "histogram",
    "Latency of Temporal frontend requests (server metric service_latency), by namespace and operation; "
    "long polls excluded.",
    (*BASE, "namespace", "operation"), source=SOURCE, unit="seconds",
)
declare(
    "temporal_server_approximate_backlog_count", "gauge",
    "Task queue backlog as the matching service reports it (server metric approximate_backlog_count).",
    (*BASE, "namespace", "task_queue", "task_queue_type"), source=SOURCE,
)
declare(
    "temporal_server_approximate_backlog_age_seconds", "gauge",
    "Age of the oldest backlogged task as the matching service reports it "
    "(server metric approximate_backlog_age_seconds).",
    (*BASE, "namespace", "task_queue", "task_queue_type"), source=SOURCE, unit="seconds",
)
declare(
    "temporal_server_task_schedule_to_start_latency_seconds", "histogram",
    "Time tasks wait in a task queue before a worker picks them up "
    "(server metric task_schedule_to_start_latency).",
    (*BASE, "namespace", "task_queue", "task_queue_type"), source=SOURCE, unit="seconds",
)
declare(
    "temporal_server_workflow_outcomes_total", "counter",
    "Workflow executions closed, by outcome (server metrics workflow_success, workflow_failed, "
    "workflow_timeout, workflow_terminate, workflow_cancel, workflow_continued_as_new).",
    (*BASE, "namespace", "outcome"), source=SOURCE,
)
