"""OpenTelemetry for the platform's own Python services, labelled by tenant.

    from collectors.app import instrument
    otel = instrument(service_name="agent-api")  # FastAPI/Flask: route templates from the router
    app = otel.asgi(app)                      # spans + tenant-labelled HTTP metrics
    otel.start_http_server("0.0.0.0:9464")    # or mount otel.metrics_app() at /metrics

Metric names and labels are declared in `obsbundle.catalog.app`.
"""

from collectors.app.contract import active
from collectors.app.helpers import InferenceRecorder, cache_hit, cache_miss, record_cache, record_inference
from collectors.app.routes import RouteTable
from collectors.app.setup import Instrumentation, app_section, instrument
from collectors.app.tenant import TenantSources, current_tenant, set_tenant, tenant_context

__all__ = [
    "InferenceRecorder",
    "Instrumentation",
    "RouteTable",
    "TenantSources",
    "active",
    "app_section",
    "cache_hit",
    "cache_miss",
    "current_tenant",
    "instrument",
    "record_cache",
    "record_inference",
    "set_tenant",
    "tenant_context",
]
