"""`obsbundle exporter postgres`: builds the collectors for every `sources.postgres` entry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from collectors.postgres.activity import ActivityCollector
from collectors.postgres.custom import CustomQueryCollector
from collectors.postgres.pgbouncer import PgBouncerCollector
from collectors.postgres.schemas import SchemaCollector, SizeRefresh
from collectors.postgres.server import ServerCollector
from collectors.postgres.session import ConnectionSettings
from collectors.postgres.statements import StatementsCollector
from collectors.postgres.tenants import SchemaTenants
from exporters.runtime import Collector
from obsbundle.catalog import catalog_for
from obsbundle.config import parse_duration
from obsbundle.errors import ConfigError
from obsbundle.tenancy import TenantResolver


def build(config: Mapping[str, Any]) -> tuple[list[Collector], dict[str, TenantResolver]]:
    """Collectors and per-server tenant resolvers; ConfigError (exit 2) for an unusable source."""
    sources = config.get("sources", {}).get("postgres") or []
    if not sources:
        raise ConfigError("sources.postgres: no PostgreSQL source configured")
    tenants_table = (config.get("tenancy", {}).get("postgres") or {}).get("tenants_table")
    collectors: list[Collector] = []
    catalog = catalog_for(config)
    resolvers: dict[str, TenantResolver] = {}
    for i, source in enumerate(sources):
        path = f"sources.postgres[{i}]"
        name = source["name"]
        if name in resolvers:
            raise ConfigError(f"{path}.name: duplicate source name {name!r}")
        settings = ConnectionSettings.from_config(
            source["dsn"], path, source.get("password_file"),
            source.get("connect_timeout", "3s"), source.get("statement_timeout", "5s"),
        )
        resolver = resolvers[name] = TenantResolver.from_config(config, "postgres")
        tenants = SchemaTenants(resolver, tenants_table)
        collectors += [
            ServerCollector(name, settings, resolver),
            SchemaCollector(name, settings, tenants),
            SizeRefresh(name, settings, tenants, catalog, parse_duration(source.get("size_interval", "60s"))),
            ActivityCollector(name, settings, resolver),
            StatementsCollector(name, settings, resolver, bool(source.get("pg_stat_statements", True))),
        ]
        queries = source.get("custom_queries", [])
        seen: set[str] = set()
        for j, query in enumerate(queries):
            if query["name"] in seen:
                raise ConfigError(f"{path}.custom_queries[{j}].name: duplicate query name {query['name']!r}")
            seen.add(query["name"])
        collectors += [CustomQueryCollector(name, settings, resolver, q) for q in queries]
        bouncer = source.get("pgbouncer")
        if bouncer:
            bouncer_settings = ConnectionSettings.from_config(
                bouncer["dsn"], f"{path}.pgbouncer", bouncer.get("password_file"),
                source.get("connect_timeout", "3s"), source.get("statement_timeout", "5s"),
                session_options=False,
            )
            collectors.append(PgBouncerCollector(name, bouncer_settings, resolver))
    return collectors, resolvers
