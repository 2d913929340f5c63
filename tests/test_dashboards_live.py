"""Every panel query of every generated dashboard, run against a real Prometheus scraping the real
exporters, the example API service and node_exporter, seeded with the same three tenants.

A query must run without error; a panel whose sources are all present must return data for every
target. The few metrics this environment cannot produce (no replicas, ...) are listed in
`NOT_PRODUCED_HERE` with the reason, and the test asserts exactly which panels that exempts.
"""

from __future__ import annotations

import contextlib
import importlib.util
import logging
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
import redis
import yaml

import generators.dashboards as dashboards
from generators import cost
from generators import promql_lint as promql
from generators.alerts.recording import recording_groups
from generators.dashboards import checks
from generators.dashboards.builder import alert_annotation
from obsbundle import config as obsconfig
from obsbundle.cost.model import MONTH_TO_DATE
from obsbundle.services import (
    ExporterProcess,
    NodeExporter,
    PgBouncerServer,
    PostgresServer,
    PrometheusServer,
    RedisServer,
    TargetServer,
    TemporalServer,
    UvicornService,
    self_signed_cert,
    wait_for,
)

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
TENANTS = ("acme", "globex", "initech")
TENANT_REGEX = "(" + "|".join(TENANTS) + ")"  # how Grafana expands a multi-value variable in =~
# Grafana's variables as the live queries use them ($datasource is the panel's, not in the query).
VARIABLES = {"tenant_id": TENANT_REGEX}
INTERVALS = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h"}
# Metrics this single-node environment cannot produce, and why. Panels reading them are exempt
# from "returns data" (they still must run without error).
NOT_PRODUCED_HERE = {
    "pg_replication_lag_seconds": "a primary has no replay lag (no standby here)",
    "redis_replication_lag_seconds": "no Redis replica is attached",
}
CERT_DAYS = 30
EXPORTER_SOURCES = ("postgres", "redis", "temporal", "probes")


OUTBOUND_PANELS = {"application: Model provider p95 by provider", "application: Model provider errors by class",
                   "application: DB client time by tenant"}


def available_sources() -> set[str]:
    """Sources whose producer exists in this tree (the exporters land over time)."""
    sources = {s for s in EXPORTER_SOURCES if importlib.util.find_spec(f"exporters.{s}") is not None}
    if importlib.util.find_spec("examples.agent_api") is not None:
        sources |= {"app", "business"}  # the example API records the business metrics too
    if "temporal" in sources and importlib.util.find_spec("collectors.worker") is not None:
        sources.add("worker")
    sources |= {"node", "prometheus", "exporter", "cost"}
    return sources


# -- the environment -------------------------------------------------------------------------------


def seed_postgres(pg: PostgresServer) -> list[psycopg.Connection[Any]]:
    """Three tenant schemas and roles, statements run as each role, one idle session each held open."""
    pg.execute("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
    held = []
    for n, tenant in enumerate(TENANTS, start=1):
        pg.execute(f"CREATE ROLE tenant_{tenant} LOGIN")
        pg.execute(f"CREATE SCHEMA tenant_{tenant} AUTHORIZATION tenant_{tenant}")
        dsn = pg.dsn.replace("postgres@", f"tenant_{tenant}@")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f"CREATE TABLE tenant_{tenant}.orders (id int PRIMARY KEY, note text)")
            conn.execute(f"INSERT INTO tenant_{tenant}.orders SELECT g, 'x' FROM generate_series(1, {100 * n}) g")
            conn.execute(f"UPDATE tenant_{tenant}.orders SET note = 'y' WHERE id <= {10 * n}")
            conn.execute(f"DELETE FROM tenant_{tenant}.orders WHERE id > {90 * n}")
            for _ in range(5):
                conn.execute(f"SELECT count(*) FROM tenant_{tenant}.orders WHERE id < 50").fetchall()
        held.append(psycopg.connect(dsn, autocommit=True))

    def flushed() -> bool:  # the seeding sessions' counters reached pg_stat_user_tables
        rows = pg.execute("SELECT relnamespace::regnamespace::text, n_tup_ins FROM pg_stat_user_tables"
                          " JOIN pg_class ON pg_class.oid = relid")
        return dict(rows) == {f"tenant_{t}": 100 * n for n, t in enumerate(TENANTS, start=1)}

    wait_for(flushed, 30, what="seeding statistics flushed")
    # only now: VACUUM sets n_live_tup exactly, and no pending counters land on top of it
    pg.execute("VACUUM ANALYZE " + ", ".join(f"tenant_{t}.orders" for t in TENANTS))
    return held


def seed_redis(url: str) -> list[redis.Redis]:
    r = redis.Redis.from_url(url)
    for n, tenant in enumerate(TENANTS, start=1):
        pipe = r.pipeline(transaction=False)
        for i in range(20 * n):
            pipe.set(f"tenant:{tenant}:session:{i}", "v" * 40, ex=3600 if i % 2 else None)
        pipe.hset(f"tenant:{tenant}:profile", mapping={"plan": "pro"})
        pipe.execute()
    for i in range(50):  # hits and misses
        r.get(f"tenant:acme:session:{i}")
    held = []
    for tenant in TENANTS:
        client = redis.Redis.from_url(url, client_name=f"tenant:{tenant}")
        client.ping()
        held.append(client)
    return held


def seed_temporal(server: TemporalServer, telemetry: Any = None) -> Iterator[None]:
    """Per tenant namespace: completed, failed, terminated and one still-running workflow, run by a
    worker that keeps polling until teardown; with `telemetry` (collectors.worker) its SDK metrics
    are recorded by tenant."""
    from temporalio.client import Client, WorkflowFailureError
    from temporalio.service import RPCError

    from tests.support.temporal import AsyncRunner, ObsWorkflow, RunningWorker, ready_client

    aio = AsyncRunner()
    workers: list[RunningWorker] = []
    try:
        for tenant in TENANTS:
            client = ready_client(aio, server.address, f"tenant-{tenant}")
            if telemetry is not None:
                client = aio.run(Client.connect(server.address, namespace=f"tenant-{tenant}",
                                                runtime=telemetry.runtime, interceptors=telemetry.interceptors))
            queue = f"tenant-{tenant}-main"
            worker = RunningWorker(aio, client, queue)
            workers.append(worker)

            async def run(client: Any = client, queue: str = queue) -> None:
                for index, mode in enumerate(("ok", "ok", "fail", "wait", "terminate")):
                    kwargs = {"id": f"{queue}-{index}", "task_queue": queue}
                    if mode in ("wait", "terminate"):
                        handle = await client.start_workflow(ObsWorkflow.run, mode, **kwargs)
                        if mode == "terminate":
                            await handle.terminate("seeded")
                        continue
                    with contextlib.suppress(WorkflowFailureError):
                        await client.execute_workflow(ObsWorkflow.run, mode, **kwargs)
                with contextlib.suppress(RPCError):  # a frontend error (NotFound) for the error panels
                    await client.get_workflow_handle(f"{queue}-missing").describe()

            aio.run(run())
        yield
    finally:
        # Workflow tasks evicted at shutdown end their spans from another context: harmless, not news.
        logging.getLogger("opentelemetry.context").setLevel(logging.CRITICAL)
        for worker in workers:
            with contextlib.suppress(Exception):
                worker.stop()
        aio.close()


def traffic(app_url: str) -> None:
    """Requests per tenant: successes, some 5xx, inference calls with cache hits and misses."""
    with httpx.Client(base_url=app_url, timeout=10) as http:
        for n, tenant in enumerate(TENANTS, start=1):
            headers = {"X-Tenant-ID": tenant}
            for i in range(10 * n):
                status = 500 if i % 5 == 0 else 200
                http.get("/v1/echo", params={"status": status, "sleep": 0.01}, headers=headers)
            for i in range(4):
                http.get(f"/v1/tenants/{tenant}/infer",
                         params={"tokens": 10 * n, "cache": "hit" if i % 2 else "miss", "sleep": 0.02},
                         headers=headers)
            for i in range(3 * n):  # agent tasks: business metrics (users, outcomes, vector search)
                http.post(f"/v1/tenants/{tenant}/tasks",
                          params={"user": f"u{i % n}", "outcome": "failure" if i == 0 else "success",
                                  "results": i, "sleep": 0.01})


@pytest.fixture(scope="module")
def live() -> Iterator[dict[str, Any]]:
    sources = available_sources()
    stack = contextlib.ExitStack()
    with stack:
        config = obsconfig.load(ROOT / "obsbundle.yaml")
        targets: dict[str, list[str]] = {}
        cfg: dict[str, Any] = {"sources": {}, "exporter": {"scrape_timeout": "5s"}}
        held: list[Any] = []
        if "postgres" in sources:
            pg = stack.enter_context(PostgresServer())
            held += seed_postgres(pg)
            users = [f"tenant_{t}" for t in ("acme", "globex")]
            bouncer = stack.enter_context(PgBouncerServer(pg, users=users))
            for tenant in ("acme", "globex"):  # the users in PgBouncer's auth file
                held.append(psycopg.connect(bouncer.dsn(f"tenant_{tenant}"), autocommit=True))
                held[-1].execute("SELECT 1")
            cfg["sources"]["postgres"] = [{"name": "main", "dsn": pg.dsn, "pgbouncer": {"dsn": bouncer.admin_dsn}}]
        if "redis" in sources:
            # maxmemory: saturation is defined; slowlog threshold 0: every command is a slow log entry
            rs = stack.enter_context(RedisServer(["--maxmemory", "64mb", "--slowlog-log-slower-than", "0"]))
            held += seed_redis(rs.url)
            cfg["sources"]["redis"] = [{"name": "cache", "url": rs.url, "scan": {"interval": "1s"}}]
        if "temporal" in sources:
            ts = stack.enter_context(TemporalServer(namespaces=[f"tenant-{t}" for t in TENANTS]))
            telemetry = None
            if "worker" in sources:  # the seeding worker's SDK metrics by tenant, on its own /metrics
                from collectors.app import instrument
                from collectors.worker import WorkerTelemetry

                otel = instrument(config, service_name="agent-worker")
                stack.callback(otel.shutdown)
                targets["worker"] = [f"127.0.0.1:{otel.start_http_server('127.0.0.1:0')}"]
                telemetry = WorkerTelemetry(config, otel)
                stack.callback(telemetry.close)
            seeding = seed_temporal(ts, telemetry)
            next(seeding)
            stack.callback(lambda: next(seeding, None))
            cfg["sources"]["temporal"] = [{"name": "main", "address": ts.address, "refresh_interval": "1s",
                                           "metrics_url": ts.metrics_url}]
        app_url = ""
        if "app" in sources:
            app = stack.enter_context(UvicornService("examples.agent_api:app", cwd=ROOT))
            app_url = app.url
            targets["app"] = [app.address]
            traffic(app_url)
        if "probes" in sources:
            health = app_url or "http://127.0.0.1:9"
            cert = self_signed_cert(Path(stack.enter_context(tempfile.TemporaryDirectory())), CERT_DAYS)
            https = stack.enter_context(contextlib.closing(TargetServer(cert)))
            cfg["sources"]["probes"] = [
                {"name": f"{t}-health", "url": f"{health}/healthz", "tenant": t, "interval": "1s"} for t in TENANTS
            ] + [{"name": "platform-health", "url": f"{health}/healthz", "interval": "1s"},
                 {"name": "platform-tls", "url": https.url("/ok"), "tls_ca_file": str(cert[0]), "interval": "1s"}]
        for kind in EXPORTER_SOURCES:
            if kind in sources and cfg["sources"].get(kind):
                exporter = stack.enter_context(ExporterProcess(kind, cfg))
                targets[kind] = [exporter.address]
        targets["node"] = [stack.enter_context(NodeExporter()).address]
        # cost windows of 15 s, so month-to-date and the forecast have data within seconds
        config["cost"] = {**config["cost"], "resolution": "15s", "forecast_min_elapsed": "1s"}
        # the recording rules the SLO panels read (the 30d window), evaluated every second here,
        # and the cost rules the cost board reads
        rules_dir = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        rules = rules_dir / "recording.rules.yaml"
        rules.write_text(yaml.safe_dump({"groups": recording_groups(config)}))
        cost_rules = rules_dir / "cost.rules.yaml"
        cost_rules.write_text(cost.render(config)[cost.RULE_FILE])
        prom = stack.enter_context(PrometheusServer(targets, rule_files=[str(rules), str(cost_rules)],
                                                    scrape_interval="2s"))
        wait_for(prom.targets_up, 90, 0.5, what="every scrape target up")
        ready = {
            "postgres": f'count(pg_tenant_schema_size_bytes{{tenant_id=~"{TENANT_REGEX}"}}) == 3',
            "redis": f'count(redis_tenant_keys{{tenant_id=~"{TENANT_REGEX}"}} > 0) == 3',
            "temporal": f'count(sum by (tenant_id) (temporal_tenant_workflows_closed{{tenant_id=~"{TENANT_REGEX}"}}'
                        ' > 0)) == 3',
            "app": f'count(sum by (tenant_id) (http_server_requests_total{{tenant_id=~"{TENANT_REGEX}"}})) == 3',
            "business": f'count(sum by (tenant_id) (agent_tasks_started_total{{tenant_id=~"{TENANT_REGEX}"}})) == 3',
            "worker": f'count(sum by (tenant_id) (temporal_worker_polls_total{{tenant_id=~"{TENANT_REGEX}"}})) == 3',
            "probes": f'count(probe_success{{tenant_id=~"{TENANT_REGEX}|_shared"}} == 1) == 5',
        }
        for source, expr in ready.items():
            if source in sources:
                prom.wait_query(expr, timeout=90)
        if app_url:
            time.sleep(2)
            traffic(app_url)  # a second burst, so rates over the window are non-zero
            prom.wait_query(f'count({MONTH_TO_DATE}{{tenant_id=~"{TENANT_REGEX}"}}) == 3', timeout=90)
        time.sleep(3)
        yield {"prom": prom, "sources": sources, "config": config}
        for conn in held:
            with contextlib.suppress(Exception):
                conn.close()


# -- the queries -----------------------------------------------------------------------------------


def expand(expr: str) -> str:
    for name, value in INTERVALS.items():
        expr = expr.replace(name, value)
    return promql.expand(expr, VARIABLES)


def run_query(prom: PrometheusServer, expr: str, instant: bool) -> tuple[str | None, int]:
    """(error or None, number of series) for one target, the way Grafana would run it."""
    now = time.time()
    if instant:
        params = {"query": expr, "time": str(now)}
        url = f"{prom.url}/api/v1/query"
    else:
        params = {"query": expr, "start": str(now - 120), "end": str(now), "step": "5"}
        url = f"{prom.url}/api/v1/query_range"
    body = httpx.get(url, params=params, timeout=30).json()
    if body.get("status") != "success":
        return f"{body.get('errorType')}: {body.get('error')}", 0
    return None, len(body["data"]["result"])


def test_every_panel_query_runs_and_returns_data(live: dict[str, Any]) -> None:
    prom, sources, cfg = live["prom"], live["sources"], live["config"]
    catalog = dashboards.dashboard_catalog(cfg)  # with the recording rules the SLO panels read
    errors, empty, exempt, skipped, checked = [], [], set(), set(), 0
    annotation = alert_annotation()["expr"]
    if run_query(prom, expand(annotation), False)[0] is not None:
        errors.append(f"annotation {annotation}: {run_query(prom, expand(annotation), False)[0]}")
    for slug, model in dashboards.dashboards(cfg).items():
        for panel in checks.panels(model):
            if panel["type"] in ("row", "alertlist"):  # the alert list reads Grafana's alert API, no query
                continue
            name = f"{slug}: {panel['title']}"
            needs = {m for t in panel["targets"] for m in promql.metric_names(t["expr"], VARIABLES)}
            panel_sources = {catalog.series(m).source for m in needs}  # type: ignore[union-attr]
            present = panel_sources <= sources
            if not present:
                skipped.add(name)
            conditional = {catalog.series(m).name for m in needs} & set(NOT_PRODUCED_HERE)  # type: ignore[union-attr]
            for target in panel["targets"]:
                error, series = run_query(prom, expand(target["expr"]), target["instant"])
                checked += 1
                if error:
                    errors.append(f"{name} [{target['refId']}]: {error}")
                elif series == 0 and present and not conditional:
                    empty.append(f"{name} [{target['refId']}]: {target['expr']}")
                elif series == 0 and conditional:
                    exempt.add(name)
    assert errors == []
    assert empty == [], "\n".join(empty)
    if {*EXPORTER_SOURCES, "app", "business", "worker"} <= sources:
        # every source present but "clients": the example API makes no outbound calls yet
        # (tests/test_app_clients.py proves those metrics), so only the outbound-calls row is skipped
        assert skipped == OUTBOUND_PANELS
    if {"postgres", "redis"} <= sources:
        assert exempt == {"postgresql: Replication lag", "redis: Replication lag"}
    print(f"\nlive dashboards: {checked} targets checked; sources covered: {sorted(sources)}; "
          f"exempt (not produced here): {sorted(exempt)}; skipped (source absent): {sorted(skipped)}",
          file=sys.stderr)


def test_tenant_variable_lists_the_seeded_tenants(live: dict[str, Any]) -> None:
    prom, sources = live["prom"], live["sources"]
    for slug, model in dashboards.dashboards(live["config"]).items():
        variable = next(v for v in model["templating"]["list"] if v["name"] == "tenant_id")
        selector = variable["query"].removeprefix("label_values(").removesuffix(", tenant_id)")
        metric = selector.split("{")[0] or "tenant drill-down union"
        source = {"http_server_requests_total": "app", "pg_tenant_schema_size_bytes": "postgres",
                  "redis_tenant_keys": "redis", "temporal_tenant_workflows_running": "temporal"}.get(metric, "app")
        if source not in sources:
            continue
        body = httpx.get(f"{prom.url}/api/v1/label/tenant_id/values", params={"match[]": selector},
                         timeout=10).json()
        assert body["status"] == "success", (slug, body)
        assert set(TENANTS) <= set(body["data"]), (slug, body["data"])


def panel_expr(cfg: dict[str, Any], slug: str, title: str, ref: str = "A") -> str:
    model = dashboards.dashboards(cfg)[slug]
    (panel,) = [p for p in checks.panels(model) if p.get("title") == title]
    (target,) = [t for t in panel["targets"] if t["refId"] == ref]
    return expand(target["expr"])


def settled(prom: PrometheusServer, expr: str, expected: dict[str, float], label: str = "tenant_id",
            timeout: float = 30) -> dict[str, float]:
    """The query's {label: value} once it equals `expected` (PostgreSQL statistics and the keyspace
    pass converge within seconds), or the last value seen, for the assertion to show."""
    deadline = time.monotonic() + timeout
    while True:
        found = {k: round(v, 6) for k, v in prom.query_by(expr, label).items()}
        if found == expected or time.monotonic() > deadline:
            return found
        time.sleep(1)


def test_panels_show_the_seeded_values(live: dict[str, Any]) -> None:
    """Panel queries compute the right figure per tenant, not just some figure."""
    prom, sources, cfg = live["prom"], live["sources"], live["config"]
    n = {tenant: i for i, tenant in enumerate(TENANTS, start=1)}
    cases: list[tuple[str, str, str, dict[str, float]]] = []
    if "redis" in sources:
        cases += [
            ("redis", "tenant", "Keys", {t: 20 * i + 1 for t, i in n.items()}),
            ("redis", "redis", "Keys without TTL by tenant", {t: 10 * i + 1 for t, i in n.items()}),
            ("redis", "tenants", "Tenants in Redis", {"": 3}),
        ]
    if "postgres" in sources:
        cases += [
            ("postgres", "postgresql", "Live rows by tenant", {t: 90 * i for t, i in n.items()}),
            ("postgres", "tenants", "Tenants in PostgreSQL", {"": 3}),
        ]
    if "temporal" in sources:
        cases += [
            ("temporal", "temporal", "Running workflows by tenant", {t: 1 for t in TENANTS}),
            # closed per tenant: 2 completed, 1 failed, 1 terminated -> (failed + terminated) / closed
            ("temporal", "tenant", "Workflow failure ratio", {t: 0.5 for t in TENANTS}),
            ("temporal", "tenants", "Tenants with workflows", {"": 3}),
        ]
    if "business" in sources:  # traffic(): tenant n's tasks come from users u0 .. u(n-1)
        cases += [("business", "tenants", "Active users by tenant", dict(n))]
    if "probes" in sources:
        cases += [("probes", "infrastructure", "Probes succeeding", {"": 1})]
    mismatches = []
    for _source, slug, title, expected in cases:
        found = settled(prom, panel_expr(cfg, slug, title), expected)
        if found != expected:
            mismatches.append(f"{slug}: {title}: {found} != {expected}")
    assert mismatches == []
    if "probes" in sources:
        days = prom.query_by(panel_expr(cfg, "infrastructure", "TLS certificate expiry"), "")[""]
        assert CERT_DAYS - 1 < days <= CERT_DAYS
