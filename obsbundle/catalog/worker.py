"""Metrics of the platform's Temporal workers, from the SDK's own telemetry (`collectors.worker`).

The Temporal SDK core records worker health (Temporal's worker-performance guide: schedule-to-start
latency, task execution latency, task slots, poll success) without a tenant. `collectors.worker`
drains it from a `MetricBuffer` and records it again through the service's OpenTelemetry meter with
`tenant_id` derived from the namespace / task queue by the same tenancy rules as the Temporal
exporter, so the worker's /metrics shows exactly these names.
"""

from obsbundle.catalog import PanelHint, declare

SOURCE = "worker"
# Per worker process: namespace x task queue x task type, bounded by the workers it runs.
LABELS = ("tenant_id", "namespace", "task_queue", "task_type")
# `task_type` values: the kind of task a slot, poll or latency belongs to.
TASK_TYPES = ("workflow", "activity", "local_activity")
LEGEND = "{{tenant_id}} {{task_queue}} {{task_type}}"
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300)

SCHEDULE_TO_START = declare(
    "temporal_worker_schedule_to_start_latency_seconds", "histogram",
    "Time a task waited in its task queue before this worker started it (schedule-to-start), "
    "by tenant, task queue and task type.",
    LABELS, source=SOURCE, unit="seconds", buckets=LATENCY_BUCKETS,
    threshold="temporal_worker_schedule_to_start_p99_seconds",
    panel=PanelHint(title="Worker schedule-to-start p99 by tenant", legend=LEGEND),
)
EXECUTION = declare(
    "temporal_worker_task_execution_latency_seconds", "histogram",
    "Time this worker spent executing a workflow task or an activity, by tenant, task queue and task type.",
    LABELS, source=SOURCE, unit="seconds", buckets=LATENCY_BUCKETS,
    panel=PanelHint(title="Worker task execution p99 by tenant", legend=LEGEND),
)
SLOTS_AVAILABLE = declare(
    "temporal_worker_task_slots_available", "gauge",
    "Task slots of this worker free to start a task (0: the worker is saturated), by tenant, "
    "task queue and task type.",
    LABELS, source=SOURCE, threshold="temporal_worker_slots_exhausted",
    panel=PanelHint(title="Worker task slots available", legend=LEGEND),
)
SLOTS_USED = declare(
    "temporal_worker_task_slots_used", "gauge",
    "Task slots of this worker running a task, by tenant, task queue and task type.",
    LABELS, source=SOURCE,
)
POLLS = declare(
    "temporal_worker_polls_total", "counter",
    "Long polls of this worker that ended, by tenant, task queue, task type and result "
    "(task: got a task, empty: timed out without one).",
    (*LABELS, "result"), source=SOURCE,
)
TASK_FAILURES = declare(
    "temporal_worker_task_failures_total", "counter",
    "Workflow tasks and activities that failed in this worker, by tenant, task queue and task type.",
    LABELS, source=SOURCE,
)
