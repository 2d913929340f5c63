"""PromQL fragments shared by several dashboards (app latency, error ratio, cache hit ratio).

The same definitions as the alert and recording rules: error ratio = 5xx responses / all
responses (http_server_requests_total), latency from the request-duration histogram.
"""

from __future__ import annotations

RI = "$__rate_interval"
TENANT = 'tenant_id=~"$tenant_id"'
SHARED = 'tenant_id="_shared"'
REAL_TENANTS = 'tenant_id=~"$tenant_id", tenant_id!~"_.*"'  # excludes _shared/_unassigned/_overflow
REQUESTS = "http_server_requests_total"
DURATION = "http_server_request_duration_seconds"
INFERENCE = "model_inference_duration_seconds"


def by(labels: str) -> str:
    return f" by ({labels})" if labels else ""


def rate(metric: str, selector: str = TENANT, labels: str = "", window: str = RI) -> str:
    return f"sum{by(labels)} (rate({metric}{{{selector}}}[{window}]))"


def increase(metric: str, selector: str = TENANT, labels: str = "", window: str = "$__range") -> str:
    return f"sum{by(labels)} (increase({metric}{{{selector}}}[{window}]))"


def quantile(q: float, histogram: str, labels: str = "", selector: str = TENANT, window: str = RI) -> str:
    group = ", ".join(x for x in ("le", labels) if x)
    return f"histogram_quantile({q}, sum by ({group}) (rate({histogram}_bucket{{{selector}}}[{window}])))"


def error_ratio(labels: str = "", selector: str = TENANT, window: str = RI) -> str:
    errors = rate(REQUESTS, f'{selector}, status_class="5xx"', labels, window)
    total = rate(REQUESTS, selector, labels, window)
    # `or 0 * total`: a tenant with traffic and no 5xx shows 0, not a gap
    return f"({errors} / {total}) or (0 * {total})"


def cache_hit_ratio(labels: str = "", selector: str = TENANT, window: str = RI) -> str:
    hits = rate("cache_hits_total", selector, labels, window)
    misses = rate("cache_misses_total", selector, labels, window)
    return f"{hits} / ({hits} + {misses})"


def le_matcher(bound: float) -> str:
    """`le` as the OpenTelemetry Prometheus exporter may spell it: `2` or `2.0`."""
    spellings = sorted({repr(float(bound)), f"{float(bound):g}"})
    return 'le=~"' + "|".join(s.replace(".", "\\\\.") for s in spellings) + '"'
