"""Tenant resolution, spans, helpers and the cardinality cap of collectors.app, over real sockets."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from wsgiref.simple_server import WSGIRequestHandler, make_server

import httpx
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from collectors.app import current_tenant, instrument, record_inference, tenant_context
from collectors.app.tenant import clean
from examples.agent_api import create_app
from obsbundle.errors import ConfigError
from obsbundle.services import UvicornThread, by_tenant, parse_metrics, sample_sum, wait_for
from obsbundle.tenancy import OVERFLOW, UNASSIGNED, normalize
from tests.support.http import raw_request

API_KEY = "sk-test-0123456789"


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture(scope="module")
def service(spans: InMemorySpanExporter) -> Iterator[tuple[UvicornThread, object]]:
    app, otel = create_app(span_exporters=[spans], api_keys={API_KEY: "keyco"})
    server = UvicornThread(app)
    yield server, otel
    server.close()
    otel.shutdown()


def _samples(otel) -> dict:
    return parse_metrics(otel.metrics_text())


def test_header_api_key_and_path_param_resolve_the_tenant(service):
    server, otel = service
    assert httpx.get(f"{server.url}/v1/echo", headers={"X-Tenant-ID": "acme"}).json() == {"tenant": "acme"}
    assert httpx.get(f"{server.url}/v1/echo", headers={"X-API-Key": API_KEY}).json() == {"tenant": "keyco"}
    bearer = {"Authorization": f"Bearer {API_KEY}"}
    assert httpx.get(f"{server.url}/v1/echo", headers=bearer).json() == {"tenant": "keyco"}
    # The API key (authenticated) wins over a header the client can set freely; the path wins too.
    spoof = {"X-API-Key": API_KEY, "X-Tenant-ID": "acme"}
    assert httpx.get(f"{server.url}/v1/echo", headers=spoof).json() == {"tenant": "keyco"}
    infer = httpx.get(f"{server.url}/v1/tenants/pathco/infer?tokens=3", headers={"X-Tenant-ID": "acme"})
    assert infer.json()["tenant"] == "pathco"
    # A mixed-case id is normalised (collision-free), not trusted verbatim.
    assert httpx.get(f"{server.url}/v1/echo", headers={"X-Tenant-ID": "Acme"}).json() == {"tenant": normalize("Acme")}

    samples = _samples(otel)
    echo = by_tenant(samples, "http_server_requests_total", route="/v1/echo")
    assert echo["acme"] == 1 and echo["keyco"] == 3 and echo[normalize("Acme")] == 1
    assert by_tenant(samples, "http_server_requests_total", route="/v1/tenants/{tenant}/infer")["pathco"] == 1
    # The API key itself never reaches the exposition.
    assert API_KEY not in otel.metrics_text()


def test_missing_and_malformed_tenants_go_to_unassigned_without_crashing(service):
    server, otel = service
    before = by_tenant(_samples(otel), "http_server_requests_total").get(UNASSIGNED, 0.0)
    assert httpx.get(f"{server.url}/v1/echo").json() == {"tenant": UNASSIGNED}
    assert httpx.get(f"{server.url}/v1/echo", headers={"X-API-Key": "wrong-key"}).json() == {"tenant": UNASSIGNED}
    assert httpx.get(f"{server.url}/v1/echo", headers={"Authorization": "Basic Zm9vOmJhcg=="}).status_code == 200
    malformed = [
        b"X-Tenant-ID: \xff\xfe\xfd",  # obs-text bytes
        b"X-Tenant-ID: " + b"a" * 500,  # too long
        b"X-Tenant-ID:    ",  # empty
        b"X-Tenant-ID: a b\tc",  # whitespace inside
        b"X-API-Key: \x80\x81",
    ]
    for header in malformed:
        head = b"GET /v1/echo HTTP/1.1\r\nHost: x\r\n" + header + b"\r\nConnection: close\r\n\r\n"
        response = raw_request(server.port, head)
        assert response.startswith(b"HTTP/1.1 200"), response[:200]
        assert json.loads(response.partition(b"\r\n\r\n")[2]) == {"tenant": UNASSIGNED}
    # A made-up method is folded into method="_other" instead of minting a new series.
    brew = raw_request(server.port, b"BREW /v1/echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert brew.startswith(b"HTTP/1.1 405")  # FastAPI answers it; the request is still counted
    samples = _samples(otel)
    after = by_tenant(samples, "http_server_requests_total").get(UNASSIGNED, 0.0)
    assert after - before == 3 + len(malformed) + 1
    assert by_tenant(samples, "http_server_requests_total", method="_other") == {UNASSIGNED: 1}
    assert "BREW" not in otel.metrics_text()
    assert clean(None) is None and clean("  ") is None and clean("x" * 129) is None and clean("a\x00b") is None
    assert clean(" acme ") == "acme"


def test_spans_carry_tenant_id_and_client_baggage_cannot_override_it(service, spans):
    server, _otel = service
    spans.clear()
    headers = {"X-Tenant-ID": "beta", "baggage": "tenant_id=evil,other=1"}
    assert httpx.get(f"{server.url}/v1/tenants/beta/infer?tokens=5", headers=headers).status_code == 200
    # the server span ends just after the last byte is sent, so it may finish after the client returns
    finished = wait_for(lambda: _with_server_span(spans), 10, what="server span finished")
    server_spans = [s for s in finished if s.kind.name == "SERVER"]
    inference = [s for s in finished if s.name == "model.inference"]
    assert len(server_spans) == 1 and len(inference) == 1
    assert server_spans[0].attributes["tenant_id"] == "beta"
    assert inference[0].attributes["tenant_id"] == "beta"
    assert inference[0].attributes["model.input_tokens"] == 5
    assert inference[0].parent.span_id == server_spans[0].context.span_id

    spans.clear()
    assert httpx.get(f"{server.url}/v1/echo").status_code == 200
    finished = wait_for(lambda: _with_server_span(spans), 10, what="server span finished")
    assert [s.attributes["tenant_id"] for s in finished] == [UNASSIGNED]


def _with_server_span(spans: InMemorySpanExporter):
    finished = spans.get_finished_spans()
    return finished if any(s.kind.name == "SERVER" for s in finished) else None


def test_inference_and_cache_helpers_record_by_tenant(service):
    server, otel = service
    for cache in ("hit", "hit", "miss"):
        url = f"{server.url}/v1/tenants/gamma/infer?tokens=10&model=large&cache={cache}&sleep=0.06"
        assert httpx.get(url).status_code == 200
    samples = _samples(otel)
    assert by_tenant(samples, "model_inference_duration_seconds_count", model="large") == {"gamma": 3}
    # every call slept 60 ms inside the timed block: none in a bucket below 0.05 s
    assert by_tenant(samples, "model_inference_duration_seconds_bucket", model="large", le="0.05") == {"gamma": 0}
    assert sample_sum(samples, "model_inference_duration_seconds_sum", tenant_id="gamma") >= 0.18
    assert by_tenant(samples, "model_inference_tokens_total", model="large", kind="input") == {"gamma": 30}
    assert by_tenant(samples, "model_inference_tokens_total", model="large", kind="output") == {"gamma": 60}
    assert by_tenant(samples, "cache_hits_total", cache="prompts")["gamma"] == 2
    assert by_tenant(samples, "cache_misses_total", cache="prompts")["gamma"] == 1


def test_helpers_outside_a_request_use_tenant_context_and_decorator():
    spans = InMemorySpanExporter()
    otel = instrument(service_name="worker", span_exporters=[spans])
    try:
        @record_inference(model="embed")
        def embed(text: str) -> int:
            return len(text)

        assert current_tenant() == UNASSIGNED
        with tenant_context("Acme Corp") as tenant:
            assert embed("hello") == 5
            with otel.record_inference(model="embed") as call:
                call.tokens(input=7)
            otel.cache_hit("embeddings")
        embed("x")  # outside: _unassigned
        samples = parse_metrics(otel.metrics_text())
        assert tenant == normalize("Acme Corp")
        assert by_tenant(samples, "model_inference_duration_seconds_count") == {tenant: 2, UNASSIGNED: 1}
        assert by_tenant(samples, "model_inference_tokens_total", kind="input") == {tenant: 7}
        assert by_tenant(samples, "cache_hits_total", cache="embeddings") == {tenant: 1}
        assert {s.attributes["tenant_id"] for s in spans.get_finished_spans()} == {tenant, UNASSIGNED}
    finally:
        otel.shutdown()


def test_cardinality_cap_sends_late_tenants_to_overflow_with_exact_totals():
    app, otel = create_app(max_tenants_per_instrument=3)
    server = UvicornThread(app)
    try:
        tenants = [f"t{i}" for i in range(7)]
        errors = 0
        for i, tenant in enumerate(tenants):
            for j in range(3):
                status = 500 if (i + j) % 4 == 0 else 200
                errors += status == 500
                response = httpx.get(f"{server.url}/v1/echo?status={status}", headers={"X-Tenant-ID": tenant})
                assert response.status_code == status
            assert httpx.get(f"{server.url}/v1/tenants/{tenant}/infer?tokens=1").status_code == 200
        samples = parse_metrics(otel.metrics_text())
    finally:
        server.close()
        otel.shutdown()

    requests = by_tenant(samples, "http_server_requests_total", route="/v1/echo")
    assert requests == {"t0": 3, "t1": 3, "t2": 3, OVERFLOW: 12}
    assert sum(by_tenant(samples, "http_server_requests_total").values()) == 7 * 4
    assert sum(by_tenant(samples, "http_server_errors_total").values()) == errors
    overflow_errors = sum(1 for i in range(3, 7) for j in range(3) if (i + j) % 4 == 0)
    assert by_tenant(samples, "http_server_errors_total").get(OVERFLOW, 0) == overflow_errors
    assert sum(by_tenant(samples, "http_server_request_duration_seconds_count").values()) == 28
    assert by_tenant(samples, "model_inference_duration_seconds_count") == {"t0": 1, "t1": 1, "t2": 1, OVERFLOW: 4}

    overflowed = {dict(k)["instrument"]: v for k, v in samples["otel_tenant_overflow_total"].items()}
    assert overflowed["http_server_requests_total"] == 16  # 4 late tenants x (3 echo + 1 infer)
    assert overflowed["http_server_request_duration_seconds"] == 16
    assert overflowed["http_server_active_requests"] == 16
    assert overflowed["http_server_errors_total"] == overflow_errors
    assert overflowed["model_inference_duration_seconds"] == 4
    assert overflowed["model_inference_tokens_total"] == 4
    assert overflowed["cache_misses_total"] == 4


def test_wsgi_middleware_records_tenant_metrics_and_spans():
    spans = InMemorySpanExporter()
    otel = instrument(service_name="legacy", routes=["/items/{tenant}"], span_exporters=[spans])

    def legacy(environ, start_response):
        status = "503 Service Unavailable" if "fail" in environ.get("QUERY_STRING", "") else "200 OK"
        start_response(status, [("Content-Type", "text/plain")])
        return [current_tenant().encode()]

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args):
            pass

    httpd = make_server("127.0.0.1", 0, otel.wsgi(legacy), handler_class=Quiet)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{httpd.server_address[1]}"
    try:
        assert httpx.get(f"{base}/items/delta").text == "delta"
        assert httpx.get(f"{base}/items/delta?fail=1").status_code == 503
        assert httpx.get(f"{base}/other", headers={"X-Tenant-ID": "echo"}).text == "echo"
        assert httpx.get(f"{base}/other").text == UNASSIGNED
        samples = parse_metrics(otel.metrics_text())
    finally:
        httpd.shutdown()
        httpd.server_close()
        otel.shutdown()
    assert by_tenant(samples, "http_server_requests_total", route="/items/{tenant}") == {"delta": 2}
    assert by_tenant(samples, "http_server_requests_total", route="_other") == {"echo": 1, UNASSIGNED: 1}
    assert by_tenant(samples, "http_server_errors_total") == {"delta": 1}
    assert by_tenant(samples, "http_server_active_requests") == {"delta": 0, "echo": 0, UNASSIGNED: 0}
    assert sorted(s.attributes["tenant_id"] for s in spans.get_finished_spans()) == sorted(
        ["delta", "delta", "echo", UNASSIGNED]
    )


def test_bad_app_config_and_missing_otlp_exporter_are_one_line_errors():
    with pytest.raises(ConfigError, match=r"^app\.max_tenants_per_instrument: must be >= 1$"):
        instrument(max_tenants_per_instrument=0)
    with pytest.raises(ConfigError, match=r"^app\.tenant_from\[0\]: must be one of"):
        instrument(tenant_from=["cookie"])
    with pytest.raises(ConfigError, match=r"^app\.otlp\.protocol: must be one of"):
        instrument(otlp={"endpoint": "http://user:s3cr3t-token@127.0.0.1:4318", "protocol": "thrift"})


def test_demo_load_generator_drives_all_three_tenants():
    from examples.load import PROFILES, run

    app, otel = create_app()
    server = UvicornThread(app)
    try:
        counts = asyncio.run(run(server.url, 1.5, concurrency=1))
        samples = _samples(otel)
    finally:
        server.close()
        otel.shutdown()
    assert set(counts) == set(PROFILES) and all(n > 0 for n in counts.values())
    assert by_tenant(samples, "http_server_requests_total") == {t: float(n) for t, n in counts.items()}
