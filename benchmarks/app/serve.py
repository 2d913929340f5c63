"""`python -m benchmarks.app.serve VARIANT PORT`: the benchmark's FastAPI app under one instrumentation.

Each variant runs in its own process so the CPU the server burns can be read from /proc alone.
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn
from fastapi import FastAPI

ROUTE = "/v1/tenants/{tenant}/agents/{agent_id}"
VARIANTS = (
    "bare", "obsbundle-notrace", "obsbundle-sampled", "obsbundle", "instrumentator", "starlette-exporter",
    "otel-fastapi",
)
SAMPLE_RATIO = 0.1  # the "configured ratio" of the full variant: 1 request in 10 starts a trace


def build_app() -> FastAPI:
    app = FastAPI()

    @app.get(ROUTE)
    async def agent(tenant: str, agent_id: str) -> dict[str, str]:
        return {"tenant": tenant, "agent": agent_id, "status": "running"}

    return app


def instrumented(variant: str) -> Any:
    app = build_app()
    if variant == "bare":
        return app
    if variant.startswith("obsbundle"):
        from collectors.app import instrument
        from collectors.app.asgi import TenantMiddleware

        # No route list: the templates come from FastAPI's router, as in a real service.
        ratio = SAMPLE_RATIO if variant == "obsbundle-sampled" else 1.0
        otel = instrument(service_name="bench", trace_sample_ratio=ratio)
        # Tracing off: our tenant + metrics layer alone, without OpenTelemetry's server-span middleware.
        return TenantMiddleware(app, otel) if variant == "obsbundle-notrace" else otel.asgi(app)
    if variant == "instrumentator":
        from prometheus_fastapi_instrumentator import Instrumentator

        Instrumentator().instrument(app)
        return app
    if variant == "starlette-exporter":
        from starlette_exporter import PrometheusMiddleware

        app.add_middleware(PrometheusMiddleware)
        return app
    if variant == "otel-fastapi":
        from opentelemetry.exporter.prometheus import PrometheusMetricReader
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
        from opentelemetry.sdk.metrics import MeterProvider
        from opentelemetry.sdk.trace import TracerProvider

        FastAPIInstrumentor.instrument_app(
            app, tracer_provider=TracerProvider(), meter_provider=MeterProvider([PrometheusMetricReader()])
        )
        return app
    raise SystemExit(f"unknown variant {variant}; one of {', '.join(VARIANTS)}")


def main() -> None:
    variant, port = sys.argv[1], int(sys.argv[2])
    uvicorn.run(instrumented(variant), host="127.0.0.1", port=port, log_level="warning", access_log=False,
                lifespan="off")


if __name__ == "__main__":
    main()
