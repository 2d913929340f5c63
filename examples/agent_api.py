"""A small multi-tenant "agent API" instrumented with collectors.app (demo, dashboards, tests).

Run it:  uvicorn examples.agent_api:app --port 8000     (config: $OBSBUNDLE_CONFIG, optional)

    GET /healthz                                   liveness, for uptime probes
    GET /v1/echo?sleep=0.3&status=500              tenant from X-Tenant-ID or X-API-Key
    GET /v1/tenants/{tenant}/infer?sleep=0.2&tokens=40&cache=hit
    GET /v1/jobs?sleep=0.5&work=0.1                runs `AgentJob` on Temporal ($TEMPORAL_ADDRESS)
    GET /metrics                                   Prometheus exposition (not itself counted)

`sleep` (seconds, capped at 10) and `status` let a test or a demo inject latency and errors.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import uuid
from collections.abc import Iterable
from typing import Any
from urllib.parse import parse_qs

from collectors.app import Instrumentation, current_tenant, instrument
from obsbundle import config as obsconfig

ROUTES = ["/healthz", "/v1/echo", "/v1/tenants/{tenant}/infer", "/v1/jobs"]
log = logging.getLogger("examples.agent_api")


def _query(scope: dict[str, Any]) -> dict[str, str]:
    raw = (scope.get("query_string") or b"").decode("latin-1")
    return {k: v[-1] for k, v in parse_qs(raw).items()}


def _number(text: str | None, default: float, low: float, high: float) -> float:
    try:
        return min(high, max(low, float(text))) if text is not None else default
    except ValueError:
        return default


async def _respond(send: Any, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})


def create_app(config: dict[str, Any] | None = None, **kwargs: Any) -> tuple[Any, Instrumentation]:
    """The ASGI app and its Instrumentation (tests pass span_exporters / overrides here)."""
    otel = instrument(config, routes=ROUTES, **{"service_name": "agent-api", **kwargs})
    temporal: dict[str, Any] = {}

    async def run_job(work: float) -> str:
        from temporalio.client import Client

        from examples.agent_jobs import TASK_QUEUE, AgentJob

        if "client" not in temporal:
            address = os.environ.get("TEMPORAL_ADDRESS", "127.0.0.1:7233")
            temporal["client"] = await Client.connect(address, interceptors=[otel.temporal_interceptor()])
        return await temporal["client"].execute_workflow(
            AgentJob.run, work, id=f"agent-job-{uuid.uuid4()}", task_queue=TASK_QUEUE
        )

    async def api(scope: dict[str, Any], receive: Any, send: Any) -> None:
        path, query = scope["path"], _query(scope)
        delay = _number(query.get("sleep"), 0.0, 0.0, 10.0)
        status = int(_number(query.get("status"), 200, 200, 599))
        if path == "/healthz":
            await _respond(send, 200, {"status": "ok"})
            return
        if path == "/v1/echo":
            await asyncio.sleep(delay)
            log.info("echo served")
            await _respond(send, status, {"tenant": current_tenant()})
            return
        if path.startswith("/v1/tenants/") and path.endswith("/infer"):
            otel.record_cache("prompts", hit=query.get("cache") == "hit")
            with otel.record_inference(model=query.get("model", "small")) as inference:
                await asyncio.sleep(delay)
                tokens = int(_number(query.get("tokens"), 0, 0, 1e6))
                inference.tokens(input=tokens, output=tokens * 2)
            await _respond(send, status, {"tenant": current_tenant(), "tokens": tokens})
            return
        if path == "/v1/jobs":
            await asyncio.sleep(delay)
            try:
                result = await run_job(_number(query.get("work"), 0.0, 0.0, 10.0))
            except Exception as exc:  # Temporal down: a clear 503, logged, never a traceback page
                log.warning("job failed: %s", exc)
                await _respond(send, 503, {"error": "job backend unavailable"})
                return
            log.info("job finished")
            await _respond(send, status, {"tenant": current_tenant(), "job": result})
            return
        await _respond(send, 404, {"error": "not found"})

    instrumented = otel.asgi(api)
    metrics = otel.metrics_app()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    otel.shutdown()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] == "http" and scope["path"] == "/metrics":
            await metrics(scope, receive, send)
            return
        await instrumented(scope, receive, send)

    return app, otel


def _from_env() -> dict[str, Any] | None:
    path = os.environ.get("OBSBUNDLE_CONFIG")
    return obsconfig.load(path) if path else None


def __getattr__(name: str) -> Iterable[Any]:
    """`examples.agent_api:app` for uvicorn, built on first access (not at import)."""
    if name == "app":
        built, _ = create_app(_from_env())
        globals()["app"] = built
        return built
    raise AttributeError(name)
