"""Temporal workers by tenant: the SDK's worker-health metrics, spans and logs with `tenant_id`.

    telemetry = WorkerTelemetry(config, instrument(config, service_name="agent-worker"))
    client = await Client.connect(address, runtime=telemetry.runtime, interceptors=telemetry.interceptors)

Metric names are declared in `obsbundle.catalog.worker`.
"""

from collectors.worker.interceptor import TenantInterceptor, TenantLogFilter
from collectors.worker.metrics import WorkerMetrics
from collectors.worker.telemetry import WorkerTelemetry

__all__ = ["TenantInterceptor", "TenantLogFilter", "WorkerMetrics", "WorkerTelemetry"]
