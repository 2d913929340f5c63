"""OTLP push of traces, metrics and logs, with every lost item counted.

Exports run on the SDK's background threads (batch span/log processors, periodic metric
reader) with a per-request deadline (`app.otlp.timeout`), so a receiver that is down or slow
costs a request nothing; a batch the receiver never accepted is added to
`otel_export_dropped_total{signal}`, which the Prometheus pull path still shows.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from opentelemetry.sdk.metrics.export import MetricExporter, MetricExportResult, MetricsData
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from obsbundle import config as obsconfig
from obsbundle.errors import ConfigError
from obsbundle.secrets import redact_url, register_secret, register_url_secrets

OnDrop = Callable[[str, int], None]
SIGNALS = ("traces", "metrics", "logs")


class CountingSpanExporter(SpanExporter):
    def __init__(self, inner: SpanExporter, on_drop: OnDrop) -> None:
        self.inner, self.on_drop = inner, on_drop

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self.inner.export(spans)
        except Exception:  # an exporter bug must not kill the batch thread
            result = SpanExportResult.FAILURE
        if result is not SpanExportResult.SUCCESS:
            self.on_drop("traces", len(spans))
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


class CountingMetricExporter(MetricExporter):
    def __init__(self, inner: MetricExporter, on_drop: OnDrop) -> None:
        super().__init__(
            preferred_temporality=getattr(inner, "_preferred_temporality", None),
            preferred_aggregation=getattr(inner, "_preferred_aggregation", None),
        )
        self.inner, self.on_drop = inner, on_drop

    def export(self, metrics_data: MetricsData, timeout_millis: float = 10_000, **kwargs: Any) -> MetricExportResult:
        try:
            result = self.inner.export(metrics_data, timeout_millis=timeout_millis, **kwargs)
        except Exception:
            result = MetricExportResult.FAILURE
        if result is not MetricExportResult.SUCCESS:
            points = sum(
                len(metric.data.data_points)
                for resource in metrics_data.resource_metrics
                for scope in resource.scope_metrics
                for metric in scope.metrics
            )
            self.on_drop("metrics", points)
        return result

    def force_flush(self, timeout_millis: float = 10_000) -> bool:
        return self.inner.force_flush(timeout_millis)

    def shutdown(self, timeout_millis: float = 30_000, **kwargs: Any) -> None:
        self.inner.shutdown(timeout_millis=timeout_millis, **kwargs)


def counting_log_exporter(inner: Any, on_drop: OnDrop) -> Any:
    """A LogRecordExporter (logs SDK, still underscore-named) that counts failed batches."""
    from opentelemetry.sdk._logs.export import LogRecordExporter, LogRecordExportResult

    class CountingLogExporter(LogRecordExporter):
        def export(self, batch: Sequence[Any]) -> LogRecordExportResult:
            try:
                result = inner.export(batch)
            except Exception:
                result = LogRecordExportResult.FAILURE
            if result is not LogRecordExportResult.SUCCESS:
                on_drop("logs", len(batch))
            return result

        def shutdown(self) -> None:
            inner.shutdown()

        def force_flush(self, timeout_millis: int = 30000) -> bool:
            return bool(inner.force_flush(timeout_millis))

    return CountingLogExporter()


def otlp_exporters(otlp: Mapping[str, Any]) -> dict[str, Any]:
    """The raw OTLP exporters for the configured signals, keyed by signal."""
    endpoint: str = otlp["endpoint"]
    register_url_secrets(endpoint)
    headers = dict(otlp.get("headers") or {})
    for value in headers.values():
        register_secret(value)
    grpc = otlp.get("protocol") == "grpc"
    package = "opentelemetry-exporter-otlp-proto-" + ("grpc" if grpc else "http")
    try:
        if grpc:
            from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter
            from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter
            from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        else:
            from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
            from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError:
        raise ConfigError(
            f"app.otlp.endpoint is set ({redact_url(endpoint)}) but {package} is not installed: "
            f"pip install {package}"
        ) from None
    timeout = obsconfig.parse_duration(otlp.get("timeout") or "5s")
    classes = {"traces": OTLPSpanExporter, "metrics": OTLPMetricExporter, "logs": OTLPLogExporter}
    out: dict[str, Any] = {}
    for signal in otlp.get("signals") or SIGNALS:
        if grpc:
            insecure = not endpoint.startswith("https://")
            out[signal] = classes[signal](endpoint=endpoint, insecure=insecure, timeout=timeout,
                                          headers=headers or None)
        else:
            out[signal] = classes[signal](endpoint=f"{endpoint.rstrip('/')}/v1/{signal}", timeout=timeout,
                                          headers=headers or None)
    return out
