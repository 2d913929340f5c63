"""The demo's Temporal workers: one per healthy tenant's queue, instrumented by collectors.worker.

A tenant left out (the `temporal-backlog` incident) keeps its seeded workflows waiting with no
poller, which is what `TemporalQueueWithoutWorkers` pages on. The workflow never finishes, so
the "running" figures stay equal to the seed.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Iterable, Mapping
from typing import Any

from temporalio import workflow

from obsbundle.demo.seed import connect, namespace, task_queue


@workflow.defn(name="AgentRun", sandboxed=False)
class AgentRun:
    """An agent session that stays open until the demo ends."""

    @workflow.run
    async def run(self) -> None:
        await workflow.wait_condition(lambda: False)


class DemoWorkers:
    """Workers on a background event loop; their SDK metrics by tenant on `metrics_address`."""

    def __init__(self, address: str, config: Mapping[str, Any], tenants: Iterable[str]) -> None:
        from collectors.app import instrument
        from collectors.worker import WorkerTelemetry

        self.tenants = list(tenants)
        self.otel = instrument(config, service_name="agent-worker")
        self.port = self.otel.start_http_server("127.0.0.1:0")
        self.telemetry = WorkerTelemetry(config, self.otel)
        self.loop = asyncio.new_event_loop()
        self.stop_event: asyncio.Event | None = None
        self.ready = threading.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(address,), daemon=True, name="demo-workers")
        self.thread.start()
        if not self.ready.wait(90):
            raise RuntimeError("demo workers did not start within 90 s")
        if self.error is not None:
            raise RuntimeError(f"demo workers: {self.error}")

    @property
    def metrics_address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _run(self, address: str) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self._serve(address))
        except BaseException as exc:  # reported to the constructor, never a thread traceback
            self.error = exc
            self.ready.set()

    async def _serve(self, address: str) -> None:
        from temporalio.client import Client
        from temporalio.worker import Worker

        self.stop_event = asyncio.Event()
        async with contextlib.AsyncExitStack() as stack:
            for tenant in self.tenants:
                await connect(Client, address, namespace(tenant))  # waits for the frontend to serve
                client = await Client.connect(address, namespace=namespace(tenant), runtime=self.telemetry.runtime,
                                              interceptors=self.telemetry.interceptors)
                worker = Worker(client, task_queue=task_queue(tenant), workflows=[AgentRun])
                await stack.enter_async_context(worker)
            self.ready.set()
            await self.stop_event.wait()

    def close(self) -> None:
        # Workflow tasks evicted at shutdown end their spans from another context: harmless, not news.
        logging.getLogger("opentelemetry.context").setLevel(logging.CRITICAL)
        if self.stop_event is not None and self.loop.is_running():
            self.loop.call_soon_threadsafe(self.stop_event.set)
        self.thread.join(30)
        self.telemetry.flush()
        self.otel.shutdown()
