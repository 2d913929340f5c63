"""Per-tenant storage and table activity, aggregated per schema inside PostgreSQL.

One query groups pg_class by schema, calling the pg_stat_get_* functions directly (the
pg_stat_user_tables view joins pg_index and groups per table first, which costs more than the
whole scrape budget at 10,000 tables). So the exporter handles one row per schema however many
tables there are, and a tenant costs the same series with 8 tables or 800.

Sizes are different: pg_total_relation_size() stats every file of every relation (about 0.6 s
for 8,000 tables on a small machine), and pg_database_size() walks the whole data directory.
They change slowly, so `SizeRefresh` computes them in the background every `size_interval` and
scrapes serve the last complete result (`obsbundle_collector_data_age_seconds` says how old).
"""

from __future__ import annotations

import time

from collectors.metricset import MetricSet
from collectors.postgres.base import PgCollector
from collectors.postgres.session import ConnectionSettings, Session
from collectors.postgres.tenants import USER_SCHEMAS, SchemaTenants
from exporters.runtime import BackgroundRefresh
from obsbundle.catalog import Catalog
from obsbundle.tenancy import SHARED

# relkind r = table, p = partitioned table, m = materialized view (a table for statistics, not
# counted as one), i = index (its scans are the schema's index scans, as in pg_stat_user_tables).
TABLE = "c.relkind <> 'i'"
STATS_SQL = f"""
SELECT n.nspname,
       count(c.oid) FILTER (WHERE c.relkind IN ('r', 'p'))::float8,
       coalesce(sum(pg_stat_get_live_tuples(c.oid)) FILTER (WHERE {TABLE}), 0)::float8,
       coalesce(sum(pg_stat_get_dead_tuples(c.oid)) FILTER (WHERE {TABLE}), 0)::float8,
       coalesce(sum(pg_stat_get_numscans(c.oid)) FILTER (WHERE {TABLE}), 0)::float8,
       coalesce(sum(pg_stat_get_numscans(c.oid)) FILTER (WHERE c.relkind = 'i'), 0)::float8,
       coalesce(sum(pg_stat_get_tuples_inserted(c.oid)) FILTER (WHERE {TABLE}), 0)::float8,
       coalesce(sum(pg_stat_get_tuples_updated(c.oid)) FILTER (WHERE {TABLE}), 0)::float8,
       coalesce(sum(pg_stat_get_tuples_deleted(c.oid)) FILTER (WHERE {TABLE}), 0)::float8,
       extract(epoch FROM now() - min(greatest(pg_stat_get_last_vacuum_time(c.oid),
                                               pg_stat_get_last_autovacuum_time(c.oid)))
                                  FILTER (WHERE {TABLE}))::float8,
       extract(epoch FROM now() - min(greatest(pg_stat_get_last_analyze_time(c.oid),
                                               pg_stat_get_last_autoanalyze_time(c.oid)))
                                  FILTER (WHERE {TABLE}))::float8
FROM pg_namespace n
LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p', 'm', 'i')
WHERE {USER_SCHEMAS}
GROUP BY n.nspname
"""

# Sizing a table takes an AccessShareLock, which would queue behind an ALTER TABLE (granted or
# waiting AccessExclusiveLock) until lock_timeout; such tables are sized from relpages instead
# (the main fork as of the last VACUUM/ANALYZE), so one tenant's migration never fails the refresh.
SIZES_SQL = f"""
WITH exclusive AS (
    SELECT relation FROM pg_locks
    WHERE locktype = 'relation' AND mode = 'AccessExclusiveLock'
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
)
SELECT n.nspname,
       coalesce(sum(CASE WHEN c.oid IN (SELECT relation FROM exclusive)
                         THEN c.relpages::bigint * current_setting('block_size')::bigint
                         ELSE pg_total_relation_size(c.oid) END), 0)
FROM pg_namespace n
LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p', 'm')
WHERE {USER_SCHEMAS}
GROUP BY n.nspname
"""

DATABASE_SIZES_SQL = """
SELECT datname, pg_database_size(oid) FROM pg_database WHERE datallowconn AND NOT datistemplate
"""

COLUMNS = (
    "pg_tenant_tables",
    "pg_tenant_live_rows",
    "pg_tenant_dead_rows",
    "pg_tenant_seq_scans_total",
    "pg_tenant_index_scans_total",
    "pg_tenant_rows_inserted_total",
    "pg_tenant_rows_updated_total",
    "pg_tenant_rows_deleted_total",
)
AGES = ("pg_tenant_oldest_vacuum_age_seconds", "pg_tenant_oldest_analyze_age_seconds")


class SchemaCollector(PgCollector):
    """Tables, rows, scans and vacuum/analyze ages per tenant, on every scrape."""

    name = "schemas"
    budget = 8.0

    def __init__(self, server: str, settings: ConnectionSettings, tenants: SchemaTenants) -> None:
        super().__init__(server, settings)
        self.tenants = tenants

    def collect(self, out: MetricSet, deadline: float) -> None:
        table = self.tenants.load(self.session, deadline)
        rows = self.session.query(deadline, STATS_SQL)
        out.declare_empty((*COLUMNS, *AGES))
        ages: dict[tuple[str, str], float] = {}
        tenant_of = self.tenants.tenant
        for schema, *values in rows:
            labels = {"tenant_id": tenant_of(schema, table)}
            for name, value in zip(COLUMNS, values, strict=False):
                out.add(name, value, labels)
            for name, value in zip(AGES, values[len(COLUMNS):], strict=True):
                if value is not None:  # the oldest across a tenant's schemas, not a sum
                    key = (name, labels["tenant_id"])
                    ages[key] = max(ages.get(key, 0.0), max(0.0, float(value)))
        for (name, tenant), age in ages.items():
            out.set(name, age, {"tenant_id": tenant})


class SizeRefresh(BackgroundRefresh):
    """Schema and database sizes, refreshed in the background every `interval` seconds."""

    def __init__(
        self,
        server: str,
        settings: ConnectionSettings,
        tenants: SchemaTenants,
        catalog: Catalog,
        interval: float,
        refresh_budget: float = 60.0,
    ) -> None:
        # retry soon after a failure (a server restart), not a whole size_interval later
        super().__init__("sizes", server, self._refresh_sizes, catalog, interval, retry_interval=5.0)
        self.session = Session(settings)
        self.tenants = tenants
        self.refresh_budget = refresh_budget

    def _refresh_sizes(self, out: MetricSet) -> None:
        deadline = time.monotonic() + self.refresh_budget
        table = self.tenants.load(self.session, deadline)
        out.declare_empty(["pg_tenant_schema_size_bytes", "pg_database_size_bytes"])
        for schema, size in self.session.query(deadline, SIZES_SQL):
            out.add("pg_tenant_schema_size_bytes", size, {"tenant_id": self.tenants.tenant(schema, table)})
        resolver = self.tenants.resolver
        for datname, size in self.session.query(deadline, DATABASE_SIZES_SQL):
            tenant = resolver.match("database", datname)  # database-per-tenant servers
            labels = {"tenant_id": resolver.admit(tenant) if tenant else SHARED, "database": datname}
            out.set("pg_database_size_bytes", size, labels)
