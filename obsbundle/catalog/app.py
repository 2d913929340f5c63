"""Metrics the platform's own Python services emit through `collectors.app` (OpenTelemetry).

Names are exactly what the service's /metrics shows after the OpenTelemetry -> Prometheus
conversion (scope labels and `target_info` are disabled), so dashboards and alerts can query
them as declared. Every series carries `tenant_id` (a tenant, `_unassigned`, or `_overflow` past
`app.max_tenants_per_instrument`); there is no `server` label: `job`/`instance` identify the service.
"""

from obsbundle.catalog import declare

SOURCE = "app"

# Fallback bucket layout; the effective one is config `app.latency_buckets_seconds` (dense
# around the 2 s latency threshold so p50/p95/p99 interpolate within a narrow bucket).
REQUEST_DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1, 1.5, 2, 2.5, 3, 5, 10)
INFERENCE_DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60)

HTTP_LABELS = ("tenant_id", "route", "method")

REQUEST_DURATION = declare(
    "http_server_request_duration_seconds", "histogram",
    "Time from receiving an HTTP request to sending the end of its response, by tenant and route.",
    HTTP_LABELS, source=SOURCE, unit="seconds", buckets=REQUEST_DURATION_BUCKETS,
)
REQUESTS = declare(
    "http_server_requests_total", "counter",
    "HTTP requests completed, by tenant, route, method and status class (2xx, 3xx, 4xx, 5xx).",
    (*HTTP_LABELS, "status_class"), source=SOURCE,
)
ERRORS = declare(
    "http_server_errors_total", "counter",
    "HTTP requests that ended in a 5xx response or an unhandled exception, by tenant and route.",
    HTTP_LABELS, source=SOURCE,
)
RESPONSE_BYTES = declare(
    "http_server_response_bytes_total", "counter",
    "Response body bytes sent, by tenant and route (egress, for per-tenant cost).",
    HTTP_LABELS, source=SOURCE, unit="bytes",
)
ACTIVE_REQUESTS = declare(
    "http_server_active_requests", "gauge",
    "HTTP requests currently in flight, by tenant.",
    ("tenant_id",), source=SOURCE,
)
INFERENCE_DURATION = declare(
    "model_inference_duration_seconds", "histogram",
    "Wall time of one model inference call, by tenant and model.",
    ("tenant_id", "model"), source=SOURCE, unit="seconds", buckets=INFERENCE_DURATION_BUCKETS,
)
INFERENCE_TOKENS = declare(
    "model_inference_tokens_total", "counter",
    "Tokens processed by model inference, by tenant, model and kind (input or output).",
    ("tenant_id", "model", "kind"), source=SOURCE,
)
CACHE_HITS = declare(
    "cache_hits_total", "counter",
    "Cache lookups that found a value, by tenant and cache name.",
    ("tenant_id", "cache"), source=SOURCE,
)
CACHE_MISSES = declare(
    "cache_misses_total", "counter",
    "Cache lookups that found nothing, by tenant and cache name.",
    ("tenant_id", "cache"), source=SOURCE,
)
TENANT_OVERFLOW = declare(
    "otel_tenant_overflow_total", "counter",
    "Points recorded under tenant_id=_overflow because the instrument's tenant cap was reached.",
    ("instrument",), source=SOURCE,
)
EXPORT_DROPPED = declare(
    "otel_export_dropped_total", "counter",
    "Spans, metric points or log records an OTLP receiver did not accept (down, slow or refusing), by signal.",
    ("signal",), source=SOURCE,
)
