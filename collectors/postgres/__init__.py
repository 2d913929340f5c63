"""PostgreSQL and PgBouncer collectors for `obsbundle exporter postgres`.

Each collector owns one connection (`session.Session`) and one concern: `server` (pg_up and the
_shared figures), `schemas` (per-tenant table statistics), `sizes` (schema and database sizes,
refreshed in the background), `activity` (per-tenant sessions), `statements` (pg_stat_statements),
one `custom:<name>` per custom query, and `pgbouncer` when a PgBouncer admin DSN is configured.
`build_collectors` is the one list of them.
"""

from __future__ import annotations

from collectors.postgres.activity import ActivityCollector
from collectors.postgres.custom import CustomQueryCollector
from collectors.postgres.pgbouncer import PgBouncerCollector
from collectors.postgres.schemas import SchemaCollector, SizeRefresh
from collectors.postgres.server import ServerCollector
from collectors.postgres.session import ConnectionSettings
from collectors.postgres.statements import StatementsCollector
from collectors.postgres.tenants import SchemaTenants
from collectors.runtime import Collector
from obsbundle.catalog import Catalog
from obsbundle.errors import ConfigError
from obsbundle.settings import PostgresSource, Settings
from obsbundle.tenancy import TenantResolver


def source_collectors(
    source: PostgresSource, path: str, settings: Settings, resolver: TenantResolver, catalog: Catalog
) -> list[Collector]:
    """Every collector of one `sources.postgres[]` entry; ConfigError for an unusable one."""
    name = source.name
    connection = ConnectionSettings.from_source(source, path)
    tenants = SchemaTenants(resolver, settings.tenancy.postgres.tenants_table)
    collectors: list[Collector] = [
        ServerCollector(name, connection, resolver),
        SchemaCollector(name, connection, tenants),
        SizeRefresh(name, connection, tenants, catalog, source.size_interval),
        ActivityCollector(name, connection, resolver),
        StatementsCollector(name, connection, resolver, source.pg_stat_statements),
    ]
    seen: set[str] = set()
    for j, query in enumerate(source.custom_queries):
        if query.name in seen:
            raise ConfigError(f"{path}.custom_queries[{j}].name: duplicate query name {query.name!r}")
        seen.add(query.name)
    collectors += [CustomQueryCollector(name, connection, resolver, q) for q in source.custom_queries]
    if source.pgbouncer:
        bouncer = ConnectionSettings.for_pgbouncer(source, source.pgbouncer, path)
        collectors.append(PgBouncerCollector(name, bouncer, resolver))
    return collectors


def build_collectors(settings: Settings, catalog: Catalog) -> tuple[list[Collector], dict[str, TenantResolver]]:
    """Collectors and per-server tenant resolvers; ConfigError (exit 2) for an unusable source."""
    if not settings.sources.postgres:
        raise ConfigError("sources.postgres: no PostgreSQL source configured")
    collectors: list[Collector] = []
    resolvers: dict[str, TenantResolver] = {}
    for i, source in enumerate(settings.sources.postgres):
        path = f"sources.postgres[{i}]"
        if source.name in resolvers:
            raise ConfigError(f"{path}.name: duplicate source name {source.name!r}")
        resolver = resolvers[source.name] = TenantResolver.for_source(settings.tenancy, "postgres")
        collectors += source_collectors(source, path, settings, resolver, catalog)
    return collectors, resolvers
