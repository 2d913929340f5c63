"""One object that wires a Temporal worker process for tenant-labelled spans, logs and metrics."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from temporalio.runtime import MetricBuffer, MetricBufferDurationFormat, Runtime, TelemetryConfig

from collectors.app.setup import Instrumentation
from collectors.temporal.tenants import TemporalTenants
from collectors.worker.interceptor import TenantInterceptor, TenantLogFilter, WorkflowSpanTenants
from collectors.worker.metrics import BufferDrain, WorkerMetrics
from obsbundle.errors import ConfigError
from obsbundle.settings import settings
from obsbundle.tenancy import TenantResolver

BUFFER_SIZE = 100_000  # updates between two drains; the SDK drops (and logs) past it


class WorkerTelemetry:
    """A Temporal `Runtime` whose SDK metrics land on `instrumentation`'s meter by tenant, plus the
    interceptors that run each task as its tenant.

        otel = instrument(config, service_name="agent-worker")
        telemetry = WorkerTelemetry(config, otel)
        client = await Client.connect(address, namespace=ns, runtime=telemetry.runtime,
                                      interceptors=telemetry.interceptors)
        worker = Worker(client, task_queue=..., workflows=[...], activities=[...])

    `mode` is the Temporal tenancy mode (`namespace`, `task_queue`, `search_attribute`); by default
    the one of the first `sources.temporal` entry, so worker and exporter agree.
    """

    def __init__(
        self,
        config: Mapping[str, Any],
        instrumentation: Instrumentation,
        *,
        mode: str | None = None,
        drain_interval: float = 1.0,
        tracing: bool = True,
    ) -> None:
        typed = settings(config)
        if mode is None:
            mode = typed.sources.temporal[0].tenancy if typed.sources.temporal else "namespace"
        try:
            self.tenants = TemporalTenants(TenantResolver.for_source(typed.tenancy, "temporal"), mode)
        except ValueError as exc:
            raise ConfigError(f"worker tenancy: {exc}") from None
        search_attribute = typed.tenancy.temporal.search_attribute
        if mode == "search_attribute" and not search_attribute:
            raise ConfigError("worker tenancy: search_attribute mode needs tenancy.temporal.search_attribute")
        self.instrumentation = instrumentation
        self.buffer = MetricBuffer(BUFFER_SIZE, MetricBufferDurationFormat.SECONDS)
        self.runtime = Runtime(telemetry=TelemetryConfig(metrics=self.buffer))
        self.metrics = WorkerMetrics(instrumentation.meter, self.tenants)
        self.drain = BufferDrain(self.buffer, self.metrics, drain_interval)
        self.drain.start()
        # Workflows: outer to the tracing interceptor, so the baggage is current when it records the
        # RunWorkflow span. Activities: inner, so the RunActivity span is current when we tag it.
        self.interceptors: list[Any] = []
        if tracing:
            self.workflow_spans = WorkflowSpanTenants()
            instrumentation.tracer_provider.add_span_processor(self.workflow_spans)
            self.interceptors += [
                TenantInterceptor(self.tenants, search_attribute, activities=False, spans=self.workflow_spans),
                instrumentation.temporal_interceptor(),
                TenantInterceptor(self.tenants, search_attribute, workflows=False),
            ]
        else:
            self.interceptors.append(TenantInterceptor(self.tenants, search_attribute))
        self.log_filter = TenantLogFilter()

    def flush(self) -> int:
        """Record what the SDK buffered now (before a scrape in tests, at shutdown)."""
        return self.drain.drain()

    def install_log_filter(self, logger: logging.Logger | None = None) -> None:
        """Put `tenant_id` on every record of `logger`'s handlers (root by default)."""
        for handler in (logger or logging.getLogger()).handlers:
            handler.addFilter(self.log_filter)

    def close(self) -> None:
        self.drain.stop()
