"""One call that wires OpenTelemetry for a platform service: providers, exporters, views.

`instrument()` builds a MeterProvider and a TracerProvider from the `app` config section, with a
Prometheus pull reader on a private registry (so only catalogued metrics appear: no scope labels,
no `target_info`, no process collectors) and/or OTLP push of traces, metrics and logs when
`otlp.endpoint` is set, plus JSON (or logfmt) logs on stdout when `logs.format` is set.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import (
    AlwaysOffExemplarFilter,
    Counter,
    Histogram,
    MeterProvider,
    ObservableCounter,
    ObservableGauge,
    ObservableUpDownCounter,
    UpDownCounter,
)
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from prometheus_client import CollectorRegistry

from collectors.app.asgi import ASGIApp, asgi_middleware
from collectors.app.contract import clear_active, set_active
from collectors.app.exemplars import ExemplarCollector, ExemplarStore
from collectors.app.export import CountingMetricExporter, CountingSpanExporter, counting_log_exporter, otlp_exporters
from collectors.app.helpers import InferenceRecorder
from collectors.app.logs import ACCESS_LOGGER, RootHandlers, access_log, otlp_handler, stream_handler
from collectors.app.metrics import AppMetrics
from collectors.app.routes import RouteTable
from collectors.app.tenant import TenantSources, TenantSpanProcessor, current_tenant
from collectors.app.wsgi import WSGIApp, wsgi_middleware
from obsbundle import config as obsconfig
from obsbundle.catalog import app as names
from obsbundle.errors import ConfigError

SCOPE = "obsbundle.collectors.app"
# The SDK's own per-stream limit must never bite before our tenant cap: past it the SDK folds
# points into an `otel_metric_overflow` series that breaks the catalogued label sets.
_SDK_STREAM_LIMIT_PER_TENANT = 64


def app_section(config: Mapping[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    """A validated `app` section with defaults; accepts a whole obsbundle config or the section.

    Only the `app` section is validated here (a service needs nothing else from the file).
    """
    section = dict(config.get("app", config) or {}) if config else {}
    section.update({k: v for k, v in overrides.items() if v is not None})
    return obsconfig.validate_section("app", obsconfig.deep_merge(obsconfig.defaults().get("app") or {}, section))


def _resource(app: Mapping[str, Any]) -> Resource:
    res = app.get("resource") or {}
    attributes: dict[str, str] = {"service.name": app["service_name"]}
    if res.get("service_version"):
        attributes["service.version"] = res["service_version"]
    if res.get("deployment_environment"):
        attributes["deployment.environment"] = res["deployment_environment"]
    attributes.update(res.get("attributes") or {})
    return Resource.create(attributes)


class Instrumentation:
    """Handles for an instrumented service: providers, middleware factories, helpers, /metrics."""

    def __init__(
        self,
        app: Mapping[str, Any],
        span_exporters: Iterable[SpanExporter] = (),
        metric_readers: Iterable[MetricReader] = (),
    ) -> None:
        self.config = dict(app)
        self.service_name: str = app["service_name"]
        self.routes = RouteTable(app.get("routes") or ())
        self.tenants = TenantSources.from_config(app)
        self.registry: CollectorRegistry | None = None
        self._http_server: Any = None
        max_tenants = int(app["max_tenants_per_instrument"])

        resource = _resource(app)
        readers: list[MetricReader] = list(metric_readers)
        span_processors: list[Any] = [TenantSpanProcessor()]
        span_processors += [SimpleSpanProcessor(e) for e in span_exporters]
        exemplars = (
            ExemplarStore(names.REQUEST_DURATION.name, app["latency_buckets_seconds"])
            if app.get("exemplars", True) else None
        )
        if app.get("prometheus", True):
            converted = CollectorRegistry(auto_describe=True)
            limit = max(2000, max_tenants * _SDK_STREAM_LIMIT_PER_TENANT)
            readers.append(
                PrometheusMetricReader(
                    disable_target_info=True,
                    scope_info_enabled=False,
                    registry=converted,
                    cardinality_limits={
                        kind: limit for kind in (
                            Counter, UpDownCounter, Histogram, ObservableGauge, ObservableCounter,
                            ObservableUpDownCounter,
                        )
                    },
                )
            )
            self.registry = converted if exemplars is None else CollectorRegistry(auto_describe=True)
        otlp = app.get("otlp") or {}
        raw = otlp_exporters(otlp) if otlp.get("endpoint") else {}
        queue = int(otlp.get("queue_size", 2048))
        if "metrics" in raw:
            interval_ms = obsconfig.parse_duration(otlp.get("interval", "15s")) * 1000
            timeout_ms = obsconfig.parse_duration(otlp.get("timeout", "5s")) * 1000
            readers.append(PeriodicExportingMetricReader(
                CountingMetricExporter(raw["metrics"], self._dropped),
                export_interval_millis=interval_ms, export_timeout_millis=timeout_ms,
            ))
        if "traces" in raw:
            span_processors.append(BatchSpanProcessor(
                CountingSpanExporter(raw["traces"], self._dropped), max_queue_size=queue,
                schedule_delay_millis=1000,
            ))

        views = [
            View(
                instrument_name=names.REQUEST_DURATION.name,
                aggregation=ExplicitBucketHistogramAggregation(sorted(app["latency_buckets_seconds"])),
            ),
            View(
                instrument_name=names.INFERENCE_DURATION.name,
                aggregation=ExplicitBucketHistogramAggregation(sorted(app["inference_buckets_seconds"])),
            ),
        ]
        self.resource = resource
        # The SDK's exemplars reach OTLP only (the Prometheus exporter drops them; ExemplarStore
        # serves /metrics), so without OTLP metrics their reservoirs are pure cost on every point.
        exemplar_filter = None if "metrics" in raw else AlwaysOffExemplarFilter()
        self.meter_provider = MeterProvider(
            metric_readers=readers, resource=resource, views=views, exemplar_filter=exemplar_filter
        )
        self.tracer_provider = TracerProvider(
            resource=resource, sampler=ParentBased(TraceIdRatioBased(float(app["trace_sample_ratio"])))
        )
        for processor in span_processors:
            self.tracer_provider.add_span_processor(processor)
        if self.registry is not None and exemplars is not None:  # after the reader is registered: it describes
            self.registry.register(ExemplarCollector(converted, exemplars))
        self.meter = self.meter_provider.get_meter(SCOPE)
        self.tracer = self.tracer_provider.get_tracer(SCOPE)
        self.metrics = AppMetrics(self.meter, max_tenants, exemplars)
        if raw:
            for signal in raw:
                self.metrics.export_dropped(signal, 0)  # the series exists before the first loss
        self._access: logging.Logger | None = None
        self.logger_provider: Any = None
        self._log_handlers = RootHandlers(app["logs"]["level"])
        self._setup_logs(app, raw.get("logs"), queue)

    def _dropped(self, signal: str, count: int) -> None:
        self.metrics.export_dropped(signal, count)

    def _setup_logs(self, app: Mapping[str, Any], log_exporter: Any, queue: int) -> None:
        logs = app["logs"]
        if logs.get("format"):
            self._log_handlers.add(stream_handler(self.service_name, logs["format"]))
        if log_exporter is not None and logs.get("otlp", True):
            from opentelemetry.sdk._logs import LoggerProvider
            from opentelemetry.sdk._logs.export import BatchLogRecordProcessor

            self.logger_provider = LoggerProvider(resource=self.resource)
            self.logger_provider.add_log_record_processor(BatchLogRecordProcessor(
                counting_log_exporter(log_exporter, self._dropped), max_queue_size=queue,
                schedule_delay_millis=1000,
            ))
            self._log_handlers.add(otlp_handler(self.service_name, self.logger_provider))
        if self._log_handlers.handlers and logs.get("access_log", True):
            self._access = logging.getLogger(ACCESS_LOGGER)

    def access_log(self, method: str, route: str, status: int, duration: float) -> None:
        """The request's access-log line (the middlewares call it inside the request's span)."""
        if self._access is not None:
            access_log(self._access, method, route, status, duration)

    # -- middleware --------------------------------------------------------------------------

    def asgi(self, app: ASGIApp) -> ASGIApp:
        """`app` wrapped with server spans and tenant-labelled HTTP metrics."""
        return asgi_middleware(app, self)

    def wsgi(self, app: WSGIApp) -> WSGIApp:
        return wsgi_middleware(app, self)

    # -- helpers -----------------------------------------------------------------------------

    def record_inference(self, model: str) -> InferenceRecorder:
        """Time a model call (context manager or decorator); set `.input_tokens`/`.output_tokens`."""
        return InferenceRecorder(self, model)

    def cache_hit(self, cache: str, count: int = 1) -> None:
        self.metrics.cache(current_tenant(), cache, True, count)

    def cache_miss(self, cache: str, count: int = 1) -> None:
        self.metrics.cache(current_tenant(), cache, False, count)

    def record_cache(self, cache: str, hit: bool, count: int = 1) -> None:
        self.metrics.cache(current_tenant(), cache, hit, count)

    def span(self, name: str, **attributes: Any) -> AbstractContextManager[trace.Span]:
        """A child span of the current request (it gets `tenant_id` from baggage)."""
        return self.tracer.start_as_current_span(name, attributes=attributes or None)

    def temporal_interceptor(self) -> Any:
        """A temporalio client/worker interceptor continuing the current trace (and tenant baggage)."""
        from temporalio.contrib.opentelemetry import TracingInterceptor

        return TracingInterceptor(self.tracer)

    def instrument_httpx(self, client: Any) -> Any:
        """Spans for an httpx client's calls, which then carry W3C trace context and tenant baggage."""
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor
        from opentelemetry.metrics import NoOpMeterProvider

        # no-op meter: OTel's own http.client metrics carry no tenant and must not reach /metrics
        HTTPXClientInstrumentor.instrument_client(client, tracer_provider=self.tracer_provider,
                                                  meter_provider=NoOpMeterProvider())
        return client

    def instrument_model_client(self, client: Any) -> Any:
        """`instrument_httpx` plus model_provider_* metrics by tenant, provider and model (docs/clients.md)."""
        from collectors.app import clients

        return clients.for_instrumentation(self).instrument_model_client(client, self.tracer_provider)

    def instrument_psycopg(self, conn: Any) -> Any:
        """Spans and db_client_operation_duration_seconds by tenant for a psycopg 3 connection."""
        from collectors.app import dbclient

        return dbclient.for_instrumentation(self).instrument_psycopg(conn)

    def instrument_redis(self, client: Any) -> Any:
        """Spans, durations by tenant and `app.redis_caches` hits/misses for a redis client."""
        from collectors.app import dbclient

        return dbclient.for_instrumentation(self).instrument_redis(client)

    # -- exposition --------------------------------------------------------------------------

    def _require_registry(self) -> CollectorRegistry:
        if self.registry is None:
            raise ConfigError("app.prometheus is false: there is no /metrics to serve")
        return self.registry

    def metrics_app(self) -> ASGIApp:
        """An ASGI app serving /metrics (mount it, or route /metrics to it)."""
        from prometheus_client import make_asgi_app

        return make_asgi_app(self._require_registry())

    def wsgi_metrics_app(self) -> WSGIApp:
        from prometheus_client import make_wsgi_app

        return make_wsgi_app(self._require_registry())

    def metrics_text(self) -> str:
        from prometheus_client import generate_latest

        return generate_latest(self._require_registry()).decode()

    def start_http_server(self, listen_address: str) -> int:
        """Serve /metrics from a daemon thread on `host:port`; returns the bound port."""
        from prometheus_client import start_http_server

        host, _, port = listen_address.rpartition(":")
        try:
            server, _thread = start_http_server(int(port), addr=host or "0.0.0.0", registry=self._require_registry())
        except OSError as exc:
            raise ConfigError(
                f"app.prometheus_listen_address {listen_address}: cannot listen ({exc.strerror})"
            ) from None
        self._http_server = server
        return int(server.server_address[1])

    def shutdown(self) -> None:
        """Flush and stop exporters (idempotent)."""
        if self._http_server is not None:
            self._http_server.shutdown()
            self._http_server.server_close()
            self._http_server = None
        self.tracer_provider.shutdown()
        self.meter_provider.shutdown()
        self._log_handlers.close()
        if self.logger_provider is not None:
            self.logger_provider.shutdown()
        clear_active(self)


def instrument(
    config: Mapping[str, Any] | None = None,
    *,
    service_name: str | None = None,
    routes: Sequence[str] | None = None,
    span_exporters: Iterable[SpanExporter] = (),
    metric_readers: Iterable[MetricReader] = (),
    set_global: bool = False,
    **overrides: Any,
) -> Instrumentation:
    """Set up OpenTelemetry for a service and make it the target of the module-level helpers.

    `config` is a loaded obsbundle config or its `app` section (None: packaged defaults);
    keyword overrides (`service_name`, `routes`, `api_keys`, `max_tenants_per_instrument`, ...)
    win over it. `set_global` also installs the providers as OpenTelemetry's globals (once per
    process), so third-party instrumentations use them.
    """
    app = app_section(config, service_name=service_name, routes=list(routes) if routes else None, **overrides)
    inst = Instrumentation(app, span_exporters, metric_readers)
    if app.get("prometheus_listen_address"):
        try:
            inst.start_http_server(app["prometheus_listen_address"])
        except ConfigError:
            inst.shutdown()
            raise
    if set_global:
        metrics.set_meter_provider(inst.meter_provider)
        trace.set_tracer_provider(inst.tracer_provider)
    set_active(inst)
    return inst
