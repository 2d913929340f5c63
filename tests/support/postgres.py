"""PostgreSQL-area test data: the seeded tenants with their ground truth, and held sessions in
known states. The `seeded_pg` fixture (tests/fixtures/postgres.py) applies `seed`."""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import psycopg

from obsbundle.services import PostgresServer, wait_for

MONITOR_ROLE = "obs_monitor"
MONITOR_PASSWORD = "Zx9-monitor-Pw-7731"

# tenant -> {table: (rows inserted, rows updated, rows deleted)}; every table has a primary key
# and autovacuum off, so the statistics stay exactly what the seeding did.
TENANTS: dict[str, dict[str, tuple[int, int, int]]] = {
    "acme": {"orders": (120, 10, 5), "invoices": (40, 0, 0), "users": (7, 7, 1)},
    "globex": {"orders": (300, 0, 30), "events": (2000, 0, 0)},
    "initech": {"orders": (0, 0, 0)},
}
VACUUMED = {"globex"}  # the other tenants are only ANALYZEd, so they have no vacuum age
TENANT_ROLES = ("tenant_acme", "tenant_globex")  # login roles seed() creates


def tenant_config(dsn: str, **source: Any) -> dict[str, Any]:
    """A minimal exporter config for one server named `main`."""
    return {"sources": {"postgres": [{"name": "main", "dsn": dsn, **source}]}}


def seed(pg: PostgresServer) -> None:
    for tenant, tables in TENANTS.items():
        schema = f"tenant_{tenant}"
        pg.execute(f"CREATE SCHEMA {schema}")
        for table, (inserted, updated, deleted) in tables.items():
            pg.execute(
                f"CREATE TABLE {schema}.{table} (id int PRIMARY KEY, payload text)"
                " WITH (autovacuum_enabled = off, toast.autovacuum_enabled = off)"
            )
            if inserted:
                pg.execute(f"INSERT INTO {schema}.{table}"
                           f" SELECT g, repeat('x', 50) FROM generate_series(1, {inserted}) g")
            if updated:
                pg.execute(f"UPDATE {schema}.{table} SET payload = 'y' WHERE id <= {updated}")
            if deleted:
                pg.execute(f"DELETE FROM {schema}.{table} WHERE id > {inserted - deleted}")
        op = "VACUUM ANALYZE" if tenant in VACUUMED else "ANALYZE"
        pg.execute(f"{op} " + ", ".join(f"{schema}.{t}" for t in tables))
    pg.execute("CREATE SCHEMA reporting")  # no tenant rule matches: _unassigned
    pg.execute("CREATE TABLE reporting.daily (d date) WITH (autovacuum_enabled = off)")
    pg.execute("CREATE ROLE tenant_acme LOGIN")
    pg.execute("CREATE ROLE tenant_globex LOGIN")
    pg.execute(f"CREATE ROLE {MONITOR_ROLE} LOGIN PASSWORD '{MONITOR_PASSWORD}' IN ROLE pg_monitor")
    # Make the monitor role's password mean something: scram for it, trust for the rest.
    hba = pg.datadir / "pg_hba.conf"
    hba.write_text(f"host all {MONITOR_ROLE} 127.0.0.1/32 scram-sha-256\n" + hba.read_text())
    pg.execute("SELECT pg_reload_conf()")


def ground_truth(pg: PostgresServer) -> dict[str, dict[str, float]]:
    """Per-tenant figures read table by table, a different path from the exporter's GROUP BY."""
    truth: dict[str, dict[str, float]] = {}
    for tenant, tables in TENANTS.items():
        t = truth.setdefault(tenant, {})
        t["pg_tenant_tables"] = len(tables)
        t["pg_tenant_rows_inserted_total"] = sum(v[0] for v in tables.values())
        t["pg_tenant_rows_updated_total"] = sum(v[1] for v in tables.values())
        t["pg_tenant_rows_deleted_total"] = sum(v[2] for v in tables.values())
        t["pg_tenant_live_rows"] = sum(v[0] - v[2] for v in tables.values())
        t["pg_tenant_schema_size_bytes"] = 0
        t["pg_tenant_seq_scans_total"] = 0
        t["pg_tenant_index_scans_total"] = 0
        t["pg_tenant_dead_rows"] = 0
        for table in tables:
            rel = f"tenant_{tenant}.{table}"
            ((size, seq, idx, dead),) = pg.execute(
                "SELECT pg_table_size(%s::regclass) + pg_indexes_size(%s::regclass), seq_scan,"
                " coalesce(idx_scan, 0), n_dead_tup FROM pg_stat_user_tables WHERE relid = %s::regclass",
                (rel, rel, rel),
            )
            t["pg_tenant_schema_size_bytes"] += size
            t["pg_tenant_seq_scans_total"] += seq
            t["pg_tenant_index_scans_total"] += idx
            t["pg_tenant_dead_rows"] += dead
    return truth


def stats_flushed(pg: PostgresServer) -> bool:
    """True once every seeding backend has flushed its counters into pg_stat_user_tables."""
    expected = sum(v[0] for tables in TENANTS.values() for v in tables.values())
    ((inserted,),) = pg.execute(
        "SELECT coalesce(sum(n_tup_ins), 0) FROM pg_stat_user_tables WHERE schemaname LIKE 'tenant\\_%'"
    )
    return inserted == expected


class HeldSessions:
    """Connections held open in known states, counted by tenant and state.

    acme (role tenant_acme): idle 2, idle_in_transaction 1 (holds an advisory lock),
    waiting 1 (blocked on that lock), active 1 (pg_sleep).
    globex (application_name tenant=globex): idle 1, active 2. initech: none.
    """

    EXPECTED = {
        "acme": {"active": 1, "idle": 2, "idle_in_transaction": 1, "waiting": 1},
        "globex": {"active": 2, "idle": 1, "idle_in_transaction": 0, "waiting": 0},
        "initech": {"active": 0, "idle": 0, "idle_in_transaction": 0, "waiting": 0},
    }

    def __init__(self, pg: PostgresServer) -> None:
        self.pg = pg
        base = pg.dsn.rsplit("/", 1)[0]
        self.acme_dsn = base.replace("postgres@", "tenant_acme@") + "/postgres"
        self.globex_dsn = pg.dsn + "?application_name=tenant%3Dglobex"
        self.conns: list[psycopg.Connection[Any]] = []
        self.threads: list[threading.Thread] = []

    def _open(self, dsn: str) -> psycopg.Connection[Any]:
        conn = psycopg.connect(dsn, autocommit=True)
        self.conns.append(conn)
        return conn

    def _background(self, dsn: str, sql: str) -> None:
        conn = self._open(dsn)

        def run() -> None:
            with contextlib.suppress(psycopg.Error):
                conn.execute(sql)

        thread = threading.Thread(target=run, daemon=True)
        thread.start()
        self.threads.append(thread)

    def start(self) -> None:
        for _ in range(2):
            self._open(self.acme_dsn).execute("SELECT 1")
        holder = self._open(self.acme_dsn)
        holder.execute("BEGIN")
        holder.execute("SELECT pg_advisory_xact_lock(4242)")
        self._background(self.acme_dsn, "SELECT pg_advisory_lock(4242)")
        self._background(self.acme_dsn, "SELECT pg_sleep(600)")
        self._open(self.globex_dsn).execute("SELECT 1")
        for _ in range(2):
            self._background(self.globex_dsn, "SELECT pg_sleep(600)")
        wait_for(self._settled, 30, what="held sessions in their states")

    def _settled(self) -> bool:
        rows = self.pg.execute(
            "SELECT count(*) FILTER (WHERE wait_event_type = 'Lock'),"
            " count(*) FILTER (WHERE query LIKE 'SELECT pg_sleep%%' AND state = 'active')"
            " FROM pg_stat_activity WHERE usename = 'tenant_acme' OR application_name = 'tenant=globex'"
        )
        return rows[0] == (1, 3)

    def stop(self) -> None:
        self.pg.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE usename = 'tenant_acme' OR application_name = 'tenant=globex'"
        )
        for thread in self.threads:
            thread.join(timeout=10)
        for conn in self.conns:
            with contextlib.suppress(Exception):
                conn.close()
