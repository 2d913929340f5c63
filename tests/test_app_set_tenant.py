"""The tenant named by application code (`set_tenant` in a FastAPI dependency or a Flask
`before_request`), on real sockets, and the trace sampling ratio."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import Depends, FastAPI, Header
from flask import Flask, g, request
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client.parser import text_string_to_metric_families
from werkzeug.serving import make_server

from collectors.app import current_tenant, instrument, set_tenant
from obsbundle.services import UvicornThread, wait_for

# Bearer tokens the app's own auth resolves; the middleware cannot know them (no api_keys configured).
TOKENS = {"tok-a": "acme", "tok-g": "globex"}
AGENT = "/v1/agents/{agent_id}"


def _samples(otel: Any, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    found: dict[tuple[tuple[str, str], ...], float] = {}
    for family in text_string_to_metric_families(otel.metrics_text()):
        for sample in family.samples:
            if sample.name == name:
                found[tuple(sorted(sample.labels.items()))] = sample.value
    return found


def _requests(otel: Any) -> dict[tuple[str, str, str], float]:
    rows = _samples(otel, "http_server_requests_total")
    return {(d["tenant_id"], d["route"], d["status_class"]): v for d, v in ((dict(k), v) for k, v in rows.items())}


def _fastapi(sync_dependency: bool) -> FastAPI:
    api = FastAPI()

    def caller_sync(authorization: str = Header("")) -> str:
        return set_tenant(TOKENS.get(authorization.removeprefix("Bearer "), "_unassigned"))

    async def caller_async(authorization: str = Header("")) -> str:
        return set_tenant(TOKENS.get(authorization.removeprefix("Bearer "), "_unassigned"))

    caller = caller_sync if sync_dependency else caller_async

    @api.get(AGENT)
    async def agent(agent_id: int, tenant: str = Depends(caller)) -> dict[str, Any]:
        return {"agent": agent_id, "tenant": tenant, "seen": current_tenant()}

    return api


@pytest.fixture(params=["sync", "async"])
def fastapi_server(request: pytest.FixtureRequest) -> Iterator[tuple[Any, InMemorySpanExporter, str]]:
    spans = InMemorySpanExporter()
    otel = instrument(service_name=f"deps-{request.param}", span_exporters=[spans])
    server = UvicornThread(otel.asgi(_fastapi(request.param == "sync")))
    try:
        yield otel, spans, f"http://127.0.0.1:{server.port}"
    finally:
        server.close()
        otel.shutdown()


def test_a_fastapi_dependency_names_the_tenant(fastapi_server: tuple[Any, InMemorySpanExporter, str]) -> None:
    otel, spans, url = fastapi_server
    calls = [("tok-a", 3), ("tok-g", 2), ("nobody", 1)]
    with httpx.Client(base_url=url, timeout=10) as client:
        for token, times in calls:
            for n in range(times):
                response = client.get(f"/v1/agents/{100 + n}", headers={"Authorization": f"Bearer {token}"})
                assert response.status_code == 200
                tenant = TOKENS.get(token, "_unassigned")
                # the endpoint (after the dependency) sees the tenant too
                assert response.json() == {"agent": 100 + n, "tenant": tenant, "seen": tenant}
    assert _requests(otel) == {
        ("acme", AGENT, "2xx"): 3.0, ("globex", AGENT, "2xx"): 2.0, ("_unassigned", AGENT, "2xx"): 1.0,
    }
    # in flight under the tenant known at the start (none: no header), back to zero at the end
    assert _samples(otel, "http_server_active_requests") == {(("tenant_id", "_unassigned"),): 0.0}
    # a server span ends after its response is sent: wait for the sixth
    server = wait_for(lambda: len(found := [s for s in spans.get_finished_spans() if s.kind.name == "SERVER"]) == 6
                      and found, 10, what="six server spans")
    assert sorted(str(s.attributes["tenant_id"]) for s in server) == sorted(
        ["acme"] * 3 + ["globex"] * 2 + ["_unassigned"]
    )


def test_a_flask_before_request_names_the_tenant() -> None:
    app = Flask("flask-deps")

    @app.before_request
    def authenticate() -> None:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        g.tenant = set_tenant(TOKENS.get(token, "_unassigned"))

    @app.get("/v1/agents/<int:agent_id>")
    def agent(agent_id: int) -> dict[str, Any]:
        return {"agent": agent_id, "seen": current_tenant()}

    otel = instrument(service_name="flask-deps")
    server = make_server("127.0.0.1", 0, otel.wsgi(app), threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="flask-deps", daemon=True)
    thread.start()
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.server_port}", timeout=10) as client:
            for token, times in (("tok-g", 2), ("tok-a", 1)):
                for n in range(times):
                    response = client.get(f"/v1/agents/{7 + n}", headers={"Authorization": f"Bearer {token}"})
                    assert response.json() == {"agent": 7 + n, "seen": TOKENS[token]}
        # werkzeug closes the response (which records it) just after the client has it
        expected = {("globex", AGENT, "2xx"): 2.0, ("acme", AGENT, "2xx"): 1.0}
        wait_for(lambda: sum(_requests(otel).values()) == 3, 10, what="three recorded requests")
        assert _requests(otel) == expected
    finally:
        server.shutdown()
        thread.join(10)
        otel.shutdown()


def test_set_tenant_outside_a_request_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="outside an instrumented request"):
        set_tenant("acme")


@pytest.mark.parametrize("ratio, expected_roots", [(0.0, 0), (1.0, 40)])
def test_trace_sample_ratio_for_new_traces_and_the_callers_decision_for_the_rest(
    ratio: float, expected_roots: int
) -> None:
    """Root requests are traced at the ratio; a caller's sampled traceparent is always followed and an
    unsampled one never, whatever the ratio."""
    spans = InMemorySpanExporter()
    otel = instrument(service_name="sampling", trace_sample_ratio=ratio, span_exporters=[spans])
    server = UvicornThread(otel.asgi(_fastapi(False)))
    sampled = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    unsampled = "00-1af7651916cd43dd8448eb211c80319c-c7ad6b7169203331-00"
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{server.port}", timeout=10) as client:
            for n in range(40):
                client.get(f"/v1/agents/{n}", headers={"Authorization": "Bearer tok-a"})
            for parent in [sampled] * 3 + [unsampled] * 5:
                client.get("/v1/agents/1", headers={"Authorization": "Bearer tok-a", "traceparent": parent})
        traced = expected_roots + 3
        server_spans = wait_for(lambda: len(found := [s for s in spans.get_finished_spans() if s.kind.name == "SERVER"])
                                == traced and found, 10, what=f"{traced} server spans")
        children = [s for s in server_spans if s.parent is not None]
        assert len(server_spans) - len(children) == expected_roots
        assert len(children) == 3
        assert {format(s.context.trace_id, "032x") for s in children} == {"0af7651916cd43dd8448eb211c80319c"}
        # metrics count every request, traced or not
        assert _requests(otel) == {("acme", AGENT, "2xx"): 48.0}
    finally:
        server.close()
        otel.shutdown()
