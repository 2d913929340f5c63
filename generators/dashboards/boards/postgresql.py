"""PostgreSQL (and PgBouncer): server health and per-tenant cost of the schema-per-tenant database."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from generators.dashboards.builder import Board, Q, Thresholds, stat, thresholds, timeseries
from generators.queries import RI, SHARED, TENANT, rate

UP = Thresholds((("red", 0), ("green", 1)))


def board(config: Mapping[str, Any]) -> Board:
    saturation = thresholds(config, "pg_connection_saturation_ratio")
    status = [
        stat("Up", "1 when the exporter reached every PostgreSQL server in its last scrape (lowest pg_up).",
             Q(f"min(pg_up{{{SHARED}}})"), unit="bool_yes_no", th=UP, graph=False),
        stat("Connections used", "Client connections / max_connections, worst server. Thresholds: "
             "`thresholds.pg_connection_saturation_ratio`.",
             Q(f"max(pg_connection_saturation_ratio{{{SHARED}}})"), unit="percentunit", th=saturation),
        stat("Cache hit ratio", "Buffer cache hits / (hits + reads) since the stats reset, lowest server.",
             Q(f"min(pg_cache_hit_ratio{{{SHARED}}})"), unit="percentunit",
             th=Thresholds((("red", 0), ("orange", 0.9), ("green", 0.99)))),
        stat("Transactions", "Commits + rollbacks per second, all databases.",
             Q(f"sum(rate(pg_database_commits_total{{{SHARED}}}[{RI}])"
               f" + rate(pg_database_rollbacks_total{{{SHARED}}}[{RI}]))"),
             unit="ops"),
        stat("Deadlocks", "Deadlocks detected per minute, all databases. Thresholds: "
             "`thresholds.pg_deadlocks_per_minute`.",
             Q(f"sum(rate(pg_database_deadlocks_total{{{SHARED}}}[{RI}])) * 60"), unit="short",
             th=thresholds(config, "pg_deadlocks_per_minute")),
        stat("Replication lag", "Seconds since the last replayed transaction on a standby; no value on a "
             "primary. Thresholds: `thresholds.replication_lag_seconds`.",
             Q(f"max(pg_replication_lag_seconds{{{SHARED}}})"), unit="s",
             th=thresholds(config, "replication_lag_seconds")),
    ]
    connections = [
        timeseries("Connections in use vs max", "Client backend connections open and the max_connections "
                   "setting, per server.",
                   Q(f"sum by (server) (pg_connections_in_use{{{SHARED}}})", "{{server}} in use"),
                   Q(f"sum by (server) (pg_max_connections{{{SHARED}}})", "{{server}} max"), unit="short", w=8),
        timeseries("Connection saturation", "In use / max_connections per server. Dashed lines: "
                   "`thresholds.pg_connection_saturation_ratio`.",
                   Q(f"max by (server) (pg_connection_saturation_ratio{{{SHARED}}})", "{{server}}"),
                   unit="percentunit", th=saturation, min=0, max=1, w=8),
        timeseries("Connection share by tenant", "The tenant's client connections / max_connections of the "
                   "server: one tenant holding many starves the others. Dashed lines: "
                   "`thresholds.pg_tenant_connection_share_ratio`.",
                   Q(f"sum by (server, tenant_id) (pg_tenant_connections{{{TENANT}}})"
                     f" / on (server) group_left () max by (server) (pg_max_connections{{{SHARED}}})",
                     "{{tenant_id}}"), unit="percentunit",
                   th=thresholds(config, "pg_tenant_connection_share_ratio"), min=0, w=8),
        timeseries("Connections by tenant and state", "Client sessions per tenant (by role or "
                   "application_name): active, idle, idle in transaction, waiting on a lock.",
                   Q(f"sum by (tenant_id, state) (pg_tenant_connections{{{TENANT}}})", "{{tenant_id}} {{state}}"),
                   unit="short", w=8),
        timeseries("Oldest open transaction by tenant", "Age of each tenant's oldest open transaction; long ones "
                   "hold back vacuum and locks.",
                   Q(f"max by (tenant_id) (pg_tenant_oldest_transaction_age_seconds{{{TENANT}}})", "{{tenant_id}}"),
                   unit="s", w=8),
        timeseries("Longest running query by tenant", "Age of each tenant's longest-running active query.",
                   Q(f"max by (tenant_id) (pg_tenant_oldest_query_age_seconds{{{TENANT}}})", "{{tenant_id}}"),
                   unit="s", w=8),
    ]
    workload = [
        timeseries("Transactions by database", "Commits and rollbacks per second per database.",
                   Q(f"sum by (database) (rate(pg_database_commits_total{{{SHARED}}}[{RI}]))", "{{database}} commit"),
                   Q(f"sum by (database) (rate(pg_database_rollbacks_total{{{SHARED}}}[{RI}]))",
                     "{{database}} rollback"), unit="ops", w=8),
        timeseries("Rows written by tenant", "Rows inserted, updated and deleted per second in the tenant's "
                   "tables.",
                   Q(f"sum by (tenant_id) (rate(pg_tenant_rows_inserted_total{{{TENANT}}}[{RI}])"
                     f" + rate(pg_tenant_rows_updated_total{{{TENANT}}}[{RI}])"
                     f" + rate(pg_tenant_rows_deleted_total{{{TENANT}}}[{RI}]))", "{{tenant_id}}"),
                   unit="ops", w=8),
        timeseries("Scans by tenant", "Sequential vs index scans per second on the tenant's tables; many "
                   "sequential scans suggest a missing index.",
                   Q(rate("pg_tenant_seq_scans_total", labels="tenant_id"), "{{tenant_id}} seq"),
                   Q(rate("pg_tenant_index_scans_total", labels="tenant_id"), "{{tenant_id}} index"),
                   unit="ops", w=8),
        timeseries("Statement time by tenant", "Seconds of statement execution per second by the tenant's roles "
                   "(pg_stat_statements): the tenant's share of database CPU.",
                   Q(rate("pg_tenant_statements_exec_time_seconds_total", labels="tenant_id"), "{{tenant_id}}"),
                   unit="s", w=12),
        timeseries("Statements by tenant", "Statement executions per second by the tenant's roles.",
                   Q(rate("pg_tenant_statements_calls_total", labels="tenant_id"), "{{tenant_id}}"),
                   unit="ops", w=12),
    ]
    storage = [
        timeseries("Database size", "On-disk size of each database.",
                   Q(f"sum by (database) (pg_database_size_bytes{{{SHARED}}})", "{{database}}"), unit="bytes", w=8),
        timeseries("Schema size by tenant", "Tables, indexes and TOAST of the tenant's schemas.",
                   Q(f"sum by (tenant_id) (pg_tenant_schema_size_bytes{{{TENANT}}})", "{{tenant_id}}"),
                   unit="bytes", w=8),
        timeseries("Dead rows by tenant", "Estimated dead rows awaiting vacuum.",
                   Q(f"sum by (tenant_id) (pg_tenant_dead_rows{{{TENANT}}})", "{{tenant_id}}"), unit="short", w=8),
        timeseries("Live rows by tenant", "Estimated live rows in the tenant's tables.",
                   Q(f"sum by (tenant_id) (pg_tenant_live_rows{{{TENANT}}})", "{{tenant_id}}"), unit="short", w=12),
        timeseries("Oldest vacuum by tenant", "Time since the least recently vacuumed of the tenant's tables "
                   "was vacuumed.",
                   Q(f"max by (tenant_id) (pg_tenant_oldest_vacuum_age_seconds{{{TENANT}}})", "{{tenant_id}}"),
                   unit="s", w=12),
    ]
    pgbouncer = [
        timeseries("Clients waiting by tenant", "Client connections queued for a server connection in "
                   "PgBouncer. Dashed lines: `thresholds.pgbouncer_clients_waiting`.",
                   Q(f"sum by (tenant_id) (pgbouncer_clients_waiting{{{TENANT}}})", "{{tenant_id}}"),
                   unit="short", th=thresholds(config, "pgbouncer_clients_waiting"), w=8),
        timeseries("Pool saturation by tenant", "Active server connections / pool size; at 1 clients queue.",
                   Q(f"max by (tenant_id) (pgbouncer_pool_saturation_ratio{{{TENANT}}})", "{{tenant_id}}"),
                   unit="percentunit", min=0, max=1, w=8),
        timeseries("Longest client wait by tenant", "How long the oldest waiting client has waited (maxwait).",
                   Q(f"max by (tenant_id) (pgbouncer_max_wait_seconds{{{TENANT}}})", "{{tenant_id}}"),
                   unit="s", w=8),
    ]
    return Board(
        slug="postgresql",
        title="PostgreSQL",
        description="PostgreSQL servers (obsbundle exporter postgres): availability, connections, workload, "
                    "storage and vacuum per tenant schema, and PgBouncer pools.",
        tenant_metric="pg_tenant_schema_size_bytes",
        sections=[("Status", status), ("Connections", connections), ("Workload", workload),
                  ("Storage and vacuum", storage), ("PgBouncer", pgbouncer)],
        related=("infrastructure", "tenants", "tenant", "redis", "temporal"),
        tags=("postgresql",),
    )
