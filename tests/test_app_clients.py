"""Outbound calls from the app side (collectors.app.clients / dbclient): a loopback model provider
through an instrumented httpx client, PostgreSQL through psycopg with two tenants sharing one role,
and Redis GETs counted as cache hits and misses; exact counts from the service's exposition."""

from __future__ import annotations

import http.server
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import psycopg
import pytest
import redis
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from collectors.app import instrument, tenant_context
from obsbundle.catalog import static_catalog
from obsbundle.errors import ConfigError
from obsbundle.services import free_port, parse_metrics
from obsbundle.services.http_target import QuietHTTPServer


class _Provider(http.server.BaseHTTPRequestHandler):
    """POST /ok -> 200, /fail -> 500, /bad -> 400, /slow -> 200 after 1 s; echoes the model."""

    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers["Content-Length"] or 0))
        try:
            body = json.loads(raw)
        except ValueError:
            body = {}
        if self.path == "/slow":
            time.sleep(1)
        status = {"/fail": 500, "/bad": 400}.get(self.path, 200)
        reply = json.dumps({"model": str(body.get("model")), "choices": []}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def provider() -> Iterator[str]:
    server = QuietHTTPServer(("127.0.0.1", 0), _Provider)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def value(samples: dict[str, Any], name: str, **labels: str) -> float:
    found = [v for k, v in samples.get(name, {}).items() if {**dict(k)} == labels]
    assert len(found) == 1, (name, labels, samples.get(name))
    return float(found[0])


def test_provider_calls_are_counted_by_tenant_provider_model_and_outcome(provider: str) -> None:
    spans = InMemorySpanExporter()
    otel = instrument(service_name="clients", providers={"local": provider}, span_exporters=[spans])
    client = otel.instrument_model_client(httpx.Client(base_url=f"http://{provider}", timeout=0.3))
    refused = otel.instrument_model_client(httpx.Client(base_url=f"http://127.0.0.1:{free_port()}", timeout=2))
    try:
        with tenant_context("acme"):
            for _ in range(3):
                assert client.post("/ok", json={"model": "small", "messages": []}).status_code == 200
            assert client.post("/fail", json={"model": "small"}).status_code == 500
        with tenant_context("globex"):
            assert client.post("/bad", json={"model": "large"}).status_code == 400
            with pytest.raises(httpx.ReadTimeout):
                client.post("/slow", json={"model": "large"})
            with pytest.raises(httpx.ConnectError):
                refused.post("/ok", json={"model": "large"})
        samples = parse_metrics(otel.metrics_text())
    finally:
        client.close()
        refused.close()
        otel.shutdown()
    requests = "model_provider_requests_total"
    assert value(samples, requests, tenant_id="acme", provider="local", model="small", status_class="2xx") == 3
    assert value(samples, requests, tenant_id="acme", provider="local", model="small", status_class="5xx") == 1
    assert value(samples, requests, tenant_id="globex", provider="local", model="large", status_class="4xx") == 1
    assert value(samples, requests, tenant_id="globex", provider="local", model="large", status_class="none") == 1
    assert value(samples, requests, tenant_id="globex", provider="_other", model="large", status_class="none") == 1
    assert len(samples[requests]) == 5
    errors = "model_provider_errors_total"
    assert value(samples, errors, tenant_id="acme", provider="local", model="small", error="http_5xx") == 1
    assert value(samples, errors, tenant_id="globex", provider="local", model="large", error="http_4xx") == 1
    assert value(samples, errors, tenant_id="globex", provider="local", model="large", error="timeout") == 1
    assert value(samples, errors, tenant_id="globex", provider="_other", model="large", error="connect") == 1
    assert len(samples[errors]) == 4
    duration = "model_provider_request_duration_seconds"
    assert value(samples, f"{duration}_count", tenant_id="acme", provider="local", model="small") == 4
    assert value(samples, f"{duration}_count", tenant_id="globex", provider="local", model="large") == 2
    timed_out = value(samples, f"{duration}_sum", tenant_id="globex", provider="local", model="large")
    assert 0.3 <= timed_out < 1.0  # the 0.3 s read timeout, not the provider's 1 s
    # OpenTelemetry's own untenanted http.client metrics stay out of /metrics
    catalog = static_catalog()
    assert all(catalog.series(name) is not None for name in samples), sorted(samples)
    finished = [s for s in spans.get_finished_spans() if s.name == "POST"]
    assert len(finished) == 7
    tenants = sorted(str(s.attributes["tenant_id"]) for s in finished)  # type: ignore[index]
    assert tenants == ["acme"] * 4 + ["globex"] * 3
    first = finished[0].attributes or {}
    assert (first["gen_ai.provider.name"], first["gen_ai.request.model"]) == ("local", "small")


def test_models_past_max_models_are_other(provider: str) -> None:
    otel = instrument(service_name="clients", providers={"local": provider}, max_models=2)
    client = otel.instrument_model_client(httpx.Client(base_url=f"http://{provider}", timeout=5))
    try:
        with tenant_context("acme"):
            for model in ("a", "b", "c", "a", "d", "b"):
                client.post("/ok", json={"model": model})
            client.post("/ok", content=b"not json")
            client.post("/ok", json={"model": {"nested": "x"}})
        samples = parse_metrics(otel.metrics_text())
    finally:
        client.close()
        otel.shutdown()
    by_model = {dict(k)["model"]: v for k, v in samples["model_provider_requests_total"].items()}
    assert by_model == {"a": 2, "b": 2, "_other": 4}


def test_async_client_is_counted_too(provider: str) -> None:
    import asyncio

    otel = instrument(service_name="clients", providers={"local": provider})

    async def calls() -> None:
        async with httpx.AsyncClient(base_url=f"http://{provider}", timeout=5) as client:
            otel.instrument_model_client(client)
            with tenant_context("initech"):
                for _ in range(2):
                    await client.post("/ok", json={"model": "m"})

    try:
        asyncio.run(calls())
        samples = parse_metrics(otel.metrics_text())
    finally:
        otel.shutdown()
    assert value(samples, "model_provider_requests_total", tenant_id="initech", provider="local", model="m",
                 status_class="2xx") == 2


def test_postgres_time_by_tenant_on_one_shared_role(pg_dsn: str) -> None:
    spans = InMemorySpanExporter()
    otel = instrument(service_name="clients", span_exporters=[spans])
    plan = {"acme": (5, 2), "globex": (2, 0)}  # SELECTs, INSERTs (both tenants: the same role and DSN)
    try:
        for tenant, (selects, inserts) in plan.items():
            with tenant_context(tenant), otel.instrument_psycopg(psycopg.connect(pg_dsn, autocommit=True)) as conn:
                conn.execute("CREATE TEMP TABLE t (n int)")
                for n in range(selects):
                    conn.execute("SELECT %s", (n,))
                for n in range(inserts):
                    with conn.cursor() as cur:
                        cur.execute("  insert into t values (%s)", (n,))
                with pytest.raises(psycopg.errors.UndefinedTable):
                    conn.execute("SELECT * FROM missing_table")
        samples = parse_metrics(otel.metrics_text())
    finally:
        otel.shutdown()
    count = "db_client_operation_duration_seconds_count"
    for tenant, (selects, _inserts) in plan.items():
        assert value(samples, count, tenant_id=tenant, db_system="postgresql", operation="SELECT") == selects + 1
        assert value(samples, count, tenant_id=tenant, db_system="postgresql", operation="_other") == 1  # CREATE
    assert value(samples, count, tenant_id="acme", db_system="postgresql", operation="INSERT") == 2
    assert len(samples[count]) == 5
    selects = [s for s in spans.get_finished_spans() if s.name == "SELECT"]
    assert sorted(str((s.attributes or {})["tenant_id"]) for s in selects) == ["acme"] * 6 + ["globex"] * 3
    assert all("db.statement" not in (s.attributes or {}) for s in selects)


def test_redis_gets_on_cache_prefixes_count_hits_and_misses(redis_url: str) -> None:
    prefix = f"test-clients-{uuid.uuid4().hex[:8]}:"
    spans = InMemorySpanExporter()
    otel = instrument(service_name="clients", span_exporters=[spans],
                      redis_caches={"prompts": f"{prefix}prompt:", "embeddings": f"{prefix}emb:"})
    client = otel.instrument_redis(redis.Redis.from_url(redis_url))
    try:
        client.set(f"{prefix}prompt:p1", "cached")
        client.set(f"{prefix}emb:e1", "vector")
        with tenant_context("acme"):
            client.get(f"{prefix}prompt:p1")
            client.get(f"{prefix}prompt:p1")
            client.get(f"{prefix}prompt:nothing")
            client.get(f"{prefix}other")  # no cache prefix: timed, not a cache lookup
        with tenant_context("globex"):
            client.get(f"{prefix}prompt:p1")
            client.get(f"{prefix}emb:missing")
            client.get(f"{prefix}emb:missing")
            client.get(f"{prefix}emb:e1")
            client.hset(f"{prefix}h", "f", "v")
        samples = parse_metrics(otel.metrics_text())
    finally:
        client.delete(f"{prefix}prompt:p1", f"{prefix}emb:e1", f"{prefix}h")
        client.close()
        otel.shutdown()
    hits, misses = "cache_hits_total", "cache_misses_total"
    assert value(samples, hits, tenant_id="acme", cache="prompts") == 2
    assert value(samples, misses, tenant_id="acme", cache="prompts") == 1
    assert value(samples, hits, tenant_id="globex", cache="prompts") == 1
    assert value(samples, hits, tenant_id="globex", cache="embeddings") == 1
    assert value(samples, misses, tenant_id="globex", cache="embeddings") == 2
    assert len(samples[hits]) == 3 and len(samples[misses]) == 2
    count = "db_client_operation_duration_seconds_count"
    assert value(samples, count, tenant_id="acme", db_system="redis", operation="GET") == 4
    assert value(samples, count, tenant_id="globex", db_system="redis", operation="GET") == 4
    assert value(samples, count, tenant_id="globex", db_system="redis", operation="HSET") == 1
    assert value(samples, count, tenant_id="_unassigned", db_system="redis", operation="SET") == 2
    gets = [s for s in spans.get_finished_spans() if s.name == "GET"]
    assert sorted(str((s.attributes or {})["tenant_id"]) for s in gets) == ["acme"] * 4 + ["globex"] * 4


@pytest.mark.parametrize(("overrides", "message"), [
    ({"providers": {"local": "http://x"}}, "app.providers.local: must match"),
    ({"max_models": 0}, "app.max_models: must be >= 1"),
    ({"redis_caches": {"prompts": ""}}, "app.redis_caches.prompts: must not be empty"),
])
def test_bad_client_config_is_one_line(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        instrument(service_name="clients", **overrides)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)
