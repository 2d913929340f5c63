"""Structured logs for an instrumented service: request context on every record, JSON on stdout.

`ContextFilter` stamps each record, including ones from the user's own loggers, with the
tenant (from baggage), the current span's `trace_id`/`span_id` and the service name; the stdout
handler formats them with `obsbundle.logs` (one JSON object or logfmt line per record, secrets
scrubbed). The access log is one record per request on the `obsbundle.access` logger.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

from opentelemetry import trace

from collectors.app.tenant import current_tenant
from obsbundle.logs import formatter
from obsbundle.secrets import ScrubFilter

ACCESS_LOGGER = "obsbundle.access"
# The exporters' own transport logs must not feed back into the OTLP log pipeline.
_EXPORT_LOGGERS = ("opentelemetry", "urllib3", "requests", "grpc")


def span_ids(span: trace.Span | None = None) -> tuple[str | None, str | None]:
    """(trace_id, span_id) of `span` (default: the current one) as W3C hex, or Nones outside one."""
    ctx = (span or trace.get_current_span()).get_span_context()
    if not ctx.is_valid:
        return None, None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


class ContextFilter(logging.Filter):
    """Adds tenant_id, trace_id, span_id and service to a record (values the caller set win)."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        trace_id, span_id = span_ids()
        for key, value in (("tenant_id", current_tenant()), ("trace_id", trace_id), ("span_id", span_id),
                           ("service", self.service)):
            if value is not None and getattr(record, key, None) is None:
                setattr(record, key, value)
        return True


class _NotExportTransport(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not record.name.startswith(_EXPORT_LOGGERS)


def stream_handler(service: str, fmt: str, stream: TextIO | None = None) -> logging.Handler:
    """A handler writing one `fmt` line per record to `stream` (stdout by default)."""
    handler = logging.StreamHandler(stream or sys.stdout)
    handler.setFormatter(formatter(fmt))
    handler.addFilter(ScrubFilter())
    handler.addFilter(ContextFilter(service))
    return handler


def otlp_handler(service: str, logger_provider: Any) -> logging.Handler:
    """OpenTelemetry's LoggingHandler with the same context fields and scrubbing as stdout."""
    from opentelemetry.sdk._logs import LoggingHandler

    handler = LoggingHandler(logger_provider=logger_provider)
    handler.addFilter(_NotExportTransport())
    handler.addFilter(ScrubFilter())
    handler.addFilter(ContextFilter(service))
    return handler


class RootHandlers:
    """Handlers added to the root logger by one `instrument()` call, removed again by `close()`."""

    def __init__(self, level: str) -> None:
        self.handlers: list[logging.Handler] = []
        self.level = level

    def add(self, handler: logging.Handler) -> None:
        root = logging.getLogger()
        root.addHandler(handler)
        if root.level > logging.getLevelName(self.level.upper()) or root.level == logging.NOTSET:
            root.setLevel(self.level.upper())
        logging.getLogger(ACCESS_LOGGER).setLevel(logging.INFO)
        self.handlers.append(handler)

    def close(self) -> None:
        root = logging.getLogger()
        for handler in self.handlers:
            root.removeHandler(handler)
            handler.flush()
        self.handlers.clear()


def access_log(logger: logging.Logger, method: str, route: str, status: int, duration: float) -> None:
    """One line per request; the route template, not the raw path (bounded, no ids or tokens)."""
    logger.info(
        "%s %s %d %.3fs", method, route, status, duration,
        extra={"method": method, "route": route, "status": status, "duration_seconds": round(duration, 6)},
    )
