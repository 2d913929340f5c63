"""Per-request overhead of collectors.app against its peers (prometheus-fastapi-instrumentator,
starlette-exporter, OpenTelemetry FastAPI) on one FastAPI app served from loopback."""
