"""The Temporal SDK's worker metrics, re-recorded by tenant through OpenTelemetry.

The SDK core buffers every metric update (`MetricBuffer`, durations in seconds); `WorkerMetrics`
drains it, keeps the worker-health families of Temporal's worker-performance guide, and records
them on the service's meter under the catalogued names of `obsbundle.catalog.worker`, with
`tenant_id` from the namespace and task queue. Everything else the SDK emits is dropped, so a
worker's /metrics holds only catalogued series.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from opentelemetry.metrics import Meter

from collectors.temporal.tenants import TemporalTenants
from obsbundle.catalog import Metric
from obsbundle.catalog import worker as names

log = logging.getLogger("obsbundle.worker")

PREFIX = "temporal_"
# SDK `worker_type` attribute -> our `task_type` label.
WORKER_TYPES = {"WorkflowWorker": "workflow", "ActivityWorker": "activity", "LocalActivityWorker": "local_activity"}
# SDK metric (without prefix) -> (our metric, task_type, extra labels).
_HISTOGRAMS = {
    "workflow_task_schedule_to_start_latency": (names.SCHEDULE_TO_START, "workflow"),
    "activity_schedule_to_start_latency": (names.SCHEDULE_TO_START, "activity"),
    "workflow_task_execution_latency": (names.EXECUTION, "workflow"),
    "activity_execution_latency": (names.EXECUTION, "activity"),
}
_COUNTERS: dict[str, tuple[Metric, str, dict[str, str]]] = {
    "workflow_task_queue_poll_succeed": (names.POLLS, "workflow", {"result": "task"}),
    "workflow_task_queue_poll_empty": (names.POLLS, "workflow", {"result": "empty"}),
    "activity_task_received": (names.POLLS, "activity", {"result": "task"}),
    "activity_poll_no_task": (names.POLLS, "activity", {"result": "empty"}),
    "workflow_task_execution_failed": (names.TASK_FAILURES, "workflow", {}),
    "activity_execution_failed": (names.TASK_FAILURES, "activity", {}),
}
_GAUGES = {"worker_task_slots_available": names.SLOTS_AVAILABLE, "worker_task_slots_used": names.SLOTS_USED}


class WorkerMetrics:
    """Turns buffered SDK updates into tenant-labelled OpenTelemetry points."""

    def __init__(self, meter: Meter, tenants: TemporalTenants) -> None:
        self.tenants = tenants
        self._tenant_of: dict[tuple[str, str], str] = {}
        self._record: dict[str, Callable[[float, Mapping[str, str]], None]] = {}
        for metric in (names.SCHEDULE_TO_START, names.EXECUTION):
            histogram = meter.create_histogram(
                metric.name, unit="s", description=metric.help,
                explicit_bucket_boundaries_advisory=list(metric.buckets),
            )
            self._record[metric.name] = histogram.record
        for metric in (names.POLLS, names.TASK_FAILURES):
            self._record[metric.name] = meter.create_counter(
                metric.name.removesuffix("_total"), unit="1", description=metric.help
            ).add
        for metric in _GAUGES.values():
            self._record[metric.name] = meter.create_gauge(metric.name, unit="1", description=metric.help).set

    def _labels(self, attributes: Mapping[str, Any], task_type: str) -> dict[str, str] | None:
        namespace, queue = attributes.get("namespace"), attributes.get("task_queue")
        if not isinstance(namespace, str) or not isinstance(queue, str):
            return None
        key = (namespace, queue)
        tenant = self._tenant_of.get(key)
        if tenant is None:
            tenant = self._tenant_of[key] = self.tenants.queue_tenant(namespace, queue)
        return {"tenant_id": tenant, "namespace": namespace, "task_queue": queue, "task_type": task_type}

    def record(self, updates: Iterable[Any]) -> int:
        """Record the worker-health updates among `updates`; returns how many were kept."""
        kept = 0
        for update in updates:
            name = update.metric.name.removeprefix(PREFIX)
            attributes = update.attributes
            if name in _HISTOGRAMS:
                metric, task_type = _HISTOGRAMS[name]
                extra: dict[str, str] = {}
            elif name in _COUNTERS:
                metric, task_type, extra = _COUNTERS[name]
            elif name in _GAUGES:
                metric = _GAUGES[name]
                task_type = WORKER_TYPES.get(str(attributes.get("worker_type")), "")
                extra = {}
                if not task_type:
                    continue
            else:
                continue
            labels = self._labels(attributes, task_type)
            if labels is None:
                continue
            self._record[metric.name](update.value, {**labels, **extra})
            kept += 1
        return kept


class BufferDrain:
    """Drains a `MetricBuffer` into `WorkerMetrics` every `interval` seconds from a daemon thread.

    The SDK drops updates once its buffer is full, so it is drained on a clock, not only at scrape.
    """

    def __init__(self, buffer: Any, metrics: WorkerMetrics, interval: float = 1.0) -> None:
        self.buffer = buffer
        self.metrics = metrics
        self.interval = interval
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def drain(self) -> int:
        """Record whatever the SDK buffered since the last drain (thread-safe)."""
        with self._lock:
            try:
                updates = self.buffer.retrieve_updates()
            except RuntimeError:  # no runtime attached yet
                return 0
            return self.metrics.record(updates)

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="obsbundle-worker-metrics", daemon=True)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.drain()
            except Exception as exc:  # a bad update must not kill the drain thread
                log.warning("worker metrics drain failed: %s", type(exc).__name__)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
            self._thread = None
        self.drain()
