"""Per-request tenant resolution and its propagation through the OpenTelemetry context.

The resolved tenant is put in OTel baggage under `tenant_id`, so every metric point recorded and
every span started while the request runs can read it without passing it around. Client-supplied
baggage is never trusted: the middleware always overwrites `tenant_id` with what it resolved.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import baggage, context, trace
from opentelemetry.context import Context
from opentelemetry.sdk.trace import ReadableSpan, Span, SpanProcessor

from obsbundle.secrets import register_secret
from obsbundle.tenancy import LABEL, RESERVED, UNASSIGNED, normalize

SOURCES = ("header", "api_key", "path")
_MAX_RAW = 128  # longer header values are malformed, not tenants


def clean(raw: str | None) -> str | None:
    """A normalised tenant id for a client-supplied value, or None if missing or malformed.

    Malformed means empty, longer than 128 chars, or holding characters outside printable ASCII
    (control bytes, undecodable header bytes). Anything else goes through `tenancy.normalize`,
    so odd-but-printable ids stay distinct and bounded.
    """
    if raw is None:
        return None
    value = raw.strip()
    if not value or len(value) > _MAX_RAW or not all(" " < ch < "\x7f" for ch in value):
        return None
    return normalize(value)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


class TenantSources:
    """Resolves a request's tenant from a header, an API key, or a path parameter (first match wins)."""

    def __init__(
        self,
        header: str = "X-Tenant-ID",
        api_key_header: str = "X-API-Key",
        api_keys: Mapping[str, str] | None = None,
        path_param: str | None = "tenant",
        order: Sequence[str] = ("api_key", "path", "header"),
    ) -> None:
        self.header = header.lower()
        self.api_key_header = api_key_header.lower()
        # Only digests of keys are kept, so a heap dump or repr never shows a key.
        self._keys: dict[str, str] = {}
        for key, tenant in (api_keys or {}).items():
            register_secret(key)
            self._keys[_digest(key)] = normalize(tenant)
        self.path_param = path_param
        self.order = tuple(order)

    @classmethod
    def from_config(cls, app: Mapping[str, Any]) -> TenantSources:
        return cls(
            header=app.get("tenant_header") or "X-Tenant-ID",
            api_key_header=app.get("api_key_header") or "X-API-Key",
            api_keys=app.get("api_keys") or {},
            path_param=app.get("tenant_path_param"),
            order=app.get("tenant_from") or ("api_key", "path", "header"),
        )

    def _api_key(self, header: Callable[[str], str | None]) -> str | None:
        key = header(self.api_key_header)
        if not key:
            auth = header("authorization") or ""
            scheme, _, token = auth.partition(" ")
            key = token.strip() if scheme.lower() == "bearer" else None
        return self._keys.get(_digest(key.strip())) if key and self._keys else None

    def resolve(self, header: Callable[[str], str | None], path_params: Mapping[str, str]) -> str:
        """The tenant for a request; `header(name)` looks up a lower-case header name."""
        for source in self.order:
            if source == "header":
                tenant = clean(header(self.header))
            elif source == "api_key":
                tenant = self._api_key(header)
            else:
                tenant = clean(path_params.get(self.path_param)) if self.path_param else None
            if tenant is not None:
                return tenant
        return UNASSIGNED


_REQUEST = context.create_key("obsbundle.request_tenant")


class RequestTenant:
    """The tenant of one request, changeable while it runs (`set_tenant`), read when it is recorded.

    A mutable holder rather than a context value alone: FastAPI runs sync dependencies in a
    worker thread with a copy of the context, so a new context value set there would never reach
    the middleware that records the request.
    """

    __slots__ = ("tenant",)

    def __init__(self, tenant: str) -> None:
        self.tenant = tenant


def request_context(tenant: str) -> tuple[RequestTenant, Context]:
    """The context a middleware attaches for one request: tenant baggage plus its holder."""
    holder = RequestTenant(tenant)
    return holder, context.set_value(_REQUEST, holder, with_tenant(tenant))


def _trusted(tenant: str) -> str:
    return tenant if tenant in RESERVED else (normalize(tenant) if tenant.strip() else UNASSIGNED)


def set_tenant(tenant: str) -> str:
    """Name the running request's tenant from code, e.g. a FastAPI dependency or Flask `before_request`
    that looks the caller up; returns the normalised id.

    Every metric of the request, its server span, access log and later spans use it. Outside a
    request (no instrumented middleware) it raises RuntimeError: use `tenant_context` there.
    """
    holder = context.get_value(_REQUEST)
    if not isinstance(holder, RequestTenant):
        raise RuntimeError("set_tenant() outside an instrumented request; use tenant_context() for other work")
    tenant_id = _trusted(tenant)
    holder.tenant = tenant_id
    # outbound baggage (the holder stays); undone when the middleware detaches its context
    context.attach(baggage.set_baggage(LABEL, tenant_id))
    trace.get_current_span().set_attribute(LABEL, tenant_id)
    return tenant_id


def current_tenant(ctx: Context | None = None) -> str:
    """The tenant of the running request (or `tenant_context` block); `_unassigned` outside one."""
    holder = context.get_value(_REQUEST, ctx)
    if holder is not None:
        return holder.tenant  # type: ignore[attr-defined, no-any-return]
    value = baggage.get_baggage(LABEL, ctx)
    return str(value) if value else UNASSIGNED


def with_tenant(tenant: str, ctx: Context | None = None) -> Context:
    """`ctx` with `tenant` in baggage; a request's holder no longer applies under it."""
    ctx = baggage.set_baggage(LABEL, tenant, ctx)
    return context.set_value(_REQUEST, None, ctx) if context.get_value(_REQUEST, ctx) is not None else ctx


@contextmanager
def tenant_context(tenant: str) -> Iterator[str]:
    """Run a block (a background job, a queue consumer) as `tenant`; yields the normalised id.

    The caller is trusted code, so any non-empty name is accepted and normalised (reserved ids
    such as `_shared` pass through).
    """
    tenant_id = _trusted(tenant)
    token = context.attach(with_tenant(tenant_id))
    try:
        yield tenant_id
    finally:
        context.detach(token)


class TenantSpanProcessor(SpanProcessor):
    """Copies the baggage `tenant_id` onto every span started under it (`_unassigned` if none).

    A request's server span starts before the tenant is resolved; the middleware overwrites its
    attribute once it is, so client-sent baggage never decides a span's tenant.
    """

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        span.set_attribute(LABEL, current_tenant(parent_context))

    def on_end(self, span: ReadableSpan) -> None:
        pass
