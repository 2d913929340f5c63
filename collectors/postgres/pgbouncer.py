"""PgBouncer pool saturation from its admin console (SHOW POOLS, SHOW DATABASES).

The admin console speaks only the simple query protocol, so this session uses a ClientCursor in
autocommit and sends no `options`. Pools are attributed to tenants by the `database` rule, then
the `role` rule on the pool's user; PgBouncer's own `pgbouncer` pool is skipped.
"""

from __future__ import annotations

from collectors.metricset import MetricSet
from collectors.postgres.base import PgCollector
from collectors.postgres.session import ConnectionSettings
from obsbundle.tenancy import TenantResolver

SUMS = {
    "pgbouncer_clients_active": "cl_active",
    "pgbouncer_clients_waiting": "cl_waiting",
    "pgbouncer_servers_active": "sv_active",
    "pgbouncer_servers_idle": "sv_idle",
}


class PgBouncerCollector(PgCollector):
    name = "pgbouncer"
    budget = 5.0
    up_metric = "pgbouncer_up"
    simple_protocol = True

    def __init__(self, server: str, settings: ConnectionSettings, resolver: TenantResolver) -> None:
        super().__init__(server, settings)
        self.resolver = resolver

    def collect(self, out: MetricSet, deadline: float) -> None:
        pool_sizes = {
            row["name"]: int(row.get("pool_size") or 0)
            for row in self.session.query_dicts(deadline, "SHOW DATABASES")
        }
        pools = self.session.query_dicts(deadline, "SHOW POOLS")
        out.declare_empty([*SUMS, "pgbouncer_max_wait_seconds", "pgbouncer_pool_size",
                           "pgbouncer_pool_saturation_ratio"])
        totals: dict[str, dict[str, float]] = {}
        for pool in pools:
            database, user = pool.get("database"), pool.get("user")
            if database == "pgbouncer":
                continue
            tenant = self.resolver.resolve_first([("database", database), ("role", user)])
            t = totals.setdefault(tenant, {"size": 0.0, "wait": 0.0, **{m: 0.0 for m in SUMS}})
            for metric, column in SUMS.items():
                t[metric] += float(pool.get(column) or 0)
            t["size"] += pool_sizes.get(database, 0)
            wait = float(pool.get("maxwait") or 0) + float(pool.get("maxwait_us") or 0) / 1e6
            t["wait"] = max(t["wait"], wait)
        for tenant, t in totals.items():
            labels = {"tenant_id": tenant}
            for metric in SUMS:
                out.set(metric, t[metric], labels)
            out.set("pgbouncer_max_wait_seconds", t["wait"], labels)
            out.set("pgbouncer_pool_size", t["size"], labels)
            if t["size"] > 0:
                out.set("pgbouncer_pool_saturation_ratio", t["pgbouncer_servers_active"] / t["size"], labels)
