"""Benchmark: `obsbundle exporter postgres` against Debian's prometheus-postgres-exporter."""
