"""Issue 12's done-when: one slow request for tenant `acme` through the example API (a real
`uvicorn examples.agent_api:app` process) and on through a Temporal activity (a real worker on the
dev server). Its trace_id must be found, with tenant_id="acme", in the exemplar a real Prometheus
stores, in the API and activity spans the loopback OTLP receiver decodes, in the JSON access-log
line on the API's stdout, and in OTLP log records.
"""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from examples.agent_jobs import run_worker
from obsbundle.otlp_receiver import OTLPReceiver
from obsbundle.services import PrometheusServer, TemporalServer, UvicornService, wait_for
from tests.support.http import json_lines

ROOT = Path(__file__).resolve().parents[1]
HISTOGRAM = "http_server_request_duration_seconds"


def _config(endpoint: str) -> dict[str, Any]:
    return {"app": {
        "otlp": {"endpoint": endpoint, "interval": "1s", "timeout": "2s"},
        "logs": {"format": "json"},
        "resource": {"service_version": "9.9.9", "deployment_environment": "e2e"},
    }}


class WorkerThread:
    """`examples.agent_jobs.run_worker` on its own asyncio loop in a daemon thread."""

    def __init__(self, address: str, config: dict[str, Any]) -> None:
        self.loop = asyncio.new_event_loop()
        self.stop = asyncio.Event()
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(address, config), daemon=True)
        self.thread.start()

    def _run(self, address: str, config: dict[str, Any]) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(run_worker(address, config, self.stop))
        except BaseException as exc:  # surfaced by the test
            self.error = exc

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(30)


@pytest.mark.slow
def test_slow_acme_request_has_one_trace_id_in_exemplar_spans_access_log_and_otlp_logs(tmp_path: Path) -> None:
    receiver = OTLPReceiver()
    temporal = TemporalServer()
    config = _config(receiver.http_endpoint)
    config_file = tmp_path / "obsbundle.yaml"
    config_file.write_text(yaml.safe_dump(config))
    worker = WorkerThread(temporal.address, config)
    api = UvicornService("examples.agent_api:app", cwd=ROOT,
                         env={"OBSBUNDLE_CONFIG": str(config_file), "TEMPORAL_ADDRESS": temporal.address})
    prometheus = PrometheusServer({"agent-api": [api.address]}, features=["exemplar-storage"])
    try:
        wait_for(prometheus.targets_up, 30, 0.5, what="prometheus scraping the agent API")
        started = time.time()
        fast = httpx.get(f"{api.url}/v1/echo", headers={"X-Tenant-ID": "beta"}, timeout=30)
        slow = httpx.get(f"{api.url}/v1/jobs?sleep=1.2&work=0.2", headers={"X-Tenant-ID": "acme"}, timeout=60)
        assert (fast.status_code, slow.status_code) == (200, 200), slow.text
        assert slow.json() == {"tenant": "acme", "job": "done"}
        assert worker.error is None

        # 3. the JSON access-log line on the API's stdout names the trace
        access = wait_for(lambda: [r for r in json_lines(api.log_text())
                                   if r.get("logger") == "obsbundle.access" and r.get("route") == "/v1/jobs"],
                          15, what="access-log line for /v1/jobs")
        assert len(access) == 1
        line = access[0]
        trace_id = line["trace_id"]
        assert len(trace_id) == 32 and int(trace_id, 16)
        assert (line["tenant_id"], line["service"], line["level"], line["method"], line["status"]) == (
            "acme", "agent-api", "info", "GET", 200)
        assert line["duration_seconds"] >= 1.2

        # 1. a real Prometheus returns that trace_id as the latency histogram's exemplar for acme
        def acme_exemplar() -> dict[str, Any] | None:
            for series in prometheus.exemplars(f'{HISTOGRAM}_bucket{{tenant_id="acme"}}', started - 5, time.time() + 5):
                for exemplar in series["exemplars"]:
                    if exemplar["labels"].get("trace_id") == trace_id:
                        return {**series["seriesLabels"], "value": float(exemplar["value"])}
            return None

        exemplar = wait_for(acme_exemplar, 30, 0.5, what="acme exemplar in Prometheus")
        assert (exemplar["tenant_id"], exemplar["route"], exemplar["job"]) == ("acme", "/v1/jobs", "agent-api")
        assert float(exemplar["le"]) >= exemplar["value"] >= 1.2
        beta = prometheus.exemplars(f'{HISTOGRAM}_bucket{{tenant_id="beta"}}', started - 5, time.time() + 5)
        assert trace_id not in {e["labels"]["trace_id"] for s in beta for e in s["exemplars"]}

        # 2. API and activity spans of that trace, each with tenant_id=acme and the configured resource
        def trace_spans() -> list[dict[str, Any]] | None:
            spans = [s for s in receiver.spans() if s["trace_id"] == trace_id]
            services = {s["resource"]["service.name"] for s in spans}
            names = {s["name"] for s in spans}
            return spans if {"agent-api", "agent-worker"} <= services and "RunActivity:agent_step" in names else None

        spans = wait_for(trace_spans, 30, 0.5, what="API and activity spans at the OTLP receiver")
        assert {s["attributes"]["tenant_id"] for s in spans} == {"acme"}, [(s["name"], s["attributes"]) for s in spans]
        server = [s for s in spans if s["name"] == "GET /v1/jobs"]
        assert len(server) == 1 and server[0]["span_id"] == line["span_id"]
        assert server[0]["resource"]["service.version"] == "9.9.9"
        assert server[0]["resource"]["deployment.environment"] == "e2e"

        # 4. OTLP log records of that trace from both services, tenant acme
        def trace_logs() -> list[dict[str, Any]] | None:
            records = [r for r in receiver.logs(tenant_id="acme") if r["trace_id"] == trace_id]
            bodies = {r["body"] for r in records}
            return records if "agent step done" in bodies and "job finished" in bodies else None

        records = wait_for(trace_logs, 30, 0.5, what="OTLP log records of the trace")
        services = {r["resource"]["service.name"] for r in records}
        assert services == {"agent-api", "agent-worker"}
        assert any(r["body"].startswith("GET /v1/jobs 200") for r in records)
        assert all(r["attributes"]["tenant_id"] == "acme" for r in records)
    finally:
        prometheus.close()
        api.close()
        worker.close()
        temporal.close()
        receiver.close()
