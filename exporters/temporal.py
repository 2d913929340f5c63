"""`obsbundle exporter temporal`: one background-refresh collector per configured Temporal server,
plus a background relabel collector for servers with `metrics_url`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from collectors.temporal.api import Api
from collectors.temporal.collector import TemporalCollector
from collectors.temporal.refresh import Settings
from collectors.temporal.relabel import ServerMetricsRelabel
from exporters.runtime import Collector
from obsbundle.catalog import catalog_for
from obsbundle.config import parse_duration
from obsbundle.errors import ConfigError
from obsbundle.secrets import register_secret, register_url_secrets
from obsbundle.tenancy import TenantResolver


def _api_key(source: dict[str, Any], where: str) -> str | None:
    path = source.get("api_key_file")
    if not path:
        return None
    try:
        key = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{where}.api_key_file: cannot read ({type(exc).__name__})") from None
    if not key:
        raise ConfigError(f"{where}.api_key_file: file is empty")
    register_secret(key)
    return key


def settings_for(source: dict[str, Any], config: dict[str, Any]) -> Settings:
    """The refresh settings of one `sources.temporal[]` entry (validated config)."""
    attribute = (config.get("tenancy", {}).get("temporal") or {}).get("search_attribute")
    return Settings(
        server=source["name"],
        mode=source.get("tenancy", "namespace"),
        namespaces=list(source.get("namespaces", [])),
        task_queues=list(source.get("task_queues", [])),
        closed_window=parse_duration(source.get("closed_window", "1h")),
        search_attribute=attribute,
        page_size=int(source.get("discovery_page_size", 1000)),
        max_pages=int(source.get("discovery_max_pages", 2)),
        max_task_queues=int(source.get("max_task_queues", 50)),
    )


def build_collector(source: dict[str, Any], config: dict[str, Any], resolver: TenantResolver,
                    where: str = "sources.temporal[0]") -> TemporalCollector:
    """The background collector for one source; raises ConfigError for unusable settings."""
    settings = settings_for(source, config)
    if settings.mode == "search_attribute" and not settings.search_attribute:
        raise ConfigError(f"{where}.tenancy: search_attribute mode needs tenancy.temporal.search_attribute")
    if settings.search_attribute and not settings.search_attribute.replace("_", "").isalnum():
        raise ConfigError("tenancy.temporal.search_attribute: must be a plain attribute name")
    rule = {"namespace": "namespace", "task_queue": "task_queue"}.get(settings.mode)
    if rule and not resolver.has_rule(rule):
        raise ConfigError(f"{where}.tenancy: {settings.mode} mode needs the tenancy.temporal.{rule} rule")
    api = Api(
        source["address"],
        api_key=_api_key(source, where),
        tls=bool(source.get("tls", False)),
        visibility_rps=float(source.get("visibility_rps", 5)),
        api_rps=float(source.get("api_rps", 100)),
        concurrency=int(source.get("concurrency", 4)),
        call_timeout=parse_duration(source.get("call_timeout", "5s")),
    )
    interval = parse_duration(source.get("refresh_interval", "30s"))
    return TemporalCollector(settings, api, resolver, catalog_for(config), interval)


def build(config: dict[str, Any]) -> tuple[list[Collector], dict[str, TenantResolver]]:
    sources = config.get("sources", {}).get("temporal", [])
    if not sources:
        raise ConfigError("sources.temporal: no Temporal server configured")
    names = [s["name"] for s in sources]
    if len(set(names)) != len(names):
        raise ConfigError("sources.temporal: server names must be unique")
    collectors: list[Collector] = []
    resolvers: dict[str, TenantResolver] = {}
    for index, source in enumerate(sources):
        where = f"sources.temporal[{index}]"
        resolver = TenantResolver.from_config(config, "temporal")
        collector = build_collector(source, config, resolver, where)
        collectors.append(collector)
        resolvers[source["name"]] = resolver
        if source.get("metrics_url"):
            register_url_secrets(source["metrics_url"])
            collectors.append(ServerMetricsRelabel(
                source["metrics_url"], collector, catalog_for(config), collector.interval,
                timeout=parse_duration(source.get("call_timeout", "5s")) * 6,
            ))
    return collectors, resolvers
