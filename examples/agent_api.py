"""A small multi-tenant "agent API": a FastAPI app instrumented by collectors.app (demo, dashboards, tests).

Run it:  uvicorn examples.agent_api:app --port 8000     (config: $OBSBUNDLE_CONFIG, optional)

    GET  /healthz                                  liveness, for uptime probes
    GET  /v1/echo?sleep=0.3&status=500             tenant from X-Tenant-ID or X-API-Key
    GET  /v1/tenants/{tenant}/infer?sleep=0.2&tokens=40&cache=hit
    POST /v1/tenants/{tenant}/tasks?user=u1&outcome=success&results=5&sleep=0.05
                                                   one agent task: business metrics (tasks, users,
                                                   vector search, agents active)
    GET  /v1/jobs?sleep=0.5&work=0.1               runs `AgentJob` on Temporal ($TEMPORAL_ADDRESS)
    GET  /metrics                                  Prometheus exposition (not itself counted)

`sleep` (seconds, capped at 10) and `status` let a test or a demo inject latency and errors. Route
templates come from FastAPI's router: there is no hand-kept route list.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from collectors.app import Instrumentation, current_tenant, instrument
from collectors.app.business import BusinessMetrics
from obsbundle import config as obsconfig

log = logging.getLogger("examples.agent_api")


def _number(text: str | None, default: float, low: float, high: float) -> float:
    try:
        return min(high, max(low, float(text))) if text is not None else default
    except ValueError:
        return default


def _status(text: str | None) -> int:
    return int(_number(text, 200, 200, 599))


def create_app(config: dict[str, Any] | None = None, **kwargs: Any) -> tuple[Any, Instrumentation]:
    """The ASGI app and its Instrumentation (tests pass span_exporters / overrides here)."""
    otel = instrument(config, **{"service_name": "agent-api", **kwargs})
    running: Counter[str] = Counter()  # agent tasks in progress by tenant: the "agents active" gauge
    business = BusinessMetrics(otel, agents=lambda: dict(running))
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

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        otel.shutdown()

    api = FastAPI(title="agent-api", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)

    @api.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @api.get("/v1/echo")
    async def echo(sleep: str | None = None, status: str | None = None) -> JSONResponse:
        await asyncio.sleep(_number(sleep, 0.0, 0.0, 10.0))
        log.info("echo served")
        return JSONResponse({"tenant": current_tenant()}, status_code=_status(status))

    @api.get("/v1/tenants/{tenant}/infer")
    async def infer(
        tenant: str, sleep: str | None = None, status: str | None = None, tokens: str | None = None,
        cache: str | None = None, model: str = "small",
    ) -> JSONResponse:
        otel.record_cache("prompts", hit=cache == "hit")
        with otel.record_inference(model=model) as inference:
            await asyncio.sleep(_number(sleep, 0.0, 0.0, 10.0))
            count = int(_number(tokens, 0, 0, 1e6))
            inference.tokens(input=count, output=count * 2)
        return JSONResponse({"tenant": current_tenant(), "tokens": count}, status_code=_status(status))

    @api.post("/v1/tenants/{tenant}/tasks")
    async def task(
        tenant: str, user: str | None = None, outcome: str = "success", results: str | None = None,
        sleep: str | None = None,
    ) -> JSONResponse:
        who = current_tenant()
        business.task_started()
        running[who] += 1
        try:
            if user:
                business.user_seen(user)
            with business.vector_search("docs") as search:
                await asyncio.sleep(_number(sleep, 0.0, 0.0, 10.0))
                search.results = int(_number(results, 0, 0, 1000))
        finally:
            running[who] -= 1
            business.task_finished(outcome)
        return JSONResponse({"tenant": who, "outcome": outcome}, status_code=500 if outcome == "failure" else 200)

    @api.get("/v1/jobs")
    async def jobs(sleep: str | None = None, status: str | None = None, work: str | None = None) -> JSONResponse:
        await asyncio.sleep(_number(sleep, 0.0, 0.0, 10.0))
        try:
            result = await run_job(_number(work, 0.0, 0.0, 10.0))
        except Exception as exc:  # Temporal down: a clear 503, logged, never a traceback page
            log.warning("job failed: %s", exc)
            return JSONResponse({"error": "job backend unavailable"}, status_code=503)
        log.info("job finished")
        return JSONResponse({"tenant": current_tenant(), "job": result}, status_code=_status(status))

    instrumented = otel.asgi(api)
    metrics = otel.metrics_app()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
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
