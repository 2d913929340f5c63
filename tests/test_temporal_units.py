"""Temporal exporter pieces that need no server: the rate limiter, relabelling of the server's
exposition format (lines copied from a real Temporal 1.32 dev server), and config errors."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
import yaml

from collectors.metricset import MetricSet
from collectors.temporal import build_collector
from collectors.temporal.ratelimit import TokenBucket
from collectors.temporal.relabel import ServerMetricsRelabel, sanitize
from exporters.temporal import build
from obsbundle import config
from obsbundle.catalog import catalog_for
from obsbundle.errors import ConfigError
from obsbundle.services import free_port, run_cli
from obsbundle.settings import settings
from obsbundle.tenancy import TenantResolver

SERVER_TEXT = """\
# HELP service_requests service_requests counter
# TYPE service_requests counter
service_requests{namespace="tenant_a",operation="StartWorkflowExecution",service_name="frontend"} 5
service_requests{namespace="tenant_a",operation="StartWorkflowExecution",service_name="history"} 5
service_requests{namespace="tenant_b_2",operation="StartWorkflowExecution",service_name="frontend"} 2
service_requests{namespace="_unknown_",operation="GetSystemInfo",service_name="frontend"} 7
service_requests{namespace="default",operation="DescribeNamespace",service_name="frontend"} 1
service_error_with_type{error_type="serviceerror_InvalidArgument",namespace="tenant_a",operation="CountWorkflowExecutions",service_name="frontend"} 3
service_latency_bucket{namespace="tenant_a",operation="StartWorkflowExecution",service_name="frontend",le="0.002"} 1
service_latency_bucket{namespace="tenant_a",operation="StartWorkflowExecution",service_name="frontend",le="0.01"} 4
service_latency_bucket{namespace="tenant_a",operation="StartWorkflowExecution",service_name="frontend",le="0.1"} 5
service_latency_bucket{namespace="tenant_a",operation="StartWorkflowExecution",service_name="frontend",le="+Inf"} 5
service_latency_sum{namespace="tenant_a",operation="StartWorkflowExecution",service_name="frontend"} 0.07
service_latency_count{namespace="tenant_a",operation="StartWorkflowExecution",service_name="frontend"} 5
service_latency_bucket{namespace="tenant_a",operation="PollWorkflowTaskQueue",service_name="frontend",le="+Inf"} 3
service_latency_nouserlatency_bucket{namespace="tenant_a",operation="StartWorkflowExecution",service_name="frontend",le="+Inf"} 99
approximate_backlog_count{namespace="tenant_a",partition="0",service_name="matching",task_priority="3",task_type="Workflow",taskqueue="tenant_a_jobs"} 4
approximate_backlog_count{namespace="tenant_a",partition="1",service_name="matching",task_priority="3",task_type="Workflow",taskqueue="tenant_a_jobs"} 2
approximate_backlog_age_seconds{namespace="tenant_a",partition="0",service_name="matching",task_type="Workflow",taskqueue="tenant_a_jobs"} 12.5
approximate_backlog_age_seconds{namespace="tenant_a",partition="1",service_name="matching",task_type="Workflow",taskqueue="tenant_a_jobs"} 30
task_schedule_to_start_latency_bucket{namespace="tenant_a",partition="__normal__",service_name="history",task_type="Workflow",taskqueue="tenant_a_jobs",le="0.1"} 1
task_schedule_to_start_latency_bucket{namespace="tenant_a",partition="__normal__",service_name="history",task_type="Workflow",taskqueue="tenant_a_jobs",le="+Inf"} 2
task_schedule_to_start_latency_bucket{namespace="tenant_a",partition="__sticky__",service_name="history",task_type="Workflow",taskqueue="tenant_a_jobs",le="0.1"} 3
task_schedule_to_start_latency_bucket{namespace="tenant_a",partition="__sticky__",service_name="history",task_type="Workflow",taskqueue="tenant_a_jobs",le="+Inf"} 3
task_schedule_to_start_latency_sum{namespace="tenant_a",partition="__normal__",service_name="history",task_type="Workflow",taskqueue="tenant_a_jobs"} 0.6
task_schedule_to_start_latency_sum{namespace="tenant_a",partition="__sticky__",service_name="history",task_type="Workflow",taskqueue="tenant_a_jobs"} 0.03
workflow_success{namespace="tenant_a",operation="CompletionMetric",service_name="history",taskqueue="tenant_a_jobs"} 8
workflow_failed{namespace="tenant_a",operation="CompletionMetric",service_name="history",taskqueue="tenant_a_jobs"} 1
workflow_failed{namespace="tenant_b_2",operation="CompletionMetric",service_name="history",taskqueue="q"} 2
"""  # noqa: E501 - verbatim server exposition lines


def _config(**source: object) -> dict:
    entry = {"name": "main", "address": f"127.0.0.1:{free_port()}", **source}
    return config.parse(yaml.safe_dump({"sources": {"temporal": [entry]}}))


def test_token_bucket_never_exceeds_its_rate() -> None:
    async def acquire_all() -> float:
        bucket = TokenBucket(rate=50, burst=1)
        started = time.monotonic()
        for _ in range(11):
            await bucket.acquire()
        return time.monotonic() - started

    # One immediate token, then ten more at 50/s: no faster than 0.2 s however fast the caller.
    assert asyncio.run(acquire_all()) >= 0.2 - 0.01


def test_sanitize_matches_the_server_rewrite() -> None:
    assert sanitize("tenant-a") == "tenant_a"
    assert sanitize("tenant-b.2") == "tenant_b_2"


def test_relabel_maps_sanitized_names_back_and_attributes_tenants() -> None:
    cfg = _config(metrics_url="http://127.0.0.1:1/metrics")
    collector = build_collector(settings(cfg).sources.temporal[0], settings(cfg),
                           TenantResolver.from_config(cfg, "temporal"), catalog_for(cfg))
    collector.refresher.namespaces = ("tenant-a", "tenant-b.2", "default", "temporal-system")
    collector.refresher.task_queues = {"tenant-a-jobs"}
    relabel = ServerMetricsRelabel("http://127.0.0.1:1/metrics", collector, catalog_for(cfg), 60)
    out = MetricSet(catalog_for(cfg), {"server": "main"})
    relabel.relabel(SERVER_TEXT, out)
    requests = {"tenant_id": "a", "namespace": "tenant-a", "operation": "StartWorkflowExecution"}
    # Only the frontend's requests count (history's internal call is not a client request).
    assert out.value("temporal_server_service_requests_total", **requests) == 5.0
    assert out.value("temporal_server_service_requests_total", tenant_id="b.2", namespace="tenant-b.2",
                     operation="StartWorkflowExecution") == 2.0
    assert out.value("temporal_server_service_requests_total", tenant_id="_shared", namespace="_unknown_",
                     operation="GetSystemInfo") == 7.0
    assert out.value("temporal_server_service_requests_total", tenant_id="_unassigned", namespace="default",
                     operation="DescribeNamespace") == 1.0
    assert out.value("temporal_server_service_errors_total", tenant_id="a", namespace="tenant-a",
                     operation="CountWorkflowExecutions", error_type="serviceerror_InvalidArgument") == 3.0
    queue = {"tenant_id": "a", "namespace": "tenant-a", "task_queue": "tenant-a-jobs", "task_queue_type": "workflow"}
    assert out.value("temporal_server_approximate_backlog_count", **queue) == 6.0  # summed over partitions
    assert out.value("temporal_server_approximate_backlog_age_seconds", **queue) == 30.0  # oldest partition
    assert out.value("temporal_server_workflow_outcomes_total", tenant_id="a", namespace="tenant-a",
                     outcome="completed") == 8.0
    assert out.value("temporal_server_workflow_outcomes_total", tenant_id="b.2", namespace="tenant-b.2",
                     outcome="failed") == 2.0
    families = {f.name: f for f in out.families()}
    latency = families["temporal_server_service_latency_seconds"]
    samples = {(s.name, s.labels.get("le")): s.value for s in latency.samples}
    assert samples[("temporal_server_service_latency_seconds_bucket", "0.01")] == 4.0
    assert ("temporal_server_service_latency_seconds_bucket", "0.002") not in samples  # coarser buckets
    assert samples[("temporal_server_service_latency_seconds_count", None)] == 5.0
    assert samples[("temporal_server_service_latency_seconds_sum", None)] == pytest.approx(0.07)
    polls = [s for s in latency.samples if s.labels.get("operation") == "PollWorkflowTaskQueue"]
    assert polls == []  # long polls' latency is their timeout
    start = families["temporal_server_task_schedule_to_start_latency_seconds"]
    counts = {s.labels.get("le"): s.value for s in start.samples if s.name.endswith("_bucket")}
    assert counts == {"0.1": 4.0, "+Inf": 5.0}  # normal and sticky partitions folded


def test_search_attribute_mode_without_attribute_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="search_attribute"):
        build(_config(tenancy="search_attribute"))


def test_bad_config_exits_2_with_one_line(tmp_path: Path) -> None:
    config_file = tmp_path / "obsbundle.yaml"
    config_file.write_text(yaml.safe_dump({"sources": {"temporal": [
        {"name": "main", "address": "127.0.0.1:7233", "api_key_file": str(tmp_path / "missing-key")}
    ]}}))
    result = run_cli("exporter", "temporal", "--config", str(config_file),
                     "--web.listen-address", f"127.0.0.1:{free_port()}")
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0
    assert "api_key_file" in result.stderr and "Traceback" not in result.stderr


def test_api_key_never_reaches_metrics_or_errors(tmp_path: Path) -> None:
    key = tmp_path / "key"
    key.write_text("sk-very-secret-temporal-key\n")
    cfg = _config(api_key_file=str(key), refresh_interval="1s", call_timeout="1s")
    collectors, _ = build(cfg)
    collector = collectors[0]
    with pytest.raises(Exception) as failure:
        collector.refresh_once()
    assert "sk-very-secret" not in str(failure.value)
    assert collector.api._api_key == "sk-very-secret-temporal-key"
