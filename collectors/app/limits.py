"""Tenant cardinality cap for OpenTelemetry instruments.

Each group of instruments (HTTP server, model inference, cache) admits at most `max_tenants`
distinct tenant ids; later tenants are recorded as `tenant_id="_overflow"`, so totals over all
tenants stay exact while the series count stays bounded. Admission is sticky for the life of the
process (a tenant never flaps between its id and `_overflow`) and shared inside a group, so
e.g. a tenant's errors and requests always land under the same label and ratios stay meaningful.
Every point recorded under `_overflow` increments `otel_tenant_overflow_total{instrument}`.
"""

from __future__ import annotations

from opentelemetry.metrics import Counter

from obsbundle.tenancy import OVERFLOW, TenantResolver


class TenantCap:
    """The admission set shared by one group of instruments."""

    def __init__(self, max_tenants: int, overflow_counter: Counter) -> None:
        self._resolver = TenantResolver({}, max_tenants)
        self._overflow = overflow_counter

    def admit(self, tenant: str, *instruments: str) -> str:
        """`tenant` or `_overflow`; counts one overflowed point per named instrument."""
        admitted = self._resolver.admit(tenant)
        if admitted == OVERFLOW:
            self.count_overflow(*instruments)
        return admitted

    def count_overflow(self, *instruments: str) -> None:
        for instrument in instruments:
            self._overflow.add(1, {"instrument": instrument})

    @property
    def admitted(self) -> int:
        return self._resolver.admitted

