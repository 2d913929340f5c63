"""`obsbundle exporter temporal` as a real process against a real Temporal dev server with workflows
run by real workers: exact per-tenant counts, backlog growth and drain, relabel mode, outage and
recovery, a real Prometheus scraping it, and the catalog matching what it emits."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from collectors.metricset import MetricSet
from collectors.temporal import build_collector
from collectors.temporal.api import VISIBILITY
from obsbundle import config
from obsbundle.catalog import catalog_for, static_catalog
from obsbundle.services import (
    ExporterProcess,
    PrometheusServer,
    TemporalServer,
    by_tenant,
    free_port,
    parse_metrics,
    wait_for,
)
from obsbundle.settings import settings
from obsbundle.tenancy import TenantResolver
from tests.support.temporal import (
    BACKLOG_QUEUE,
    BACKLOG_TENANT,
    SHARED_NAMESPACE,
    TENANT_ATTRIBUTE,
    ObsWorkflow,
    RunningWorker,
    counts,
)

Samples = dict[str, dict[tuple[tuple[str, str], ...], float]]


def exporter_config(server: TemporalServer, **extra: Any) -> dict[str, Any]:
    source = {"name": "main", "address": server.address, "refresh_interval": "1s",
              "metrics_url": server.metrics_url, **extra}
    return {"sources": {"temporal": [source]}}


@pytest.fixture(scope="module")
def exporter(temporal_server: TemporalServer, seeded_temporal: dict) -> Iterator[ExporterProcess]:
    process = ExporterProcess("temporal", exporter_config(temporal_server))
    yield process
    process.close()


def up(samples: Samples, name: str = "temporal_up") -> float | None:
    return by_tenant(samples, name).get("_shared")


def queue_value(samples: Samples, name: str, tenant: str, queue: str, kind: str = "workflow") -> float | None:
    values = by_tenant(samples, name, task_queue=queue, task_queue_type=kind)
    return values.get(tenant)


def test_exact_per_tenant_workflow_counts(exporter: ExporterProcess, seeded_temporal: dict) -> None:
    def settled() -> dict[str, dict[str, int]] | None:
        samples = exporter.scrape()
        got = {tenant: counts(samples, tenant) for tenant in ("alpha", "beta", "gamma")}
        return got if all(got[t] == seeded_temporal[t] for t in got) else None

    try:
        wait_for(settled, 90, 0.5, what="per-tenant counts")
    except TimeoutError:
        samples = exporter.scrape()
        got = {tenant: counts(samples, tenant) for tenant in ("alpha", "beta", "gamma")}
        assert got == {t: seeded_temporal[t] for t in got}
    samples = exporter.scrape()
    assert up(samples) == 1.0
    # Namespaces that are no tenant's (default, shared, temporal-system) yield no tenant series.
    tenants = set(by_tenant(samples, "temporal_tenant_workflows_running"))
    assert tenants == {"alpha", "beta", "gamma", "delta"}
    # completed and failed are exposed at zero too, so failure ratios always evaluate; the rarer
    # statuses only while non-zero (gamma's termination).
    closed = {(dict(k)["tenant_id"], dict(k)["status"]) for k in samples["temporal_tenant_workflows_closed"]}
    assert {s for t, s in closed if t == "alpha"} == {"completed", "failed"}
    assert {s for t, s in closed if t == "gamma"} == {"completed", "failed", "terminated"}
    assert up(samples, "temporal_namespaces") == 7.0  # default, temporal-system, 4 tenants, shared
    assert up(samples, "temporal_closed_window_seconds") == 3600.0
    calls = by_tenant(samples, "temporal_api_calls_total", method="CountWorkflowExecutions")
    assert calls["_shared"] >= 4


def test_relabel_mode_attributes_server_metrics_to_tenants(exporter: ExporterProcess, seeded_temporal: dict) -> None:
    wait_for(lambda: up(exporter.scrape(), "temporal_server_metrics_up") == 1.0, 60, what="relabel up")
    samples = exporter.scrape()
    starts = by_tenant(samples, "temporal_server_service_requests_total", operation="StartWorkflowExecution")
    # Exactly the workflows the seed started, per tenant; the sanitized tenant_alpha maps back.
    assert starts["alpha"] == 6.0
    assert starts["beta"] == 4.0
    assert starts["gamma"] == 3.0
    namespaces = {dict(k)["namespace"] for k in samples["temporal_server_service_requests_total"]}
    assert {"tenant-alpha", "tenant-beta", "tenant-gamma"} <= namespaces
    assert "tenant_alpha" not in namespaces
    outcomes = {outcome: by_tenant(samples, "temporal_server_workflow_outcomes_total", outcome=outcome)
                for outcome in ("completed", "failed", "terminated")}
    for tenant in ("alpha", "beta", "gamma"):
        for outcome, by in outcomes.items():
            assert by.get(tenant, 0.0) == seeded_temporal[tenant].get(outcome, 0), (tenant, outcome)
    latency = by_tenant(samples, "temporal_server_service_latency_seconds_count",
                        namespace="tenant-alpha", operation="StartWorkflowExecution")
    assert latency == {"alpha": 6.0}


def test_backlog_grows_without_worker_and_drains_with_one(
    exporter: ExporterProcess, aio: Any, clients: dict, seeded_temporal: dict
) -> None:
    client = clients[f"tenant-{BACKLOG_TENANT}"]

    async def start() -> None:
        for index in range(3):
            await client.start_workflow(ObsWorkflow.run, "ok", id=f"backlog-{index}", task_queue=BACKLOG_QUEUE)

    aio.run(start())
    backlog = "temporal_tenant_task_queue_backlog"
    age = "temporal_tenant_task_queue_backlog_age_seconds"

    def backlogged() -> tuple[float, float] | None:
        samples = exporter.scrape()
        count = queue_value(samples, backlog, BACKLOG_TENANT, BACKLOG_QUEUE)
        if count and count > 0:
            return count, queue_value(samples, age, BACKLOG_TENANT, BACKLOG_QUEUE) or 0.0
        return None

    count, first_age = wait_for(backlogged, 60, 0.5, what="backlog > 0")
    wait_for(lambda: counts(exporter.scrape(), BACKLOG_TENANT).get("running") == 3, 60, 0.5,
             what="3 running in delta")
    assert count > 0
    samples = exporter.scrape()
    assert queue_value(samples, "temporal_tenant_task_queue_pollers", BACKLOG_TENANT, BACKLOG_QUEUE) == 0.0
    # Other tenants' queues are not backlogged: the figure is attributed to the right tenant.
    assert queue_value(samples, backlog, "alpha", BACKLOG_QUEUE) is None
    wait_for(lambda: (backlogged() or (0, 0))[1] > first_age + 1.0, 30, 0.5, what="backlog age grows")

    worker = RunningWorker(aio, client, BACKLOG_QUEUE)
    try:
        def drained() -> bool:
            samples = exporter.scrape()
            return (queue_value(samples, backlog, BACKLOG_TENANT, BACKLOG_QUEUE) == 0.0
                    and counts(samples, BACKLOG_TENANT) == {"completed": 3})

        wait_for(drained, 60, 0.5, what="backlog drained")
        samples = exporter.scrape()
        assert queue_value(samples, age, BACKLOG_TENANT, BACKLOG_QUEUE) == 0.0
        assert (queue_value(samples, "temporal_tenant_task_queue_pollers", BACKLOG_TENANT, BACKLOG_QUEUE) or 0) >= 1
    finally:
        worker.stop()


def test_emitted_families_match_the_catalog(exporter: ExporterProcess, seeded_temporal: dict) -> None:
    wait_for(lambda: up(exporter.scrape()) == 1.0, 60, what="temporal up")
    emitted = {f.name for f in text_string_to_metric_families(exporter.scrape_text())}
    emitted_temporal = {name for name in emitted if name.startswith("temporal_")}
    catalogued = {m.name.removesuffix("_total") if m.type == "counter" else m.name
                  for m in static_catalog().by_source("temporal")}
    assert emitted_temporal == catalogued
    for metric in static_catalog().by_source("temporal"):
        assert metric.problems() == []
        assert metric.labels[:2] == ("server", "tenant_id")


def test_prometheus_scrapes_the_exporter(exporter: ExporterProcess, seeded_temporal: dict) -> None:
    prometheus = PrometheusServer(targets={"temporal": [exporter.address]})
    try:
        def running_alpha(result: list[dict]) -> bool:
            return bool(result) and float(result[0]["value"][1]) == seeded_temporal["alpha"]["running"]

        prometheus.wait_query('temporal_tenant_workflows_running{tenant_id="alpha"}', running_alpha, 60)
        failed = prometheus.query_by('temporal_tenant_workflows_closed{status="failed"}')
        assert failed["beta"] == 2.0
        assert prometheus.query_by('up{job="temporal"}', "job") == {"temporal": 1.0}
    finally:
        prometheus.close()


def test_server_outage_drops_up_keeps_serving_and_recovers(
    exporter: ExporterProcess, temporal_server: TemporalServer, seeded_temporal: dict
) -> None:
    wait_for(lambda: up(exporter.scrape()) == 1.0, 60, what="temporal up")
    temporal_server.stop()
    try:
        wait_for(lambda: up(exporter.scrape()) == 0.0, 60, what="temporal_up 0")
        samples = exporter.scrape()  # still answering
        errors = by_tenant(samples, "obsbundle_collector_success", collector="temporal")
        assert errors == {"": 0.0}
        # The last good figures stay visible, with an age that keeps growing.
        assert counts(samples, "alpha") == seeded_temporal["alpha"]
        age = up(samples, "temporal_refresh_age_seconds") or 0.0
        wait_for(lambda: (up(exporter.scrape(), "temporal_refresh_age_seconds") or 0.0) > age + 1.0, 30,
                 what="refresh age grows while down")
        wait_for(lambda: up(exporter.scrape(), "temporal_server_metrics_up") == 0.0, 60, what="relabel down")
    finally:
        temporal_server.start()
    wait_for(lambda: up(exporter.scrape()) == 1.0, 120, 0.5, what="temporal_up back to 1")
    wait_for(lambda: counts(exporter.scrape(), "alpha") == seeded_temporal["alpha"], 60, 0.5,
             what="counts after restart")
    assert "Traceback" not in exporter.log_text()


def test_unreachable_server_reports_down_with_a_short_code(seeded_temporal: dict) -> None:
    config = {"sources": {"temporal": [{"name": "gone", "address": f"127.0.0.1:{free_port()}",
                                        "refresh_interval": "1s", "call_timeout": "1s"}]}}
    process = ExporterProcess("temporal", config)
    try:
        def failed() -> Samples | None:
            samples = process.scrape()
            info = by_tenant(samples, "obsbundle_collector_last_error_info", collector="temporal",
                             code="connection_failed")
            return samples if info else None

        samples = wait_for(failed, 30, 0.5, what="connection_failed")
        assert up(samples) == 0.0
        assert "Traceback" not in process.log_text()
    finally:
        process.close()


# -- tenancy modes, in-process against the same server ----------------------------------------


def _refreshed(collector: Any) -> Samples:
    """One refresh, then what a scrape of this collector would expose."""
    collector.refresh_once()
    out = MetricSet(static_catalog(), {"server": collector.server})
    collector.collect(out, time.monotonic() + 10)
    registry = CollectorRegistry()
    registry.register(_Families(out))
    return parse_metrics(generate_latest(registry).decode())


class _Families:
    def __init__(self, out: MetricSet) -> None:
        self.out = out

    def collect(self) -> list:
        return self.out.families()


def _mode_collector(temporal_server: TemporalServer, mode: str, **extra: Any) -> Any:
    tenancy = {"temporal": {"search_attribute": TENANT_ATTRIBUTE}} if mode == "search_attribute" else {}
    source = {"name": "main", "address": temporal_server.address, "tenancy": mode,
              "namespaces": [SHARED_NAMESPACE], **extra}
    cfg = config.parse(yaml.safe_dump({"tenancy": tenancy, "sources": {"temporal": [source]}}))
    return build_collector(settings(cfg).sources.temporal[0], settings(cfg),
                           TenantResolver.from_config(cfg, "temporal"), catalog_for(cfg))


@pytest.mark.parametrize("mode", ["task_queue", "search_attribute"])
def test_shared_namespace_tenancy_modes_count_exactly(
    temporal_server: TemporalServer, seeded_temporal: dict, mode: str
) -> None:
    collector = _mode_collector(temporal_server, mode)
    expected = {"x": seeded_temporal["x"], "y": seeded_temporal["y"]}

    def settled() -> Samples | None:
        samples = _refreshed(collector)
        return samples if {t: counts(samples, t) for t in expected} == expected else None

    try:
        samples = wait_for(settled, 60, 0.5, what=f"{mode} counts")
    except TimeoutError:
        samples = _refreshed(collector)
        assert {t: counts(samples, t) for t in expected} == expected
    tenants = set(by_tenant(samples, "temporal_tenant_workflows_running"))
    if mode == "task_queue":
        assert tenants == {"x", "y"}
        # Each queue's series belong to the queue's own tenant.
        assert queue_value(samples, "temporal_tenant_task_queue_backlog", "x", "tenant-x-main") == 0.0
        assert queue_value(samples, "temporal_tenant_task_queue_backlog", "y", "tenant-x-main") is None
        assert queue_value(samples, "temporal_tenant_task_queue_backlog", "y", "tenant-y-main") == 0.0
    else:
        assert tenants == {"x", "y", "_unassigned"}  # workflows without the attribute: none here
        assert counts(samples, "_unassigned") == {}


def test_visibility_calls_are_paced_per_namespace(temporal_server: TemporalServer, seeded_temporal: dict) -> None:
    collector = _mode_collector(temporal_server, "task_queue", visibility_rps=2)
    _refreshed(collector)  # discovers the two queues
    before = dict(collector.api.calls_by_namespace)
    samples = _refreshed(collector)
    visibility = sum(n - before.get(k, 0) for k, n in collector.api.calls_by_namespace.items()
                     if k[0] == SHARED_NAMESPACE and k[1] in VISIBILITY)
    assert visibility == 3  # one discovery list + one count per known queue (x, y)
    duration = up(samples, "temporal_refresh_duration_seconds")
    # Burst 1 at 2/s: the 2nd and 3rd visibility calls wait half a second each.
    assert duration is not None and duration >= (visibility - 1) / 2 - 0.05
    assert (up(samples, "temporal_rate_limit_wait_seconds_total") or 0) > 0


def test_tenants_past_the_cap_fold_into_overflow(temporal_server: TemporalServer, seeded_temporal: dict) -> None:
    source = {"name": "main", "address": temporal_server.address}
    cfg = config.parse(yaml.safe_dump({"tenancy": {"max_tenants": 2}, "sources": {"temporal": [source]}}))
    resolver = TenantResolver.from_config(cfg, "temporal")
    collector = build_collector(settings(cfg).sources.temporal[0], settings(cfg), resolver, catalog_for(cfg))
    expected_failed = sum(seeded_temporal[t].get("failed", 0) for t in ("alpha", "beta", "gamma"))  # delta: none

    def settled() -> Samples | None:
        samples = _refreshed(collector)
        failed = by_tenant(samples, "temporal_tenant_workflows_closed", status="failed")
        return samples if sum(failed.values()) == expected_failed else None

    samples = wait_for(settled, 60, 0.5, what="failed total")
    tenants = set(by_tenant(samples, "temporal_tenant_workflows_running"))
    # Four tenant namespaces, a cap of two: two keep their ids, the rest share _overflow.
    assert len(tenants - {"_overflow"}) == 2 and "_overflow" in tenants
    assert resolver.admitted == 2 and resolver.overflowed >= 2
