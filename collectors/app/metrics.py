"""The OpenTelemetry instruments behind the catalogued application metrics.

Instrument names are the catalog's Prometheus names (counters without `_total`, which the
Prometheus exporter appends; units "s"/"1" add no further suffix since names already carry
`_seconds`), so /metrics shows exactly what `obsbundle.catalog.app` declares.
"""

from __future__ import annotations

from opentelemetry.metrics import Counter, Histogram, Meter

from collectors.app.exemplars import ExemplarStore
from collectors.app.limits import TenantCap
from collectors.app.tally import Tally
from obsbundle.catalog import Metric
from obsbundle.catalog import app as names
from obsbundle.tenancy import OVERFLOW

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE"})


def method_label(method: object) -> str:
    """The request method, or `_other` for anything non-standard (a client can't add series)."""
    text = str(method or "GET").upper()
    return text if text in METHODS else "_other"


def status_class(status: int) -> str:
    return f"{status // 100}xx" if 100 <= status <= 599 else "5xx"


class AppMetrics:
    """Records requests, inference and cache signals with a capped `tenant_id` attribute."""

    def __init__(self, meter: Meter, max_tenants: int, exemplars: ExemplarStore | None = None) -> None:
        def counter(metric: Metric) -> Counter:
            return meter.create_counter(metric.name.removesuffix("_total"), unit="1", description=metric.help)

        def histogram(metric: Metric) -> Histogram:
            return meter.create_histogram(metric.name, unit="s", description=metric.help)

        overflow = counter(names.TENANT_OVERFLOW)
        self.http_cap = TenantCap(max_tenants, overflow)
        self.inference_cap = TenantCap(max_tenants, overflow)
        self.cache_cap = TenantCap(max_tenants, overflow)
        self._duration = histogram(names.REQUEST_DURATION)
        # The per-request counters are tallies (see tally.py): one SDK measurement per request is left.
        http = ("tenant_id", "route", "method")
        self._requests = Tally(meter, names.REQUESTS, (*http, "status_class"))
        self._errors = Tally(meter, names.ERRORS, http)
        self._response_bytes = Tally(meter, names.RESPONSE_BYTES, http)
        self._active = Tally(meter, names.ACTIVE_REQUESTS, ("tenant_id",), monotonic=False)
        self._inference = histogram(names.INFERENCE_DURATION)
        self._tokens = counter(names.INFERENCE_TOKENS)
        self._hits = counter(names.CACHE_HITS)
        self._misses = counter(names.CACHE_MISSES)
        self._dropped = counter(names.EXPORT_DROPPED)
        self.exemplars = exemplars

    # -- HTTP server -------------------------------------------------------------------------

    def request_started(self, tenant: str) -> str:
        """Count an in-flight request; returns the capped tenant to pass to `request_finished`."""
        capped = self.http_cap.admit(tenant, names.ACTIVE_REQUESTS.name)
        self._active.add(1, capped)
        return capped

    def request_finished(
        self, capped: str, route: str, method: str, status: int, duration: float, response_bytes: int = 0,
        tenant: str | None = None,
    ) -> None:
        """`capped` is what `request_started` returned; `tenant`, the request's tenant by its end
        (`set_tenant` may have named it while the app ran)."""
        self._active.add(-1, capped)
        if tenant is not None and tenant != capped:
            capped = self.http_cap.admit(tenant)  # overflowed points are counted below
        labels = {"tenant_id": capped, "route": route, "method": method}
        if response_bytes:
            self._response_bytes.add(response_bytes, capped, route, method)
        self._duration.record(duration, labels)
        if self.exemplars is not None:
            self.exemplars.observe(labels, duration)
        self._requests.add(1, capped, route, method, status_class(status))
        if status >= 500:
            self._errors.add(1, capped, route, method)
        if capped == OVERFLOW:
            self.http_cap.count_overflow(names.REQUEST_DURATION.name, names.REQUESTS.name)
            if response_bytes:
                self.http_cap.count_overflow(names.RESPONSE_BYTES.name)
            if status >= 500:
                self.http_cap.count_overflow(names.ERRORS.name)

    # -- model inference ---------------------------------------------------------------------

    def inference(
        self, tenant: str, model: str, duration: float, input_tokens: int = 0, output_tokens: int = 0
    ) -> None:
        instruments = [names.INFERENCE_DURATION.name]
        if input_tokens or output_tokens:
            instruments.append(names.INFERENCE_TOKENS.name)
        capped = self.inference_cap.admit(tenant, *instruments)
        self._inference.record(duration, {"tenant_id": capped, "model": model})
        for kind, count in (("input", input_tokens), ("output", output_tokens)):
            if count:
                self._tokens.add(count, {"tenant_id": capped, "model": model, "kind": kind})

    # -- cache -------------------------------------------------------------------------------

    def cache(self, tenant: str, cache: str, hit: bool, count: int = 1) -> None:
        counter, metric = (self._hits, names.CACHE_HITS) if hit else (self._misses, names.CACHE_MISSES)
        capped = self.cache_cap.admit(tenant, metric.name)
        counter.add(count, {"tenant_id": capped, "cache": cache})

    # -- export ------------------------------------------------------------------------------

    def export_dropped(self, signal: str, count: int) -> None:
        """Items an OTLP receiver did not accept (called from the exporters' threads)."""
        self._dropped.add(count, {"signal": signal})
