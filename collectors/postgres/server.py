"""Server-wide figures (tenant_id="_shared"): up, version, connection saturation, databases, replication.

This collector owns `pg_up`: it is the cheapest round trip, so `pg_up` says whether the server
answers, not whether the heavier per-tenant collectors finished.
"""

from __future__ import annotations

from collectors.metricset import MetricSet
from collectors.postgres.base import PgCollector
from collectors.postgres.session import ConnectionSettings
from obsbundle.tenancy import SHARED, TenantResolver

SERVER_SQL = """
SELECT current_setting('server_version'),
       current_setting('max_connections')::int,
       (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'),
       pg_is_in_recovery(),
       CASE WHEN NOT pg_is_in_recovery() THEN NULL
            WHEN pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
            ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp()) END
"""

# Database sizes are in schemas.SizeRefresh: pg_database_size() walks the data directory.
DATABASES_SQL = """
SELECT d.datname, s.xact_commit, s.xact_rollback, s.deadlocks
FROM pg_database d LEFT JOIN pg_stat_database s ON s.datid = d.oid
WHERE d.datallowconn AND NOT d.datistemplate
"""

# Includes the shared-catalog row (datid 0), so the ratio covers every block read by the server.
CACHE_SQL = "SELECT sum(blks_hit), sum(blks_read) FROM pg_stat_database"


class ServerCollector(PgCollector):
    name = "server"
    budget = 5.0
    up_metric = "pg_up"

    def __init__(self, server: str, settings: ConnectionSettings, resolver: TenantResolver) -> None:
        super().__init__(server, settings)
        self.resolver = resolver

    def collect(self, out: MetricSet, deadline: float) -> None:
        shared = {"tenant_id": SHARED}
        ((version, max_conn, in_use, recovery, lag),) = self.session.query(deadline, SERVER_SQL)
        out.set("pg_version_info", 1, {**shared, "version": version})
        out.set("pg_in_recovery", 1 if recovery else 0, shared)
        out.set("pg_max_connections", max_conn, shared)
        out.set("pg_connections_in_use", in_use, shared)
        out.set("pg_connection_saturation_ratio", in_use / max_conn if max_conn else None, shared)
        out.declare_empty(["pg_replication_lag_seconds"])
        if lag is not None:
            out.set("pg_replication_lag_seconds", max(0.0, float(lag)), shared)
        for datname, commits, rollbacks, deadlocks in self.session.query(deadline, DATABASES_SQL):
            # A database-per-tenant server attributes databases by the `database` rule.
            tenant = self.resolver.match("database", datname)
            labels = {"tenant_id": self.resolver.admit(tenant) if tenant else SHARED, "database": datname}
            out.set("pg_database_commits_total", commits, labels)
            out.set("pg_database_rollbacks_total", rollbacks, labels)
            out.set("pg_database_deadlocks_total", deadlocks, labels)
        ((hits, reads),) = self.session.query(deadline, CACHE_SQL)
        if hits is not None and reads is not None and hits + reads > 0:
            out.set("pg_cache_hit_ratio", float(hits) / float(hits + reads), shared)
