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

import functools
import time
from collections.abc import Sequence
from dataclasses import replace

from collectors.metricset import MetricSet
from collectors.postgres.base import PgCollector
from collectors.postgres.columns import fold, select_list
from collectors.postgres.session import ConnectionSettings, Session
from collectors.postgres.tenants import USER_SCHEMAS, SchemaTenants
from collectors.runtime import BackgroundRefresh
from obsbundle.catalog import Catalog, Metric
from obsbundle.catalog.postgres import SCHEMA_STATS
from obsbundle.tenancy import SHARED

# relkind r = table, p = partitioned table, m = materialized view (a table for statistics, not
# counted as one), i = index. The columns are the catalog's `pg_schema_stats` metrics, each
# aliased to its metric name (obsbundle/catalog/postgres.py declares their SQL).
TABLE = "c.relkind <> 'i'"
STATS_FROM = f"""
FROM pg_namespace n
LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p', 'm', 'i')
WHERE {USER_SCHEMAS}
GROUP BY n.nspname
"""


@functools.cache
def stats_sql(metrics: tuple[Metric, ...]) -> str:
    """One row per schema: its name, then one column per metric, named after the metric."""
    return f"SELECT n.nspname AS schema,\n       {select_list(metrics, table=TABLE)}{STATS_FROM}"


# Sizing a table takes an AccessShareLock, which would queue behind an ALTER TABLE (granted or
# waiting AccessExclusiveLock) until lock_timeout; such tables are sized from relpages instead
# (the main fork as of the last VACUUM/ANALYZE), so one tenant's migration never fails the refresh.
SIZES_SQL = f"""
WITH exclusive AS (
    SELECT relation FROM pg_locks
    WHERE locktype = 'relation' AND mode = 'AccessExclusiveLock'
      AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
)
SELECT n.nspname AS schema,
       coalesce(sum(CASE WHEN c.oid IN (SELECT relation FROM exclusive)
                         THEN c.relpages::bigint * current_setting('block_size')::bigint
                         ELSE pg_total_relation_size(c.oid) END), 0) AS pg_tenant_schema_size_bytes
FROM pg_namespace n
LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p', 'm')
WHERE {USER_SCHEMAS}
GROUP BY n.nspname
"""

DATABASE_SIZES_SQL = """
SELECT datname AS database, pg_database_size(oid) AS pg_database_size_bytes
FROM pg_database WHERE datallowconn AND NOT datistemplate
"""


class SchemaCollector(PgCollector):
    """Tables, rows, scans and vacuum/analyze ages per tenant, on every scrape."""

    name = "schemas"
    budget = 8.0

    def __init__(self, server: str, settings: ConnectionSettings, tenants: SchemaTenants) -> None:
        super().__init__(server, settings)
        self.tenants = tenants

    def collect(self, out: MetricSet, deadline: float) -> None:
        """One row per schema in, one line per tenant and metric out: rows stay tuples and each
        metric's column becomes its family's text in one pass (MetricSet.set_columns), so at 10,000
        tenants the scrape costs little more than the query itself."""
        table = self.tenants.load(self.session, deadline)
        metrics = out.catalog.by_query(SCHEMA_STATS)
        names, rows = self.session.run(deadline, stats_sql(metrics))
        out.declare_empty(m.name for m in metrics)
        column = {name: i for i, name in enumerate(names)}  # read by column name, never position
        schema = column["schema"]
        tenants = self.tenants.tenants([row[schema] for row in rows], table)
        if len(set(tenants)) < len(tenants):  # several schemas per tenant: fold them by `combine`
            by_name = [dict(zip(names, row, strict=True)) for row in rows]
            folded = fold(metrics, zip(tenants, by_name, strict=True))
            keys = sorted({tenant for _, tenant in folded})
            out.set_columns("tenant_id", keys, {m.name: [folded.get((m.name, t)) for t in keys] for m in metrics})
            return
        columns: dict[str, Sequence[float | None]] = {}
        for metric in metrics:
            i = column[metric.name]
            if metric.combine == "max":  # as fold() does for one row: ages never below 0
                columns[metric.name] = [None if (v := row[i]) is None else max(0.0, v) for row in rows]
            else:
                columns[metric.name] = [row[i] for row in rows]
        out.set_columns("tenant_id", tenants, columns)


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
        # The sizes query stats every file: about 24 s at 80,000 tables. Under the scrape path's
        # statement_timeout (5 s) it could never finish there, and would retry every 5 s for nothing.
        self.session = Session(replace(settings, statement_timeout=max(settings.statement_timeout, refresh_budget)))
        self.tenants = tenants
        self.refresh_budget = refresh_budget

    def _refresh_sizes(self, out: MetricSet) -> None:
        deadline = time.monotonic() + self.refresh_budget
        table = self.tenants.load(self.session, deadline)
        out.declare_empty(["pg_tenant_schema_size_bytes", "pg_database_size_bytes"])
        for row in self.session.query_dicts(deadline, SIZES_SQL):
            labels = {"tenant_id": self.tenants.tenant(row["schema"], table)}
            out.add("pg_tenant_schema_size_bytes", row["pg_tenant_schema_size_bytes"], labels)
        resolver = self.tenants.resolver
        for row in self.session.query_dicts(deadline, DATABASE_SIZES_SQL):
            datname = row["database"]
            tenant = resolver.match("database", datname)  # database-per-tenant servers
            labels = {"tenant_id": resolver.admit(tenant) if tenant else SHARED, "database": datname}
            out.set("pg_database_size_bytes", row["pg_database_size_bytes"], labels)
