"""Outbound httpx calls inside a request carry W3C trace context and the tenant baggage."""

from __future__ import annotations

from typing import Any

import httpx
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from collectors.app import instrument
from obsbundle.services import UvicornThread


def test_httpx_call_inside_a_request_propagates_traceparent_and_tenant_baggage() -> None:
    seen: list[dict[str, str]] = []

    async def downstream(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append({k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]})
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    spans = InMemorySpanExporter()
    otel = instrument(service_name="caller", routes=["/call"], span_exporters=[spans])
    target = UvicornThread(downstream)
    client = otel.instrument_httpx(httpx.AsyncClient())

    async def caller(scope: dict[str, Any], receive: Any, send: Any) -> None:
        response = await client.get(f"{target.url}/work")
        await send({"type": "http.response.start", "status": response.status_code, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    server = UvicornThread(otel.asgi(caller))
    try:
        response = httpx.get(f"{server.url}/call", headers={"X-Tenant-ID": "acme", "baggage": "tenant_id=forged"},
                             timeout=10)
        assert response.status_code == 204
    finally:
        server.close()
        target.close()
        otel.shutdown()
    assert len(seen) == 1
    _version, trace_id, parent_id, _flags = seen[0]["traceparent"].split("-")
    finished = {s.name: s for s in spans.get_finished_spans()}
    server_span = finished["GET /call"]
    client_span = next(s for s in finished.values() if s.kind.name == "CLIENT")
    assert trace_id == format(server_span.context.trace_id, "032x")
    assert parent_id == format(client_span.context.span_id, "016x")
    assert client_span.parent.span_id == server_span.context.span_id
    assert "tenant_id=acme" in seen[0]["baggage"] and "forged" not in seen[0]["baggage"]
    assert client_span.attributes["tenant_id"] == server_span.attributes["tenant_id"] == "acme"
