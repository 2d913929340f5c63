"""The demo's three tenants, seeded into PostgreSQL, Redis and Temporal with known sizes.

The figures are exact on purpose: the printed table (and tests/test_demo.py) checks them against
this seed. Weight w gives 10w agents + 1000w tasks rows, 500w strings + 20w hashes, 2w workflows.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from obsbundle.services import PostgresServer

TENANTS = {"acme": 3, "beta": 2, "gamma": 1}  # tenant -> relative size of its seeded data


def task_queue(tenant: str) -> str:
    return f"tenant-{tenant}-agents"


def namespace(tenant: str) -> str:
    return f"tenant-{tenant}"


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
    """2w long-running `AgentRun` workflows on each tenant's queue (the demo's workers keep them open)."""
    from temporalio.client import Client

    async def seed() -> None:
        for tenant, weight in TENANTS.items():
            client = await connect(Client, address, namespace(tenant))
            for i in range(weight * 2):
                await client.start_workflow("AgentRun", id=f"demo-{tenant}-{i}", task_queue=task_queue(tenant))

    asyncio.run(seed())


async def connect(client_class: Any, address: str, namespace: str, timeout: float = 60) -> Any:
    """The dev server opens its port before its frontend serves; retry until it does."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await client_class.connect(address, namespace=namespace)
        except Exception:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)
