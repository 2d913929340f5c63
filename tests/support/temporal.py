"""Temporal-area test data: the seeding plan with its exact per-tenant ground truth, the workflow
real in-process workers run, and the loop that drives them. The fixtures (tests/fixtures/temporal.py)
start one dev server for the session and seed it with `seed`.

Workflows: `ObsWorkflow("ok")` completes, `("fail")` fails with a non-retryable ApplicationError,
`("wait")` stays running until signalled. A background thread owns one asyncio loop on which every
client and worker of the tests runs, so synchronous tests can drive them with `aio.run(coro)`.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable
from concurrent.futures import Future
from typing import Any, TypeVar

from temporalio import workflow
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest
from temporalio.client import Client, WorkflowFailureError
from temporalio.common import SearchAttributeKey, SearchAttributePair, TypedSearchAttributes
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from obsbundle.services import wait_for

T = TypeVar("T")

TENANT_NAMESPACES = ("tenant-alpha", "tenant-beta", "tenant-gamma", "tenant-delta")
SHARED_NAMESPACE = "shared"
TENANT_ATTRIBUTE = "TenantId"
ATTRIBUTE_KEY = SearchAttributeKey.for_keyword(TENANT_ATTRIBUTE)
BACKLOG_TENANT = "delta"
BACKLOG_QUEUE = "tenant-delta-jobs"

# What the seed runs, per namespace: (task queue, attribute value or None, [modes]).
PLAN: dict[str, list[tuple[str, str | None, list[str]]]] = {
    "tenant-alpha": [("tenant-alpha-main", None, ["ok", "ok", "ok", "fail", "wait", "wait"])],
    "tenant-beta": [("tenant-beta-main", None, ["ok", "fail", "fail", "wait"])],
    "tenant-gamma": [("tenant-gamma-main", None, ["ok", "ok", "terminate"])],
    SHARED_NAMESPACE: [
        ("tenant-x-main", "x", ["ok", "ok", "wait"]),
        ("tenant-y-main", "y", ["fail", "ok"]),
    ],
}
# Ground truth the seed produces: tenant -> non-zero running and closed-by-status counts.
EXPECTED: dict[str, dict[str, int]] = {
    "alpha": {"running": 2, "completed": 3, "failed": 1},
    "beta": {"running": 1, "completed": 1, "failed": 2},
    "gamma": {"completed": 2, "terminated": 1},
    "x": {"running": 1, "completed": 2},
    "y": {"completed": 1, "failed": 1},
}


@workflow.defn(name="ObsWorkflow", sandboxed=False)
class ObsWorkflow:
    def __init__(self) -> None:
        self._released = False

    @workflow.signal
    def release(self) -> None:
        self._released = True

    @workflow.run
    async def run(self, mode: str) -> str:
        if mode == "fail":
            raise ApplicationError("seeded failure", non_retryable=True)
        if mode in ("wait", "terminate"):
            await workflow.wait_condition(lambda: self._released)
        return "ok"


class AsyncRunner:
    """One asyncio loop in a daemon thread; `run` executes a coroutine there and waits for it."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="temporal-tests", daemon=True)
        self.thread.start()

    def run(self, coro: Awaitable[T], timeout: float = 120.0) -> T:
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]
        return future.result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


class RunningWorker:
    """A real temporalio Worker polling one task queue until `stop()`."""

    def __init__(self, aio: AsyncRunner, client: Client, task_queue: str) -> None:
        self.aio = aio
        self.worker = Worker(client, task_queue=task_queue, workflows=[ObsWorkflow])
        self.task = aio.run(self._start())

    async def _start(self) -> asyncio.Task[Any]:
        return asyncio.ensure_future(self.worker.run())

    def stop(self) -> None:
        async def shutdown() -> None:
            await self.worker.shutdown()

        self.aio.run(shutdown(), timeout=60)


async def connect(address: str, namespace: str) -> Client:
    return await Client.connect(address, namespace=namespace)


def ready_client(aio: AsyncRunner, address: str, namespace: str, timeout: float = 120.0) -> Client:
    """A client whose namespace answers a visibility call: `start-dev` opens its port early."""

    async def attempt() -> Client | None:
        try:
            client = await connect(address, namespace)
            await client.count_workflows()
            return client
        except Exception:
            return None

    return wait_for(lambda: aio.run(attempt(), 30), timeout, 0.5, what=f"temporal namespace {namespace}")


async def _add_attribute(client: Client) -> None:
    await client.operator_service.add_search_attributes(AddSearchAttributesRequest(
        namespace=SHARED_NAMESPACE,
        search_attributes={TENANT_ATTRIBUTE: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD},
    ))


async def _seed_queue(client: Client, ns: str, queue: str, value: str | None, modes: list[str]) -> None:
    attributes = TypedSearchAttributes([SearchAttributePair(ATTRIBUTE_KEY, value)]) if value else None
    for index, mode in enumerate(modes):
        wf_id = f"{queue}-{index}-{mode}"
        kwargs: dict[str, Any] = {"id": wf_id, "task_queue": queue}
        if attributes is not None:
            kwargs["search_attributes"] = attributes
        if mode in ("wait", "terminate"):
            handle = await client.start_workflow(ObsWorkflow.run, mode, **kwargs)
            if mode == "terminate":
                await handle.terminate("seeded termination")
            continue
        try:
            await client.execute_workflow(ObsWorkflow.run, mode, **kwargs)
        except WorkflowFailureError:
            assert mode == "fail"


def seed(aio: AsyncRunner, clients: dict[str, Client]) -> dict[str, dict[str, int]]:
    """Runs the PLAN with real workers, then stops them; returns EXPECTED."""
    aio.run(_add_attribute(clients[SHARED_NAMESPACE]))
    workers = [
        RunningWorker(aio, clients[ns], queue) for ns, queues in PLAN.items() for queue, _, _ in queues
    ]
    try:
        for ns, queues in PLAN.items():
            for queue, value, modes in queues:
                aio.run(_seed_queue(clients[ns], ns, queue, value, modes))
    finally:
        for worker in workers:
            worker.stop()
    return EXPECTED


def counts(samples: dict[str, dict[tuple[tuple[str, str], ...], float]], tenant: str) -> dict[str, int]:
    """A tenant's non-zero running/closed counts from a parsed scrape, in EXPECTED's shape."""
    found: dict[str, int] = {}
    for labels, value in samples.get("temporal_tenant_workflows_running", {}).items():
        if dict(labels).get("tenant_id") == tenant and value:
            found["running"] = found.get("running", 0) + int(value)
    for labels, value in samples.get("temporal_tenant_workflows_closed", {}).items():
        d = dict(labels)
        if d.get("tenant_id") == tenant and value:
            found[d["status"]] = found.get(d["status"], 0) + int(value)
    return found
