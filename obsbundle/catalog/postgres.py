"""PostgreSQL and PgBouncer metrics of `obsbundle exporter postgres`.

Every metric carries `server` (the source's configured name) and `tenant_id`. Per-tenant figures
are aggregated per schema (or per role / application_name for sessions) inside PostgreSQL, so a
tenant costs a fixed number of series however many tables it has. Server-wide figures use
`tenant_id="_shared"`. Names are stable: dashboards and alerts query them.
"""

from obsbundle.catalog import PanelHint, declare

SOURCE = "postgres"
TENANT = ("server", "tenant_id")

# Query groups: collectors/postgres builds each SELECT from the `sql` of its metrics, one column
# per metric aliased to the metric's name, and reads every value back by that name.
SCHEMA_STATS = "pg_schema_stats"  # one row per schema over pg_class c; `{table}`: c is not an index
DATABASE_STATS = "pg_database_stats"  # one row per database: pg_database d LEFT JOIN pg_stat_database s

# Session states of `pg_tenant_connections`; `waiting` means blocked on a lock (wait_event_type=Lock).
CONNECTION_STATES = ("active", "idle", "idle_in_transaction", "waiting")

# -- server-wide (tenant_id="_shared") ----------------------------------------------------------

declare("pg_up", "gauge", "1 if the last scrape of the PostgreSQL server succeeded inside its budget, else 0.",
        TENANT, source=SOURCE)
declare("pg_version_info", "info", "PostgreSQL server version (server_version).",
        (*TENANT, "version"), source=SOURCE)
declare("pg_in_recovery", "gauge", "1 if the server is a standby in recovery, else 0.", TENANT, source=SOURCE)
declare("pg_max_connections", "gauge", "The max_connections setting.", TENANT, source=SOURCE)
declare("pg_connections_in_use", "gauge", "Client backend connections currently open (pg_stat_activity).",
        TENANT, source=SOURCE)
declare("pg_connection_saturation_ratio", "gauge",
        "Client connections in use divided by max_connections (1 = new connections are refused).",
        TENANT, source=SOURCE, unit="ratio", threshold="pg_connection_saturation_ratio")
declare("pg_database_size_bytes", "gauge", "On-disk size of each database (pg_database_size).",
        (*TENANT, "database"), source=SOURCE, unit="bytes")
declare("pg_database_commits_total", "counter", "Transactions committed in each database (pg_stat_database).",
        (*TENANT, "database"), source=SOURCE, query=DATABASE_STATS, sql="s.xact_commit")
declare("pg_database_rollbacks_total", "counter", "Transactions rolled back in each database (pg_stat_database).",
        (*TENANT, "database"), source=SOURCE, query=DATABASE_STATS, sql="s.xact_rollback")
declare("pg_database_deadlocks_total", "counter", "Deadlocks detected in each database (pg_stat_database).",
        (*TENANT, "database"), source=SOURCE, query=DATABASE_STATS, sql="s.deadlocks")
declare("pg_cache_hit_ratio", "gauge",
        "Buffer cache hits divided by block reads plus hits, over all databases since the stats reset.",
        TENANT, source=SOURCE, unit="ratio")
declare("pg_replication_lag_seconds", "gauge",
        "Seconds since the last replayed transaction on a standby (absent on a primary).",
        TENANT, source=SOURCE, unit="seconds", threshold="replication_lag_seconds")
declare("pg_stat_statements_enabled", "gauge",
        "1 if pg_stat_statements is installed and loaded in the scraped database, else 0.",
        TENANT, source=SOURCE)

# -- per tenant, aggregated per schema ------------------------------------------------------------

declare("pg_tenant_schema_size_bytes", "gauge", "Size of the tenant's schemas: tables, indexes and TOAST.",
        TENANT, source=SOURCE, unit="bytes")
declare("pg_tenant_tables", "gauge", "Ordinary and partitioned tables in the tenant's schemas.",
        TENANT, source=SOURCE, query=SCHEMA_STATS, sql="count(c.oid) FILTER (WHERE c.relkind IN ('r', 'p'))")
declare("pg_tenant_live_rows", "gauge", "Estimated live rows in the tenant's tables (n_live_tup).",
        TENANT, source=SOURCE, query=SCHEMA_STATS,
        sql="coalesce(sum(pg_stat_get_live_tuples(c.oid)) FILTER (WHERE {table}), 0)")
declare("pg_tenant_dead_rows", "gauge", "Estimated dead rows awaiting vacuum in the tenant's tables (n_dead_tup).",
        TENANT, source=SOURCE, query=SCHEMA_STATS,
        sql="coalesce(sum(pg_stat_get_dead_tuples(c.oid)) FILTER (WHERE {table}), 0)",
        panel=PanelHint(title="Dead rows awaiting vacuum"))
declare("pg_tenant_seq_scans_total", "counter", "Sequential scans on the tenant's tables.", TENANT, source=SOURCE,
        query=SCHEMA_STATS, sql="coalesce(sum(pg_stat_get_numscans(c.oid)) FILTER (WHERE {table}), 0)")
# An index's scans are its schema's index scans, as in pg_stat_user_tables.idx_scan.
declare("pg_tenant_index_scans_total", "counter", "Index scans on the tenant's tables.", TENANT, source=SOURCE,
        query=SCHEMA_STATS, sql="coalesce(sum(pg_stat_get_numscans(c.oid)) FILTER (WHERE c.relkind = 'i'), 0)")
declare("pg_tenant_rows_inserted_total", "counter", "Rows inserted into the tenant's tables.",
        TENANT, source=SOURCE, query=SCHEMA_STATS,
        sql="coalesce(sum(pg_stat_get_tuples_inserted(c.oid)) FILTER (WHERE {table}), 0)")
declare("pg_tenant_rows_updated_total", "counter", "Rows updated in the tenant's tables (incl. HOT updates).",
        TENANT, source=SOURCE, query=SCHEMA_STATS,
        sql="coalesce(sum(pg_stat_get_tuples_updated(c.oid)) FILTER (WHERE {table}), 0)")
declare("pg_tenant_rows_deleted_total", "counter", "Rows deleted from the tenant's tables.", TENANT, source=SOURCE,
        query=SCHEMA_STATS, sql="coalesce(sum(pg_stat_get_tuples_deleted(c.oid)) FILTER (WHERE {table}), 0)")
# Ages: the oldest across a tenant's schemas (combine="max"); absent while no table was ever vacuumed.
declare("pg_tenant_oldest_vacuum_age_seconds", "gauge",
        "Seconds since the least recently (auto)vacuumed of the tenant's vacuumed tables was vacuumed.",
        TENANT, source=SOURCE, unit="seconds", query=SCHEMA_STATS, combine="max",
        sql="extract(epoch FROM now() - min(greatest(pg_stat_get_last_vacuum_time(c.oid),"
            " pg_stat_get_last_autovacuum_time(c.oid))) FILTER (WHERE {table}))")
declare("pg_tenant_oldest_analyze_age_seconds", "gauge",
        "Seconds since the least recently (auto)analyzed of the tenant's analyzed tables was analyzed.",
        TENANT, source=SOURCE, unit="seconds", query=SCHEMA_STATS, combine="max",
        sql="extract(epoch FROM now() - min(greatest(pg_stat_get_last_analyze_time(c.oid),"
            " pg_stat_get_last_autoanalyze_time(c.oid))) FILTER (WHERE {table}))")

# -- per tenant, by role or application_name of the session ---------------------------------------

declare("pg_tenant_connections", "gauge",
        "Client connections of the tenant by state: active, idle, idle_in_transaction, waiting (on a lock).",
        (*TENANT, "state"), source=SOURCE)
declare("pg_tenant_oldest_transaction_age_seconds", "gauge",
        "Age of the tenant's oldest open transaction (0 when none is open).",
        TENANT, source=SOURCE, unit="seconds")
declare("pg_tenant_oldest_query_age_seconds", "gauge",
        "Age of the tenant's longest-running active query (0 when none is running).",
        TENANT, source=SOURCE, unit="seconds")
declare("pg_tenant_statements_calls_total", "counter",
        "Statement executions by the tenant's roles (pg_stat_statements).", TENANT, source=SOURCE)
declare("pg_tenant_statements_exec_time_seconds_total", "counter",
        "Execution time of statements by the tenant's roles (pg_stat_statements total_exec_time).",
        TENANT, source=SOURCE, unit="seconds")

# -- PgBouncer pools (SHOW POOLS / SHOW DATABASES), attributed by database or user rule ------------

declare("pgbouncer_up", "gauge", "1 if the last scrape of the PgBouncer admin console succeeded, else 0.",
        TENANT, source=SOURCE)
declare("pgbouncer_clients_active", "gauge", "Client connections linked to a server connection (cl_active).",
        TENANT, source=SOURCE)
declare("pgbouncer_clients_waiting", "gauge", "Client connections waiting for a server connection (cl_waiting).",
        TENANT, source=SOURCE, threshold="pgbouncer_clients_waiting")
declare("pgbouncer_servers_active", "gauge", "Server connections linked to a client (sv_active).",
        TENANT, source=SOURCE)
declare("pgbouncer_servers_idle", "gauge", "Server connections idle and ready for a client (sv_idle).",
        TENANT, source=SOURCE)
declare("pgbouncer_max_wait_seconds", "gauge", "How long the oldest waiting client has waited (maxwait).",
        TENANT, source=SOURCE, unit="seconds")
declare("pgbouncer_pool_size", "gauge", "Configured server connections per pool, summed over the tenant's pools.",
        TENANT, source=SOURCE)
declare("pgbouncer_pool_saturation_ratio", "gauge",
        "Active server connections divided by pool size (1 = clients queue for a server connection).",
        TENANT, source=SOURCE, unit="ratio")
