"""`obsbundle exporter probes`: uptime checks of `sources.probes`, each in its own refresh thread.

Each probe runs on its own interval via `BackgroundRefresh`, so a slow endpoint never delays
another probe or a scrape; /metrics serves every probe's last completed check.
"""

from __future__ import annotations

from typing import Any

from collectors.metricset import MetricSet
from collectors.probes import Prober, ProbeSpec, emit
from exporters.runtime import BackgroundRefresh, Collector
from obsbundle.catalog import catalog_for
from obsbundle.errors import ConfigError
from obsbundle.tenancy import TenantResolver

RESOLVER_KEY = "probes"


class ProbeCollector(BackgroundRefresh):
    """One probe: checks on its interval, serves the last result; closes its HTTP client."""

    def __init__(self, spec: ProbeSpec, catalog: Any) -> None:
        self.spec = spec
        self.prober = Prober(spec)
        super().__init__(
            name="probe",
            server=spec.name,
            refresh=self._refresh,
            catalog=catalog,
            interval=spec.interval,
        )

    def _refresh(self, out: MetricSet) -> None:
        emit(self.spec, self.prober.check(), out)

    def close(self) -> None:
        super().close()
        self.prober.close()


def build(config: dict[str, Any]) -> tuple[list[Collector], dict[str, TenantResolver]]:
    entries = (config.get("sources") or {}).get("probes") or []
    if not entries:
        raise ConfigError("sources.probes: no probes configured")
    names = [e["name"] for e in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"sources.probes: duplicate probe name {duplicates[0]}")
    resolver = TenantResolver({}, int((config.get("tenancy") or {}).get("max_tenants", 5000)))
    catalog = catalog_for(config)
    collectors: list[Collector] = [ProbeCollector(ProbeSpec.from_config(e, resolver), catalog) for e in entries]
    return collectors, {RESOLVER_KEY: resolver}
