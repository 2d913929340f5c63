"""Outbound model-provider calls by tenant, provider and model (httpx), and the shared instruments
of the client metrics (`obsbundle.catalog.clients`).

    client = otel.instrument_model_client(httpx.Client(base_url="https://api.openai.com"))

Spans come from opentelemetry-instrumentation-httpx (its own untenanted metrics go to a no-op
meter). Its response hook is not called when no response arrives (timeout, refused connection),
so the metrics come from a wrapper around the client's transport, installed *inside* the
instrumentation's: it sees every outcome, times the call up to the response headers (or the
failure), and puts tenant_id/provider/model on the instrumentation's span. That works the same
when the span is not sampled.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import httpx
from opentelemetry import trace
from opentelemetry.metrics import Meter, NoOpMeterProvider
from opentelemetry.trace import TracerProvider
from wrapt import wrap_function_wrapper

from collectors.app.limits import TenantCap
from collectors.app.metrics import status_class
from collectors.app.tenant import current_tenant
from obsbundle.catalog import Metric
from obsbundle.catalog import app as app_names
from obsbundle.catalog import clients as names

OTHER = "_other"
_MAX_LABEL = 64  # a longer model name is not a model name


def error_class(status: int | None, exc: BaseException | None) -> str | None:
    """The bounded error label of one call, or None if it succeeded."""
    if exc is not None:
        if isinstance(exc, httpx.TimeoutException):
            return "timeout"
        if isinstance(exc, httpx.ConnectError):
            return "connect"
        return "other"
    if status is not None and status >= 500:
        return "http_5xx"
    if status is not None and status >= 400:
        return "http_4xx"
    return None


class ClientMetrics:
    """The client instruments of one instrumented service, with tenant and model caps."""

    def __init__(self, meter: Meter, app: Mapping[str, Any]) -> None:
        max_tenants = int(app["max_tenants_per_instrument"])
        overflow = meter.create_counter(  # the same instrument AppMetrics made
            app_names.TENANT_OVERFLOW.name.removesuffix("_total"), unit="1", description=app_names.TENANT_OVERFLOW.help
        )
        self.provider_cap = TenantCap(max_tenants, overflow)
        self.db_cap = TenantCap(max_tenants, overflow)

        def counter(metric: Metric) -> Any:
            return meter.create_counter(metric.name.removesuffix("_total"), unit="1", description=metric.help)

        def histogram(metric: Metric) -> Any:
            return meter.create_histogram(metric.name, unit="s", description=metric.help,
                                          explicit_bucket_boundaries_advisory=list(metric.buckets))

        self._requests = counter(names.PROVIDER_REQUESTS)
        self._errors = counter(names.PROVIDER_ERRORS)
        self._duration = histogram(names.PROVIDER_DURATION)
        self._db = histogram(names.DB_DURATION)
        providers: Mapping[str, str] = app.get("providers") or {}
        self.hosts = {host.lower(): name for name, host in providers.items()}
        self.model_field: str = app.get("provider_model_field") or "model"
        self.max_models = int(app.get("max_models") or 20)
        self._models: dict[str, set[str]] = {}
        self._lock = threading.Lock()

    # -- labels ------------------------------------------------------------------------------

    def provider(self, url: httpx.URL) -> str:
        """The configured provider name of a request's host (`host:port` first), else `_other`."""
        host = url.host.lower()
        if url.port is not None:
            named = self.hosts.get(f"{host}:{url.port}")
            if named is not None:
                return named
        return self.hosts.get(host, OTHER)

    def model(self, provider: str, request: httpx.Request) -> str:
        """The body's model field, admitted sticky up to `max_models` per provider, else `_other`."""
        try:
            body = request.content
        except httpx.RequestNotRead:  # a streamed upload: not read here
            return OTHER
        if body.lstrip()[:1] != b"{":
            return OTHER
        try:
            value = json.loads(body).get(self.model_field)
        except (ValueError, UnicodeDecodeError):
            return OTHER
        if not isinstance(value, str) or not value or len(value) > _MAX_LABEL:
            return OTHER
        with self._lock:
            seen = self._models.setdefault(provider, set())
            if value in seen:
                return value
            if len(seen) < self.max_models:
                seen.add(value)
                return value
        return OTHER

    # -- recording ---------------------------------------------------------------------------

    def provider_call(
        self, tenant: str, provider: str, model: str, status: int | None, exc: BaseException | None, duration: float
    ) -> None:
        error = error_class(status, exc)
        instruments = [names.PROVIDER_REQUESTS.name, names.PROVIDER_DURATION.name]
        if error:
            instruments.append(names.PROVIDER_ERRORS.name)
        capped = self.provider_cap.admit(tenant, *instruments)
        labels = {"tenant_id": capped, "provider": provider, "model": model}
        self._duration.record(duration, labels)
        self._requests.add(1, {**labels, "status_class": status_class(status) if status is not None else "none"})
        if error:
            self._errors.add(1, {**labels, "error": error})

    def db_operation(self, tenant: str, system: str, operation: str, duration: float) -> None:
        capped = self.db_cap.admit(tenant, names.DB_DURATION.name)
        self._db.record(duration, {"tenant_id": capped, "db_system": system, "operation": operation})

    # -- httpx -------------------------------------------------------------------------------

    def _labels(self, request: httpx.Request) -> tuple[str, str, str]:
        provider = self.provider(request.url)
        model = self.model(provider, request)
        tenant = current_tenant()
        span = trace.get_current_span()  # the instrumentation's client span (we run inside it)
        if span.is_recording():
            span.set_attributes({"tenant_id": tenant, "gen_ai.provider.name": provider, "gen_ai.request.model": model})
        return tenant, provider, model

    def _sync(self, wrapped: Callable[..., httpx.Response], instance: Any, args: Any, kwargs: Any) -> httpx.Response:
        request: httpx.Request = args[0] if args else kwargs["request"]
        tenant, provider, model = self._labels(request)
        started = time.perf_counter()
        try:
            response = wrapped(*args, **kwargs)
        except Exception as exc:
            self.provider_call(tenant, provider, model, None, exc, time.perf_counter() - started)
            raise
        self.provider_call(tenant, provider, model, response.status_code, None, time.perf_counter() - started)
        return response

    async def _async(
        self, wrapped: Callable[..., Awaitable[httpx.Response]], instance: Any, args: Any, kwargs: Any
    ) -> httpx.Response:
        request: httpx.Request = args[0] if args else kwargs["request"]
        tenant, provider, model = self._labels(request)
        started = time.perf_counter()
        try:
            response = await wrapped(*args, **kwargs)
        except Exception as exc:
            self.provider_call(tenant, provider, model, None, exc, time.perf_counter() - started)
            raise
        self.provider_call(tenant, provider, model, response.status_code, None, time.perf_counter() - started)
        return response

    def instrument_model_client(
        self, client: httpx.Client | httpx.AsyncClient, tracer_provider: TracerProvider
    ) -> httpx.Client | httpx.AsyncClient:
        """Metrics and tenant-labelled spans for a model-provider client's calls (sync or async)."""
        from opentelemetry.instrumentation.httpx import HTTPXClientInstrumentor

        if getattr(client, "_obsbundle_model_client", False):
            return client
        transports = [client._transport, *client._mounts.values()]
        for transport in transports:
            if hasattr(transport, "handle_request"):
                wrap_function_wrapper(transport, "handle_request", self._sync)
            elif hasattr(transport, "handle_async_request"):
                wrap_function_wrapper(transport, "handle_async_request", self._async)
        client._obsbundle_model_client = True  # type: ignore[union-attr]
        HTTPXClientInstrumentor.instrument_client(client, tracer_provider=tracer_provider,
                                                  meter_provider=NoOpMeterProvider())
        return client


def for_instrumentation(inst: Any) -> ClientMetrics:
    """The service's ClientMetrics, made on first use (one set of instruments per Instrumentation)."""
    found: ClientMetrics | None = inst.__dict__.get("_client_metrics")
    if found is None:
        found = inst.__dict__["_client_metrics"] = ClientMetrics(inst.meter, inst.config)
    return found
