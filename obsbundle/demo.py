"""`obsbundle demo`: the whole bundle on loopback, seeded with three tenants.

Starts throwaway PostgreSQL, Redis and Temporal servers, seeds each with per-tenant data, runs the
obsbundle exporters against them and a real Prometheus that scrapes the exporters and loads the
generated alert rules, then prints a per-tenant table read back through Prometheus's HTTP API.
Everything listens on 127.0.0.1 and is removed on exit.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import math
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from obsbundle import config as config_mod
from obsbundle.services import (
    ExporterProcess,
    PostgresServer,
    PrometheusServer,
    RedisServer,
    Service,
    TemporalServer,
    UvicornService,
    wait_for,
)

TENANTS = {"acme": 3, "beta": 2, "gamma": 1}  # tenant -> relative size of its seeded data (as examples/load.py)

# (column title, PromQL, format)
TABLE_QUERIES = [
    ("PG schema bytes", "sum by (tenant_id) (pg_tenant_schema_size_bytes)", "{:,.0f}"),
    ("PG live rows", "sum by (tenant_id) (pg_tenant_live_rows)", "{:,.0f}"),
    ("Redis keys", "sum by (tenant_id) (redis_tenant_keys)", "{:,.0f}"),
    ("Redis bytes (est.)", "sum by (tenant_id) (redis_tenant_memory_bytes)", "{:,.0f}"),
    ("Temporal running", "sum by (tenant_id) (temporal_tenant_workflows_running)", "{:,.0f}"),
    ("Temporal backlog", "sum by (tenant_id) (temporal_tenant_task_queue_backlog)", "{:,.0f}"),
    ("API req/s", "sum by (tenant_id) (rate(http_server_requests_total[1m]))", "{:.2f}"),
    ("API p95 s", "histogram_quantile(0.95, sum by (tenant_id, le) "
                  "(rate(http_server_request_duration_seconds_bucket[1m])))", "{:.2f}"),
]


def seed_postgres(server: PostgresServer) -> None:
    """Per tenant: a schema with agents/tasks tables sized by the tenant's weight, plus a shared
    `public.training_jobs` table that the demo's custom query turns into a per-tenant metric."""
    statements = ["CREATE TABLE IF NOT EXISTS public.training_jobs "
                  "(id serial PRIMARY KEY, tenant_id text NOT NULL, state text NOT NULL)"]
    for tenant, weight in TENANTS.items():
        schema = f"tenant_{tenant}"
        statements += [
            f"CREATE SCHEMA IF NOT EXISTS {schema}",
            f"CREATE TABLE IF NOT EXISTS {schema}.agents (id serial PRIMARY KEY, name text)",
            f"CREATE TABLE IF NOT EXISTS {schema}.tasks (id serial PRIMARY KEY, agent_id int, body text)",
            f"INSERT INTO {schema}.agents (name) SELECT 'agent-' || g FROM generate_series(1, {10 * weight}) g",
            f"INSERT INTO {schema}.tasks (agent_id, body) "
            f"SELECT g % 10, repeat('x', 200) FROM generate_series(1, {1000 * weight}) g",
            f"INSERT INTO public.training_jobs (tenant_id, state) "
            f"SELECT '{tenant}', 'queued' FROM generate_series(1, {weight})",
        ]
    statements.append("ANALYZE")
    for statement in statements:
        server.execute(statement)


def seed_redis(url: str) -> None:
    import redis

    client = redis.Redis.from_url(url)
    pipe = client.pipeline(transaction=False)
    for tenant, weight in TENANTS.items():
        for i in range(500 * weight):
            pipe.set(f"tenant:{tenant}:session:{i}", "x" * 64, ex=3600 if i % 2 else None)
        for i in range(20 * weight):
            pipe.hset(f"tenant:{tenant}:agent:{i}", mapping={"state": "idle", "model": "small"})
    for i in range(100):
        pipe.set(f"cache:global:{i}", "shared")
    pipe.execute()
    client.close()


def seed_temporal(address: str) -> None:
    """Start workflows on each tenant's queue; no worker polls it, so they stay running as a backlog."""
    from temporalio.client import Client

    async def seed() -> None:
        for tenant, weight in TENANTS.items():
            client = await _connect(Client, address, f"tenant-{tenant}")
            for i in range(weight * 2):
                await client.start_workflow("AgentRun", id=f"demo-{tenant}-{i}", task_queue=f"tenant-{tenant}-agents")

    asyncio.run(seed())


async def _connect(client_class: Any, address: str, namespace: str, timeout: float = 60) -> Any:
    """The dev server opens its port before its frontend serves; retry until it does."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await client_class.connect(address, namespace=namespace)
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


def demo_config(base: dict[str, Any], pg: PostgresServer, redis_url: str, temporal: str) -> dict[str, Any]:
    cfg = {k: v for k, v in base.items() if k != "sources"}
    cfg["sources"] = {
        "postgres": [{
            "name": "main", "dsn": pg.dsn,
            "custom_queries": [{
                "name": "training_jobs",
                "sql": "SELECT tenant_id, count(*) AS queued FROM public.training_jobs "
                       "WHERE state = 'queued' GROUP BY tenant_id",
                "metrics": [{"column": "queued", "name": "queued", "help": "Training jobs queued per tenant."}],
            }],
        }],
        "redis": [{"name": "cache", "url": redis_url, "scan": {"interval": "5s"}}],
        "temporal": [{"name": "main", "address": temporal, "refresh_interval": "5s"}],
    }
    return cfg


def rule_files(root: Path) -> list[Path]:
    """The generated Prometheus rule files (not their promtool tests)."""
    return sorted((root / "alerts" / "rules").glob("*.rules.yaml"))


def print_table(prometheus: PrometheusServer) -> None:
    columns = [(title, fmt, prometheus.query_by(expr)) for title, expr, fmt in TABLE_QUERIES]
    tenants = sorted({t for _, _, values in columns for t in values})
    width = max([len("tenant_id"), *map(len, tenants)])
    print("  ".join(["tenant_id".ljust(width), *(title.rjust(len(title)) for title, _, _ in columns)]))
    for tenant in tenants:
        cells = [
            (fmt.format(values[tenant]) if not math.isnan(values.get(tenant, math.nan)) else "-").rjust(len(title))
            for title, fmt, values in columns
        ]
        print("  ".join([tenant.ljust(width), *cells]))


def start_app(started: list[Service], targets: dict[str, list[str]], cfg: dict[str, Any]) -> None:
    """The example agent API with steady three-tenant load, and a probe of its health endpoint."""
    if not (Path.cwd() / "examples" / "agent_api.py").exists():
        print("  (examples/ not found: run the demo from a source checkout to include the API)")
        return
    import sys
    import threading

    sys.path.insert(0, str(Path.cwd()))
    from examples import load

    app = UvicornService("examples.agent_api:app", cwd=Path.cwd())
    started.append(app)
    targets["agent-api"] = [app.address]
    print(f"  example agent API  {app.url}  (metrics on /metrics)")
    # Load runs until the demo exits (daemon thread).
    threading.Thread(target=lambda: asyncio.run(load.run(app.url, 7 * 86400)), daemon=True, name="load").start()
    cfg["sources"]["probes"] = [{"name": "agent-api-health", "url": f"{app.url}/healthz", "interval": "5s"}]
    probes = ExporterProcess("probes", cfg)
    started.append(probes)
    targets["obsbundle-probes"] = [probes.address]
    print(f"  exporter probes    http://{probes.address}/metrics")


@contextlib.contextmanager
def _services() -> Iterator[list[Service]]:
    started: list[Service] = []
    try:
        yield started
    finally:
        for service in reversed(started):
            service.close()


def run(base_config: dict[str, Any], args: argparse.Namespace) -> int:
    duration = config_mod.parse_duration(args.duration) if args.duration else None
    with _services() as started:
        print("starting PostgreSQL, Redis and Temporal on loopback ...", flush=True)
        pg = PostgresServer()
        started.append(pg)
        redis_server = RedisServer()
        started.append(redis_server)
        temporal = TemporalServer([f"tenant-{t}" for t in TENANTS])
        started.append(temporal)

        print(f"seeding tenants {', '.join(TENANTS)} ...", flush=True)
        seed_postgres(pg)
        seed_redis(redis_server.url)
        seed_temporal(temporal.address)

        cfg = demo_config(base_config, pg, redis_server.url, temporal.address)
        targets: dict[str, list[str]] = {}
        for kind in ("postgres", "redis", "temporal"):
            if importlib.util.find_spec(f"exporters.{kind}") is None:
                print(f"  (exporter {kind} not in this build; skipped)")
                continue
            exporter = ExporterProcess(kind, cfg)
            started.append(exporter)
            targets[f"obsbundle-{kind}"] = [exporter.address]
            print(f"  exporter {kind:<9} http://{exporter.address}/metrics")

        start_app(started, targets, cfg)
        rules = rule_files(Path.cwd())
        prometheus = PrometheusServer(targets, rule_files=[str(r) for r in rules], scrape_interval="2s")
        started.append(prometheus)
        print(f"  prometheus         {prometheus.url}  ({len(rules)} rule files loaded)")
        wait_for(prometheus.targets_up, 60, 0.5, what="every exporter target up")
        wait_for(lambda: prometheus.query("redis_tenant_keys") or not targets.get("obsbundle-redis"), 60, 0.5,
                 what="first keyspace pass")
        if "agent-api" in targets:
            prometheus.wait_query('sum(rate(http_server_requests_total{tenant_id!~"_.*"}[1m])) > 0', timeout=60)
        print("\nper-tenant figures, read back through Prometheus:\n")
        print_table(prometheus)
        if duration is None:
            print("\nrunning; press Ctrl-C to stop and remove everything.", flush=True)
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(3600)
        else:
            time.sleep(duration)
    return 0
