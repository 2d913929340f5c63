"""One call that wires OpenTelemetry for a platform service: providers, exporters, views.

`instrument()` builds a MeterProvider and a TracerProvider from the `app` config section, with a
Prometheus pull reader on a private registry (so only catalogued metrics appear: no scope labels,
no `target_info`, no process collectors) and/or OTLP push when `otlp_endpoint` is set.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any

from opentelemetry import metrics, trace
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider, ObservableGauge, UpDownCounter
from opentelemetry.sdk.metrics.export import MetricReader, PeriodicExportingMetricReader
from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter
from prometheus_client import CollectorRegistry

from collectors.app.asgi import ASGIApp, asgi_middleware
from collectors.app.helpers import InferenceRecorder
from collectors.app.metrics import AppMetrics
from collectors.app.routes import RouteTable
from collectors.app.tenant import TenantSources, TenantSpanProcessor, current_tenant
from collectors.app.wsgi import WSGIApp, wsgi_middleware
from obsbundle import config as obsconfig
from obsbundle.catalog import app as names
from obsbundle.errors import ConfigError
from obsbundle.secrets import redact_url, register_url_secrets

SCOPE = "obsbundle.collectors.app"
# The SDK's own per-stream limit must never bite before our tenant cap: past it the SDK folds
# points into an `otel_metric_overflow` series that breaks the catalogued label sets.
_SDK_STREAM_LIMIT_PER_TENANT = 64

_active_lock = threading.Lock()
_active: Instrumentation | None = None


def app_section(config: Mapping[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    """A validated `app` section with defaults; accepts a whole obsbundle config or the section.

    Only the `app` section is validated here (a service needs nothing else from the file).
    """
    section = dict(config.get("app", config) or {}) if config else {}
    section.update({k: v for k, v in overrides.items() if v is not None})
    return obsconfig.validate_section("app", obsconfig.deep_merge(obsconfig.defaults().get("app") or {}, section))


def _otlp_exporters(app: Mapping[str, Any]) -> tuple[Any, Any]:
    endpoint = app["otlp_endpoint"]
    register_url_secrets(endpoint)
    grpc = app.get("otlp_protocol") == "grpc"
    package = "opentelemetry-exporter-otlp-proto-" + ("grpc" if grpc else "http")
    try:
        if grpc:
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        else:
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        raise ConfigError(
            f"app.otlp_endpoint is set ({redact_url(endpoint)}) but {package} is not installed: "
            f"pip install {package}"
        ) from None
    if grpc:
        return OTLPMetricExporter(endpoint=endpoint), OTLPSpanExporter(endpoint=endpoint)
    base = endpoint.rstrip("/")
    return OTLPMetricExporter(endpoint=f"{base}/v1/metrics"), OTLPSpanExporter(endpoint=f"{base}/v1/traces")


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

        readers: list[MetricReader] = list(metric_readers)
        span_processors: list[Any] = [TenantSpanProcessor()]
        span_processors += [SimpleSpanProcessor(e) for e in span_exporters]
        if app.get("prometheus", True):
            self.registry = CollectorRegistry(auto_describe=True)
            limit = max(2000, max_tenants * _SDK_STREAM_LIMIT_PER_TENANT)
            readers.append(
                PrometheusMetricReader(
                    disable_target_info=True,
                    scope_info_enabled=False,
                    registry=self.registry,
                    cardinality_limits={
                        kind: limit for kind in (Counter, UpDownCounter, Histogram, ObservableGauge)
                    },
                )
            )
        if app.get("otlp_endpoint"):
            metric_exporter, span_exporter = _otlp_exporters(app)
            interval_ms = obsconfig.parse_duration(app.get("otlp_interval", "15s")) * 1000
            readers.append(PeriodicExportingMetricReader(metric_exporter, export_interval_millis=interval_ms))
            span_processors.append(BatchSpanProcessor(span_exporter))

        resource = Resource.create({"service.name": self.service_name})
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
        self.meter_provider = MeterProvider(metric_readers=readers, resource=resource, views=views)
        self.tracer_provider = TracerProvider(resource=resource)
        for processor in span_processors:
            self.tracer_provider.add_span_processor(processor)
        self.meter = self.meter_provider.get_meter(SCOPE)
        self.tracer = self.tracer_provider.get_tracer(SCOPE)
        self.metrics = AppMetrics(self.meter, max_tenants)

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
        global _active
        if self._http_server is not None:
            self._http_server.shutdown()
            self._http_server.server_close()
            self._http_server = None
        self.meter_provider.shutdown()
        self.tracer_provider.shutdown()
        with _active_lock:
            if _active is self:
                _active = None


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
    global _active
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
    with _active_lock:
        _active = inst
    return inst


def active() -> Instrumentation | None:
    """The most recent `instrument()` result still running, for the module-level helpers."""
    return _active
