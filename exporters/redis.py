"""`obsbundle exporter redis`: a server collector and a keyspace scanner per `sources.redis` entry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collectors.redis.connection import RedisTarget
from collectors.redis.keyspace import KeyspaceScanner, ScanSettings
from collectors.redis.server import ServerCollector
from exporters.runtime import Collector
from obsbundle.catalog import static_catalog
from obsbundle.errors import ConfigError
from obsbundle.tenancy import TenantResolver


def build(config: Mapping[str, Any]) -> tuple[list[Collector], dict[str, TenantResolver]]:
    """Collectors and per-server resolvers; ConfigError (exit 2) for an unusable source.

    Nothing here talks to Redis: a source that is down at start-up is reported as `redis_up 0`
    by the running exporter, not as a start-up failure.
    """
    sources = config.get("sources", {}).get("redis") or []
    if not sources:
        raise ConfigError("sources.redis: no Redis source configured")
    key_rule = (config.get("tenancy", {}).get("redis") or {}).get("key")
    catalog = static_catalog()
    collectors: list[Collector] = []
    resolvers: dict[str, TenantResolver] = {}
    for i, source in enumerate(sources):
        path = f"sources.redis[{i}]"
        target = RedisTarget.from_config(source, path)
        if target.name in resolvers:
            raise ConfigError(f"{path}.name: duplicate source name {target.name!r}")
        resolver = resolvers[target.name] = TenantResolver.from_config(config, "redis")
        settings = ScanSettings.from_config(source.get("scan"))
        scanner = KeyspaceScanner(target, resolver, key_rule, settings, catalog)
        collectors += [ServerCollector(target, resolver), scanner]
    return collectors, resolvers
