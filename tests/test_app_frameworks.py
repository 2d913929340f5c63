"""Route templates from the framework's router: a real FastAPI app (uvicorn) and a real Flask app
(werkzeug), both instrumented without `routes=`, scraped by one real Prometheus."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from flask import Flask
from werkzeug.middleware.dispatcher import DispatcherMiddleware
from werkzeug.serving import make_server

from collectors.app import instrument
from obsbundle.services import PrometheusServer, UvicornThread

AGENT, INFER = "/v1/agents/{agent_id}", "/v1/tenants/{tenant}/infer"

# (path, X-Tenant-ID header or None, times); the path parameter wins over the header (tenant_from default)
REQUESTS = [
    ("/v1/agents/123", "acme", 3),
    ("/v1/agents/456", "globex", 2),
    ("/v1/tenants/acme/infer", None, 2),
    ("/v1/tenants/globex/infer", "acme", 1),
    ("/v1/nope/789", "acme", 1),  # no route: `_other`, never the raw path
]
EXPECTED = {
    (AGENT, "acme"): 3.0,
    (AGENT, "globex"): 2.0,
    (INFER, "acme"): 2.0,
    (INFER, "globex"): 1.0,
    ("_other", "acme"): 1.0,
}
RAW = ("123", "456", "789", "/v1/agents/1", "/v1/tenants/acme")


def _fastapi_app(otel: Any) -> FastAPI:
    api = FastAPI()

    @api.get(AGENT)
    def agent(agent_id: int) -> dict[str, int]:
        return {"agent": agent_id}

    @api.get(INFER)
    def infer(tenant: str) -> dict[str, str]:
        return {"tenant": tenant}

    api.mount("/metrics", otel.metrics_app())  # a Mount: route="/metrics", its prefix
    return api


def _flask_app() -> Flask:
    app = Flask("flask-agents")

    @app.get("/v1/agents/<int:agent_id>")
    def agent(agent_id: int) -> dict[str, int]:
        return {"agent": agent_id}

    @app.get("/v1/tenants/<tenant>/infer")
    def infer(tenant: str) -> dict[str, str]:
        return {"tenant": tenant}

    return app


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, str]]:
    fast_otel = instrument(service_name="fastapi-agents")
    flask_otel = instrument(service_name="flask-agents")
    fast = UvicornThread(fast_otel.asgi(_fastapi_app(fast_otel)))
    wsgi = DispatcherMiddleware(flask_otel.wsgi(_flask_app()), {"/metrics": flask_otel.wsgi_metrics_app()})
    flask_server = make_server("127.0.0.1", 0, wsgi, threaded=True)
    thread = threading.Thread(target=flask_server.serve_forever, name="flask-test", daemon=True)
    thread.start()
    try:
        yield {"fastapi": f"127.0.0.1:{fast.port}", "flask": f"127.0.0.1:{flask_server.server_port}"}
    finally:
        flask_server.shutdown()
        thread.join(10)
        fast.close()
        fast_otel.shutdown()
        flask_otel.shutdown()


@pytest.fixture(scope="module")
def prometheus(servers: dict[str, str]) -> Iterator[PrometheusServer]:
    prom = PrometheusServer(
        targets={job: [address] for job, address in servers.items()},
        metrics_path={"fastapi": "/metrics/"},  # the mounted app's own path (no 307 redirect)
    )
    yield prom
    prom.close()


@pytest.fixture(scope="module")
def driven(servers: dict[str, str], prometheus: PrometheusServer) -> PrometheusServer:
    for address in servers.values():
        with httpx.Client(base_url=f"http://{address}", timeout=10) as client:
            for path, tenant, times in REQUESTS:
                for _ in range(times):
                    response = client.get(path, headers={"X-Tenant-ID": tenant} if tenant else {})
                    assert response.status_code == (404 if "nope" in path else 200), path
    return prometheus


def _counts(prom: PrometheusServer, job: str) -> dict[tuple[str, str], float]:
    rows = prom.query(f'sum by (route, tenant_id) (http_server_requests_total{{job="{job}", route!="/metrics"}})')
    return {(r["metric"]["route"], r["metric"]["tenant_id"]): float(r["value"][1]) for r in rows}


@pytest.mark.parametrize("job", ["fastapi", "flask"])
def test_route_and_tenant_come_from_the_router(driven: PrometheusServer, job: str) -> None:
    driven.wait_query(
        f'sum(http_server_requests_total{{job="{job}", route!="/metrics"}}) == {sum(EXPECTED.values())}', timeout=30
    )
    assert _counts(driven, job) == EXPECTED
    if job == "fastapi":  # a scrape is counted once its response is sent, so the next scrape shows it
        driven.wait_query('http_server_requests_total{job="fastapi", route="/metrics"}', timeout=30)
    routes = {r["metric"]["route"] for r in driven.query(f'http_server_requests_total{{job="{job}"}}')}
    # FastAPI serves its own /metrics through a Mount, so its scrapes are requests too; Flask's is outside.
    assert routes == {AGENT, INFER, "_other"} | ({"/metrics"} if job == "fastapi" else set())
    tenants = {r["metric"]["tenant_id"] for r in driven.query(f'http_server_requests_total{{job="{job}"}}')}
    assert tenants == {"acme", "globex"} | ({"_unassigned"} if job == "fastapi" else set())


def test_no_raw_path_in_any_label(driven: PrometheusServer) -> None:
    driven.wait_query('sum(http_server_requests_total{job=~"fastapi|flask", route!="/metrics"}) == 18', timeout=30)
    series = driven.query('{job=~"fastapi|flask"}')
    assert len(series) > 10
    for row in series:
        labels = {k: v for k, v in row["metric"].items() if k != "instance"}  # instance holds a random port
        leaked = {k: v for k, v in labels.items() if any(raw in v for raw in RAW)}
        assert not leaked, row["metric"]


def _requests(otel: Any) -> dict[tuple[str, str], float]:
    """(route, tenant_id) -> requests, from the instrumentation's own /metrics exposition."""
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    counts: dict[tuple[str, str], float] = {}
    for family in text_string_to_metric_families(generate_latest(otel.registry).decode()):
        for sample in family.samples:
            if sample.name == "http_server_requests_total":
                key = (sample.labels["route"], sample.labels["tenant_id"])
                counts[key] = counts.get(key, 0.0) + sample.value
    return counts


def test_flask_converters_and_a_configured_tenant_path_param() -> None:
    """`<int:id>`/`<path:rest>` become `{id}`/`{rest}`; the tenant comes from the router's `org` parameter."""
    app = Flask("orgs")

    @app.get("/v1/orgs/<org>/agents/<int:agent_id>")
    def agent(org: str, agent_id: int) -> str:
        return "ok"

    @app.get("/v1/files/<path:rest>")
    def files(rest: str) -> str:
        return "ok"

    otel = instrument(service_name="orgs", tenant_path_param="org")
    try:
        app.wsgi_app = otel.wsgi(app.wsgi_app)  # type: ignore[method-assign]  # Flask's own pattern
        client = app.test_client()
        calls = [
            ("GET", "/v1/orgs/initech/agents/123", {"X-Tenant-ID": "acme"}),
            ("GET", "/v1/files/a/b/456.txt", {"X-Tenant-ID": "acme"}),
            ("POST", "/v1/files/x/789", {}),
        ]
        statuses = []
        for method, path, headers in calls:
            with client.open(path, method=method, headers=headers) as response:  # closing it records it
                statuses.append(response.status_code)
        assert statuses == [200, 200, 405]
        assert _requests(otel) == {
            ("/v1/orgs/{org}/agents/{agent_id}", "initech"): 1.0,
            ("/v1/files/{rest}", "acme"): 1.0,
            ("_other", "_unassigned"): 1.0,  # 405: werkzeug raises, no rule is bound
        }
    finally:
        otel.shutdown()


def test_fastapi_behind_a_plain_asgi_wrapper_uses_the_route_left_in_the_scope() -> None:
    """No `.routes` to ask beforehand (the app is wrapped): the route FastAPI put in the scope counts."""
    api = FastAPI()

    @api.get("/v1/agents/{agent_id}")
    def agent(agent_id: int) -> dict[str, int]:
        return {"agent": agent_id}

    async def wrapper(scope: Any, receive: Any, send: Any) -> None:
        await api(scope, receive, send)

    async def drive(app: Any) -> list[int]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            paths = ["/v1/agents/123", "/v1/agents/nope/456"]
            return [(await client.get(p, headers={"X-Tenant-ID": "acme"})).status_code for p in paths]

    otel = instrument(service_name="wrapped")
    try:
        assert asyncio.run(drive(otel.asgi(wrapper))) == [200, 404]
        assert _requests(otel) == {(AGENT, "acme"): 1.0, ("_other", "acme"): 1.0}
    finally:
        otel.shutdown()


def test_starlette_convertor_and_wrong_method_keep_the_template() -> None:
    """`{agent_id:int}` is labelled `{agent_id}` (as Flask's `<int:agent_id>`); a 405 keeps its route."""
    api = FastAPI()

    @api.get("/v1/agents/{agent_id:int}")
    def agent(agent_id: int) -> dict[str, int]:
        return {"agent": agent_id}

    async def drive(app: Any) -> list[int]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client:
            return [(await client.request(m, "/v1/agents/123", headers={"X-Tenant-ID": "acme"})).status_code
                    for m in ("GET", "POST")]

    otel = instrument(service_name="convertor")
    try:
        assert asyncio.run(drive(otel.asgi(api))) == [200, 405]
        assert _requests(otel) == {(AGENT, "acme"): 2.0}
    finally:
        otel.shutdown()
