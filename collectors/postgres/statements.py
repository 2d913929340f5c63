"""Per-tenant statement calls and execution time from pg_stat_statements, by the executing role.

The extension is optional: when it is not installed in the scraped database (or not preloaded),
`pg_stat_statements_enabled` is 0 and the collector succeeds with no tenant series.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from collectors.metricset import MetricSet
from collectors.postgres.base import PgCollector
from collectors.postgres.session import ConnectionSettings
from obsbundle.tenancy import SHARED, TenantResolver

EXTENSION_SQL = """
SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = 'pg_stat_statements'
"""

STATEMENTS_SQL = """
SELECT r.rolname AS role,
       sum(s.calls) AS pg_tenant_statements_calls_total,
       sum(s.total_exec_time) / 1000.0 AS pg_tenant_statements_exec_time_seconds_total
FROM {}.pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid
GROUP BY r.rolname
"""

METRICS = ("pg_tenant_statements_calls_total", "pg_tenant_statements_exec_time_seconds_total")


class StatementsCollector(PgCollector):
    name = "statements"
    budget = 5.0

    def __init__(
        self, server: str, settings: ConnectionSettings, resolver: TenantResolver, enabled: bool
    ) -> None:
        super().__init__(server, settings)
        self.resolver = resolver
        self.enabled = enabled

    def collect(self, out: MetricSet, deadline: float) -> None:
        out.declare_empty(METRICS)
        shared = {"tenant_id": SHARED}
        found = self.session.query(deadline, EXTENSION_SQL) if self.enabled else []
        if not found:
            out.set("pg_stat_statements_enabled", 0, shared)
            return
        query = sql.SQL(STATEMENTS_SQL).format(sql.Identifier(found[0][0]))
        try:
            rows = self.session.query_dicts(deadline, query)
        except psycopg.errors.ObjectNotInPrerequisiteState:
            # Installed but not in shared_preload_libraries: the view exists but cannot be read.
            out.set("pg_stat_statements_enabled", 0, shared)
            return
        out.set("pg_stat_statements_enabled", 1, shared)
        for row in rows:
            labels = {"tenant_id": self.resolver.resolve("role", row["role"])}
            for name in METRICS:
                out.add(name, row[name], labels)
