"""Application instrumentation: overhead against its peers on a real FastAPI app (peers.py), then
the cost of logs, exemplars and OTLP export and the Loki stream counts (export.py)."""
