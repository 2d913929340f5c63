"""`obsbundle exporter postgres` against a real, seeded PostgreSQL (and a real PgBouncer).

The exporter runs as a least-privilege role (pg_monitor) with a password in its DSN, so every
value test here is also a least-privilege test and a secret-handling test.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from collectors.postgres.schemas import TABLE
from exporters.runtime import ScrapeRunner
from obsbundle import config
from obsbundle.catalog import catalog_for
from obsbundle.catalog.postgres import SCHEMA_STATS
from obsbundle.catalog.postgres_custom import custom_metric_name
from obsbundle.services import (
    ExporterProcess,
    PgBouncerServer,
    PostgresServer,
    PrometheusServer,
    ReplicaServer,
    by_tenant,
    wait_for,
)
from tests.support.postgres import (
    MONITOR_PASSWORD,
    MONITOR_ROLE,
    TENANT_ROLES,
    TENANTS,
    HeldSessions,
    ground_truth,
    tenant_config,
)

JOBS = {"acme": (3, 1), "globex": (0, 4), "initech": (5, 0)}  # tenant -> (queued, done)
CUSTOM_QUERY = {
    "name": "training_jobs",
    "sql": "SELECT tenant, count(*) FILTER (WHERE state = 'queued') AS queued,"
           " count(*) FILTER (WHERE state = 'done') AS done FROM public.training_jobs GROUP BY tenant",
    "tenant_column": "tenant",
    "metrics": [
        {"column": "queued", "name": "queued", "help": "Training jobs waiting to run."},
        {"column": "done", "name": "done", "type": "counter", "help": "Training jobs finished."},
    ],
}


@pytest.fixture(scope="module")
def prepared(seeded_pg: PostgresServer) -> Iterator[dict[str, Any]]:
    """Extension, custom-query table, held sessions and PgBouncer pools, all in known states."""
    pg = seeded_pg
    pg.execute("CREATE EXTENSION pg_stat_statements")
    pg.execute("CREATE TABLE public.training_jobs (tenant text, state text)")
    for tenant, (queued, done) in JOBS.items():
        for state, n in (("queued", queued), ("done", done)):
            for _ in range(n):
                pg.execute("INSERT INTO public.training_jobs VALUES (%s, %s)", (tenant, state))
    pg.execute(f"GRANT SELECT ON public.training_jobs TO {MONITOR_ROLE}")
    acme = pg.dsn.replace("postgres@", "tenant_acme@")
    with psycopg.connect(acme, autocommit=True) as conn:
        for _ in range(3):
            conn.execute("SELECT 1")

    held = HeldSessions(pg)
    held.start()
    bouncer = PgBouncerServer(pg, users=TENANT_ROLES)
    pooled: list[psycopg.Connection[Any]] = []
    for _ in range(2):  # acme: two clients inside transactions hold both server connections
        conn = psycopg.connect(bouncer.dsn("tenant_acme"), autocommit=True, prepare_threshold=None)
        conn.execute("BEGIN")
        conn.execute("SELECT 1")
        pooled.append(conn)
    waiter = psycopg.connect(bouncer.dsn("tenant_acme"), autocommit=True, prepare_threshold=None)
    pooled.append(waiter)
    threading.Thread(target=lambda: _quietly(waiter, "SELECT 1"), daemon=True).start()
    idle = psycopg.connect(bouncer.dsn("tenant_globex"), autocommit=True, prepare_threshold=None)
    idle.execute("SELECT 1")
    pooled.append(idle)
    wait_for(lambda: _pool(bouncer, "tenant_acme")["cl_waiting"] == 1, 30, what="a client queued in pgbouncer")
    try:
        yield {"pg": pg, "held": held, "bouncer": bouncer}
    finally:
        bouncer.close()  # first, so the queued client's thread gets EOF rather than a close() race
        for conn in pooled:
            with contextlib.suppress(Exception):
                conn.close()
        held.stop()


def _quietly(conn: psycopg.Connection[Any], sql: str) -> None:
    with contextlib.suppress(psycopg.Error):
        conn.execute(sql)


def _pool(bouncer: PgBouncerServer, user: str) -> dict[str, Any]:
    with psycopg.connect(bouncer.admin_dsn, autocommit=True, cursor_factory=psycopg.ClientCursor) as conn:
        cur = conn.execute("SHOW POOLS")
        names = [d.name for d in cur.description]
        for row in cur.fetchall():
            pool = dict(zip(names, row, strict=True))
            if pool["user"] == user:
                return pool
    return {"cl_waiting": None}


def monitor_dsn(pg: PostgresServer, password: str = MONITOR_PASSWORD) -> str:
    return f"postgresql://{MONITOR_ROLE}:{password}@127.0.0.1:{pg.port}/postgres"


@pytest.fixture(scope="module")
def exporter(prepared: dict[str, Any]) -> Iterator[ExporterProcess]:
    pg, bouncer = prepared["pg"], prepared["bouncer"]
    cfg = tenant_config(monitor_dsn(pg), custom_queries=[CUSTOM_QUERY], pgbouncer={"dsn": bouncer.admin_dsn},
                        size_interval="1s")
    proc = ExporterProcess("postgres", cfg, extra_args=["--log.level", "debug", "--scrape-timeout", "8s"])
    yield proc
    proc.close()


def collector_success(samples: dict[str, Any]) -> dict[str, float]:
    return {dict(k)["collector"]: v for k, v in samples["obsbundle_collector_success"].items()}


@pytest.fixture(scope="module")
def samples(exporter: ExporterProcess) -> dict[str, Any]:
    """A scrape taken once the background size refresh has completed its first pass."""

    def ready() -> dict[str, Any] | None:
        scraped = exporter.scrape()
        return scraped if collector_success(scraped).get("sizes") == 1 else None

    return wait_for(ready, 30, 0.2, what="first size refresh")


def test_every_collector_succeeds_as_pg_monitor_role(samples: dict[str, Any]) -> None:
    assert collector_success(samples) == {"server": 1, "schemas": 1, "sizes": 1, "activity": 1,
                                          "statements": 1, "custom:training_jobs": 1, "pgbouncer": 1}
    assert by_tenant(samples, "pg_up") == {"_shared": 1}
    assert by_tenant(samples, "pgbouncer_up") == {"_shared": 1}


def test_per_tenant_schema_values_are_exact(prepared: dict[str, Any], samples: dict[str, Any]) -> None:
    truth = ground_truth(prepared["pg"])
    for metric in truth["acme"]:
        got = by_tenant(samples, metric)
        for tenant, values in truth.items():
            assert got.get(tenant) == values[metric], (metric, tenant)
    # unmatched schemas (`reporting`, `public`) are attributed to _unassigned, not dropped
    assert by_tenant(samples, "pg_tenant_tables")["_unassigned"] == 2
    # only globex was vacuumed; all three were analyzed
    assert set(by_tenant(samples, "pg_tenant_oldest_vacuum_age_seconds")) == {"globex"}
    analyze = by_tenant(samples, "pg_tenant_oldest_analyze_age_seconds")
    assert set(analyze) == {"acme", "globex", "initech"}
    assert all(0 <= age < 3600 for age in analyze.values())


def test_every_schema_stats_metric_of_the_catalog_is_emitted_per_tenant(
    prepared: dict[str, Any], samples: dict[str, Any]
) -> None:
    """Derived from the catalog, so a new `pg_schema_stats` metric is covered with no test edit.

    Each summed metric's own SQL expression, evaluated per relation (not per schema) and added up
    here, must equal what the exporter reports for each seeded tenant: the GROUP BY, the alias
    and the fold are checked; the exact seeded figures are asserted above.
    """
    pg = prepared["pg"]
    metrics = catalog_for(None).by_query(SCHEMA_STATS)
    assert {m.name for m in metrics} >= set(ground_truth(pg)["acme"]) - {"pg_tenant_schema_size_bytes"}
    for metric in metrics:
        assert metric.name in samples, metric.name
        if metric.combine != "sum":
            continue
        expr = metric.sql.format(table=TABLE)
        for tenant in TENANTS:
            ((expected,),) = pg.execute(
                f"SELECT coalesce(sum(v), 0)::float8 FROM (SELECT ({expr}) AS v FROM pg_class c"
                " WHERE c.relnamespace = %s::regnamespace AND c.relkind IN ('r', 'p', 'm', 'i')"
                " GROUP BY c.oid) per_relation",
                (f"tenant_{tenant}",),
            )
            assert by_tenant(samples, metric.name).get(tenant) == expected, (metric.name, tenant)


def test_connections_by_state_are_exact(samples: dict[str, Any]) -> None:
    expected_states = {tenant: dict(states) for tenant, states in HeldSessions.EXPECTED.items()}
    # PgBouncer's server connections log in as the pool's user: acme's two are inside the
    # clients' transactions, globex's one sits idle in the pool.
    expected_states["acme"]["idle_in_transaction"] += 2
    expected_states["globex"]["idle"] += 1
    del expected_states["initech"]  # no sessions: no series, rather than four zeros
    for state in ("active", "idle", "idle_in_transaction", "waiting"):
        got = by_tenant(samples, "pg_tenant_connections", state=state)
        assert {t: got.get(t) for t in expected_states} == {t: s[state] for t, s in expected_states.items()}, state
        assert "initech" not in got
    xact = by_tenant(samples, "pg_tenant_oldest_transaction_age_seconds")
    query = by_tenant(samples, "pg_tenant_oldest_query_age_seconds")
    assert xact["acme"] > 0 and query["acme"] > 0 and query["globex"] > 0
    assert "initech" not in xact and "initech" not in query


def test_server_wide_figures(prepared: dict[str, Any], samples: dict[str, Any]) -> None:
    pg = prepared["pg"]
    ((max_conn,),) = pg.execute("SHOW max_connections")
    assert by_tenant(samples, "pg_max_connections") == {"_shared": int(max_conn)}
    in_use = by_tenant(samples, "pg_connections_in_use")["_shared"]
    assert by_tenant(samples, "pg_connection_saturation_ratio")["_shared"] == pytest.approx(in_use / int(max_conn))
    assert in_use >= 9  # the held sessions alone, plus PgBouncer's and the exporter's own
    version = next(dict(k)["version"] for k in samples["pg_version_info"])
    assert version == pg.execute("SHOW server_version")[0][0]
    assert by_tenant(samples, "pg_database_size_bytes", database="postgres")["_shared"] > 1_000_000
    assert by_tenant(samples, "pg_in_recovery") == {"_shared": 0}
    assert 0 < by_tenant(samples, "pg_cache_hit_ratio")["_shared"] <= 1
    assert "pg_replication_lag_seconds" not in samples  # a primary has no replay lag


def test_statements_per_tenant_role(prepared: dict[str, Any], samples: dict[str, Any]) -> None:
    assert by_tenant(samples, "pg_stat_statements_enabled") == {"_shared": 1}
    ((calls,),) = prepared["pg"].execute(
        "SELECT sum(calls) FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid"
        " WHERE r.rolname = 'tenant_acme'"
    )
    got = by_tenant(samples, "pg_tenant_statements_calls_total")
    assert got["acme"] == calls >= 3  # acme's sessions are idle or blocked: the figure is stable
    assert by_tenant(samples, "pg_tenant_statements_exec_time_seconds_total")["acme"] > 0


def test_custom_query_becomes_catalogued_per_tenant_metrics(samples: dict[str, Any]) -> None:
    queued = custom_metric_name("training_jobs", "queued", "gauge")
    done = custom_metric_name("training_jobs", "done", "counter")
    assert by_tenant(samples, queued) == {t: q for t, (q, _) in JOBS.items()}
    assert by_tenant(samples, done) == {t: d for t, (_, d) in JOBS.items()}


def test_pgbouncer_pools_per_tenant(samples: dict[str, Any]) -> None:
    size = PgBouncerServer.POOL_SIZE
    expected = {
        "pgbouncer_clients_active": {"acme": 2, "globex": 1},
        "pgbouncer_clients_waiting": {"acme": 1, "globex": 0},
        "pgbouncer_servers_active": {"acme": 2, "globex": 0},
        "pgbouncer_pool_size": {"acme": size, "globex": size},
        "pgbouncer_pool_saturation_ratio": {"acme": 2 / size, "globex": 0},
    }
    for metric, values in expected.items():
        got = by_tenant(samples, metric)
        assert {t: got.get(t) for t in values} == values, metric
    assert set(by_tenant(samples, "pgbouncer_max_wait_seconds")) == {"acme", "globex"}
    assert set(by_tenant(samples, "pgbouncer_servers_idle")) == {"acme", "globex"}


def test_emitted_families_equal_the_catalog(exporter: ExporterProcess) -> None:
    cfg = config.parse(exporter.config_file.read_text())
    catalog = catalog_for(cfg)
    expected = {m.name.removesuffix("_total") if m.type == "counter" else m.name
                for m in catalog.values() if m.source in ("postgres", "exporter")}
    families = {f.name: f for f in text_string_to_metric_families(exporter.scrape_text())}
    assert set(families) == expected
    # and every family has samples, except replication lag on a primary
    empty = {name for name, f in families.items() if not f.samples}
    assert empty <= {"pg_replication_lag_seconds", "obsbundle_collector_errors"}
    assert "pg_replication_lag_seconds" in empty


def test_password_never_in_metrics_or_logs(prepared: dict[str, Any], exporter: ExporterProcess) -> None:
    assert MONITOR_PASSWORD not in exporter.scrape_text()
    wrong = "Wr0ng-Secret-Pw-5150"
    bad = ExporterProcess("postgres", tenant_config(monitor_dsn(prepared["pg"], wrong)),
                          extra_args=["--log.level", "debug"])
    try:
        samples = bad.scrape()
        assert by_tenant(samples, "pg_up") == {"_shared": 0}
        codes = {dict(k)["code"] for k in samples["obsbundle_collector_last_error_info"]}
        assert codes == {"auth_failed"}
        text = bad.scrape_text()
        assert wrong not in text and wrong not in bad.log_text()
        assert "auth_failed" in bad.log_text()
    finally:
        bad.close()
    assert MONITOR_PASSWORD not in exporter.log_text()
    assert "listening" in exporter.log_text()


def test_exclusive_lock_on_a_table_fails_neither_scrape_nor_size_refresh(
    prepared: dict[str, Any], exporter: ExporterProcess
) -> None:
    def ages() -> dict[str, float]:
        return {dict(k)["collector"]: v for k, v in exporter.scrape()["obsbundle_collector_data_age_seconds"].items()}

    pg = prepared["pg"]
    pg.execute("INSERT INTO reporting.daily SELECT current_date - g FROM generate_series(1, 5000) g")
    pg.execute("ANALYZE reporting.daily")
    (locked_bytes, other_bytes), = pg.execute(
        "SELECT sum(CASE WHEN c.oid = 'reporting.daily'::regclass"
        "            THEN c.relpages::bigint * current_setting('block_size')::bigint END),"
        "       coalesce(sum(CASE WHEN c.oid <> 'reporting.daily'::regclass THEN pg_total_relation_size(c.oid) END), 0)"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname !~ '^(tenant_|pg_)' AND n.nspname <> 'information_schema'")
    assert locked_bytes > 0
    expected_bytes = locked_bytes + other_bytes
    with psycopg.connect(pg.dsn) as conn:  # an ALTER TABLE in progress, in effect
        conn.execute("LOCK TABLE reporting.daily IN ACCESS EXCLUSIVE MODE")
        locked_at = time.monotonic()
        # the refresh runs every second: wait for one that started after the lock was taken
        wait_for(lambda: ages()["sizes"] < time.monotonic() - locked_at - 0.5, 30, 0.2,
                 what="a size refresh under the lock")
        samples = exporter.scrape()
        conn.rollback()
    assert collector_success(samples)["schemas"] == 1
    assert collector_success(samples)["sizes"] == 1
    assert by_tenant(samples, "pg_tenant_tables")["_unassigned"] == 2
    # the locked reporting.daily is sized from relpages; the other _unassigned table as usual
    assert by_tenant(samples, "pg_tenant_schema_size_bytes")["_unassigned"] == expected_bytes


def test_pg_stat_statements_absent_is_not_an_error(prepared: dict[str, Any]) -> None:
    """A database where the extension was never created (the library is preloaded server-wide)."""
    pg = prepared["pg"]
    pg.execute("CREATE DATABASE bare")
    dsn = pg.dsn.rsplit("/", 1)[0] + "/bare"
    families = scrape_in_process(dsn)
    statements = [s for s in families["obsbundle_collector_success"] if s.labels["collector"] == "statements"]
    assert [s.value for s in statements] == [1]
    assert [s.value for s in families["pg_stat_statements_enabled"]] == [0]
    assert families["pg_tenant_statements_calls"] == []


def scrape_in_process(dsn: str, tenancy: dict[str, Any] | None = None, **source: Any) -> dict[str, list[Any]]:
    """One scrape through the real runner, without an HTTP process: family name -> samples."""
    from exporters.postgres import build

    document = {**({"tenancy": {"postgres": tenancy}} if tenancy else {}), **tenant_config(dsn, **source)}
    cfg = config.parse(yaml.safe_dump(document))
    collectors, resolvers = build(cfg)
    runner = ScrapeRunner("postgres", collectors, catalog_for(cfg), 8.0, resolvers)
    try:
        return {f.name: f.samples for f in runner.scrape()}
    finally:
        runner.close()


def test_tenants_table_wins_over_the_schema_rule(prepared: dict[str, Any]) -> None:
    directory = "SELECT * FROM (VALUES ('Wayne Corp', 'reporting'), ('acme2', 'tenant_acme')) AS t(tenant, schema)"
    families = scrape_in_process(prepared["pg"].dsn, {"tenants_table": directory})
    tables = {s.labels["tenant_id"]: s.value for s in families["pg_tenant_tables"]}
    wayne = next(t for t in tables if t.startswith("wayne_corp-"))  # normalised, hash-suffixed
    assert tables == {wayne: 1, "acme2": 3, "globex": 2, "initech": 1, "_unassigned": 1}

    broken = scrape_in_process(prepared["pg"].dsn, {"tenants_table": "SELECT nonsense"})
    codes = {s.labels["collector"]: s.labels["code"] for s in broken["obsbundle_collector_last_error_info"]}
    assert codes["schemas"] == "tenants_table_failed"


def test_a_broken_custom_query_fails_alone(prepared: dict[str, Any]) -> None:
    queries = [
        {**CUSTOM_QUERY, "name": "broken", "sql": "SELECT * FROM no_such_table"},
        {**CUSTOM_QUERY, "name": "shapeless", "sql": "SELECT 'acme' AS tenant, 'x' AS queued, 1 AS done"},
        CUSTOM_QUERY,
    ]
    families = scrape_in_process(prepared["pg"].dsn, custom_queries=queries)
    codes = {s.labels["collector"]: s.labels["code"] for s in families["obsbundle_collector_last_error_info"]}
    assert codes["custom:broken"] == "query_failed"
    assert codes["custom:shapeless"] == "non_numeric"
    assert codes["custom:training_jobs"] == codes["server"] == codes["schemas"] == "none"
    assert [s.value for s in families["pg_up"]] == [1]
    queued = {s.labels["tenant_id"]: s.value for s in families[custom_metric_name("training_jobs", "queued", "gauge")]}
    assert queued == {t: q for t, (q, _) in JOBS.items()}


def test_replica_reports_recovery_and_replication_lag(prepared: dict[str, Any]) -> None:
    replica = ReplicaServer(prepared["pg"])
    try:
        families = scrape_in_process(replica.dsn)
        assert [s.value for s in families["pg_up"]] == [1]
        assert [s.value for s in families["pg_in_recovery"]] == [1]
        (lag,) = families["pg_replication_lag_seconds"]
        assert lag.labels == {"server": "main", "tenant_id": "_shared"}
        assert 0 <= lag.value < 600
        # the standby has the primary's schemas: per-tenant figures work read-only too
        tables = {s.labels["tenant_id"]: s.value for s in families["pg_tenant_tables"]}
        assert tables["acme"] == 3 and tables["globex"] == 2
    finally:
        replica.close()


def test_prometheus_scrapes_the_seeded_tenants(exporter: ExporterProcess) -> None:
    prom = PrometheusServer(targets={"postgres": [exporter.address]})
    try:
        expected = {"acme": 1, "globex": 1, "initech": 1, "_unassigned": 1}

        def tenants(result: list[dict[str, Any]]) -> bool:
            return {r["metric"]["tenant_id"]: float(r["value"][1]) for r in result} == expected

        prom.wait_query("count by (tenant_id) (pg_tenant_tables)", tenants, timeout=60)
        assert prom.query_by("sum by (tenant_id) (pg_tenant_tables)") == {
            "acme": 3, "globex": 2, "initech": 1, "_unassigned": 2}
    finally:
        prom.close()
