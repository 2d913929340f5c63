"""HTTP(S) uptime probes of `sources.probes`: the check itself (`check`) and one background
collector per probe (`collector`). `build_collectors` is the one list of them."""

from __future__ import annotations

from collectors.probes.check import Prober, ProbeResult, ProbeSpec, emit, failure_reason
from collectors.probes.collector import ProbeCollector
from collectors.runtime import Collector
from obsbundle.catalog import Catalog
from obsbundle.errors import ConfigError
from obsbundle.settings import Settings
from obsbundle.tenancy import TenantResolver

__all__ = ["ProbeCollector", "ProbeResult", "ProbeSpec", "Prober", "build_collectors", "emit", "failure_reason"]

RESOLVER_KEY = "probes"  # probes share one resolver: a probe's tenant is configured, not discovered


def build_collectors(settings: Settings, catalog: Catalog) -> tuple[list[Collector], dict[str, TenantResolver]]:
    """One collector per probe; ConfigError (exit 2) for an unusable list."""
    entries = settings.sources.probes
    if not entries:
        raise ConfigError("sources.probes: no probes configured")
    names = [e.name for e in entries]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ConfigError(f"sources.probes: duplicate probe name {duplicates[0]}")
    resolver = TenantResolver({}, settings.tenancy.max_tenants)
    collectors: list[Collector] = [ProbeCollector(ProbeSpec.from_source(e, resolver), catalog) for e in entries]
    return collectors, {RESOLVER_KEY: resolver}
