"""Per-request cost of collectors.app's logs, exemplars and OTLP export, and Loki stream counts.

Drives the example ASGI app in-process (no sockets, so only instrumentation cost is measured)
with the same request repeatedly under each configuration and prints the median microseconds
per request over a few rounds, then the extra cost against the baseline (spans + metrics only).
It then counts the Loki streams the same JSON lines would make with tenant_id as a stream label
versus as structured metadata (docs/logs-traces.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import statistics
import time
from typing import Any

from examples.agent_api import create_app
from obsbundle.otlp_receiver import OTLPReceiver

REQUESTS = int(os.environ.get("BENCH_APP_REQUESTS", "2000"))
ROUNDS = 5


def _scope(tenant: str) -> dict[str, Any]:
    return {"type": "http", "method": "GET", "path": "/v1/echo", "raw_path": b"/v1/echo", "query_string": b"",
            "headers": [(b"x-tenant-id", tenant.encode())], "http_version": "1.1", "scheme": "http",
            "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 5000), "root_path": ""}


async def _drive(app: Any, count: int, tenants: int = 3) -> float:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        return None

    scopes = [_scope(f"tenant-{i}") for i in range(tenants)]
    started = time.perf_counter()
    for i in range(count):
        await app(scopes[i % tenants], receive, send)
    return (time.perf_counter() - started) / count * 1e6


def measure(variants: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Median us/request per variant. Each round builds, drives and shuts down every variant in
    turn (logging handlers are process-wide, so only one variant may be live at a time), so
    machine load hits all variants alike."""
    rounds: dict[str, list[float]] = {name: [] for name in variants}
    with contextlib.redirect_stdout(open(os.devnull, "w")):  # JSON lines go nowhere
        for _ in range(ROUNDS):
            for name, cfg in variants.items():
                app, otel = create_app({"app": cfg})
                try:
                    asyncio.run(_drive(app, 100))  # warm-up
                    rounds[name].append(asyncio.run(_drive(app, REQUESTS)))
                finally:
                    otel.shutdown()
    return {name: statistics.median(values) for name, values in rounds.items()}


def components(count: int = 20000) -> dict[str, float]:
    """The two added steps alone, inside a live span: one exemplar observe, one JSON log line."""
    import logging

    from opentelemetry.sdk.trace import TracerProvider

    from collectors.app.exemplars import ExemplarStore
    from collectors.app.logs import stream_handler

    tracer = TracerProvider().get_tracer("bench")
    store = ExemplarStore("h", [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10])
    logger = logging.getLogger("bench.json")
    logger.propagate = False
    logger.addHandler(stream_handler("bench", "json", open(os.devnull, "w")))  # noqa: SIM115
    logger.setLevel(logging.INFO)
    labels = {"tenant_id": "acme", "route": "/v1/echo", "method": "GET"}
    out: dict[str, float] = {}
    with tracer.start_as_current_span("request"):
        started = time.perf_counter()
        for i in range(count):
            store.observe(labels, (i % 100) / 50)
        out["exemplar observe"] = (time.perf_counter() - started) / count * 1e6
        started = time.perf_counter()
        for _ in range(count):
            logger.info("GET /v1/echo 200 0.001s", extra={"method": "GET", "route": "/v1/echo", "status": 200})
        out["JSON log line (context + scrub + format + write)"] = (time.perf_counter() - started) / count * 1e6
    return out


def loki_streams(tenants: int, requests: int) -> dict[str, int]:
    """Streams (distinct label sets) for the JSON lines of `requests` requests spread over `tenants`."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        app, otel = create_app({"app": {"logs": {"format": "json"}, "max_tenants_per_instrument": tenants}})
        try:
            asyncio.run(_drive(app, requests, tenants))
        finally:
            otel.shutdown()
    lines = [json.loads(line) for line in buffer.getvalue().splitlines() if line.startswith("{")]
    as_label = {(r["service"], r["level"], r["tenant_id"]) for r in lines}
    as_metadata = {(r["service"], r["level"]) for r in lines}
    return {"lines": len(lines), "streams, tenant_id as label": len(as_label),
            "streams, tenant_id as structured metadata": len(as_metadata)}


def main() -> int:
    receiver = OTLPReceiver()
    otlp = {"endpoint": receiver.http_endpoint, "interval": "1s"}
    variants = {
        "baseline (spans + metrics)": {"exemplars": False},
        "+ exemplars": {"exemplars": True},
        "+ JSON logs (access + 1 user line)": {"exemplars": False, "logs": {"format": "json"}},
        "+ JSON logs + exemplars": {"exemplars": True, "logs": {"format": "json"}},
        "+ JSON logs + exemplars + OTLP traces/metrics/logs": {"exemplars": True, "logs": {"format": "json"},
                                                             "otlp": otlp},
    }
    try:
        results = measure(variants)
    finally:
        receiver.close()
    base = results["baseline (spans + metrics)"]
    print(f"collectors.app per-request cost, {REQUESTS} requests x {ROUNDS} rounds, median (us/request)")
    for name, value in results.items():
        print(f"  {name:55s} {value:8.1f}  (+{value - base:6.1f})")
    for name, value in components().items():
        print(f"  {name:55s} {value:8.2f} us")
    for tenants in (10, 100, 1000):
        print(f"  Loki streams for {tenants} tenants:", loki_streams(tenants, tenants * 5))
    return 0


