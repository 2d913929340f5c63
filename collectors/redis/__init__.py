"""Redis collectors for `obsbundle exporter redis`: `server` (INFO and friends on every scrape,
drives redis_up) and `keyspace` (the background per-tenant SCAN). `build_collectors` is the one
list of them."""

from __future__ import annotations

from collectors.redis.connection import RedisTarget
from collectors.redis.keyspace import KeyspaceScanner
from collectors.redis.server import ServerCollector
from collectors.runtime import Collector
from obsbundle.catalog import Catalog
from obsbundle.errors import ConfigError
from obsbundle.settings import Settings
from obsbundle.tenancy import TenantResolver


def build_collectors(settings: Settings, catalog: Catalog) -> tuple[list[Collector], dict[str, TenantResolver]]:
    """Collectors and per-server resolvers; ConfigError (exit 2) for an unusable source.

    Nothing here talks to Redis: a source that is down at start-up is reported as `redis_up 0`
    by the running exporter, not as a start-up failure.
    """
    if not settings.sources.redis:
        raise ConfigError("sources.redis: no Redis source configured")
    collectors: list[Collector] = []
    resolvers: dict[str, TenantResolver] = {}
    for i, source in enumerate(settings.sources.redis):
        path = f"sources.redis[{i}]"
        target = RedisTarget.from_source(source, path)
        if target.name in resolvers:
            raise ConfigError(f"{path}.name: duplicate source name {target.name!r}")
        resolver = resolvers[target.name] = TenantResolver.for_source(settings.tenancy, "redis")
        scanner = KeyspaceScanner(target, resolver, settings.tenancy.redis.key, source.scan, catalog)
        collectors += [ServerCollector(target, resolver), scanner]
    return collectors, resolvers
