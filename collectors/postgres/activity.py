"""Per-tenant sessions from pg_stat_activity, attributed by role, then application_name.

PostgreSQL groups the sessions (by role, application_name and state), so the exporter sees a few
rows however many connections are open. A tenant with at least one session gets all four states
(zeros included) and both ages; a tenant with none gets no series, which keeps a thousand idle
tenants from costing 6,000 series of zeros (`sum(...) or vector(0)` in PromQL where it matters).
"""

from __future__ import annotations

from collectors.metricset import MetricSet
from collectors.postgres.base import PgCollector
from collectors.postgres.session import ConnectionSettings
from obsbundle.catalog.postgres import CONNECTION_STATES
from obsbundle.tenancy import TenantResolver

ACTIVITY_SQL = """
SELECT usename AS role,
       application_name,
       CASE WHEN wait_event_type = 'Lock' THEN 'waiting'
            WHEN state = 'idle' THEN 'idle'
            WHEN state LIKE 'idle in transaction%' THEN 'idle_in_transaction'
            ELSE 'active' END AS state,
       count(*) AS pg_tenant_connections,
       extract(epoch FROM max(clock_timestamp() - xact_start)) AS pg_tenant_oldest_transaction_age_seconds,
       extract(epoch FROM max(clock_timestamp() - query_start) FILTER (WHERE state = 'active'))
           AS pg_tenant_oldest_query_age_seconds
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
GROUP BY 1, 2, 3
"""

AGE_METRICS = ("pg_tenant_oldest_transaction_age_seconds", "pg_tenant_oldest_query_age_seconds")


class ActivityCollector(PgCollector):
    """Connections by state and the oldest transaction / query age per tenant."""

    name = "activity"
    budget = 5.0

    def __init__(self, server: str, settings: ConnectionSettings, resolver: TenantResolver) -> None:
        super().__init__(server, settings)
        self.resolver = resolver

    def collect(self, out: MetricSet, deadline: float) -> None:
        rows = self.session.query_dicts(deadline, ACTIVITY_SQL)
        known: set[str] = set()
        counts: dict[tuple[str, str], float] = {}
        ages: dict[tuple[str, str], float] = {}
        resolve = self.resolver.resolve_first
        for row in rows:
            tenant = resolve([("role", row["role"]), ("application_name", row["application_name"])])
            known.add(tenant)
            key = (tenant, row["state"])
            counts[key] = counts.get(key, 0.0) + row["pg_tenant_connections"]
            for name in AGE_METRICS:
                age = row[name]
                if age is not None:
                    ages[(name, tenant)] = max(ages.get((name, tenant), 0.0), float(age))
        out.declare_empty(["pg_tenant_connections", *AGE_METRICS])
        for tenant in known:
            for state in CONNECTION_STATES:
                out.set("pg_tenant_connections", counts.get((tenant, state), 0.0),
                        {"tenant_id": tenant, "state": state})
            for name in AGE_METRICS:
                out.set(name, max(0.0, ages.get((name, tenant), 0.0)), {"tenant_id": tenant})
