"""WSGI middleware: the same tenant resolution and metrics as the ASGI one, for sync services.

Metrics are recorded when the server closes the response iterable, so the duration covers the
whole body, and the tenant baggage stays attached while the body is generated.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from opentelemetry import context, trace
from opentelemetry.instrumentation.wsgi import OpenTelemetryMiddleware
from opentelemetry.metrics import NoOpMeterProvider

from collectors.app.contract import Instrumented
from collectors.app.frameworks import flask_matcher
from collectors.app.metrics import method_label
from collectors.app.tenant import request_context
from obsbundle.tenancy import LABEL

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def _headers(environ: dict[str, Any]) -> Callable[[str], str | None]:
    def get(name: str) -> str | None:
        key = name.upper().replace("-", "_")
        value = environ.get(key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}")
        return value if isinstance(value, str) else None

    return get


class _Recorded:
    """The app's response iterable; `close()` records the request once and detaches the tenant."""

    def __init__(self, body: Iterable[bytes], finish: Callable[[int], None]) -> None:
        self._body = body
        self._finish: Callable[[int], None] | None = finish
        self._sent = 0  # response body bytes: egress for per-tenant cost

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._body:
            self._sent += len(chunk)
            yield chunk

    def close(self) -> None:
        try:
            close = getattr(self._body, "close", None)
            if callable(close):
                close()
        finally:
            finish, self._finish = self._finish, None
            if finish is not None:
                finish(self._sent)


class TenantMiddleware:
    def __init__(self, app: WSGIApp, instrumentation: Instrumented) -> None:
        self.app = app
        self.inst = instrumentation
        self._router = flask_matcher(app)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        found = self._router(environ) if self._router else None
        route, params = found or self.inst.routes.match(environ.get("PATH_INFO") or "/")
        tenant = self.inst.tenants.resolve(_headers(environ), params)
        holder, ctx = request_context(tenant)
        token = context.attach(ctx)
        trace.get_current_span().set_attribute(LABEL, tenant)
        method = method_label(environ.get("REQUEST_METHOD"))
        status = [500]
        started = time.perf_counter()
        capped = self.inst.metrics.request_started(tenant)

        def start_recording(status_line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            try:
                status[0] = int(status_line.split(" ", 1)[0])
            except ValueError:
                status[0] = 500
            return start_response(status_line, headers, exc_info) if exc_info else start_response(status_line, headers)

        def finish(sent: int = 0) -> None:
            duration = time.perf_counter() - started
            self.inst.metrics.request_finished(capped, route, method, status[0], duration, sent, holder.tenant)
            self.inst.access_log(method, route, status[0], duration)
            context.detach(token)

        try:
            body = self.app(environ, start_recording)
        except BaseException:
            status[0] = 500
            finish()
            raise
        return _Recorded(body, finish)


def wsgi_middleware(app: WSGIApp, instrumentation: Instrumented) -> WSGIApp:
    """Wrap a WSGI app with server spans (OTel) and tenant-labelled metrics (ours)."""
    return OpenTelemetryMiddleware(
        TenantMiddleware(app, instrumentation),
        tracer_provider=instrumentation.tracer_provider,
        meter_provider=NoOpMeterProvider(),
    )
