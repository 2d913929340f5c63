"""Server-wide figures (tenant_id="_shared"): up, version, connection saturation, databases, replication.

This collector owns `pg_up`: it is the cheapest round trip, so `pg_up` says whether the server
answers, not whether the heavier per-tenant collectors finished.
"""

from __future__ import annotations

import functools

from collectors.metricset import MetricSet
from collectors.postgres.base import PgCollector
from collectors.postgres.columns import select_list
from collectors.postgres.session import ConnectionSettings
from obsbundle.catalog import Metric
from obsbundle.catalog.postgres import DATABASE_STATS
from obsbundle.tenancy import SHARED, TenantResolver

SERVER_SQL = """
SELECT current_setting('server_version') AS version,
       current_setting('max_connections')::int AS pg_max_connections,
       (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend') AS pg_connections_in_use,
       pg_is_in_recovery() AS pg_in_recovery,
       CASE WHEN NOT pg_is_in_recovery() THEN NULL
            WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END AS pg_replication_lag_seconds
"""

# The columns are the catalog's `pg_database_stats` metrics, each aliased to its metric name.
# Database sizes are in schemas.SizeRefresh: pg_database_size() walks the data directory.
DATABASES_FROM = """
FROM pg_database d LEFT JOIN pg_stat_database s ON s.datid = d.oid
WHERE d.datallowconn AND NOT d.datistemplate
"""

# Includes the shared-catalog row (datid 0), so the ratio covers every block read by the server.
CACHE_SQL = "SELECT sum(blks_hit) AS hits, sum(blks_read) AS reads FROM pg_stat_database"


@functools.cache
def databases_sql(metrics: tuple[Metric, ...]) -> str:
    return f"SELECT d.datname AS database,\n       {select_list(metrics)}{DATABASES_FROM}"


class ServerCollector(PgCollector):
    name = "server"
    budget = 5.0
    up_metric = "pg_up"

    def __init__(self, server: str, settings: ConnectionSettings, resolver: TenantResolver) -> None:
        super().__init__(server, settings)
        self.resolver = resolver

    def collect(self, out: MetricSet, deadline: float) -> None:
        shared = {"tenant_id": SHARED}
        (row,) = self.session.query_dicts(deadline, SERVER_SQL)
        out.set("pg_version_info", 1, {**shared, "version": row["version"]})
        out.set("pg_in_recovery", 1 if row["pg_in_recovery"] else 0, shared)
        max_conn, in_use = row["pg_max_connections"], row["pg_connections_in_use"]
        out.set("pg_max_connections", max_conn, shared)
        out.set("pg_connections_in_use", in_use, shared)
        out.set("pg_connection_saturation_ratio", in_use / max_conn if max_conn else None, shared)
        out.declare_empty(["pg_replication_lag_seconds"])
        lag = row["pg_replication_lag_seconds"]
        if lag is not None:
            out.set("pg_replication_lag_seconds", max(0.0, float(lag)), shared)
        metrics = out.catalog.by_query(DATABASE_STATS)
        for db in self.session.query_dicts(deadline, databases_sql(metrics)):
            # A database-per-tenant server attributes databases by the `database` rule.
            tenant = self.resolver.match("database", db["database"])
            labels = {"tenant_id": self.resolver.admit(tenant) if tenant else SHARED, "database": db["database"]}
            for metric in metrics:
                out.set(metric.name, db[metric.name], labels)
        (cache,) = self.session.query_dicts(deadline, CACHE_SQL)
        hits, reads = cache["hits"], cache["reads"]
        if hits is not None and reads is not None and hits + reads > 0:
            out.set("pg_cache_hit_ratio", float(hits) / float(hits + reads), shared)
