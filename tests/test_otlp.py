"""OTLP export from collectors.app, checked at a loopback receiver that decodes the real protobufs.

Traces, metrics and logs over HTTP/protobuf and gRPC; a receiver that is down or stalls never
fails a request, and every item it did not take is counted in otel_export_dropped_total.
"""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest

from examples.agent_api import create_app
from obsbundle.otlp_receiver import OTLPReceiver
from obsbundle.services import UvicornThread, free_port, parse_metrics, sample_sum, wait_for

RESOURCE = {"service_version": "1.4.2", "deployment_environment": "staging"}


def _otlp(endpoint: str, protocol: str = "http/protobuf", **more: Any) -> dict[str, Any]:
    return {"otlp": {"endpoint": endpoint, "protocol": protocol, "interval": "1s", "timeout": "1s", **more},
            "logs": {"format": "json"}, "resource": RESOURCE}


def _latest(points: list[dict[str, Any]]) -> dict[str, float]:
    """Cumulative counter value per tenant: the largest exported value of each series, summed."""
    series: dict[tuple, float] = {}
    for point in points:
        key = tuple(sorted(point["attributes"].items()))
        series[key] = max(series.get(key, 0.0), float(point["value"]))
    out: dict[str, float] = {}
    for key, value in series.items():
        tenant = dict(key)["tenant_id"]
        out[tenant] = out.get(tenant, 0.0) + value
    return out


@pytest.mark.parametrize("protocol", ["http/protobuf", "grpc"])
def test_spans_metric_points_and_logs_arrive_by_tenant_with_resource(protocol: str) -> None:
    receiver = OTLPReceiver(grpc=protocol == "grpc")
    endpoint = receiver.grpc_endpoint if protocol == "grpc" else receiver.http_endpoint
    app, otel = create_app({"app": _otlp(endpoint, protocol)})
    server = UvicornThread(app)
    try:
        for tenant in ("acme", "acme", "beta"):
            assert httpx.get(f"{server.url}/v1/echo", headers={"X-Tenant-ID": tenant}, timeout=10).status_code == 200
        spans = wait_for(lambda: (s := receiver.spans(**{"http.target": "/v1/echo"})) and len(s) == 3 and s,
                         20, what="3 server spans")
        assert sorted(s["attributes"]["tenant_id"] for s in spans) == ["acme", "acme", "beta"]
        for span in spans:
            resource = span["resource"]
            assert (resource["service.name"], resource["service.version"], resource["deployment.environment"]) == (
                "agent-api", "1.4.2", "staging")
        wait_for(lambda: _latest(receiver.points("http_server_requests")) == {"acme": 2.0, "beta": 1.0},
                 20, what="request counts by tenant")
        histogram = receiver.points("http_server_request_duration_seconds", tenant_id="acme")
        assert max(p["count"] for p in histogram) == 2
        # the user's own logger inside the request: same trace as the request's span, tenant attached
        traces = {s["attributes"]["tenant_id"] + s["trace_id"] for s in spans}
        user_logs = wait_for(lambda: (r := [x for x in receiver.logs() if x["body"] == "echo served"])
                             and len(r) == 3 and r, 20, what="3 user log records")
        assert {r["attributes"]["tenant_id"] + r["trace_id"] for r in user_logs} == traces
        assert all(r["severity"] == "INFO" and r["attributes"]["service"] == "agent-api" for r in user_logs)
    finally:
        server.close()
        otel.shutdown()
        receiver.close()


@pytest.mark.parametrize("receiver_state", ["down", "stalled"])
def test_a_down_or_stalled_receiver_fails_no_request_and_every_lost_span_is_counted(receiver_state: str) -> None:
    receiver = OTLPReceiver()
    receiver.delay = 60.0  # stalled: accepts the connection, never answers within the 1 s export timeout
    endpoint = f"http://127.0.0.1:{free_port()}" if receiver_state == "down" else receiver.http_endpoint
    app, otel = create_app({"app": _otlp(endpoint, signals=["traces", "logs"])})
    server = UvicornThread(app)
    try:
        statuses = [httpx.get(f"{server.url}/v1/echo", headers={"X-Tenant-ID": "acme"}, timeout=10).status_code
                    for _ in range(20)]
        assert statuses == [200] * 20
        assert receiver.received.requests == {"traces": 0, "metrics": 0, "logs": 0}  # nothing was accepted
        otel.tracer_provider.force_flush()
        otel.logger_provider.force_flush()
        samples = parse_metrics(otel.metrics_text())
        assert sample_sum(samples, "otel_export_dropped_total", signal="traces") == 20
        # at least the 20 access lines and 20 "echo served" lines of the requests were lost, and counted
        assert sample_sum(samples, "otel_export_dropped_total", signal="logs") >= 40
        assert sample_sum(samples, "otel_export_dropped_total", signal="metrics") == 0  # metrics not enabled
    finally:
        server.close()
        otel.shutdown()
        receiver.close()


def test_shutdown_flushes_spans_metrics_and_logs_not_yet_due() -> None:
    receiver = OTLPReceiver()
    config = _otlp(receiver.http_endpoint)
    config["otlp"]["interval"] = "1h"  # no periodic export would happen during the test
    before = list(logging.getLogger().handlers)
    app, otel = create_app({"app": config})
    server = UvicornThread(app)
    try:
        assert httpx.get(f"{server.url}/v1/echo", headers={"X-Tenant-ID": "acme"}, timeout=10).status_code == 200
        logging.getLogger("test.flush").warning("outside any request")
    finally:
        server.close()
        otel.shutdown()
    try:
        assert [s["attributes"]["tenant_id"] for s in receiver.spans(**{"http.target": "/v1/echo"})] == ["acme"]
        assert _latest(receiver.points("http_server_requests")) == {"acme": 1.0}
        outside = receiver.logs()[-1]
        assert (outside["body"], outside["trace_id"], outside["attributes"]["tenant_id"]) == (
            "outside any request", "", "_unassigned")
        assert logging.getLogger().handlers == before  # shutdown() removed the handlers it added
    finally:
        receiver.close()
