"""Temporal workers by tenant (collectors.worker) against a real dev server and real workers.

Two tenants (namespace mode: `tenant-alpha`, `tenant-beta`) each run one worker in this process,
sharing one SDK runtime. Alpha's worker has ONE activity slot and gets a burst of activities that
each hold it for HOLD seconds, so its k-th activity waits about k * HOLD in the queue; beta's worker
has plenty of slots for the same burst. The worker's /metrics (served over HTTP) must show the
schedule-to-start growth under alpha's tenant and task queue only, alpha's slots at 0 during the
burst, exact poll counts, and spans and logs of each task carrying the right tenant.
"""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import timedelta

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from temporalio import activity, workflow
from temporalio.client import Client
from temporalio.worker import Worker

from collectors.app import instrument
from collectors.worker import WorkerTelemetry
from obsbundle import config as obsconfig
from obsbundle.catalog import static_catalog
from obsbundle.services import TemporalServer, free_port, parse_metrics

HOLD = 0.5  # seconds each activity holds its slot
BURST = 8  # activities per tenant
QUEUES = {"alpha": "alpha-jobs", "beta": "beta-jobs"}
S2S = "temporal_worker_schedule_to_start_latency_seconds"
worker_log = logging.getLogger("obsbundle.test.worker")


@activity.defn(name="hold_slot")
async def hold_slot(n: int) -> int:
    worker_log.info("activity %d running", n)
    await asyncio.sleep(HOLD)
    return n


@workflow.defn(name="BurstWorkflow", sandboxed=False)
class BurstWorkflow:
    @workflow.run
    async def run(self, n: int) -> int:
        return await workflow.execute_activity(hold_slot, n, start_to_close_timeout=timedelta(seconds=120))


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _series(samples: dict, name: str, **match: str) -> dict[tuple, float]:
    return {k: v for k, v in samples.get(name, {}).items() if all(dict(k).get(a) == b for a, b in match.items())}


def _one(samples: dict, name: str, **match: str) -> float:
    found = _series(samples, name, **match)
    assert len(found) == 1, (name, match, found)
    return next(iter(found.values()))


@pytest.fixture(scope="module")
def server():
    temporal = TemporalServer(namespaces=["tenant-alpha", "tenant-beta"])
    try:
        yield temporal
    finally:
        temporal.close()


def test_one_slot_worker_shows_schedule_to_start_growth_for_its_tenant_and_queue_only(server):
    config = obsconfig.parse("{}")
    spans = InMemorySpanExporter()
    otel = instrument(service_name="agent-worker", span_exporters=[spans])
    port = otel.start_http_server(f"127.0.0.1:{free_port()}")
    telemetry = WorkerTelemetry(config, otel, drain_interval=0.2)
    records = _Records()
    records.addFilter(telemetry.log_filter)
    worker_log.addHandler(records)
    worker_log.setLevel(logging.INFO)

    def scrape() -> dict:
        telemetry.flush()
        return parse_metrics(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text)

    min_slots: dict[str, float] = {}

    async def main() -> None:
        clients = {
            tenant: await Client.connect(server.address, namespace=f"tenant-{tenant}", runtime=telemetry.runtime,
                                         interceptors=telemetry.interceptors)
            for tenant in QUEUES
        }
        workers = [
            Worker(clients["alpha"], task_queue=QUEUES["alpha"], workflows=[BurstWorkflow], activities=[hold_slot],
                   max_concurrent_activities=1),
            Worker(clients["beta"], task_queue=QUEUES["beta"], workflows=[BurstWorkflow], activities=[hold_slot],
                   max_concurrent_activities=BURST * 2),
        ]
        runs = [asyncio.ensure_future(w.run()) for w in workers]
        try:
            handles = [
                await clients[tenant].start_workflow(
                    BurstWorkflow.run, n, id=f"burst-{tenant}-{n}", task_queue=QUEUES[tenant])
                for n in range(BURST) for tenant in QUEUES
            ]
            results = asyncio.ensure_future(asyncio.wait_for(asyncio.gather(*(h.result() for h in handles)), 120))
            while not results.done():  # watch the slots while the burst runs
                samples = await asyncio.to_thread(scrape)
                for tenant in QUEUES:
                    found = _series(samples, "temporal_worker_task_slots_available", tenant_id=tenant,
                                    task_type="activity")
                    if found:
                        min_slots[tenant] = min(min_slots.get(tenant, 1e9), *found.values())
                await asyncio.sleep(0.2)
            assert sorted(await results) == sorted(n for n in range(BURST) for _ in QUEUES)
        finally:
            for w in workers:
                await w.shutdown()
            for r in runs:
                await r

    try:
        asyncio.run(main())
        time.sleep(0.3)
        samples = scrape()
    finally:
        worker_log.removeHandler(records)
        telemetry.close()
        otel.shutdown()

    for tenant, queue in QUEUES.items():
        labels = {"tenant_id": tenant, "namespace": f"tenant-{tenant}", "task_queue": queue, "task_type": "activity"}
        assert _one(samples, f"{S2S}_count", **labels) == BURST
        assert _one(samples, "temporal_worker_polls_total", **labels, result="task") == BURST
        assert _one(samples, "temporal_worker_task_execution_latency_seconds_count", **labels) == BURST
        assert _one(samples, f"{S2S}_count", **{**labels, "task_type": "workflow"}) >= BURST
    alpha = {"tenant_id": "alpha", "task_queue": "alpha-jobs", "task_type": "activity"}
    beta = {"tenant_id": "beta", "task_queue": "beta-jobs", "task_type": "activity"}
    # One slot: the k-th activity to run starts k * HOLD after the first, so however spread out the
    # workflows scheduled them, the last ones waited more than a second.
    assert BURST - _one(samples, f"{S2S}_bucket", **alpha, le="1") >= 2
    # Plenty of slots: nothing of beta's waited that long.
    assert _one(samples, f"{S2S}_bucket", **beta, le="2.5") == BURST
    assert _one(samples, f"{S2S}_sum", **beta) < _one(samples, f"{S2S}_sum", **alpha) / 4
    # Slots: alpha's only slot was taken during the burst, beta never ran out.
    assert min_slots["alpha"] == 0
    assert min_slots["beta"] >= BURST
    # Every exposed family is catalogued under the worker source, with exactly its labels.
    catalog = static_catalog()
    for name, series in samples.items():
        metric = catalog.series(name)
        assert metric is not None, name
        for key in series:
            assert {k for k, _ in key} - {"le"} == set(metric.labels), (name, key)
    # Spans and logs of each task carry its tenant.
    activity_spans = [s for s in spans.get_finished_spans() if s.name.startswith("RunActivity:")]
    assert len(activity_spans) == 2 * BURST
    by_tenant: dict[str, int] = {}
    for span in activity_spans:
        by_tenant[span.attributes["tenant_id"]] = by_tenant.get(span.attributes["tenant_id"], 0) + 1
    assert by_tenant == {"alpha": BURST, "beta": BURST}
    workflow_spans = [s for s in spans.get_finished_spans() if s.name.startswith("RunWorkflow:")]
    assert sorted({s.attributes["tenant_id"] for s in workflow_spans}) == ["alpha", "beta"]
    logged = [(r.tenant_id, r.getMessage()) for r in records.records]
    assert sorted(t for t, _ in logged) == ["alpha"] * BURST + ["beta"] * BURST
