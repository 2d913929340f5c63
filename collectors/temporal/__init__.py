"""Temporal: per-tenant workflow counts and task-queue backlog from the frontend API, and the
server's own metrics re-exposed with tenant_id (relabel mode). `build_collectors` is the one list
of the collectors of every configured server."""

from __future__ import annotations

from pathlib import Path

from collectors.runtime import Collector
from collectors.temporal.api import Api
from collectors.temporal.collector import TemporalCollector
from collectors.temporal.refresh import Settings as RefreshSettings
from collectors.temporal.relabel import ServerMetricsRelabel
from obsbundle.catalog import Catalog
from obsbundle.errors import ConfigError
from obsbundle.secrets import register_secret, register_url_secrets
from obsbundle.settings import Settings, TemporalSource
from obsbundle.tenancy import TenantResolver


def _api_key(source: TemporalSource, where: str) -> str | None:
    if not source.api_key_file:
        return None
    try:
        key = Path(source.api_key_file).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{where}.api_key_file: cannot read ({type(exc).__name__})") from None
    if not key:
        raise ConfigError(f"{where}.api_key_file: file is empty")
    register_secret(key)
    return key


def build_collector(source: TemporalSource, settings: Settings, resolver: TenantResolver, catalog: Catalog,
                    where: str = "sources.temporal[0]") -> TemporalCollector:
    """The background collector for one source; raises ConfigError for unusable settings."""
    refresh = RefreshSettings.from_source(source, settings.tenancy.temporal)
    if refresh.mode == "search_attribute" and not refresh.search_attribute:
        raise ConfigError(f"{where}.tenancy: search_attribute mode needs tenancy.temporal.search_attribute")
    if refresh.search_attribute and not refresh.search_attribute.replace("_", "").isalnum():
        raise ConfigError("tenancy.temporal.search_attribute: must be a plain attribute name")
    rule = {"namespace": "namespace", "task_queue": "task_queue"}.get(refresh.mode)
    if rule and not resolver.has_rule(rule):
        raise ConfigError(f"{where}.tenancy: {refresh.mode} mode needs the tenancy.temporal.{rule} rule")
    api = Api(
        source.address,
        api_key=_api_key(source, where),
        tls=source.tls,
        visibility_rps=source.visibility_rps,
        api_rps=source.api_rps,
        concurrency=source.concurrency,
        call_timeout=source.call_timeout,
    )
    return TemporalCollector(refresh, api, resolver, catalog, source.refresh_interval)


def build_collectors(settings: Settings, catalog: Catalog) -> tuple[list[Collector], dict[str, TenantResolver]]:
    """Collectors and per-server resolvers; ConfigError (exit 2) for an unusable source."""
    sources = settings.sources.temporal
    if not sources:
        raise ConfigError("sources.temporal: no Temporal server configured")
    names = [s.name for s in sources]
    if len(set(names)) != len(names):
        raise ConfigError("sources.temporal: server names must be unique")
    collectors: list[Collector] = []
    resolvers: dict[str, TenantResolver] = {}
    for index, source in enumerate(sources):
        where = f"sources.temporal[{index}]"
        resolver = TenantResolver.for_source(settings.tenancy, "temporal")
        collector = build_collector(source, settings, resolver, catalog, where)
        collectors.append(collector)
        resolvers[source.name] = resolver
        if source.metrics_url:
            register_url_secrets(source.metrics_url)
            collectors.append(ServerMetricsRelabel(
                source.metrics_url, collector, catalog, collector.interval, timeout=source.call_timeout * 6,
            ))
    return collectors, resolvers
