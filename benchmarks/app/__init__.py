"""Per-request overhead of app instrumentation: collectors.app against its peers on one FastAPI app."""
