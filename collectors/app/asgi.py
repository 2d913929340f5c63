"""ASGI middleware: server spans plus tenant-labelled request metrics.

The stack is `ServerSpanMiddleware(TenantMiddleware(app))`: the outer layer makes the server span
and extracts W3C context (serverspan.py says why it is not OpenTelemetry's ASGI middleware); the
inner layer resolves the tenant, puts it in baggage and on the server span, records the
catalogued HTTP metrics, and names the span after the route.
"""

from __future__ import annotations

import time

from opentelemetry import context, trace

from collectors.app.asgi_types import ASGIApp, Message, Receive, Scope, Send, request_headers
from collectors.app.contract import Instrumented
from collectors.app.frameworks import scope_route, starlette_matcher
from collectors.app.metrics import method_label
from collectors.app.routes import OTHER
from collectors.app.serverspan import ServerSpanMiddleware, finish_server_span
from collectors.app.tenant import request_context
from obsbundle.tenancy import LABEL

__all__ = ["ASGIApp", "TenantMiddleware", "asgi_middleware"]


class TenantMiddleware:
    """Resolves the tenant and records request duration, count, errors and in-flight requests."""

    def __init__(self, app: ASGIApp, instrumentation: Instrumented) -> None:
        self.app = app
        self.inst = instrumentation
        self._router = starlette_matcher(app)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        found = self._router(scope) if self._router else None
        route, params = found or self.inst.routes.match(scope.get("path") or "/")
        tenant = self.inst.tenants.resolve(request_headers(scope).get, params)
        holder, ctx = request_context(tenant)
        token = context.attach(ctx)
        trace.get_current_span().set_attribute(LABEL, tenant)
        method = method_label(scope.get("method"))
        status = 500  # unless the app starts a response
        started = time.perf_counter()
        capped = self.inst.metrics.request_started(tenant)

        recorded = False
        sent = 0  # response body bytes: egress for per-tenant cost

        def record() -> None:
            nonlocal recorded, route
            if recorded:
                return
            recorded = True
            if route == OTHER:
                route = scope_route(scope) or OTHER  # e.g. inside a Mount, routed by the app
            duration = time.perf_counter() - started
            self.inst.metrics.request_finished(capped, route, method, status, duration, sent, holder.tenant)
            finish_server_span(method, route, status)
            self.inst.access_log(method, route, status, duration)

        async def send_recording(message: Message) -> None:
            nonlocal status, sent
            kind = message.get("type")
            if kind == "http.response.start":
                status = int(message.get("status", 500))
            elif kind == "http.response.body":
                sent += len(message.get("body") or b"")
                if not message.get("more_body", False):
                    record()  # before the last byte leaves: a client that got its response sees it counted
            await send(message)

        try:
            await self.app(scope, receive, send_recording)
        finally:
            record()
            context.detach(token)


def asgi_middleware(app: ASGIApp, instrumentation: Instrumented) -> ASGIApp:
    """Wrap an ASGI app with server spans and tenant-labelled metrics."""
    return ServerSpanMiddleware(TenantMiddleware(app, instrumentation), instrumentation.tracer)
