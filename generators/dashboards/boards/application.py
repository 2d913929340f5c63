"""Application performance: latency percentiles, throughput, errors, inference and cache."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from generators.dashboards.builder import Board, Q, stat, thresholds, timeseries
from generators.queries import (
    DURATION,
    INFERENCE,
    REQUESTS,
    RI,
    TENANT,
    cache_hit_ratio,
    error_ratio,
    quantile,
    rate,
)


def board(config: Mapping[str, Any]) -> Board:
    latency_th = thresholds(config, "latency_p95_seconds")
    error_th = thresholds(config, "error_ratio")
    summary = [
        stat("Requests", "HTTP requests per second, selected tenants.", Q(rate(REQUESTS)), unit="reqps"),
        stat("Error ratio", "Share of requests answered 5xx. Thresholds: `thresholds.error_ratio`.",
             Q(error_ratio()), unit="percentunit", th=error_th),
        stat("p95 latency", "95th percentile request duration. Thresholds: `thresholds.latency_p95_seconds`.",
             Q(quantile(0.95, DURATION)), unit="s", th=latency_th),
        stat("In flight", "Requests being served right now.",
             Q(f"sum(http_server_active_requests{{{TENANT}}})"), unit="short"),
        stat("Inference p95", "95th percentile duration of one model inference call.",
             Q(quantile(0.95, INFERENCE)), unit="s"),
        stat("Cache hit ratio", "Cache lookups that found a value, all caches.", Q(cache_hit_ratio()),
             unit="percentunit"),
    ]
    latency = [
        timeseries("Latency p50 / p95 / p99", "Request duration percentiles from the "
                   "http_server_request_duration_seconds histogram (interpolated within buckets). Dashed "
                   "lines: `thresholds.latency_p95_seconds`.",
                   Q(quantile(0.5, DURATION), "p50"), Q(quantile(0.95, DURATION), "p95", exemplar=True),
                   Q(quantile(0.99, DURATION), "p99"), unit="s", th=latency_th),
        timeseries("p95 latency by route", "Which endpoint is slow: 95th percentile per route template.",
                   Q(quantile(0.95, DURATION, "route"), "{{route}}", exemplar=True), unit="s", th=latency_th),
        timeseries("p95 latency by tenant", "Which tenant is slow: 95th percentile per tenant.",
                   Q(quantile(0.95, DURATION, "tenant_id"), "{{tenant_id}}", exemplar=True), unit="s", th=latency_th),
        timeseries("Requests by status class", "Throughput split by 2xx/3xx/4xx/5xx, stacked.",
                   Q(rate(REQUESTS, labels="status_class"), "{{status_class}}"), unit="reqps", stack=True),
    ]
    errors = [
        timeseries("Error ratio by tenant", "5xx responses / all responses per tenant. Dashed lines: "
                   "`thresholds.error_ratio`.", Q(error_ratio("tenant_id"), "{{tenant_id}}"),
                   unit="percentunit", th=error_th, min=0),
        timeseries("Errors by route", "5xx responses and unhandled exceptions per second, per route "
                   "(http_server_errors_total).", Q(rate("http_server_errors_total", labels="route"), "{{route}}"),
                   unit="reqps"),
        timeseries("Requests by route", "Throughput per route template and method.",
                   Q(rate(REQUESTS, labels="route, method"), "{{method}} {{route}}"), unit="reqps"),
        timeseries("In-flight requests by tenant", "Concurrent requests per tenant (a stuck tenant shows as a "
                   "plateau).", Q(f"sum by (tenant_id) (http_server_active_requests{{{TENANT}}})", "{{tenant_id}}"),
                   unit="short"),
    ]
    inference = [
        timeseries("Inference latency p50 / p95 / p99", "Duration of one model inference call, percentiles "
                   "over all models.", Q(quantile(0.5, INFERENCE), "p50"), Q(quantile(0.95, INFERENCE), "p95"),
                   Q(quantile(0.99, INFERENCE), "p99"), unit="s", w=8),
        timeseries("Inference calls by model", "Inference calls per second per model.",
                   Q(f"sum by (model) (rate({INFERENCE}_count{{{TENANT}}}[{RI}]))", "{{model}}"), unit="ops", w=8),
        timeseries("Tokens by kind", "Model tokens processed per second, input and output.",
                   Q(rate("model_inference_tokens_total", labels="kind"), "{{kind}}"), unit="short", w=8),
    ]
    cache = [
        timeseries("Cache hit ratio by cache", "Hits / (hits + misses) per cache name.",
                   Q(cache_hit_ratio("cache"), "{{cache}}"), unit="percentunit", min=0, max=1),
        timeseries("Cache lookups", "Cache hits and misses per second, all caches.",
                   Q(rate("cache_hits_total"), "hits"), Q(rate("cache_misses_total"), "misses"), unit="ops"),
        timeseries("Tenant overflow", "Points recorded under tenant_id=_overflow per second because an "
                   "instrument reached `app.max_tenants_per_instrument`; 0 is healthy.",
                   Q(f"sum by (instrument) (rate(otel_tenant_overflow_total[{RI}])) or vector(0)", "{{instrument}}"),
                   unit="ops", w=24, h=6),
    ]
    provider = "model_provider_request_duration_seconds"
    outbound = [
        timeseries("Model provider p95 by provider", "95th percentile of outbound model-provider calls (to the "
                   "response headers) per configured provider, `app.providers` (collectors.app.clients).",
                   Q(quantile(0.95, provider, "provider"), "{{provider}}"), unit="s", w=8),
        timeseries("Model provider errors by class", "Failed model-provider calls per second by error class: "
                   "timeout, connect, http_5xx, http_4xx, other.",
                   Q(rate("model_provider_errors_total", labels="provider, error"), "{{provider}} {{error}}"),
                   unit="ops", w=8),
        timeseries("DB client time by tenant", "Seconds per second each tenant spends in PostgreSQL statements "
                   "and Redis commands, measured in the client (attributed even when tenants share one role).",
                   Q(rate("db_client_operation_duration_seconds_sum", labels="tenant_id"), "{{tenant_id}}"),
                   unit="s", w=8),
    ]
    return Board(
        slug="application",
        title="Application performance",
        description="The platform's API services: latency percentiles, throughput, error ratio, model "
                    "inference and cache, per tenant and route (OpenTelemetry, collectors.app).",
        tenant_metric=REQUESTS,
        sections=[("Summary", summary), ("Latency and throughput", latency), ("Errors", errors),
                  ("Model inference", inference), ("Outbound calls", outbound),
                  ("Cache", cache)],
        related=("infrastructure", "tenants", "tenant", "slo-budget"),
        tags=("application",),
    )
